"""codetether-magics: the CodeTether agent Session in Jupyter.

    %load_ext codetether_magics
    %%codetether --model openai/gpt-4o-mini --image last
    Why does the residual plot above fan out?

Public names are loaded on first use so that ``%load_ext`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module that defines it
_EXPORTS = {
    "Config": "codetether_magics.session.model",
    "ImageAttachment": "codetether_magics.session.model",
    "Message": "codetether_magics.session.model",
    "ProviderRegistry": "codetether_magics.providers.registry",
    "Session": "codetether_magics.session.core",
    "SessionEvent": "codetether_magics.agent.events",
    "SessionResult": "codetether_magics.session.core",
    "TailLoad": "codetether_magics.session.storage",
}

__all__ = sorted([*_EXPORTS, "load_ipython_extension", "unload_ipython_extension"])

if TYPE_CHECKING:  # pragma: no cover
    from .agent.events import SessionEvent
    from .providers.registry import ProviderRegistry
    from .session.core import Session, SessionResult
    from .session.model import Config, ImageAttachment, Message
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


def load_ipython_extension(ipython: Any) -> None:
    from .notebook.extension import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .notebook.extension import unload

    unload(ipython)
