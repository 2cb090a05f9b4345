"""A tiny scripted HTTP server for client tests: a real socket, scripted answers.

    with ScriptedServer() as server:
        server.script(Reply(503), Reply(200, body=b"..."))
        client = PostMetricClient(server.url, "pm_...")
        ...
        assert server.requests[0].args["visitorId"] == "x"

Replies come from a queue (``script``/``push``) or from a callable (``handler``) that
receives the ``Recorded`` request. A ``Reply`` can delay, stream a generator body
(optionally with a pause between chunks), or drop the connection without answering.
When nothing is scripted the server answers 500 "script exhausted" (and records it in
``unexpected``), which no client retries.
"""

from __future__ import annotations

import socket
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

__all__ = ["Reply", "Recorded", "ScriptedServer", "json_reply"]


@dataclass
class Reply:
    """One scripted answer."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | Iterable[bytes] = b""
    delay: float = 0.0
    """Seconds to wait before answering (interrupted by ``stop()``)."""
    chunk_delay: float = 0.0
    """Seconds to wait before each chunk of an iterable body."""
    drop: bool = False
    """Close the connection without answering."""
    content_type: str = "application/json"


def json_reply(status: int, payload: Any, **kwargs: Any) -> Reply:
    import json

    return Reply(status, body=json.dumps(payload).encode("utf-8"), **kwargs)


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    args: MultiDict
    raw_query: bytes
    headers: dict[str, str]


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class _Dropped(ConnectionResetError):
    """Raised inside the app to make werkzeug drop the connection silently."""


class ScriptedServer:
    """werkzeug server on 127.0.0.1, port 0, in a daemon thread."""

    def __init__(self, handler: Callable[[Recorded], Reply] | None = None) -> None:
        self.handler = handler
        self.requests: list[Recorded] = []
        self.unexpected: list[Recorded] = []
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True, request_handler=_QuietHandler)
        self.port: int = self._server.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="scripted-server", daemon=True
        )
        self._started = False

    # -- scripting -------------------------------------------------------------------

    def script(self, *replies: Reply) -> ScriptedServer:
        """Replace the queue with ``replies``."""
        with self._lock:
            self._queue.clear()
            self._queue.extend(replies)
        return self

    def push(self, *replies: Reply) -> ScriptedServer:
        with self._lock:
            self._queue.extend(replies)
        return self

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> ScriptedServer:
        if not self._started:
            self._started = True
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._started:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the WSGI app ---------------------------------------------------------------

    def _next_reply(self, recorded: Recorded) -> Reply:
        if self.handler is not None:
            return self.handler(recorded)
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            self.unexpected.append(recorded)
        return Reply(500, body=b'{"status":"error","error":{"code":500,"message":"script exhausted"}}')

    def _app(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        recorded = Recorded(
            method=request.method,
            path=request.path,
            args=MultiDict(request.args),
            raw_query=environ.get("QUERY_STRING", "").encode("latin-1"),
            headers=dict(request.headers.items()),
        )
        with self._lock:
            self.requests.append(recorded)
        reply = self._next_reply(recorded)
        if reply.delay and self._stopping.wait(reply.delay):
            raise _Dropped("server stopping")
        if reply.drop:
            sock: socket.socket | None = environ.get("werkzeug.socket")
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            raise _Dropped("scripted drop")
        headers = dict(reply.headers)
        if isinstance(reply.body, (bytes, bytearray)):
            response = Response(bytes(reply.body), status=reply.status, headers=headers, content_type=reply.content_type)
        else:
            response = Response(
                self._paced(reply.body, reply.chunk_delay),
                status=reply.status,
                headers=headers,
                content_type=reply.content_type,
                direct_passthrough=True,
            )
        return response(environ, start_response)

    def _paced(self, chunks: Iterable[bytes], delay: float) -> Iterator[bytes]:
        for chunk in chunks:
            if delay and self._stopping.wait(delay):
                raise _Dropped("server stopping")
            yield chunk
