"""``Session``: one conversation, its transcript and where it is stored.

Storage, titles and the bus are implemented in their own modules of this package;
the agent loop (``prompt*``) is imported lazily from ``codetether_magics.agent`` so
that this package imports nothing else of ours at import time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable

from pydantic import Field, PrivateAttr, field_serializer

from .model import (
    ImageAttachment,
    Message,
    SessionMetadata,
    ToolUse,
    Usage,
    _Model,
    format_time,
    utc_now,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..providers.registry import ProviderRegistry

__all__ = ["DEFAULT_MAX_STEPS", "Session", "SessionResult"]

DEFAULT_MAX_STEPS = 50


@dataclass(frozen=True)
class SessionResult:
    text: str
    session_id: str


class Session(_Model):
    # Field order is the on-disk key order (SPEC section 3): metadata before messages.
    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    title: str | None = None
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)
    metadata: SessionMetadata = Field(default_factory=SessionMetadata)
    agent: str = "build"
    messages: list[Message] = Field(default_factory=list)
    tool_uses: list[ToolUse] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)

    # Runtime-only state, never written.
    _max_steps: int | None = PrivateAttr(default=None)
    _bus: Any = PrivateAttr(default=None)

    @field_serializer("created_at", "updated_at")
    def _times(self, value: datetime) -> str:
        return format_time(value)

    # -- runtime settings -------------------------------------------------------

    @property
    def max_steps(self) -> int | None:
        return self._max_steps

    @max_steps.setter
    def max_steps(self, value: int | None) -> None:
        self._max_steps = value

    @property
    def bus(self) -> Any:
        return self._bus

    # -- the agent loop ---------------------------------------------------------

    async def prompt(self, message: str) -> SessionResult:
        return await self.prompt_with_events(message, None, None)

    async def prompt_with_events(
        self,
        message: str,
        events: Any,
        registry: "ProviderRegistry | None" = None,
        **options: Any,
    ) -> SessionResult:
        return await self.prompt_with_events_and_images(message, [], events, registry, **options)

    async def prompt_with_events_and_images(
        self,
        message: str,
        images: list[ImageAttachment],
        events: "Any | Callable[[Any], Any]",
        registry: "ProviderRegistry | None" = None,
        **options: Any,
    ) -> SessionResult:
        """Run one user turn: ``events`` is an ``asyncio.Queue`` or a callable taking each event.

        ``options`` go to the loop: ``model``, ``tools``, ``approver``, ``max_steps``.
        """
        from ..agent.loop import run_prompt  # lazy: session/ must not import agent/ at import time

        return await run_prompt(self, message, images, events, registry, **options)
