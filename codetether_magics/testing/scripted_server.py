"""A real HTTP model server on 127.0.0.1 that answers from scripted turns.

It speaks the three streaming protocols: OpenAI Chat Completions (``POST .../chat/completions``),
the OpenAI Responses API (``POST .../responses``) and Anthropic Messages (``POST .../messages``),
records every request, checks each one
the way the real API would (a bad one gets HTTP 400) and against the turn's ``expect``::

    from codetether_magics.testing import ScriptedModelServer, Turn
    with ScriptedModelServer([Turn.text("Hello there")]) as server:
        ...  # point a provider at server.openai_base_url (both OpenAI APIs) or server.anthropic_base_url
        assert server.errors == []

Each model request consumes the next turn; with none left the server answers HTTP 500
"no scripted turn left". From another process::

    python -m codetether_magics.testing.scripted_server --script turns.json [--port N]

prints the URL on its first stdout line and serves until killed. Control endpoints for
cross-process tests: ``POST /_scripted/turns`` (a JSON list of turns to enqueue),
``GET /_scripted/requests``, ``GET /_scripted/errors``, ``GET /_scripted/health``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import ssl
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Iterable

from . import _checks
from ._handler import Handler, RecordedRequest, TurnLike, as_turn
from ._loopback import LoopbackServer
from ._wire import ANTHROPIC, error_body, render
from ._wire_responses import RESPONSES, ResponsesStream
from .turns import DropStep, HangStep, Turn

__all__ = ["RecordedRequest", "ScriptedModelServer", "load_script", "main"]


class ScriptedModelServer(LoopbackServer):
    """A loopback model server; use it as a context manager (or ``start()`` / ``close()``)."""

    handler = Handler
    thread_name = "scripted-model-server"

    def __init__(self, turns: Iterable[TurnLike] = (), *, chunk_delay: float = 0.0,
                 api_key: str | None = None, port: int = 0, ssl_context: "ssl.SSLContext | None" = None) -> None:
        super().__init__(port=port, ssl_context=ssl_context)
        self.chunk_delay = chunk_delay
        self.api_key = api_key  # when set, requests must carry it (Bearer or x-api-key)
        self._turns: deque[Turn] = deque(as_turn(t) for t in turns)
        self._requests: list[RecordedRequest] = []
        self._errors: list[str] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ids = itertools.count(1)

    def close(self) -> None:
        self._stopping.set()  # wakes hanging and delayed responses
        super().close()

    # -- what tests use ------------------------------------------------------------

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def model_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.protocol is not None]

    @property
    def errors(self) -> list[str]:
        with self._lock:
            return list(self._errors)

    @property
    def remaining(self) -> int:
        with self._lock:
            return len(self._turns)

    def enqueue(self, *turns: TurnLike) -> None:
        parsed = [as_turn(t) for t in turns]
        with self._lock:
            self._turns.extend(parsed)

    # -- request handling (called on handler threads) -----------------------------------

    def _record(self, request: RecordedRequest) -> int:
        """Keep ``request``; its number among the model requests (for error messages)."""
        with self._lock:
            self._requests.append(request)
            return sum(1 for r in self._requests if r.protocol is not None)

    def _fail(self, message: str) -> None:
        with self._lock:
            self._errors.append(message)

    def _next_turn(self) -> Turn | None:
        with self._lock:
            return self._turns.popleft() if self._turns else None

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def _authorised(self, headers: dict[str, str]) -> bool:
        if self.api_key is None:
            return True
        sent = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ").strip()
        return sent == self.api_key

    def answer(self, handler: "Handler", protocol: str, request: RecordedRequest) -> None:
        number = self._record(request)
        if not self._authorised(request.headers):
            handler.send_json(401, error_body(protocol, 401, "Incorrect API key provided."))
            return
        rejected = _checks.problems(protocol, request.headers, request.body)
        if rejected:
            self._fail(f"request {number} ({protocol}) rejected: " + "; ".join(rejected))
            handler.send_json(400, error_body(protocol, 400, "; ".join(rejected)))
            return
        turn = self._next_turn()
        if turn is None:
            self._fail(f"request {number} ({protocol}): no scripted turn left")
            handler.send_json(500, error_body(protocol, 500, "no scripted turn left"))
            return
        for failure in _checks.unmet(protocol, request.body, turn.expect):
            self._fail(f"request {number} ({protocol}): {failure}")
        if turn.http_error is not None:
            handler.send_error_turn(protocol, turn.http_error)
            return
        self._stream(handler, protocol, turn, request.body)

    def _stream(self, handler: "Handler", protocol: str, turn: Turn, body: dict[str, Any]) -> None:
        delay = self.chunk_delay if turn.chunk_delay is None else turn.chunk_delay
        include_usage = protocol == ANTHROPIC or bool((body.get("stream_options") or {}).get("include_usage"))
        model = str(body.get("model", "scripted-model"))
        if protocol == RESPONSES:
            actions = ResponsesStream(turn, model, self._new_id).actions()
        else:
            actions = render(protocol, turn, model=model, new_id=self._new_id, include_usage=include_usage)
        sent = 0
        try:
            for action in actions:
                if isinstance(action, HangStep):
                    self._stopping.wait(action.seconds)
                    if action.seconds is None or self._stopping.is_set():
                        handler.drop()
                        return
                    continue
                handler.start_stream()
                if isinstance(action, DropStep) or sent == turn.drop_after_chunks:
                    handler.drop()
                    return
                handler.send_chunk(action)
                sent += 1
                if delay:
                    self._stopping.wait(delay)
            handler.start_stream()
            handler.end_stream()
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True  # the client went away (an interrupt, a timeout)


def load_script(path: str | Path) -> list[Turn]:
    """Turns from a JSON file: a list of turns, or ``{"turns": [...]}``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"Cannot read the turn script {path}: {exc}") from None
    if isinstance(data, dict) and "turns" in data:
        data = data["turns"]
    if not isinstance(data, list):
        raise ValueError(f"The turn script {path} must hold a JSON list of turns (or {{\"turns\": [...]}})")
    try:
        return [Turn.from_dict(t) for t in data]
    except ValueError as exc:
        raise ValueError(f"In the turn script {path}: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codetether_magics.testing.scripted_server",
                                     description="Serve scripted model turns on 127.0.0.1 (OpenAI and Anthropic "
                                                 "streaming). Prints the URL, then serves until killed.")
    parser.add_argument("--script", help="JSON file with a list of turns (more can be POSTed to /_scripted/turns)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: a free one)")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between streamed chunks")
    parser.add_argument("--api-key", help="require this API key on model requests")
    args = parser.parse_args(argv)
    try:
        turns = load_script(args.script) if args.script else []
    except ValueError as exc:
        parser.error(str(exc))
    server = ScriptedModelServer(turns, chunk_delay=args.chunk_delay, api_key=args.api_key, port=args.port)
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with server:
        print(server.url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
