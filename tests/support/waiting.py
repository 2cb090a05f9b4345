"""Wait for a condition, not for a guessed number of seconds."""
from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(condition: Callable[[], object], timeout: float = 5.0, message: str | Callable[[], str] = "") -> None:
    """Return as soon as ``condition()`` is true; fail the test after ``timeout`` seconds.

    A poll, not a pause: the test goes on the moment the other thread or process is
    there, and a condition that never comes true fails with ``message``.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError((message() if callable(message) else message) or f"not true within {timeout} s: {condition}")
        time.sleep(0.005)
