"""The events a running prompt emits, and ``EventSink``, which delivers them.

A separate vocabulary from transcript parts (``messages``): these describe what is happening
now (chunks, tool progress, retries), parts describe what was said. The union is discriminated
on ``type``, whose values are a public contract (docs/design.md, "Events");
``SessionEventAdapter`` is the one path to and from JSON. Arguments and outputs carried by
events are capped (``caps``) so one huge tool result cannot flood a notebook's output.

    sink = EventSink(events)        # None, a Queue (put_nowait) or fn(event) / async fn(event)
    await sink.emit(TextChunkEvent(text="Hel"))

(The bus is not here: the loop calls ``session.publish``, a no-op without a bus, and the
bus itself logs and survives a failing subscriber.)
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, TypeAdapter

__all__ = [
    "ApprovalRequestEvent",
    "CompactionCompletedEvent",
    "CompactionStartedEvent",
    "ContextTruncatedEvent",
    "EventSink",
    "DoneEvent",
    "ErrorEvent",
    "SessionEvent",
    "SessionEventAdapter",
    "StreamRetryEvent",
    "TextChunkEvent",
    "TextCompleteEvent",
    "ThinkingCompleteEvent",
    "ThinkingEvent",
    "ToolCallCompleteEvent",
    "ToolCallStartEvent",
    "ToolHeartbeatEvent",
    "UsageReportEvent",
]

class _Event(BaseModel):
    pass


class ThinkingEvent(_Event):
    """The model is thinking; ``text`` is the reasoning so far (cumulative) when it is shown."""

    type: Literal["thinking"] = "thinking"
    text: str = ""


class TextChunkEvent(_Event):
    type: Literal["text_chunk"] = "text_chunk"
    text: str  # the whole answer text so far, not the delta


class TextCompleteEvent(_Event):
    type: Literal["text_complete"] = "text_complete"
    text: str


class ThinkingCompleteEvent(_Event):
    type: Literal["thinking_complete"] = "thinking_complete"
    text: str


class ToolCallStartEvent(_Event):
    type: Literal["tool_call_start"] = "tool_call_start"
    tool_call_id: str
    name: str
    arguments: str  # capped at caps.ARGUMENTS_CAP


class ToolCallCompleteEvent(_Event):
    type: Literal["tool_call_complete"] = "tool_call_complete"
    tool_call_id: str
    name: str
    output: str  # capped at caps.OUTPUT_CAP
    success: bool
    duration_ms: int
    # How the call ended; "denied" means it was refused and never ran (None: not said).
    status: Literal["succeeded", "failed", "denied"] | None = None


class ToolHeartbeatEvent(_Event):
    type: Literal["tool_heartbeat"] = "tool_heartbeat"
    tool_call_id: str
    name: str
    elapsed_secs: float


class StreamRetryEvent(_Event):
    type: Literal["stream_retry"] = "stream_retry"
    attempt: int
    max_restarts: int
    reason: str


class UsageReportEvent(_Event):
    type: Literal["usage_report"] = "usage_report"
    prompt_tokens: int
    completion_tokens: int
    duration_ms: int
    model: str
    cost_usd: float | None = None  # US dollars at the price table's prices; None when the model's price is unknown


class ApprovalRequestEvent(_Event):
    """A tool that changes things wants to run; the approver decides."""

    type: Literal["approval_request"] = "approval_request"
    tool_call_id: str
    name: str
    arguments: str  # capped at caps.ARGUMENTS_CAP
    reason: str = ""


class CompactionStartedEvent(_Event):
    """The request would pass the context budget: one model call is summarising earlier turns."""

    type: Literal["compaction_started"] = "compaction_started"


class CompactionCompletedEvent(_Event):
    """The summary replaces the earlier turns in the request (the transcript keeps them)."""

    type: Literal["compaction_completed"] = "compaction_completed"
    before_tokens: int  # estimated request tokens without the summary
    after_tokens: int  # ... and with it


class ContextTruncatedEvent(_Event):
    """Earlier messages were left out of the request without a summary (a failed summary call, or
    the provider's context-length error)."""

    type: Literal["context_truncated"] = "context_truncated"
    dropped: int  # transcript messages left out of this request


class DoneEvent(_Event):
    type: Literal["done"] = "done"


class ErrorEvent(_Event):
    type: Literal["error"] = "error"
    message: str


SessionEvent = Annotated[
    Union[
        ThinkingEvent,
        TextChunkEvent,
        TextCompleteEvent,
        ThinkingCompleteEvent,
        ToolCallStartEvent,
        ToolCallCompleteEvent,
        ToolHeartbeatEvent,
        StreamRetryEvent,
        UsageReportEvent,
        ApprovalRequestEvent,
        CompactionStartedEvent,
        CompactionCompletedEvent,
        ContextTruncatedEvent,
        DoneEvent,
        ErrorEvent,
    ],
    Field(discriminator="type"),
]

SessionEventAdapter: TypeAdapter[Any] = TypeAdapter(SessionEvent)


class EventSink:
    """Where a running prompt's events go: nowhere, an ``asyncio.Queue`` or a callable (sync or async)."""

    def __init__(self, target: Any) -> None:
        if target is not None and not isinstance(target, asyncio.Queue) and not callable(target):
            raise TypeError(
                f"events must be None, an asyncio.Queue or a callable taking one event, "
                f"not {type(target).__name__}"
            )
        self._target = target

    async def emit(self, event: Any) -> None:
        target = self._target
        if target is None:
            return
        event = _scrubbed(event)
        if isinstance(target, asyncio.Queue):
            target.put_nowait(event)
            return
        result = target(event)
        if inspect.isawaitable(result):
            await result


# The events whose text can carry a server's or a tool's words (an echoed key); text chunks are the
# model's answer and are not rescanned per chunk (that would make each chunk cost the whole text).
_FREE_TEXT = {"error": "message", "stream_retry": "reason", "tool_call_complete": "output"}


def _scrubbed(event: Any) -> Any:
    field = _FREE_TEXT.get(getattr(event, "type", ""))
    if field is None:
        return event
    from .redaction import redact

    text = getattr(event, field)
    clean = redact(text)
    return event if clean == text else event.model_copy(update={field: clean})
