"""Each step's tokens and model, kept on its assistant message so a replay's record shows them.

The cell's record ends with the model and this turn's tokens, and a replay must reproduce it
byte for byte; the session's ``usage`` is a running total over every turn. So a live run
writes, on each step's assistant message, the keys ``usage`` (``prompt_tokens``,
``completion_tokens`` and ``cost_usd`` when known) and ``model``. Unknown keys survive every
reader of a session file, and an older file without them replays with zero tokens.

The loop adds a step's message, reports its usage, then saves: setting the keys on the
report puts them in that very save, without one more write of the transcript.
"""

from __future__ import annotations

from typing import Any

__all__ = ["recorded_model", "recorded_usage", "remember_usage"]

USAGE_KEY = "usage"
MODEL_KEY = "model"


def remember_usage(session: Any, event: Any) -> None:
    """On a live run's ``usage_report``: note it on the step's assistant message."""
    if session is None or not session.messages:
        return
    message = session.messages[-1]
    extra = message.model_extra or {}
    # A step that produced no message (an empty answer) leaves the user's or a tool's last.
    if message.role != "assistant" or USAGE_KEY in extra:
        return
    usage: dict[str, Any] = {"prompt_tokens": event.prompt_tokens, "completion_tokens": event.completion_tokens}
    cost = getattr(event, "cost_usd", None)
    if cost is not None:
        usage["cost_usd"] = cost
    setattr(message, USAGE_KEY, usage)
    setattr(message, MODEL_KEY, event.model)


def recorded_usage(message: Any) -> Any:
    """The ``UsageDelta`` a replayed step reports, or None for a message recorded without one."""
    from ..providers.base import UsageDelta

    usage = (message.model_extra or {}).get(USAGE_KEY)
    if not isinstance(usage, dict):
        return None
    tokens = {name: usage.get(name) for name in ("prompt_tokens", "completion_tokens")}
    if not all(isinstance(value, int) for value in tokens.values()):
        return None
    return UsageDelta(**tokens)


def recorded_model(messages: Any) -> str | None:
    """The model that answered the first of ``messages`` that names one."""
    for message in messages:
        model = (message.model_extra or {}).get(MODEL_KEY)
        if isinstance(model, str) and model:
            return model
    return None
