"""A scripted turn as the streamed events of the OpenAI Responses API (``POST /v1/responses``).

The event sequence follows the public streaming reference, and a test reads it back with the
official ``openai`` SDK's own stream accumulator: ``response.created`` and ``in_progress``;
per output item ``output_item.added``, its content (``content_part.added`` +
``output_text.delta``..., ``reasoning_summary_part.added`` + ``reasoning_summary_text.delta``...,
or ``function_call_arguments.delta``...), the matching ``.done`` events and
``output_item.done``; then ``response.completed`` (or ``response.incomplete`` for a length
cut) with the whole output and the usage. An error step is an ``error`` event.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from ._wire import Action, NewId, _event, _finish_reason, _Stream, _usage_of, split_fragments, split_words
from .turns import DropStep, ErrorEventStep, HangStep, MalformedStep, TextStep, ThinkingStep, ToolCallStep, Turn

__all__ = ["RESPONSES", "ResponsesStream"]

RESPONSES = "responses"


class ResponsesStream(_Stream):
    def __init__(self, turn: Turn, model: str, new_id: NewId) -> None:
        super().__init__(turn, model, new_id)
        self.response_id = new_id("resp_")
        self.sequence = 0
        self.output: list[dict[str, Any]] = []

    def _send(self, kind: str, **fields: Any) -> bytes:
        body = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return _event(kind, body)

    def _response(self, status: str, **extra: Any) -> dict[str, Any]:
        return {"id": self.response_id, "object": "response", "created_at": 0, "status": status, "model": self.model,
                "output": list(self.output), "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
                "error": None, "incomplete_details": None, "usage": None, **extra}

    def _start(self) -> Iterator[Action]:
        yield self._send("response.created", response=self._response("in_progress"))
        yield self._send("response.in_progress", response=self._response("in_progress"))

    def _end(self) -> Iterator[Action]:
        usage = _usage_of(self.turn)
        tokens = None
        if usage is not None:
            tokens = {"input_tokens": usage.prompt_tokens,
                      "input_tokens_details": {"cached_tokens": usage.cache_read_tokens},
                      "output_tokens": usage.completion_tokens, "output_tokens_details": {"reasoning_tokens": 0},
                      "total_tokens": usage.prompt_tokens + usage.completion_tokens}
        if _finish_reason(self.turn) == "length":
            yield self._send("response.incomplete", response=self._response(
                "incomplete", usage=tokens, incomplete_details={"reason": "max_output_tokens"}))
        else:
            yield self._send("response.completed", response=self._response("completed", usage=tokens))

    def _step(self, step: Any) -> Iterator[Action]:
        if isinstance(step, TextStep):
            yield from self._message(step.text)
        elif isinstance(step, ThinkingStep):
            yield from self._reasoning(step)
        elif isinstance(step, ToolCallStep):
            yield from self._function_call(step)
        elif isinstance(step, ErrorEventStep):
            code = {"rate_limit_error": "rate_limit_exceeded", "overloaded_error": "server_is_overloaded",
                    "api_error": "server_error"}.get(step.error_type, step.error_type)
            yield self._send("error", code=code, message=step.message, param=None)
        elif isinstance(step, MalformedStep):
            yield b"event: response.output_text.delta\n" + step.raw.encode() + b"\n\n"
        elif isinstance(step, (DropStep, HangStep)):
            yield step

    def _message(self, text: str) -> Iterator[Action]:
        index, item_id = len(self.output), self.new_id("msg_")
        item = {"type": "message", "id": item_id, "role": "assistant", "status": "in_progress", "content": []}
        yield self._send("response.output_item.added", output_index=index, item=item)
        part = {"type": "output_text", "text": "", "annotations": []}
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        yield self._send("response.content_part.added", **where, part=part)
        for word in split_words(text):
            yield self._send("response.output_text.delta", **where, delta=word, logprobs=[])
        yield self._send("response.output_text.done", **where, text=text, logprobs=[])
        done_part = {**part, "text": text}
        yield self._send("response.content_part.done", **where, part=done_part)
        yield from self._done(index, {**item, "status": "completed", "content": [done_part]})

    def _reasoning(self, step: ThinkingStep) -> Iterator[Action]:
        index, item_id = len(self.output), self.new_id("rs_")
        yield self._send("response.output_item.added", output_index=index,
                         item={"type": "reasoning", "id": item_id, "summary": []})
        where = {"item_id": item_id, "output_index": index, "summary_index": 0}
        yield self._send("response.reasoning_summary_part.added", **where, part={"type": "summary_text", "text": ""})
        for word in split_words(step.text):
            yield self._send("response.reasoning_summary_text.delta", **where, delta=word)
        yield self._send("response.reasoning_summary_text.done", **where, text=step.text)
        summary = {"type": "summary_text", "text": step.text}
        yield self._send("response.reasoning_summary_part.done", **where, part=summary)
        encrypted = step.signature or self.new_id("enc_")  # the scripted stand-in for encrypted reasoning
        yield from self._done(index, {"type": "reasoning", "id": item_id, "summary": [summary],
                                      "encrypted_content": encrypted})

    def _function_call(self, step: ToolCallStep) -> Iterator[Action]:
        index, item_id = len(self.output), self.new_id("fc_")
        call_id = step.id or self.new_id("call_")
        item = {"type": "function_call", "id": item_id, "call_id": call_id, "name": step.name, "arguments": "",
                "status": "in_progress"}
        yield self._send("response.output_item.added", output_index=index, item=item)
        arguments = json.dumps(step.arguments)
        for piece in split_fragments(arguments):
            yield self._send("response.function_call_arguments.delta", item_id=item_id, output_index=index,
                             delta=piece)
        yield self._send("response.function_call_arguments.done", item_id=item_id, output_index=index,
                         arguments=arguments)
        yield from self._done(index, {**item, "arguments": arguments, "status": "completed"})

    def _done(self, index: int, item: dict[str, Any]) -> Iterator[Action]:
        self.output.append(item)
        yield self._send("response.output_item.done", output_index=index, item=item)
