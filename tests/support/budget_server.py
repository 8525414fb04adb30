"""A scripted model server with a context window: it answers summary requests itself and can
refuse requests past a size with a provider's real context-length error body.

``wire_tokens`` estimates a recorded wire request with the package's own estimator, so a test
can check every request the server saw against the budget.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from codetether_magics.agent.context.summary import SUMMARY_SYSTEM
from codetether_magics.agent.context.tokens import IMAGE_TOKENS, MESSAGE_OVERHEAD, estimate_text
from codetether_magics.testing import ScriptedModelServer, Turn
from codetether_magics.testing._checks import system_text

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "context_errors"
REAL_BODIES = {name: (FIXTURES / f"{name}.json").read_text(encoding="utf-8")
               for name in ("openai", "anthropic", "llamacpp", "vllm", "openrouter")}


def _content_tokens(content: Any) -> int:
    if isinstance(content, str):
        return estimate_text(content)
    total = 0
    for block in content or []:
        kind = block.get("type")
        if kind == "text":
            total += estimate_text(block.get("text", ""))
        elif kind in ("image", "image_url"):
            total += IMAGE_TOKENS
        elif kind == "tool_use":
            total += estimate_text(block["name"]) + estimate_text(json.dumps(block.get("input"))) + MESSAGE_OVERHEAD
        elif kind == "tool_result":
            total += _content_tokens(block.get("content")) + MESSAGE_OVERHEAD
        elif kind == "thinking":
            total += estimate_text(block.get("thinking", "")) + estimate_text(block.get("signature", ""))
        else:
            total += estimate_text(json.dumps(block))
    return total


def wire_tokens(protocol: str, body: dict[str, Any]) -> int:
    """Estimated tokens of a wire request: system, tools and every message, as sent."""
    total = 0
    if protocol == "anthropic" and body.get("system"):
        total += _content_tokens(body["system"]) + MESSAGE_OVERHEAD
    for tool in body.get("tools") or []:
        spec = tool.get("function", tool)
        schema = spec.get("parameters", spec.get("input_schema"))
        total += estimate_text(json.dumps([spec["name"], spec.get("description", ""), schema],
                                          separators=(",", ":"))) + MESSAGE_OVERHEAD
    for message in body.get("messages") or []:
        total += MESSAGE_OVERHEAD + _content_tokens(message.get("content"))
        for call in message.get("tool_calls") or []:
            function = call["function"]
            total += estimate_text(function["name"]) + estimate_text(function["arguments"]) + MESSAGE_OVERHEAD
    return total


def is_summary_request(protocol: str, body: Any) -> bool:
    return isinstance(body, dict) and SUMMARY_SYSTEM[:40] in system_text(protocol, body)


class BudgetServer(ScriptedModelServer):
    """``reject_over``: requests estimated above it get HTTP 400 with ``reject_body`` (no turn used).
    Summary requests are answered "Summary N: ..." without using a scripted turn, or refused with
    HTTP 400 when ``fail_summaries``."""

    def __init__(self, turns: Any = (), *, reject_over: int | None = None, reject_body: str = "",
                 fail_summaries: bool = False, **options: Any) -> None:
        super().__init__(turns, **options)
        self.reject_over, self.reject_body, self.fail_summaries = reject_over, reject_body, fail_summaries
        self.summaries: list[Any] = []
        self.rejected: list[Any] = []
        self._budget_lock = threading.Lock()

    @property
    def turn_requests(self) -> list[Any]:
        """Model requests that are neither summary requests nor refused."""
        skip = {id(r) for r in self.summaries + self.rejected}
        return [r for r in self.model_requests if id(r) not in skip]

    def answer(self, handler: Any, protocol: str, request: Any) -> None:
        body = request.body
        if is_summary_request(protocol, body):
            self._record(request)
            with self._budget_lock:
                self.summaries.append(request)
                number = len(self.summaries)
            if self.fail_summaries:
                handler.send_json(400, {"error": {"type": "invalid_request_error", "message": "summaries refused"}})
                return
            self._stream(handler, protocol, Turn.text(f"Summary {number}: the user and the agent talked."), body)
            return
        if self.reject_over is not None and wire_tokens(protocol, body) > self.reject_over:
            self._record(request)
            with self._budget_lock:
                self.rejected.append(request)
            handler.send_body(400, self.reject_body.encode(), "application/json")
            return
        super().answer(handler, protocol, request)
