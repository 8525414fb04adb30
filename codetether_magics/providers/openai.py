"""OpenAI Chat Completions, streamed; also every OpenAI-compatible server
(Ollama, vLLM, llama.cpp, OpenRouter, Groq, DeepSeek, Mistral).

``_map_messages`` turns transcript messages into wire messages; a ``_ChunkParser``
turns each SSE ``data`` object of one stream into deltas. Wire dicts never leave this module.
"""

from __future__ import annotations

from typing import Any, AsyncIterator
from urllib.parse import urlsplit

from ..errors import ProviderConnectionError
from ..messages import FilePart, ImagePart, Message, TextPart, ThinkingPart, ToolCallPart, ToolResultPart
from ._http import open_stream, stream_error
from ._sse import load_event_json, parse_sse
from ._streaming import StreamingProvider, file_placeholder, tool_images_intro
from .openai_responses import responses_events, uses_responses_api
from .base import (Finish, ModelRequest, ProviderEvent, RefusalDelta, TextDelta, ThinkingDelta, ToolCallDelta, ToolSpec,
                   UsageDelta)

__all__ = ["OpenAIProvider"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls", "function_call": "tool_calls",
           "content_filter": "content_filter"}


class OpenAIProvider(StreamingProvider):
    """Streams Chat Completions from ``base_url`` (which ends in ``/v1`` for most servers), or the
    Responses API where ``openai_responses.uses_responses_api`` says so (``api``: "responses",
    "chat" or None for the rule by model)."""

    default_base_url = DEFAULT_BASE_URL
    api: str | None = None

    @property
    def _is_openai_itself(self) -> bool:
        """OpenAI's (or Azure OpenAI's) own API, not a compatible server.

        Decided by the host, not the provider name: OPENAI_BASE_URL pointing at vLLM or llama.cpp
        registers as "openai" but speaks only the older dialect.
        """
        host = (urlsplit(self.base_url).hostname or "").lower()
        return host == "api.openai.com" or host.endswith((".openai.com", ".openai.azure.com"))

    # -- request -------------------------------------------------------------------

    def _request_headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream", **self._headers}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        if self.organization:
            headers["OpenAI-Organization"] = self.organization
        return headers

    def _request_body(self, request: ModelRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"model": request.model, "messages": self._map_messages(request),
                                "stream": True, "stream_options": {"include_usage": True}}
        if request.tools:
            body["tools"] = [_map_tool(t) for t in request.tools]
        if request.max_tokens is not None:
            # OpenAI's own reasoning models refuse max_tokens; compatible servers know only max_tokens.
            body["max_completion_tokens" if self._is_openai_itself else "max_tokens"] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        return body

    def _map_messages(self, request: ModelRequest) -> list[dict[str, Any]]:
        wire: list[dict[str, Any]] = []
        if request.system:
            wire.append({"role": "system", "content": request.system})
        pending_images: list[dict[str, Any]] = []  # images of the tool results just mapped
        for message in request.messages:
            if message.role != "tool" and pending_images:
                wire.append(_tool_images_message(pending_images))
                pending_images = []
            wire.extend(self._map_message(message))
            if message.role == "tool":
                pending_images += [_map_user_part(p) for p in message.content if isinstance(p, ImagePart)]
        if pending_images:
            wire.append(_tool_images_message(pending_images))
        return wire

    def _map_message(self, message: Message) -> list[dict[str, Any]]:
        results = [{"role": "tool", "tool_call_id": p.tool_call_id, "content": p.content}
                   for p in message.content if isinstance(p, ToolResultPart)]
        if message.role == "tool":
            return results
        if message.role == "assistant":
            return [_map_assistant(message)]
        if message.role in ("system", "developer"):
            # Only OpenAI itself knows the "developer" role.
            role = message.role if self._is_openai_itself else "system"
            return [{"role": role, "content": message.text}]
        content = [_map_user_part(p) for p in message.content if not isinstance(p, ToolResultPart)]
        content = [c for c in content if c is not None]
        user = [{"role": "user", "content": _simplify(content)}] if content else []
        return results + user

    # -- response ------------------------------------------------------------------

    def _events(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        if uses_responses_api(self.name, self.api, request.model):
            return responses_events(self, request)
        return self._chat_events(request)

    async def _chat_events(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        url = self.base_url + "/chat/completions"
        async with open_stream(self._client, self.name, url, headers=self._request_headers(),
                               body=self._request_body(request)) as response:
            finished = False
            chunks = _ChunkParser()
            async for sse in parse_sse(response.lines()):
                if sse.data.strip() == "[DONE]":
                    return
                data = load_event_json(sse.data, self.name)
                for delta in chunks.parse(data):
                    finished = finished or isinstance(delta, Finish)
                    yield delta
                if data.get("error"):  # after the chunk's own deltas: OpenRouter sends usage beside the error
                    raise stream_error(data["error"], self.name)
            if not finished:
                raise ProviderConnectionError(f"{self.name}: the stream ended before the answer was complete")


def _map_tool(tool: ToolSpec) -> dict[str, Any]:
    return {"type": "function",
            "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters}}


def _map_user_part(part: Any) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ImagePart):
        return {"type": "image_url", "image_url": {"url": part.url}}
    if isinstance(part, FilePart):
        return file_placeholder(part)
    if isinstance(part, (ThinkingPart, ToolCallPart)):
        return None  # never part of a user turn on this wire
    raise TypeError(f"Unknown message part {type(part).__name__}")


def _tool_images_message(images: list[Any]) -> dict[str, Any]:
    """Chat Completions tool messages carry text only, so a tool's images follow every tool
    message of the step (an assistant's tool calls must be answered first) in a user message."""
    return {"role": "user", "content": [{"type": "text", "text": tool_images_intro(len(images))}, *images]}


def _simplify(content: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """Plain text as a string: every compatible server accepts that form."""
    if all(c["type"] == "text" for c in content):
        return "".join(c["text"] for c in content)
    return content


def _map_assistant(message: Message) -> dict[str, Any]:
    wire: dict[str, Any] = {"role": "assistant", "content": message.text or None}
    calls = [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments or "{}"}}
             for c in message.tool_calls]
    if calls:
        wire["tool_calls"] = calls
    elif wire["content"] is None:
        wire["content"] = ""  # thinking-only turns still need a content field
    return wire


class _ChunkParser:
    """Deltas of one stream's Chat Completions chunks.

    It keeps the one piece of state the wire needs: which tool call a fragment without an
    ``index`` belongs to (Mistral sends whole calls without one; a new id means a new call).
    """

    def __init__(self) -> None:
        self._last_index = -1
        self._ids: dict[int, str] = {}

    def parse(self, data: dict[str, Any]) -> list[ProviderEvent]:
        deltas: list[ProviderEvent] = []
        for choice in data.get("choices") or []:
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                deltas.append(ThinkingDelta(text=reasoning))
            deltas.extend(_content_deltas(delta.get("content")))
            if isinstance(delta.get("refusal"), str) and delta["refusal"]:
                deltas.append(RefusalDelta(delta["refusal"]))
            deltas.extend(self._tool_call_delta(c) for c in delta.get("tool_calls") or [] if isinstance(c, dict))
            if choice.get("finish_reason"):
                deltas.append(Finish(_FINISH.get(choice["finish_reason"], choice["finish_reason"])))
        # Groq puts the usage in x_groq.usage (and sometimes only there).
        usage = data.get("usage") or (data.get("x_groq") or {}).get("usage")
        if isinstance(usage, dict) and usage:
            deltas.append(_usage(usage))
        return deltas

    def _tool_call_delta(self, call: dict[str, Any]) -> ToolCallDelta:
        function = call.get("function") or {}
        call_id = call.get("id") or None
        index = call.get("index")
        if not isinstance(index, int):
            # No index: a fragment with a new id starts the next call, one without continues the last.
            known = self._ids.get(self._last_index)
            index = self._last_index + 1 if (call_id and call_id != known) or self._last_index < 0 \
                else self._last_index
        if call_id:
            self._ids[index] = call_id
        self._last_index = max(self._last_index, index)
        return ToolCallDelta(index=index, id=call_id, name=function.get("name") or None,
                             arguments=function.get("arguments") or "")


def _content_deltas(content: Any) -> list[ProviderEvent]:
    """``delta.content``: a string, or (Mistral's reasoning models) a list of text and thinking items."""
    if isinstance(content, str):
        return [TextDelta(content)] if content else []
    if not isinstance(content, list):
        return []
    deltas: list[ProviderEvent] = []
    for item in content:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "text" and isinstance(item.get("text"), str) and item["text"]:
            deltas.append(TextDelta(item["text"]))
        elif item.get("type") == "thinking":
            deltas.extend(ThinkingDelta(text=t) for t in _texts(item.get("thinking")) if t)
    return deltas


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [i["text"] for i in value if isinstance(i, dict) and isinstance(i.get("text"), str)]
    return []


def _usage(usage: dict[str, Any]) -> UsageDelta:
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    total = usage.get("total_tokens")
    return UsageDelta(prompt_tokens=usage.get("prompt_tokens"), completion_tokens=usage.get("completion_tokens"),
                      cache_read_tokens=cached, total_tokens=total if isinstance(total, int) else None)
