"""What the scripted server checks in a Responses API request (``input`` items instead of messages),
with the same meaning as ``_checks`` has for the two other protocols."""

from __future__ import annotations

from typing import Any, Iterator

__all__ = ["images", "last_user_text", "problems", "system_text", "tool_call_ids", "tool_names", "tool_results"]


def _items(body: dict[str, Any]) -> list[dict[str, Any]]:
    items = body.get("input")
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _content(item: dict[str, Any]) -> list[dict[str, Any]]:
    content = item.get("content")
    if isinstance(content, str):
        return [{"type": "input_text", "text": content}]
    return [c for c in content if isinstance(c, dict)] if isinstance(content, list) else []


def problems(body: dict[str, Any]) -> list[str]:
    found = [f"missing required field '{k}'" for k in ("model", "input") if k not in body]
    if "messages" in body:
        found.append("'messages' is a Chat Completions field: the Responses API takes 'input'")
    for item in _items(body):
        if "role" not in item and item.get("type") not in ("function_call", "function_call_output", "reasoning",
                                                           "message"):
            found.append(f"input item of unknown type {item.get('type')!r}")
        for part in _content(item) if item.get("role") == "user" else []:
            if part.get("type") not in ("input_text", "input_image", "input_file"):
                found.append(f"user content of type {part.get('type')!r} (use input_text / input_image)")
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and tool.get("type") == "function" and "function" in tool:
            found.append("a Responses tool has name/parameters at the top level, not under 'function'")
    return found


def tool_results(body: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for item in _items(body):
        if item.get("type") == "function_call_output":
            yield item.get("call_id", ""), str(item.get("output", ""))


def tool_call_ids(body: dict[str, Any]) -> set[str]:
    return {i.get("call_id") for i in _items(body) if i.get("type") == "function_call"}


def images(body: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for item in _items(body):
        if item.get("role") != "user":
            continue
        for part in _content(item):
            if part.get("type") == "input_image":
                head, _, data = str(part.get("image_url", "")).partition(",")
                if head.startswith("data:") and head.endswith(";base64"):
                    yield head[5:-7], data


def last_user_text(body: dict[str, Any]) -> str:
    for item in reversed(_items(body)):
        if item.get("role") == "user":
            return "".join(p.get("text", "") for p in _content(item) if p.get("type") == "input_text")
    return ""


def tool_names(body: dict[str, Any]) -> list[str]:
    return [t["name"] for t in body.get("tools") or [] if isinstance(t, dict) and isinstance(t.get("name"), str)]


def system_text(body: dict[str, Any]) -> str:
    parts = [str(body.get("instructions") or "")]
    parts += ["".join(p.get("text", "") for p in _content(i)) for i in _items(body)
              if i.get("role") in ("system", "developer")]
    return "\n".join(p for p in parts if p)
