"""What the loopback test servers share: a threaded HTTP server on 127.0.0.1 run in a
daemon thread (``start()`` / ``close()`` / ``with``), a request handler that reads and
writes JSON, and one that streams chunked bodies. The scripted model server, the
recorded-reply server and the Vault server add only their logic."""

from __future__ import annotations

import json
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, TypeVar

__all__ = ["ChunkedHandler", "JSONHandler", "LoopbackServer", "QuietServer"]

_Server = TypeVar("_Server", bound="LoopbackServer")


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up (interrupts, timeouts, a provider closing a bad stream) are expected.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class LoopbackServer:
    """Serves ``handler`` on 127.0.0.1 (port 0: a free one); the handler reaches this object as
    ``self.server.owner``. Use it as a context manager, or ``start()`` and ``close()``."""

    handler: ClassVar[type[BaseHTTPRequestHandler]]
    thread_name: ClassVar[str] = "loopback-server"

    def __init__(self, *, port: int = 0, ssl_context: ssl.SSLContext | None = None) -> None:
        self._port = port
        self._ssl_context = ssl_context  # serve HTTPS (for CA-bundle tests)
        self._httpd: QuietServer | None = None

    def start(self: _Server) -> _Server:
        httpd = QuietServer(("127.0.0.1", self._port), self.handler)
        if self._ssl_context is not None:
            httpd.socket = self._ssl_context.wrap_socket(httpd.socket, server_side=True)
        httpd.owner = self  # type: ignore[attr-defined]
        self._httpd = httpd
        # A short poll interval keeps close() fast (shutdown waits for one poll).
        threading.Thread(target=httpd.serve_forever, args=(0.05,), name=self.thread_name, daemon=True).start()
        return self

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self: _Server) -> _Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not running: call start() or use it in a with block")
        host, port = self._httpd.server_address[:2]
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://{host}:{port}"


class JSONHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    @property
    def owner(self) -> Any:  # the LoopbackServer serving this request
        return self.server.owner  # type: ignore[attr-defined]

    def read_json(self) -> Any:
        """The request body parsed as JSON; None when there is none or it is not JSON."""
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    def send_json(self, status: int, body: Any, extra_headers: dict[str, str] | None = None) -> None:
        self.send_body(status, json.dumps(body).encode(), "application/json", extra_headers)

    def send_body(self, status: int, data: bytes, content_type: str,
                  extra_headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class ChunkedHandler(JSONHandler):
    """A handler that streams its body in HTTP/1.1 chunks, each sent at once as a streaming API does."""

    def setup(self) -> None:
        super().setup()
        # Send each chunk at once: without this, Nagle's algorithm against the client's delayed ACK
        # holds the first body bytes ~40 ms on a reused keep-alive connection.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunks(self) -> None:
        """The last (empty) chunk: the body is complete."""
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
