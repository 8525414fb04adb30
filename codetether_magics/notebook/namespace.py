"""Which names of the kernel's namespace are the user's: a light module, so ``%load_ext`` can take
its first look at the namespace without importing the agent's tools (and pydantic with them)."""

from __future__ import annotations

import types
from typing import Any, Mapping

__all__ = ["IPYTHON_NAMES", "visible_variables"]

# IPython's own names in every user namespace.
IPYTHON_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython", "open"})


def visible_variables(user_ns: Mapping[str, Any], hidden: Mapping[str, Any]) -> dict[str, Any]:
    """What ``%whos`` would list: the user's names, not IPython's, modules or private ones."""
    return {
        name: value
        for name, value in user_ns.items()
        if not name.startswith("_")
        and name not in IPYTHON_NAMES
        and not (name in hidden and hidden[name] is value)
        and not isinstance(value, types.ModuleType)
    }
