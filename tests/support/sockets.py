"""Local sockets that fail in the ways a network does: refused, and never accepting."""
from __future__ import annotations

import socket
from contextlib import contextmanager
from typing import Iterator


def closed_port() -> int:
    """A loopback port nothing listens on (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def unaccepting_port() -> Iterator[int]:
    """A loopback port whose listen queue is full, so a new connect hangs until its time-out.

    The listener never accepts; once its backlog is filled the kernel drops further
    SYNs, which the client sees as a connect time-out.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
