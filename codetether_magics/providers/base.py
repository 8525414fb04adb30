"""What a provider is, seen from the agent loop.

A provider turns one ``ModelRequest`` (wire-neutral messages from ``codetether_magics.messages``
plus tool specs) into an async stream of small typed deltas. Each wire protocol lives
in its own module and is the only place that knows its JSON; the loop feeds the deltas
to ``agent.message_builder.MessageBuilder`` so every provider produces the same transcript.

Errors: before the first delta a provider raises ``ProviderHTTPError`` (with
``retry_after``) or ``ProviderConnectionError``; the loop retries those. A stream that
breaks after deltas arrived raises ``ProviderStreamError(partial=True)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Protocol, Union, runtime_checkable

from ..messages import Message

__all__ = [
    "Finish",
    "ModelRequest",
    "Provider",
    "ProviderEvent",
    "RefusalDelta",
    "TextDelta",
    "ThinkingDelta",
    "ToolCallDelta",
    "ToolSpec",
    "UsageDelta",
]


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the model sees it: a name, a description and a JSON-schema for its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass
class ModelRequest:
    model: str  # the provider's own model id ("gpt-4o", not "openai/gpt-4o")
    messages: list[Message]
    tools: list[ToolSpec] = field(default_factory=list)
    system: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    thinking_budget: int | None = None  # tokens of extended thinking (Anthropic), None: off


# -- deltas a provider yields ---------------------------------------------------


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ThinkingDelta:
    text: str = ""
    signature: str | None = None  # Anthropic sends the signature as its own delta
    # The block this piece belongs to, when the protocol numbers blocks (Anthropic): two thinking
    # blocks in a row stay two parts, each with its own signature.
    block: int | None = None
    redacted: str | None = None  # Anthropic's redacted_thinking data: opaque, sent back exactly as it came
    # Provider data the thinking part keeps for its own protocol, as (key, value) pairs: the Responses
    # API's encrypted reasoning. Other protocols never send it.
    extra: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class RefusalDelta:
    """The model refused (OpenAI ``delta.refusal`` text; Anthropic ``stop_reason: refusal``)."""

    text: str = ""


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of a tool call; pieces with the same ``index`` belong together."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""  # a fragment of the JSON arguments string


@dataclass(frozen=True)
class UsageDelta:
    """Token counts; a provider may send several, later values replace earlier nonzero ones."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    total_tokens: int | None = None  # when the server gives its own total (xAI counts reasoning in it)


@dataclass(frozen=True)
class Finish:
    reason: str  # "stop", "tool_calls", "length", ... normalised by the provider


ProviderEvent = Union[TextDelta, ThinkingDelta, RefusalDelta, ToolCallDelta, UsageDelta, Finish]


@runtime_checkable
class Provider(Protocol):
    name: str  # the registry name: "openai", "anthropic", "ollama", ...

    def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        """Send ``request`` and yield deltas as they arrive."""
        ...
