"""What the budget keeps in the session file: the latest summary and how often it acted.

It lives under one top-level key, ``context_budget``, written after ``usage`` (unknown keys
survive every reader and writer, and a header scan stops before it). No transcript message
is rewritten or dropped: the summary only replaces messages in requests.

    "context_budget": {"summary": {"text", "messages", "anchor", "tokens"} | null,
                       "compactions": int, "truncations": int}
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

from ...messages import Message
from .derive import StoredSummary

__all__ = ["KEY", "anchor_of", "budget_counts", "count", "load_summary", "store_summary"]

KEY = "context_budget"


def _state(session: Any) -> dict[str, Any]:
    state = getattr(session, KEY, None)
    if not isinstance(state, dict):
        state = {"summary": None, "compactions": 0, "truncations": 0}
        setattr(session, KEY, state)
    return state


def anchor_of(message: Message) -> str:
    return hashlib.sha256(message.model_dump_json().encode("utf-8")).hexdigest()[:32]


def load_summary(session: Any, messages: Sequence[Message]) -> StoredSummary | None:
    """The stored summary when it still describes the start of ``messages``, else None."""
    raw = (getattr(session, KEY, None) or {}).get("summary") if isinstance(getattr(session, KEY, None), dict) \
        else None
    if not isinstance(raw, dict):
        return None
    try:
        summary = StoredSummary(text=str(raw["text"]), messages=int(raw["messages"]), anchor=str(raw["anchor"]),
                                tokens=int(raw.get("tokens", 0)))
    except (KeyError, TypeError, ValueError):
        return None  # a hand-edited or foreign value: make a new one rather than fail the turn
    if not 0 < summary.messages < len(messages) or anchor_of(messages[summary.messages - 1]) != summary.anchor:
        return None
    return summary


def store_summary(session: Any, summary: StoredSummary) -> None:
    state = _state(session)
    state["summary"] = {"text": summary.text, "messages": summary.messages, "anchor": summary.anchor,
                        "tokens": summary.tokens}
    state["compactions"] = int(state.get("compactions") or 0) + 1


def count(session: Any, what: str) -> None:
    """Add one to ``compactions`` or ``truncations``."""
    state = _state(session)
    state[what] = int(state.get(what) or 0) + 1


def budget_counts(session: Any) -> tuple[int, int]:
    """(compactions, truncations) so far in this session."""
    state = getattr(session, KEY, None)
    if not isinstance(state, dict):
        return 0, 0
    return int(state.get("compactions") or 0), int(state.get("truncations") or 0)
