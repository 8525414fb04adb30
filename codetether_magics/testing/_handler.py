"""The HTTP side of the scripted model server: request parsing, control endpoints,
chunked SSE responses and connection drops. The scripted logic lives in ``scripted_server``."""

from __future__ import annotations

import socket
import struct
from dataclasses import asdict, dataclass
from typing import Any, Union
from urllib.parse import urlsplit

from ._loopback import ChunkedHandler
from ._wire import ANTHROPIC, OPENAI, error_body
from .turns import Turn

__all__ = ["Handler", "RecordedRequest", "TurnLike", "as_turn"]

TurnLike = Union[Turn, dict, list, str]
_SECRET_HEADERS = ("authorization", "x-api-key")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: Any  # the parsed JSON body (None when it was not JSON)
    protocol: str | None  # "openai", "anthropic" or None for other paths

    def to_dict(self, *, redact: bool = True) -> dict[str, Any]:
        data = asdict(self)
        if redact:
            data["headers"] = {k: ("<redacted>" if k in _SECRET_HEADERS else v) for k, v in self.headers.items()}
        return data


class Handler(ChunkedHandler):
    # HTTP/1.1 (from JSONHandler): chunked streaming, so a dropped stream is detectably incomplete.
    _streaming = False

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        owner = self.owner
        if path == "/_scripted/requests":
            self.send_json(200, [r.to_dict() for r in owner.requests])
        elif path == "/_scripted/errors":
            self.send_json(200, owner.errors)
        elif path in ("/", "/_scripted/health"):
            self.send_json(200, {"ok": True, "remaining": owner.remaining})
        elif path.endswith("/models"):
            self.send_json(200, {"object": "list", "data": [{"id": "scripted-model", "object": "model"}]})
        else:
            self.send_json(404, {"error": {"message": f"no such path {path}"}})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        body = self.read_json()
        if path == "/_scripted/turns":
            self._enqueue(body)
            return
        protocol = (OPENAI if path.endswith("/chat/completions") else ANTHROPIC if path.endswith("/messages")
                    else "responses" if path.endswith("/responses") else None)
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = RecordedRequest("POST", path, headers, body, protocol)
        if protocol is None:
            self.owner._record(request)
            self.send_json(404, {"error": {"message": f"no such path {path}; use .../chat/completions, "
                                                      ".../responses or .../messages"}})
            return
        self.owner.answer(self, protocol, request)

    def _enqueue(self, body: Any) -> None:
        try:
            turns = [as_turn(t) for t in (body if isinstance(body, list) else [body])]
        except ValueError as exc:
            self.send_json(400, {"error": {"message": str(exc)}})
            return
        self.owner.enqueue(*turns)
        self.send_json(200, {"ok": True, "remaining": self.owner.remaining})

    # -- response helpers -------------------------------------------------------------

    def send_error_turn(self, protocol: str, error: Any) -> None:
        headers = {}
        if error.retry_after is not None:
            seconds = error.retry_after
            headers["Retry-After"] = str(int(seconds)) if float(seconds).is_integer() else str(seconds)
        if error.body is not None:
            self.send_body(error.status, error.body.encode(), "text/plain", headers)
        else:
            self.send_json(error.status, error_body(protocol, error.status, error.message), headers)

    def start_stream(self) -> None:
        if self._streaming:
            return
        self._streaming = True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def end_stream(self) -> None:
        self.end_chunks()
        self._streaming = False

    def drop(self) -> None:
        """Cut the connection with a TCP reset, leaving the chunked body incomplete."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def as_turn(turn: TurnLike) -> Turn:
    return turn if isinstance(turn, Turn) else Turn.from_dict(turn)
