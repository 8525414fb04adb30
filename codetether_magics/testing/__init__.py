"""Test helpers that ship with the package (numpy.testing style).

``ScriptedModelServer`` is a real loopback HTTP model server answering from scripted
``Turn``s in both streaming protocols; the example notebooks, the kernel tests and the
browser test record against it. ``VaultServer`` is a loopback KV v2 Vault for the
provider registry tests.
"""

from __future__ import annotations

from .scripted_server import RecordedRequest, ScriptedModelServer, load_script
from .turns import (DropStep, ErrorEventStep, Expectation, HangStep, HttpError, MalformedStep, TextStep,
                    ThinkingStep, ToolCallStep, Turn, UsageStep)
from .vault_server import VaultRequest, VaultServer

__all__ = [
    "DropStep",
    "ErrorEventStep",
    "Expectation",
    "HangStep",
    "HttpError",
    "MalformedStep",
    "RecordedRequest",
    "ScriptedModelServer",
    "TextStep",
    "ThinkingStep",
    "ToolCallStep",
    "Turn",
    "UsageStep",
    "VaultRequest",
    "VaultServer",
    "load_script",
]
