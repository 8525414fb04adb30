"""Render a scripted turn as the SSE events of each streaming protocol.

``render(protocol, turn, ...)`` yields actions for the server to carry out in order:
``bytes`` to send as one chunk, or a ``DropStep`` / ``HangStep`` to act on.
The event shapes follow the public OpenAI Chat Completions and Anthropic Messages
streaming formats; the Responses API's are in ``_wire_responses``.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any, Callable, Iterator, Union

from .turns import (DropStep, ErrorEventStep, HangStep, MalformedStep, TextStep, ThinkingStep, ToolCallStep,
                    Turn, UsageStep)

Action = Union[bytes, DropStep, HangStep]
NewId = Callable[[str], str]  # prefix -> unique id

OPENAI = "openai"
ANTHROPIC = "anthropic"

_ANTHROPIC_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def split_words(text: str) -> list[str]:
    """Small chunks that join back to ``text`` exactly (a word and the spaces after it)."""
    return re.findall(r"\S+\s*|\s+", text) or [text]


def split_fragments(text: str, pieces: int = 3) -> list[str]:
    size = max(1, -(-len(text) // pieces))
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def _usage_of(turn: Turn) -> UsageStep | None:
    found = [s for s in turn.steps if isinstance(s, UsageStep)]
    return found[-1] if found else None


def _finish_reason(turn: Turn) -> str:
    if turn.finish_reason:
        return turn.finish_reason
    return "tool_calls" if any(isinstance(s, ToolCallStep) for s in turn.steps) else "stop"


def _is_terminal(step: Any) -> bool:
    return isinstance(step, (DropStep, ErrorEventStep)) or (isinstance(step, HangStep) and step.seconds is None)


def render(protocol: str, turn: Turn, *, model: str, new_id: NewId, include_usage: bool = True) -> Iterator[Action]:
    if protocol == OPENAI:
        return _OpenAIStream(turn, model, new_id, include_usage).actions()
    return _AnthropicStream(turn, model, new_id).actions()


class _Stream:
    """One turn as a protocol's actions: ``_start()``, ``_step()`` for each step, ``_end()``; a fault
    step ends it early. Each protocol's subclass writes those three."""

    def __init__(self, turn: Turn, model: str, new_id: NewId) -> None:
        self.turn, self.model, self.new_id = turn, model, new_id

    def actions(self) -> Iterator[Action]:
        started = False
        for step in self.turn.steps:
            if not started and not isinstance(step, HangStep):  # a first hang comes before the headers
                started = True
                yield from self._start()
            yield from self._step(step)
            if _is_terminal(step):
                return
        if not started:
            yield from self._start()
        yield from self._end()


class _OpenAIStream(_Stream):
    def __init__(self, turn: Turn, model: str, new_id: NewId, include_usage: bool) -> None:
        super().__init__(turn, model, new_id)
        self.include_usage = include_usage
        self.completion_id = new_id("chatcmpl-")
        self.tool_index = itertools.count()

    def _envelope(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        return _data({"id": self.completion_id, "object": "chat.completion.chunk", "created": 0,
                      "model": self.model, "choices": choices, **extra})

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return self._envelope([{"index": 0, "delta": delta, "finish_reason": finish}])

    def _start(self) -> Iterator[Action]:
        yield self._chunk({"role": "assistant", "content": ""})

    def _end(self) -> Iterator[Action]:
        yield self._chunk({}, _finish_reason(self.turn))
        usage = _usage_of(self.turn)
        if self.include_usage and usage is not None:
            yield self._envelope([], usage=_openai_usage(usage))
        yield b"data: [DONE]\n\n"

    def _step(self, step: Any) -> Iterator[Action]:
        if isinstance(step, TextStep):
            for word in split_words(step.text):
                yield self._chunk({"content": word})
        elif isinstance(step, ThinkingStep):
            for word in split_words(step.text):
                yield self._chunk({"reasoning_content": word})
        elif isinstance(step, ToolCallStep):
            yield from self._tool_call(step)
        elif isinstance(step, ErrorEventStep):
            yield _data({"error": {"message": step.message, "type": step.error_type}})
        elif isinstance(step, MalformedStep):
            yield step.raw.encode() + b"\n\n"
        elif isinstance(step, (DropStep, HangStep)):
            yield step

    def _tool_call(self, step: ToolCallStep) -> Iterator[Action]:
        index = next(self.tool_index)
        call_id = step.id or self.new_id("call_")
        yield self._chunk({"tool_calls": [{"index": index, "id": call_id, "type": "function",
                                           "function": {"name": step.name, "arguments": ""}}]})
        for piece in split_fragments(json.dumps(step.arguments)):
            yield self._chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})


def _openai_usage(usage: UsageStep) -> dict[str, Any]:
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.prompt_tokens + usage.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens}}


class _AnthropicStream(_Stream):
    def __init__(self, turn: Turn, model: str, new_id: NewId) -> None:
        super().__init__(turn, model, new_id)
        self.block_index = itertools.count()
        self.usage = _usage_of(turn) or UsageStep()

    def _end(self) -> Iterator[Action]:
        stop = _finish_reason(self.turn)
        yield _event("message_delta", {"type": "message_delta",
                                       "delta": {"stop_reason": _ANTHROPIC_STOP.get(stop, stop),
                                                 "stop_sequence": None},
                                       "usage": {"output_tokens": self.usage.completion_tokens}})
        yield _event("message_stop", {"type": "message_stop"})

    def _start(self) -> Iterator[Action]:
        # As the real API counts: input_tokens is the uncached part of the prompt only.
        cached = self.usage.cache_read_tokens + self.usage.cache_write_tokens
        usage = {"input_tokens": max(0, self.usage.prompt_tokens - cached), "output_tokens": 1,
                 "cache_read_input_tokens": self.usage.cache_read_tokens,
                 "cache_creation_input_tokens": self.usage.cache_write_tokens}
        message = {"id": self.new_id("msg_"), "type": "message", "role": "assistant", "content": [],
                   "model": self.model, "stop_reason": None, "stop_sequence": None, "usage": usage}
        yield _event("message_start", {"type": "message_start", "message": message})
        yield _event("ping", {"type": "ping"})

    def _step(self, step: Any) -> Iterator[Action]:
        if isinstance(step, TextStep):
            yield from self._block({"type": "text", "text": ""},
                                   [{"type": "text_delta", "text": w} for w in split_words(step.text)])
        elif isinstance(step, ThinkingStep):
            deltas = [{"type": "thinking_delta", "thinking": w} for w in split_words(step.text)]
            deltas.append({"type": "signature_delta", "signature": step.signature or self.new_id("sig_")})
            yield from self._block({"type": "thinking", "thinking": ""}, deltas)
        elif isinstance(step, ToolCallStep):
            start = {"type": "tool_use", "id": step.id or self.new_id("toolu_"), "name": step.name, "input": {}}
            pieces = ["", *split_fragments(json.dumps(step.arguments))]
            yield from self._block(start, [{"type": "input_json_delta", "partial_json": p} for p in pieces])
        elif isinstance(step, ErrorEventStep):
            yield _event("error", {"type": "error", "error": {"type": step.error_type, "message": step.message}})
        elif isinstance(step, MalformedStep):
            yield b"event: content_block_delta\n" + step.raw.encode() + b"\n\n"
        elif isinstance(step, (DropStep, HangStep)):
            yield step

    def _block(self, start: dict[str, Any], deltas: list[dict[str, Any]]) -> Iterator[Action]:
        index = next(self.block_index)
        yield _event("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})
        for delta in deltas:
            yield _event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
        yield _event("content_block_stop", {"type": "content_block_stop", "index": index})


def _data(body: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _event(name: str, body: dict[str, Any]) -> bytes:
    return f"event: {name}\n".encode() + _data(body)


def error_body(protocol: str, status: int, message: str) -> dict[str, Any]:
    """The JSON error body each API sends with an error status."""
    kind = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
            429: "rate_limit_error", 529: "overloaded_error"}.get(status, "api_error")
    if protocol == ANTHROPIC:
        return {"type": "error", "error": {"type": kind, "message": message}}
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}
