"""OpenAI Responses API (``POST /v1/responses``, ``stream: true``), the third wire protocol.

OpenAI's reasoning and codex models (o-series, gpt-5*, *-codex) work fully only here: the
reasoning summary streams (as thinking), and the encrypted reasoning of a turn can be sent
back with the next request (``store: false`` keeps nothing on OpenAI's side). Provider
``openai`` uses it for those models, or for every model when ``api = "responses"`` is
configured for a provider (``[providers.<name>]``) or ``CODETETHER_OPENAI_API=responses`` is
set; ``api = "chat"`` / ``CODETETHER_OPENAI_API=chat`` keeps Chat Completions.

``map_input`` turns transcript messages into input items (messages, ``function_call``,
``function_call_output``, ``input_image``, ``reasoning``); ``_EventParser`` turns each streamed
event into deltas. Wire dicts stay in this module.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, AsyncIterator, Callable, Mapping

from ..errors import ProviderConnectionError, ProviderError
from ..messages import FilePart, ImagePart, Message, TextPart, ThinkingPart, ToolCallPart, ToolResultPart
from ._http import open_stream, stream_error
from ._sse import load_event_json, parse_sse
from ._streaming import file_placeholder, tool_images_intro
from .base import (Finish, ModelRequest, ProviderEvent, RefusalDelta, TextDelta, ThinkingDelta, ToolCallDelta,
                   ToolSpec, UsageDelta)

__all__ = ["API_VARIABLE", "REASONING_KEY", "is_reasoning_model", "map_input", "request_body", "responses_events",
           "uses_responses_api"]

API_VARIABLE = "CODETETHER_OPENAI_API"
REASONING_KEY = "openai_reasoning"  # the extra field of a ThinkingPart holding {id, encrypted_content}
_API_NAMES = {"responses": "responses", "chat": "chat", "chat_completions": "chat", "completions": "chat"}
_REASONING_MODEL = re.compile(r"^(o\d|gpt-5)|codex")
# Responses error codes as the error types whose status the loop knows (rate limits and overloads retry).
_ERROR_TYPES = {"rate_limit_exceeded": "rate_limit_error", "server_error": "api_error",
                "server_is_overloaded": "overloaded_error", "invalid_prompt": "invalid_request_error",
                "context_length_exceeded": "invalid_request_error"}


def is_reasoning_model(model: str) -> bool:
    return bool(_REASONING_MODEL.search(model.rsplit("/", 1)[-1].lower()))


def api_choice(value: str | None, source: str) -> str | None:
    """``"responses"``, ``"chat"`` or None (not set); anything else is a clear error naming ``source``."""
    if value is None or not str(value).strip():
        return None
    choice = _API_NAMES.get(str(value).strip().lower())
    if choice is None:
        raise ProviderError(f"{source} must be \"responses\" or \"chat\", got {value!r}")
    return choice


def uses_responses_api(provider: str, api: str | None, model: str,
                       environ: Mapping[str, str] | None = None) -> bool:
    """Whether a call of ``provider``'s ``model`` goes to the Responses API (see the module doc)."""
    if api is not None:
        return api == "responses"
    if provider != "openai":
        return False
    environ = os.environ if environ is None else environ
    chosen = api_choice(environ.get(API_VARIABLE), API_VARIABLE)
    if chosen is not None:
        return chosen == "responses"
    return is_reasoning_model(model)


# -- request ------------------------------------------------------------------------------


def request_body(request: ModelRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"model": request.model, "input": map_input(request.messages), "stream": True,
                            "store": False}
    if request.system:
        body["instructions"] = request.system
    if request.tools:
        body["tools"] = [_map_tool(t) for t in request.tools]
    if request.max_tokens is not None:
        body["max_output_tokens"] = request.max_tokens
    if is_reasoning_model(request.model):
        body["reasoning"] = {"summary": "auto", **({"effort": _effort(request.thinking_budget)}
                                                   if request.thinking_budget else {})}
        body["include"] = ["reasoning.encrypted_content"]  # sent back next turn, since nothing is stored
    elif request.temperature is not None:  # reasoning models refuse a temperature
        body["temperature"] = request.temperature
    return body


def _effort(budget: int) -> str:
    """A thinking budget in tokens as the API's effort level."""
    return "low" if budget < 4096 else "medium" if budget < 16384 else "high"


def _map_tool(tool: ToolSpec) -> dict[str, Any]:
    return {"type": "function", "name": tool.name, "description": tool.description, "parameters": tool.parameters}


def map_input(messages: list[Message]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for message in messages:
        items.extend(_map_message(message))
    return items


def _map_message(message: Message) -> list[dict[str, Any]]:
    if message.role in ("system", "developer"):
        return [{"role": "developer", "content": message.text}]
    if message.role == "assistant":
        return _map_assistant(message)
    items = [{"type": "function_call_output", "call_id": p.tool_call_id, "output": p.content}
             for p in message.content if isinstance(p, ToolResultPart)]
    content = [c for c in (_map_user_part(p) for p in message.content) if c is not None]
    if message.role == "tool":  # a tool's images (a plot it made) follow its outputs as a user message
        images = [c for c in content if c["type"] == "input_image"]
        if images:
            items.append({"role": "user",
                          "content": [{"type": "input_text", "text": tool_images_intro(len(images))}, *images]})
    elif content:
        items.append({"role": "user", "content": content})
    return items


def _map_user_part(part: Any) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return {"type": "input_text", "text": part.text}
    if isinstance(part, ImagePart):
        return {"type": "input_image", "image_url": part.url, "detail": "auto"}
    if isinstance(part, FilePart):
        return {"type": "input_text", "text": file_placeholder(part)["text"]}
    return None  # tool results are items of their own; thinking and calls are never in a user turn


def _map_assistant(message: Message) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, TextPart) and part.text:
            items.append({"role": "assistant", "content": [{"type": "output_text", "text": part.text}]})
        elif isinstance(part, ToolCallPart):
            items.append({"type": "function_call", "call_id": part.id, "name": part.name,
                          "arguments": part.arguments or "{}"})
        elif isinstance(part, ThinkingPart):
            reasoning = (part.model_extra or {}).get(REASONING_KEY)
            if isinstance(reasoning, dict) and reasoning.get("encrypted_content"):  # only OpenAI's own reasoning
                summary = [{"type": "summary_text", "text": part.text}] if part.text else []
                items.append({"type": "reasoning", "id": reasoning.get("id"), "summary": summary,
                              "encrypted_content": reasoning["encrypted_content"]})
    return items


# -- response --------------------------------------------------------------------------------


async def responses_events(provider: Any, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
    """The deltas of one streamed Responses call; ``provider`` is the ``OpenAIProvider`` with the settings."""
    url = provider.base_url + "/responses"
    async with open_stream(provider._client, provider.name, url, headers=provider._request_headers(),
                           body=request_body(request)) as response:
        parser = _EventParser(provider.name)
        async for sse in parse_sse(response.lines()):
            if sse.data.strip() == "[DONE]":
                break
            for delta in parser.parse(load_event_json(sse.data, provider.name), sse.event):
                yield delta
            if parser.finished:
                return
    raise ProviderConnectionError(f"{provider.name}: the stream ended before response.completed")


class _EventParser:
    """Deltas of one stream's events; it remembers which output items were tool calls and which
    call arguments already streamed (a done item then adds nothing twice)."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.finished = False
        self._calls: set[int] = set()
        self._streamed_arguments: set[int] = set()

    def parse(self, data: dict[str, Any], event_name: str) -> list[ProviderEvent]:
        kind = data.get("type") or event_name
        index = data.get("output_index")
        index = index if isinstance(index, int) else 0
        handler = _DELTA_EVENTS.get(kind)
        if handler is not None:
            return handler(self, data, index)
        if kind in ("response.completed", "response.incomplete"):
            self.finished = True
            return self._finish(data.get("response") or {}, kind)
        if kind == "response.failed":
            error = (data.get("response") or {}).get("error") or {}
            raise stream_error(_as_error(error), self.provider)
        if kind == "error":
            raise stream_error(_as_error(data), self.provider)
        return []  # created, in_progress, content_part.*, *.done events whose content already streamed

    def _item_added(self, data: dict[str, Any], index: int) -> list[ProviderEvent]:
        item = data.get("item") or {}
        if item.get("type") == "function_call":
            self._calls.add(index)
            return [ToolCallDelta(index=index, id=item.get("call_id") or item.get("id"), name=item.get("name"))]
        return []

    def _item_done(self, data: dict[str, Any], index: int) -> list[ProviderEvent]:
        item = data.get("item") or {}
        if item.get("type") == "function_call" and index not in self._streamed_arguments:
            self._calls.add(index)
            return [ToolCallDelta(index=index, id=item.get("call_id"), name=item.get("name"),
                                  arguments=item.get("arguments") or "")]
        if item.get("type") == "reasoning" and item.get("encrypted_content"):
            kept = {"id": item.get("id"), "encrypted_content": item["encrypted_content"]}
            return [ThinkingDelta(block=index, extra=((REASONING_KEY, kept),))]
        return []

    def _arguments(self, data: dict[str, Any], index: int) -> list[ProviderEvent]:
        self._streamed_arguments.add(index)
        return [ToolCallDelta(index=index, arguments=data["delta"])] if data.get("delta") else []

    def _finish(self, response: dict[str, Any], kind: str) -> list[ProviderEvent]:
        deltas: list[ProviderEvent] = []
        usage = response.get("usage")
        if isinstance(usage, dict):
            deltas.append(_usage(usage))
        if kind == "response.incomplete":
            reason = (response.get("incomplete_details") or {}).get("reason")
            deltas.append(Finish("length" if reason == "max_output_tokens" else str(reason or "length")))
        else:
            deltas.append(Finish("tool_calls" if self._calls else "stop"))
        return deltas


def _text(parser: _EventParser, data: dict[str, Any], index: int) -> list[ProviderEvent]:
    return [TextDelta(data["delta"])] if data.get("delta") else []


def _refusal(parser: _EventParser, data: dict[str, Any], index: int) -> list[ProviderEvent]:
    return [RefusalDelta(data["delta"])] if data.get("delta") else []


def _summary(parser: _EventParser, data: dict[str, Any], index: int) -> list[ProviderEvent]:
    return [ThinkingDelta(text=data["delta"], block=index)] if data.get("delta") else []


def _summary_part(parser: _EventParser, data: dict[str, Any], index: int) -> list[ProviderEvent]:
    # Summary parts of one reasoning item read as paragraphs.
    return [ThinkingDelta(text="\n\n", block=index)] if data.get("summary_index", 0) else []


# The events that carry content, by type; each handler takes (parser, event data, output index).
_DELTA_EVENTS: dict[str, Callable[[_EventParser, dict[str, Any], int], list[ProviderEvent]]] = {
    "response.output_text.delta": _text,
    "response.refusal.delta": _refusal,
    "response.reasoning_summary_text.delta": _summary,
    "response.reasoning_summary_part.added": _summary_part,
    "response.function_call_arguments.delta": _EventParser._arguments,
    "response.output_item.added": _EventParser._item_added,
    "response.output_item.done": _EventParser._item_done,
}


def _as_error(error: dict[str, Any]) -> dict[str, Any]:
    code = error.get("code")
    kind = _ERROR_TYPES.get(code, code) if isinstance(code, str) else error.get("type")
    return {"message": error.get("message") or json.dumps(error)[:200], "type": kind,
            "code": code if isinstance(code, int) else None}


def _usage(usage: dict[str, Any]) -> UsageDelta:
    cached = (usage.get("input_tokens_details") or {}).get("cached_tokens")
    total = usage.get("total_tokens")
    return UsageDelta(prompt_tokens=usage.get("input_tokens"), completion_tokens=usage.get("output_tokens"),
                      cache_read_tokens=cached if isinstance(cached, int) else None,
                      total_tokens=total if isinstance(total, int) else None)
