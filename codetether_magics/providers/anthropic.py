"""Anthropic Messages, streamed.

``_map_messages`` turns transcript messages into wire messages (system text goes in
the top-level ``system`` field; tool results travel in user messages);
``_parse_event`` turns one named SSE event into deltas. Wire dicts stay here.
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator

from ..errors import ProviderConnectionError
from ..messages import FilePart, ImagePart, TextPart, ThinkingPart, ToolCallPart, ToolResultPart
from ._http import open_stream, stream_error
from ._sse import load_event_json, parse_sse
from ._streaming import StreamingProvider, file_placeholder
from .base import Finish, ModelRequest, ProviderEvent, TextDelta, ThinkingDelta, ToolCallDelta, ToolSpec, UsageDelta

__all__ = ["ANTHROPIC_VERSION", "AnthropicProvider"]

DEFAULT_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 8192  # the API requires max_tokens
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls", "max_tokens": "length",
           "refusal": "content_filter"}


class AnthropicProvider(StreamingProvider):
    """Streams the Messages API from ``base_url`` (``https://api.anthropic.com`` or a compatible proxy)."""

    default_base_url = DEFAULT_BASE_URL

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
            body["system"] = system
        if request.tools:
            body["tools"] = [_map_tool(t) for t in request.tools]
        if request.temperature is not None:
            body["temperature"] = request.temperature
        return body

    # -- response ------------------------------------------------------------------

    async def _events(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        async with open_stream(self._client, self.name, self.messages_url, headers=self._request_headers(),
                               body=self._request_body(request)) as response:
            async for sse in parse_sse(response.aiter_lines()):
                data = load_event_json(sse.data, self.name)
                if data.get("type", sse.event) == "message_stop":
                    return
                for delta in _parse_event(data, self.name):
                    yield delta
            raise ProviderConnectionError(f"{self.name}: the stream ended before message_stop")


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
        return {"type": "tool_use", "id": part.id, "name": part.name, "input": _arguments(part.arguments)}
    if isinstance(part, ToolResultPart):
        return {"type": "tool_result", "tool_use_id": part.tool_call_id, "content": part.content}
    if isinstance(part, ThinkingPart):
        # The API only takes back thinking it signed; unsigned thinking (from another provider) is dropped.
        return {"type": "thinking", "thinking": part.text, "signature": part.signature} if part.signature else None
    raise TypeError(f"Unknown message part {type(part).__name__}")


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


def _parse_event(data: dict[str, Any], provider: str) -> list[ProviderEvent]:
    """Deltas in one Messages stream event."""
    kind = data.get("type")
    if kind == "message_start":
        return [_usage((data.get("message") or {}).get("usage") or {})]
    if kind == "content_block_start":
        return _block_start(int(data.get("index", 0)), data.get("content_block") or {})
    if kind == "content_block_delta":
        return _block_delta(int(data.get("index", 0)), data.get("delta") or {})
    if kind == "message_delta":
        deltas: list[ProviderEvent] = []
        if data.get("usage"):
            deltas.append(_usage(data["usage"]))
        reason = (data.get("delta") or {}).get("stop_reason")
        if reason:
            deltas.append(Finish(_FINISH.get(reason, reason)))
        return deltas
    if kind == "error":
        raise stream_error(data.get("error") or {}, provider)
    return []  # ping, content_block_stop, and event types added to the API later


def _block_start(index: int, block: dict[str, Any]) -> list[ProviderEvent]:
    kind = block.get("type")
    if kind == "tool_use":
        return [ToolCallDelta(index=index, id=block.get("id"), name=block.get("name"))]
    if kind == "text" and block.get("text"):
        return [TextDelta(block["text"])]
    if kind == "thinking" and block.get("thinking"):
        return [ThinkingDelta(text=block["thinking"])]
    return []


def _block_delta(index: int, delta: dict[str, Any]) -> list[ProviderEvent]:
    kind = delta.get("type")
    if kind == "text_delta" and delta.get("text"):
        return [TextDelta(delta["text"])]
    if kind == "thinking_delta" and delta.get("thinking"):
        return [ThinkingDelta(text=delta["thinking"])]
    if kind == "signature_delta" and delta.get("signature"):
        return [ThinkingDelta(signature=delta["signature"])]
    if kind == "input_json_delta" and delta.get("partial_json"):
        return [ToolCallDelta(index=index, arguments=delta["partial_json"])]
    return []


def _usage(usage: dict[str, Any]) -> UsageDelta:
    return UsageDelta(prompt_tokens=usage.get("input_tokens"), completion_tokens=usage.get("output_tokens"),
                      cache_read_tokens=usage.get("cache_read_input_tokens"),
                      cache_write_tokens=usage.get("cache_creation_input_tokens"))

