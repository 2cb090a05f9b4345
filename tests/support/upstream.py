"""What another user of the same PostMetric key does to the stand-in."""
from __future__ import annotations

import requests

from dashboard.demo import DEMO_API_KEY


def spend_the_key_elsewhere(api, calls: int) -> None:
    """Another process with the same key uses up ``calls`` of the stand-in's window."""
    for _ in range(calls):
        requests.get(
            f"{api.url}/api/v1/visitor",
            params={"visitorId": "elsewhere"},
            headers={"Authorization": f"Bearer {DEMO_API_KEY}"},
            timeout=5,
        )
