"""The two time limits of one model call, enforced by a watchdog on the event loop.

- Idle: the server sent no data for ``CODETETHER_STREAM_IDLE_TIMEOUT`` seconds (default 300,
  as codetether-agent). Keep-alive comments (``: ping``, ``: OPENROUTER PROCESSING``) and
  blank lines are silence: a proxy that pings forever while its upstream is dead would
  otherwise hold the cell for good, since every byte resets the socket's read timeout.
- Total: one call (connect, headers, the whole stream) may take at most
  ``CODETETHER_MODEL_CALL_TIMEOUT`` seconds (default 1800: a long reasoning answer streams for
  minutes, not half an hour).

The watchdog is one timer handle per call, re-armed lazily: a data line only stores the
time (no timer work per chunk). When a limit passes while the call is waiting on the
network, it cancels the call's task; ``open_stream`` turns that cancellation into a
``ProviderTimeoutError`` (a user's own interrupt stays a ``CancelledError``).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Mapping

from ..errors import ProviderError, ProviderTimeoutError

__all__ = ["CALL_TIMEOUT_VARIABLE", "DEFAULT_CALL_TIMEOUT", "DEFAULT_IDLE_TIMEOUT", "IDLE_TIMEOUT_VARIABLE",
           "CallLimits", "Watchdog"]

IDLE_TIMEOUT_VARIABLE = "CODETETHER_STREAM_IDLE_TIMEOUT"
CALL_TIMEOUT_VARIABLE = "CODETETHER_MODEL_CALL_TIMEOUT"
DEFAULT_IDLE_TIMEOUT = 300.0
DEFAULT_CALL_TIMEOUT = 1800.0
_RECHECK = 0.05  # seconds: a limit that passes while the caller is busy is checked again this soon


@dataclass(frozen=True)
class CallLimits:
    idle: float = DEFAULT_IDLE_TIMEOUT
    total: float = DEFAULT_CALL_TIMEOUT

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> "CallLimits":
        environ = os.environ if environ is None else environ
        return cls(idle=_seconds(environ, IDLE_TIMEOUT_VARIABLE, DEFAULT_IDLE_TIMEOUT),
                   total=_seconds(environ, CALL_TIMEOUT_VARIABLE, DEFAULT_CALL_TIMEOUT))


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise ProviderError(f"{name} must be a number of seconds above 0 (default {default:g}), got {raw!r}")
    return value


class Watchdog:
    """Cancels the task that created it when the call goes silent or runs too long (see the module doc)."""

    def __init__(self, limits: CallLimits, provider: str, origin: str) -> None:
        self._limits = limits
        self._provider, self._origin = provider, origin
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._started = self._last = self._loop.time()
        self.waiting = True  # on the network (connecting, or waiting for the next line)
        self.expired: str | None = None  # "idle" or "total" once a limit passed
        self._handle = self._loop.call_at(self._next_check(), self._check)

    def touch(self) -> None:
        """Data arrived (a line that is not a comment)."""
        self._last = self._loop.time()

    def _next_check(self) -> float:
        return min(self._last + self._limits.idle, self._started + self._limits.total)

    def _check(self) -> None:
        now = self._loop.time()
        due = self._next_check()
        if now < due:
            self._handle = self._loop.call_at(due, self._check)
        elif not self.waiting or self._task is None:
            # The caller is busy with a chunk (its own work, not the server's silence): look again soon.
            self._handle = self._loop.call_at(now + _RECHECK, self._check)
        else:
            self.expired = "total" if now >= self._started + self._limits.total else "idle"
            self._task.cancel()

    def stop(self) -> None:
        self._handle.cancel()

    def claim_cancellation(self) -> bool:
        """True when the cancellation being handled is this watchdog's own (then it is undone on the
        task); False when it is someone else's (an interrupt), which must go on as a CancelledError."""
        if self.expired is None or self._task is None:
            return False
        uncancel = getattr(self._task, "uncancel", None)  # Python 3.11+
        if uncancel is None:
            return True
        return uncancel() == 0

    def error(self) -> ProviderTimeoutError:
        if self.expired == "total":
            return ProviderTimeoutError(
                f"{self._provider}: the model call to {self._origin} took longer than {self._limits.total:g} s "
                f"and was stopped. Ask for a shorter answer, or raise {CALL_TIMEOUT_VARIABLE}.")
        return ProviderTimeoutError(
            f"{self._provider}: no data from {self._origin} for {self._limits.idle:g} s (keep-alive comments do "
            f"not count), so the call was stopped. Try again, pick another model with -m, or raise "
            f"{IDLE_TIMEOUT_VARIABLE}.")
