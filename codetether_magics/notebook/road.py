"""The one road a ``%%codetether`` cell takes to the agent loop, live or replayed.

A live cell and a replayed one make the same call, ``Session.prompt_with_events_and_images``;
what differs is data: which session the loop runs on (the notebook's, or an in-memory copy
cut before the recorded turn), which registry answers (the configured providers, or the
recording), whether it saves, and a check after the run (a replay fails when it refused a
recorded call). The model is chosen once, here, for both the view's label and the loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..agent.tools.base import Approver

__all__ = ["TurnRoad"]


@dataclass
class TurnRoad:
    session: Any  # the Session the loop runs on
    registry: Any  # a ProviderRegistry, or the replay's one-provider registry
    model: str | None  # "provider/model"; None: the loop reports that none is configured
    approver: Approver | None
    save: bool = True
    title_model_call: bool = True
    after: Callable[[], None] | None = None  # raises when the finished run must still fail
    options: dict[str, Any] = field(default_factory=dict)  # more keyword arguments of this road's loop call

    async def run(self, prompt: str, images: list[Any], events: Any, *,
                  tools: list[Any] | None, max_steps: int | None) -> Any:
        result = await self.session.prompt_with_events_and_images(
            prompt, images, events, self.registry,
            model=self.model, tools=tools, approver=self.approver, max_steps=max_steps,
            save=self.save, title_model_call=self.title_model_call, **self.options,
        )
        if self.after is not None:
            self.after()
        return result
