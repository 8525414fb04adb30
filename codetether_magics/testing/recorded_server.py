"""A loopback HTTP server that answers with given bytes: recorded API responses, or bodies
that misbehave on purpose (keep-alive comments forever, silence, an endless answer).

    with RecordedServer() as server:
        server.enqueue(Reply.from_file("fixtures/openai_text.sse"))
        server.enqueue(Reply(200, {"content-type": "text/event-stream"}, keepalive_forever()))
        ... point a provider at server.url ...
        server.requests      # the JSON bodies and headers that came in, in order

Every POST takes the next reply (or a 500 when none is left). Bodies are streamed chunk by
chunk (HTTP/1.1 chunked encoding) and flushed at once, as a real streaming API does.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from ._loopback import ChunkedHandler, LoopbackServer

__all__ = ["RecordedServer", "Reply", "SeenRequest", "endless_text", "keepalive_forever", "silence_forever"]


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: Iterable[bytes]

    @classmethod
    def from_file(cls, path: str | Path, status: int = 200, headers: Mapping[str, str] | None = None) -> "Reply":
        raw = Path(path).read_bytes()
        kind = "application/json" if str(path).endswith(".json") else "text/event-stream"
        return cls(status, dict(headers or {"content-type": kind}), _events_of(raw))


def _events_of(raw: bytes) -> list[bytes]:
    """A recording cut at its blank lines, so each SSE event goes out as its own chunk."""
    pieces = raw.split(b"\n\n")
    return [p + b"\n\n" for p in pieces[:-1]] + ([pieces[-1]] if pieces[-1] else [])


def keepalive_forever(interval: float = 0.05, comment: bytes = b": ping") -> Iterator[bytes]:
    """An SSE body of keep-alive comments (and blank lines) and nothing else, for ever."""
    while True:
        yield comment + b"\n\n"
        time.sleep(interval)


def silence_forever(first: bytes = b"") -> Iterator[bytes]:
    """``first`` (maybe nothing), then no byte at all, for ever (the connection stays open)."""
    if first:
        yield first
    while True:
        time.sleep(0.05)
        yield b""  # an empty chunk is not written: the handler only uses it to notice a hang-up


def endless_text(chunk: str = "x" * 1024, interval: float = 0.0) -> Iterator[bytes]:
    """An OpenAI-style stream whose answer never ends."""
    event = b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": chunk}}]}).encode() + b"\n\n"
    while True:
        yield event
        if interval:
            time.sleep(interval)


@dataclass(frozen=True)
class SeenRequest:
    path: str
    headers: dict[str, str]
    body: Any


class _Handler(ChunkedHandler):
    def do_POST(self) -> None:
        body = self.read_json()
        owner: RecordedServer = self.owner
        owner._seen(SeenRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        reply = owner._next()
        if reply is None:
            self.send_json(500, {"error": {"message": "RecordedServer: no reply left"}})
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in reply.body:
                if chunk:
                    self.send_chunk(chunk)
                elif owner.closed.is_set():
                    return
            self.end_chunks()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up (a timeout, a cut answer): expected here


class RecordedServer(LoopbackServer):
    handler = _Handler
    thread_name = "loopback-recorded"

    def __init__(self, replies: Iterable[Reply] = ()) -> None:
        super().__init__()
        self._replies: deque[Reply] = deque(replies)
        self._requests: list[SeenRequest] = []
        self._lock = threading.Lock()
        self.closed = threading.Event()

    def enqueue(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    @property
    def requests(self) -> list[SeenRequest]:
        with self._lock:
            return list(self._requests)

    def _seen(self, request: SeenRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _next(self) -> Reply | None:
        with self._lock:
            return self._replies.popleft() if self._replies else None

    def close(self) -> None:
        self.closed.set()  # endless bodies stop at their next chunk
        super().close()

