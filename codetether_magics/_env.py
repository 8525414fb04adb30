"""One rule for a yes/no environment variable, so every switch reads the same way."""

from __future__ import annotations

import os
from typing import Mapping

__all__ = ["TRUE_WORDS", "env_flag"]

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})  # any case, surrounding blanks ignored


def env_flag(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """True when ``name`` is set to one of ``TRUE_WORDS``; unset, empty or anything else is False."""
    value = (os.environ if environ is None else environ).get(name)
    return str(value or "").strip().lower() in TRUE_WORDS
