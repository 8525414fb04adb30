"""The shape of a tool and of an approver, shared by the built-in and the notebook tools."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from ...messages import ImageAttachment, ToolStatus
from ...providers.base import ToolSpec

__all__ = ["ApprovalRequest", "Approver", "Tool", "ToolResult"]


@dataclass
class ToolResult:
    """What a tool call gave: the text the model sees, how the call ended, and images the model
    should see beside that text (they go into the transcript after the tool result and to the
    model in its protocol's image format).

    ``status`` is "succeeded" or "failed" (from ``success`` when not given) or "denied"
    (refused before it ran). It is the one record of a refusal: readers never parse ``output``.
    """

    output: str
    success: bool = True
    status: ToolStatus | None = None
    images: list[ImageAttachment] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.status is None:
            self.status = "succeeded" if self.success else "failed"
        elif self.status != "succeeded":
            self.success = False


@dataclass(frozen=True)
class Tool:
    """A tool the model may call.

    ``handler`` gets the parsed arguments and returns a ``ToolResult`` (or a plain
    string, meaning success); raising ``ToolError`` reports a failure to the model.
    Tools with ``read_only=False`` ask the approver first. That is the default: a tool
    that does not say it only reads is treated as one that changes things, so a
    forgotten flag can never let a replayed or model-made call run unasked.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    handler: Callable[[dict[str, Any]], Awaitable[ToolResult | str]]
    read_only: bool = False

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.parameters)


@dataclass(frozen=True)
class ApprovalRequest:
    tool_call_id: str
    name: str
    arguments: dict[str, Any]


# Returns True to run the tool, False to refuse it (the model is told it was refused).
Approver = Callable[[ApprovalRequest], Awaitable[bool]]
