"""Anthropic Messages, streamed.

``_map_messages`` turns transcript messages into wire messages (system text goes in
the top-level ``system`` field; tool results travel in user messages);
``_parse_event`` turns one named SSE event into deltas. Wire dicts stay here.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, AsyncIterator

from ..errors import ProviderConnectionError
from ..messages import FilePart, ImagePart, TextPart, ThinkingPart, ToolCallPart, ToolResultPart
from ._http import open_stream, stream_error
from ._sse import load_event_json, parse_sse
from ._streaming import StreamingProvider, file_placeholder
from .base import (Finish, ModelRequest, ProviderEvent, RefusalDelta, TextDelta, ThinkingDelta, ToolCallDelta, ToolSpec,
                   UsageDelta)

__all__ = ["ANTHROPIC_VERSION", "AnthropicProvider", "add_cache_breakpoints", "tool_id"]

DEFAULT_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 8192  # the API requires max_tokens
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls", "max_tokens": "length",
           "refusal": "refusal"}


class AnthropicProvider(StreamingProvider):
    """Streams the Messages API from ``base_url`` (``https://api.anthropic.com`` or a compatible proxy)."""

    default_base_url = DEFAULT_BASE_URL
    prompt_caching = True  # cache_control breakpoints (a record's prompt_caching = false turns them off)

    @property
    def messages_url(self) -> str:
        # Accept a base URL given with or without the /v1 suffix.
        return self.base_url + ("/messages" if self.base_url.endswith("/v1") else "/v1/messages")

    # -- request -------------------------------------------------------------------

    def _request_headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream",
                   "anthropic-version": ANTHROPIC_VERSION, **self._headers}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        return headers

    def _request_body(self, request: ModelRequest) -> dict[str, Any]:
        system, messages = _map_messages(request)
        body: dict[str, Any] = {"model": request.model, "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
                                "messages": messages, "stream": True}
        if system:
            body["system"] = [{"type": "text", "text": system}]
        if request.tools:
            body["tools"] = [_map_tool(t) for t in request.tools]
        if request.thinking_budget:
            # The answer after the thinking needs room of its own: max_tokens counts both.
            body["thinking"] = {"type": "enabled", "budget_tokens": request.thinking_budget}
            body["max_tokens"] = max(body["max_tokens"], request.thinking_budget + DEFAULT_MAX_TOKENS)
        elif request.temperature is not None:  # the API refuses a temperature with thinking on
            body["temperature"] = request.temperature
        if self.prompt_caching:
            add_cache_breakpoints(body)
        return body

    # -- response ------------------------------------------------------------------

    async def _events(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        async with open_stream(self._client, self.name, self.messages_url, headers=self._request_headers(),
                               body=self._request_body(request)) as response:
            usage = _UsageTotals()
            async for sse in parse_sse(response.lines()):
                data = load_event_json(sse.data, self.name)
                if data.get("type", sse.event) == "message_stop":
                    return
                for delta in _parse_event(data, self.name, usage):
                    yield delta
            raise ProviderConnectionError(f"{self.name}: the stream ended before message_stop")


_CACHE = {"type": "ephemeral"}
_UNCACHEABLE = ("thinking", "redacted_thinking")


def add_cache_breakpoints(body: dict[str, Any]) -> None:
    """Prompt caching: ``cache_control`` on the system prompt, on the last tool (the tools are cached
    as one prefix), and on the last block of the newest turn, so the next request of a long notebook
    session reads everything before its own new turn from the cache (three of the four breakpoints
    the API allows). Cache reads cost a tenth of input tokens."""
    if body.get("system"):
        body["system"][-1]["cache_control"] = _CACHE
    if body.get("tools"):
        body["tools"][-1]["cache_control"] = _CACHE
    if body["messages"]:
        blocks = [b for b in body["messages"][-1]["content"] if b.get("type") not in _UNCACHEABLE]
        if blocks:
            blocks[-1]["cache_control"] = _CACHE


def _map_tool(tool: ToolSpec) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "input_schema": tool.parameters}


def _map_messages(request: ModelRequest) -> tuple[str, list[dict[str, Any]]]:
    """(system text, wire messages); consecutive same-role messages are merged."""
    system = [request.system] if request.system else []
    wire: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role in ("system", "developer"):
            system.append(message.text)
            continue
        role = "assistant" if message.role == "assistant" else "user"  # tool results travel as user turns
        blocks = _tool_blocks(message.content) if message.role == "tool" else _blocks(message.content)
        if not blocks:
            continue
        if wire and wire[-1]["role"] == role:
            wire[-1]["content"].extend(blocks)
        else:
            wire.append({"role": role, "content": blocks})
    for message in wire:  # the API wants tool results before any other block of a user turn
        message["content"].sort(key=lambda b: b["type"] != "tool_result")
    return "\n\n".join(s for s in system if s), wire


def _blocks(parts: list[Any]) -> list[dict[str, Any]]:
    return [b for b in (_map_part(p) for p in parts) if b is not None]


def _tool_blocks(parts: list[Any]) -> list[dict[str, Any]]:
    """A tool message's blocks: an image after a tool result goes inside that result's content."""
    blocks: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, ImagePart) and blocks and blocks[-1]["type"] == "tool_result":
            result = blocks[-1]
            if isinstance(result["content"], str):  # the API refuses empty text blocks
                result["content"] = [{"type": "text", "text": result["content"]}] if result["content"] else []
            result["content"].append(_image_block(part))
        else:
            blocks.extend(_blocks([part]))
    return blocks


def _map_part(part: Any) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text} if part.text else None
    if isinstance(part, ImagePart):
        return _image_block(part)
    if isinstance(part, FilePart):
        return file_placeholder(part)
    if isinstance(part, ToolCallPart):
        return {"type": "tool_use", "id": tool_id(part.id), "name": part.name, "input": _arguments(part.arguments)}
    if isinstance(part, ToolResultPart):
        return {"type": "tool_result", "tool_use_id": tool_id(part.tool_call_id), "content": part.content}
    if isinstance(part, ThinkingPart):
        return _thinking_block(part)
    raise TypeError(f"Unknown message part {type(part).__name__}")


def _thinking_block(part: ThinkingPart) -> dict[str, Any] | None:
    redacted = (part.model_extra or {}).get("redacted")
    if isinstance(redacted, str) and redacted:
        return {"type": "redacted_thinking", "data": redacted}  # opaque: back exactly as it came
    # The API only takes back thinking it signed; unsigned thinking (from another provider) is dropped.
    return {"type": "thinking", "thinking": part.text, "signature": part.signature} if part.signature else None


_TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")


def tool_id(raw: str) -> str:
    """A tool-call id as Anthropic accepts it (``^[a-zA-Z0-9_-]+$``). Ids from other providers
    (``llm_version:0``, ``0``, ``call.1``) are rewritten, the same way for the call and its result; a
    short hash of the original keeps two ids apart that differ only in the replaced characters."""
    if _TOOL_ID.match(raw or ""):
        return raw
    digest = hashlib.sha1((raw or "").encode("utf-8")).hexdigest()[:8]
    return f"{re.sub(r'[^a-zA-Z0-9_-]', '_', raw or '')[:55]}_{digest}".lstrip("_") or f"call_{digest}"


def _image_block(part: ImagePart) -> dict[str, Any]:
    head, _, data = part.url.partition(",")
    if head.startswith("data:") and head.endswith(";base64"):
        media_type = part.mime_type or head[5:-7]
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": part.url}}


def _arguments(raw: str) -> Any:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {"_raw_arguments": raw}  # keep what the model sent rather than fail the whole request
    return value if isinstance(value, dict) else {"value": value}


class _UsageTotals:
    """Anthropic reports usage in pieces (``message_start``, then ``message_delta``, which may repeat
    some counts and omit others); each report is merged into the totals so far.

    ``prompt_tokens`` is the whole prompt: ``input_tokens`` counts only the uncached part, the
    cached part is ``cache_read_input_tokens`` and ``cache_creation_input_tokens``. So
    ``total_tokens`` includes the cache, and prompt tokens mean the same as in OpenAI's usage."""

    _FIELDS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def merge(self, usage: dict[str, Any]) -> UsageDelta:
        for name in self._FIELDS:
            if isinstance(usage.get(name), int):
                self._seen[name] = usage[name]
        seen = self._seen
        read, write = seen.get("cache_read_input_tokens"), seen.get("cache_creation_input_tokens")
        prompt = None
        if "input_tokens" in seen:
            prompt = seen["input_tokens"] + (read or 0) + (write or 0)
        return UsageDelta(prompt_tokens=prompt, completion_tokens=seen.get("output_tokens"),
                          cache_read_tokens=read, cache_write_tokens=write)


def _parse_event(data: dict[str, Any], provider: str, usage: _UsageTotals) -> list[ProviderEvent]:
    """Deltas in one Messages stream event."""
    kind = data.get("type")
    if kind == "message_start":
        return [usage.merge((data.get("message") or {}).get("usage") or {})]
    if kind == "content_block_start":
        return _block_start(int(data.get("index", 0)), data.get("content_block") or {})
    if kind == "content_block_delta":
        return _block_delta(int(data.get("index", 0)), data.get("delta") or {})
    if kind == "message_delta":
        return _message_delta(data, usage)
    if kind == "error":
        raise stream_error(data.get("error") or {}, provider)
    return []  # ping, content_block_stop, and event types added to the API later


def _message_delta(data: dict[str, Any], usage: _UsageTotals) -> list[ProviderEvent]:
    deltas: list[ProviderEvent] = []
    if data.get("usage"):
        deltas.append(usage.merge(data["usage"]))
    delta = data.get("delta") or {}
    reason = delta.get("stop_reason")
    if reason == "refusal":  # a refusal, with the reason the API gives, never an empty success
        details = delta.get("stop_details") or {}
        explanation = details.get("explanation") if isinstance(details, dict) else None
        deltas.append(RefusalDelta(explanation if isinstance(explanation, str) else ""))
    if reason:
        deltas.append(Finish(_FINISH.get(reason, reason)))
    return deltas


def _block_start(index: int, block: dict[str, Any]) -> list[ProviderEvent]:
    kind = block.get("type")
    if kind == "tool_use":
        return [ToolCallDelta(index=index, id=block.get("id"), name=block.get("name"))]
    if kind == "text" and block.get("text"):
        return [TextDelta(block["text"])]
    if kind == "thinking":
        return [ThinkingDelta(text=block.get("thinking") or "", block=index,
                              signature=block.get("signature") or None)]
    if kind == "redacted_thinking" and isinstance(block.get("data"), str):
        return [ThinkingDelta(block=index, redacted=block["data"])]
    return []


def _block_delta(index: int, delta: dict[str, Any]) -> list[ProviderEvent]:
    kind = delta.get("type")
    if kind == "text_delta" and delta.get("text"):
        return [TextDelta(delta["text"])]
    if kind == "thinking_delta" and delta.get("thinking"):
        return [ThinkingDelta(text=delta["thinking"], block=index)]
    if kind == "signature_delta" and delta.get("signature"):
        return [ThinkingDelta(signature=delta["signature"], block=index)]
    if kind == "input_json_delta" and delta.get("partial_json"):
        return [ToolCallDelta(index=index, arguments=delta["partial_json"])]
    return []
