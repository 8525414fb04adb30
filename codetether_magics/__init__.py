"""codetether-magics: the CodeTether agent Session in Jupyter.

    %load_ext codetether_magics
    %%codetether --model openai/gpt-4o-mini --image last
    Why does the residual plot above fan out?

Public names are loaded on first use so that ``%load_ext`` stays fast. This module is also
where the layers are joined: it connects ``Session.prompt*`` to the agent loop through
``_prompt_door`` (docs/design.md, "The prompt door"). Nothing in the package imports it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import _prompt_door

__version__ = "0.1.0"

# name -> module that defines it
_EXPORTS = {
    "Config": "codetether_magics.session.metadata",
    "ImageAttachment": "codetether_magics.messages",
    "Message": "codetether_magics.messages",
    "ProviderRegistry": "codetether_magics.providers.registry",
    "Session": "codetether_magics.session.session",
    "SessionEvent": "codetether_magics.events",
    "SessionResult": "codetether_magics.session.session",
    "TailLoad": "codetether_magics.session.storage",
}

__all__ = sorted([*_EXPORTS, "load_ipython_extension", "unload_ipython_extension"])

if TYPE_CHECKING:  # pragma: no cover
    from .events import SessionEvent
    from .providers.registry import ProviderRegistry
    from .session.session import Session, SessionResult
    from .session.metadata import Config
    from .messages import ImageAttachment, Message
    from .session.storage import TailLoad


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'codetether_magics' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


async def _run_prompt(session: Any, message: Any, images: Any, events: Any, registry: Any, **options: Any) -> Any:
    """The runner behind ``Session.prompt*``: the agent loop, imported on the first prompt."""
    from .agent.loop import run_prompt

    return await run_prompt(session, message, images, events, registry, **options)


_prompt_door.install(_run_prompt)


def load_ipython_extension(ipython: Any) -> None:
    from .notebook.extension import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .notebook.extension import unload

    unload(ipython)
