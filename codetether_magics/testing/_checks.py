"""Check an incoming request the way the real APIs would, and against a turn's ``expect``.

``problems(protocol, headers, body)`` lists what a real server would reject (answered
with HTTP 400); ``unmet(protocol, body, expectation)`` lists unmet expectations (the
turn is still answered; the failures are recorded for the test to assert on).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Iterator, Mapping

from . import _checks_responses as responses
from ._wire import ANTHROPIC
from .turns import Expectation

RESPONSES = "responses"

_IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}


def problems(protocol: str, headers: Mapping[str, str], body: Any) -> list[str]:
    if not isinstance(body, dict):
        return ["the request body is not a JSON object"]
    found = responses.problems(body) if protocol == RESPONSES else \
        [f"missing required field '{k}'" for k in _required(protocol) if k not in body]
    if body.get("stream") is not True:
        found.append("the scripted server only streams: send \"stream\": true")
    if protocol == ANTHROPIC:
        if not headers.get("anthropic-version"):
            found.append("missing the anthropic-version header")
        found += [f"message role {r!r} is not allowed (use user/assistant; system goes in 'system')"
                  for r in _roles(body) if r not in ("user", "assistant")]
    found += _orphan_tool_results(protocol, body)
    found += _bad_images(protocol, body)
    return found


def unmet(protocol: str, body: dict[str, Any], expect: Expectation) -> list[str]:
    failures = []
    if expect.model is not None and body.get("model") != expect.model:
        failures.append(f"expected model {expect.model!r}, got {body.get('model')!r}")
    if expect.tool_result is not None:
        results = [content for _, content in _tool_results(protocol, body)]
        if not any(expect.tool_result in r for r in results):
            failures.append(f"expected a tool result containing {expect.tool_result!r}, got {results!r}")
    if expect.image and not list(_images(protocol, body)):
        failures.append(f"expected an image in a user message ({protocol} format), found none")
    if expect.user_text is not None:
        text = last_user_text(protocol, body)
        if expect.user_text not in text:
            failures.append(f"expected the last user message to contain {expect.user_text!r}, got {text!r}")
    if expect.tools is not None:
        offered = tool_names(protocol, body)
        missing = [t for t in expect.tools if t not in offered]
        if missing:
            failures.append(f"expected tools {missing!r} in the request, offered {offered!r}")
    if expect.system is not None and expect.system not in system_text(protocol, body):
        failures.append(f"expected the system prompt to contain {expect.system!r}")
    return failures


def _required(protocol: str) -> tuple[str, ...]:
    return ("model", "messages", "max_tokens") if protocol == ANTHROPIC else ("model", "messages")


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []


def _roles(body: dict[str, Any]) -> list[str]:
    return [m.get("role") for m in _messages(body)]


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _block_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict))
    return ""


def _tool_results(protocol: str, body: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(call id, content) of every tool result in the request."""
    if protocol == RESPONSES:
        yield from responses.tool_results(body)
        return
    for message in _messages(body):
        if protocol == ANTHROPIC:
            for block in _blocks(message):
                if block.get("type") == "tool_result":
                    yield block.get("tool_use_id", ""), _block_text(block.get("content"))
        elif message.get("role") == "tool":
            yield message.get("tool_call_id", ""), _block_text(message.get("content"))


def _tool_call_ids(protocol: str, body: dict[str, Any]) -> set[str]:
    if protocol == RESPONSES:
        return responses.tool_call_ids(body)
    ids = set()
    for message in _messages(body):
        if message.get("role") != "assistant":
            continue
        if protocol == ANTHROPIC:
            ids |= {b.get("id") for b in _blocks(message) if b.get("type") == "tool_use"}
        else:
            ids |= {c.get("id") for c in message.get("tool_calls") or [] if isinstance(c, dict)}
    return ids


def _orphan_tool_results(protocol: str, body: dict[str, Any]) -> list[str]:
    known = _tool_call_ids(protocol, body)
    return [f"tool result for {call_id!r} has no matching tool call in an assistant message"
            for call_id, _ in _tool_results(protocol, body) if call_id not in known]


def _images(protocol: str, body: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(mime type, base64 data) of every image in a user message, in the protocol's own format."""
    if protocol == RESPONSES:
        yield from responses.images(body)
        return
    for message in _messages(body):
        if message.get("role") != "user":
            continue
        for block in _blocks_with_nested(protocol, message):
            if protocol == ANTHROPIC and block.get("type") == "image":
                source = block.get("source") or {}
                if source.get("type") == "base64":
                    yield source.get("media_type", ""), source.get("data", "")
            elif protocol != ANTHROPIC and block.get("type") == "image_url":
                url = (block.get("image_url") or {}).get("url", "")
                head, _, data = url.partition(",")
                if head.startswith("data:") and head.endswith(";base64"):
                    yield head[5:-7], data


def _blocks_with_nested(protocol: str, message: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A message's blocks, and on Anthropic the blocks inside each tool_result (where a tool's images go)."""
    for block in _blocks(message):
        yield block
        if protocol == ANTHROPIC and block.get("type") == "tool_result" and isinstance(block.get("content"), list):
            yield from (b for b in block["content"] if isinstance(b, dict))


def _bad_images(protocol: str, body: dict[str, Any]) -> list[str]:
    bad = []
    for mime, data in _images(protocol, body):
        if mime not in _IMAGE_TYPES:
            bad.append(f"image media type {mime!r} is not one of {sorted(_IMAGE_TYPES)}")
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            bad.append("image data is not valid base64")
    return bad


def last_user_text(protocol: str, body: dict[str, Any]) -> str:
    if protocol == RESPONSES:
        return responses.last_user_text(body)
    for message in reversed(_messages(body)):
        if message.get("role") == "user":
            text = "".join(b.get("text", "") for b in _blocks(message) if b.get("type") == "text")
            if text or protocol != ANTHROPIC:
                return text
    return ""


def tool_names(protocol: str, body: dict[str, Any]) -> list[str]:
    if protocol == RESPONSES:
        return responses.tool_names(body)
    names = []
    for tool in body.get("tools") or []:
        if isinstance(tool, dict):
            names.append(tool.get("name") if protocol == ANTHROPIC else (tool.get("function") or {}).get("name"))
    return [n for n in names if n]


def system_text(protocol: str, body: dict[str, Any]) -> str:
    if protocol == RESPONSES:
        return responses.system_text(body)
    if protocol == ANTHROPIC:
        return _block_text(body.get("system"))
    return "\n".join(_block_text(m.get("content")) for m in _messages(body) if m.get("role") in ("system", "developer"))
