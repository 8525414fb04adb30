"""In-process fakes the tests share: a provider that plays scripted deltas, a registry over given providers.

    provider = ScriptedProvider([TextDelta("Hi"), Finish("stop")])   # one script per model call
    provider.enqueue([ProviderHTTPError(429, "slow down")])           # or add scripts later
    registry = FakeRegistry(provider)                                 # "fake/model-1" is the default
    await run_prompt(session, "hello", [], events.append, registry)

A script item is a delta to yield, an exception to raise in its place, or a float: seconds to
sleep first (a slow model). For the real wire protocols use ``ScriptedModelServer`` instead.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Mapping

from ..agent.title import TITLE_SYSTEM
from ..errors import ProviderNotFoundError

__all__ = ["FakeRegistry", "ScriptedProvider"]


class ScriptedProvider:
    """Each ``stream()`` call plays the next script; every request is kept in ``requests``."""

    def __init__(self, *scripts: list[Any], name: str = "fake") -> None:
        self.name = name
        self.scripts = list(scripts)
        self.requests: list[Any] = []

    def enqueue(self, *scripts: list[Any]) -> None:
        self.scripts.extend(scripts)

    async def stream(self, request: Any) -> AsyncIterator[Any]:
        self.requests.append(request)
        if not self.scripts:
            raise AssertionError("the loop made one model call more than scripted")
        for item in self.scripts.pop(0):
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, float):
                await asyncio.sleep(item)
                continue
            yield item

    def model_requests(self) -> list[Any]:
        """The requests of the turn itself, without the first turn's title request."""
        return [r for r in self.requests if r.system != TITLE_SYSTEM]


class FakeRegistry:
    """What the loop and a session need of a ``ProviderRegistry``: a default model and ``resolve_model``.

    ``providers`` is one provider (registered under its ``name``) or a mapping name -> provider
    (any object: a test of resolution alone can register a string). Every resolved selector is
    kept in ``asked``; an unknown provider raises the real registry's error.
    """

    def __init__(self, providers: Any, default_model: str | None = None) -> None:
        self.providers = dict(providers) if isinstance(providers, Mapping) else {providers.name: providers}
        self._default = default_model or f"{next(iter(self.providers))}/model-1"
        self.asked: list[str] = []

    def __len__(self) -> int:
        return len(self.providers)

    def default_model(self) -> str:
        return self._default

    def resolve_model(self, model: str) -> tuple[Any, str]:
        self.asked.append(model)
        name, _, local = model.partition("/")
        if name not in self.providers:
            raise ProviderNotFoundError(f"Provider '{name}' not found. Available: {', '.join(sorted(self.providers))}")
        return self.providers[name], local
