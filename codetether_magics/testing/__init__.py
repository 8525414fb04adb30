"""Test helpers that ship with the package (numpy.testing style).

``ScriptedModelServer`` is a real loopback HTTP model server answering from scripted
``Turn``s in both streaming protocols; ``RecordedServer`` answers with given bytes (recorded
API responses, keep-alive comments forever, silence); the example notebooks, the kernel tests and the
browser test record against it. ``VaultServer`` is a loopback KV v2 Vault for the
provider registry tests.

Names are loaded on first use, so ``python -m codetether_magics.testing.scripted_server``
runs its module once (no double import through this package).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "DropStep": "turns",
    "ErrorEventStep": "turns",
    "Expectation": "turns",
    "FakeRegistry": "fakes",
    "HangStep": "turns",
    "HttpError": "turns",
    "MalformedStep": "turns",
    "REAL_WORLD_VARS": "environment",
    "RecordedRequest": "_handler",
    "RecordedServer": "recorded_server",
    "Reply": "recorded_server",
    "ScriptedModelServer": "scripted_server",
    "ScriptedProvider": "fakes",
    "TextStep": "turns",
    "ThinkingStep": "turns",
    "ToolCallStep": "turns",
    "Turn": "turns",
    "UsageStep": "turns",
    "VaultRequest": "vault_server",
    "VaultServer": "vault_server",
    "load_script": "scripted_server",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from ._handler import RecordedRequest
    from .recorded_server import RecordedServer, Reply
    from .environment import REAL_WORLD_VARS
    from .fakes import FakeRegistry, ScriptedProvider
    from .scripted_server import ScriptedModelServer, load_script
    from .turns import (DropStep, ErrorEventStep, Expectation, HangStep, HttpError, MalformedStep, TextStep,
                        ThinkingStep, ToolCallStep, Turn, UsageStep)
    from .vault_server import VaultRequest, VaultServer


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'codetether_magics.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
