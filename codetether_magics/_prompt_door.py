"""The one door from a ``Session`` to the agent loop behind ``prompt*``.

``Session.prompt``, ``prompt_with_events`` and ``prompt_with_events_and_images`` belong to the
session object (that is the public API), but running a turn needs the agent and the providers,
and the storage package must not import them: storage would then depend on everything above
it, and every import of ``session/`` would drag in httpx. So the session calls ``run_turn``
here, and the package root installs the runner: a small function that imports
``agent.loop`` on the first prompt. Python runs the package root before any submodule, so the
door is wired however the session was imported, and nothing is imported until a prompt runs.
A test or an embedding can install another runner (``install``), e.g. a loop with fakes.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

__all__ = ["PromptRunner", "install", "installed", "run_turn"]

# run_prompt(session, message, images, events, registry, **options) -> SessionResult
PromptRunner = Callable[..., Awaitable[Any]]

_runner: PromptRunner | None = None


def install(runner: PromptRunner | None) -> PromptRunner | None:
    """Make ``runner`` the loop behind ``Session.prompt*``; return the one it replaces."""
    global _runner
    previous, _runner = _runner, runner
    return previous


def installed() -> PromptRunner | None:
    return _runner


async def run_turn(session: Any, message: Any, images: Any, events: Any, registry: Any, **options: Any) -> Any:
    if _runner is None:
        raise RuntimeError(
            "No agent loop is installed behind Session.prompt; import codetether_magics (the package "
            "root installs it) or call codetether_magics.agent.loop.run_prompt(session, ...) directly."
        )
    return await _runner(session, message, images, events, registry, **options)
