"""Live or replay: which road a ``%%codetether`` cell takes.

``--live`` always calls the model. ``--replay``, ``%config CodeTether.replay = True`` or
``CODETETHER_REPLAY`` (1/true/yes) answer from the transcript beside the notebook. With none of
these, a cell is replayed only when no provider is configured and the transcript has answers:
that is how a notebook with agent cells re-runs offline (``pytest --nbval``).
"""

from __future__ import annotations

from typing import Any

from .._env import env_flag

__all__ = ["choose_mode", "replay_forced"]


def replay_forced(options: Any, *, replay_config: bool, environ: Any) -> bool:
    """Whether ``--replay``, ``CodeTether.replay`` or ``CODETETHER_REPLAY`` asks for replay
    (``--live`` still wins: see ``choose_mode``)."""
    return bool(options.replay or replay_config or env_flag("CODETETHER_REPLAY", environ))


def choose_mode(options: Any, *, replay_config: bool, environ: Any, provider_configured: bool,
                has_recording: bool) -> str:
    """"live" or "replay", by the rules in this module's docstring."""
    if options.live:
        return "live"
    if replay_forced(options, replay_config=replay_config, environ=environ):
        return "replay"
    if not provider_configured and has_recording:
        return "replay"
    return "live"
