"""The type the storage modules (codec, storage, resume) take for a session.

They build and write ``Session`` objects, but ``session.py`` imports them, so they never name
``Session`` itself, not even for type checkers: the class to build is passed in (``model=``), and
a session is any ``Record`` subclass. That keeps the import graph free of cycles.
"""

from __future__ import annotations

from typing import TypeVar

from ..messages import Record

__all__ = ["StoredSession"]

StoredSession = TypeVar("StoredSession", bound=Record)
