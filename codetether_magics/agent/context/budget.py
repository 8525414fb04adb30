"""The request budget of one turn: derive each request within 90% of the model's window.

``metadata.rlm`` drives it:

- ``mode`` ``auto`` (default): everything is sent while it fits; past the budget, earlier
  turns are compacted into a summary (one model call, no tools) that replaces them in the
  request. ``off``: the whole transcript is sent as it is (no placeholders, no compaction, no
  shorter retries). ``always``: at the start of every turn the turns before it are compacted,
  whatever their size (one summary call per turn, built on the previous summary).
- ``threshold`` (0 < t <= 1, default 0.35): after a compaction, the recent messages kept
  word for word take at most this share of what the budget leaves after the system prompt and
  tools; the rest is summarised. A low value compacts more per call and so less often.

The summary is stored in the session (``store``) and reused by later requests until the
transcript outgrows it again, so the next turn does not pay for another summary call.
A failing summary call does not lose the turn: the request is cut instead, with a note.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

from ...errors import ContextBudgetError, ContextLengthError
from ...events import CompactionCompletedEvent, CompactionStartedEvent, ContextTruncatedEvent, EventSink
from ...messages import Message
from ...providers.base import Provider, ToolSpec
from . import store
from .derive import (Costs, StoredSummary, assemble, attach_extra, cut_for_tail, cut_keeping, prefix_message,
                     with_placeholders)
from .summary import SUMMARY_SYSTEM, render_for_summary, summarise
from .tokens import MESSAGE_OVERHEAD, estimate_message, estimate_text, estimate_tools
from .windows import table_window

__all__ = ["BUDGET_SHARE", "RETRY_KEEP", "RequestBudget"]

log = logging.getLogger(__name__)

BUDGET_SHARE = 0.9  # of the window a request may fill; the rest is left for the answer
RETRY_KEEP = (6, 3, 1)  # messages kept by the retries after a context-length error
SUMMARY_MAX_TOKENS = 1500
SUMMARY_MIN_TOKENS = 64


@dataclass
class Derived:
    messages: list[Message]
    start: int  # transcript messages before this index are summarised or left out
    dropped: int = 0  # ... of which this many have no summary either


class RequestBudget:
    def __init__(self, session: Any, provider: Provider, model_id: str, *, window: int, system: str,
                 tools: Sequence[ToolSpec], sink: EventSink, enabled: bool = True,
                 summariser: tuple[Provider, str] | None = None) -> None:
        rlm = session.metadata.rlm
        self.mode = _checked_mode(rlm.mode) if enabled else "off"
        self.threshold = _checked_threshold(rlm.threshold)
        self.session, self.provider, self.model_id, self.sink = session, provider, model_id, sink
        self.window = window
        self.budget = int(window * BUDGET_SHARE)
        self.fixed = estimate_text(system) + MESSAGE_OVERHEAD + estimate_tools(tools)
        self.costs = Costs()
        # Summaries go to metadata.rlm.subcall_model when one is resolved (a cheaper model for side work);
        # their input must then fit that model's window too.
        self.summariser = summariser or (provider, model_id)
        side_window = window if summariser is None else min(window, table_window(summariser[1]))
        self.summary_budget = int(side_window * BUDGET_SHARE)
        self.compacted_turn = False  # ``always`` compacts once, at the turn's first request

    @property
    def active(self) -> bool:
        return self.mode != "off"

    def room(self, extra: str | None) -> int:
        """Tokens left for messages once the system prompt, tools and ``extra`` are counted."""
        return self.budget - self.fixed - estimate_text(extra or "") - (MESSAGE_OVERHEAD if extra else 0)

    def check_fits(self, newest: Message, extra: str | None) -> None:
        """Before any call: the system prompt, tools, extra context and the new message must fit."""
        if not self.active:
            return
        message = estimate_message(newest)
        if message > self.room(extra):
            context = self.budget - self.fixed - self.room(extra)
            parts = f"system prompt and tools {self.fixed:,}" + (f", notebook context {context:,}" if extra else "")
            raise ContextBudgetError(
                f"The request needs about {self.fixed + context + message:,} tokens ({parts}, this message "
                f"{message:,}), more than the {self.budget:,} a request may use of the {self.window:,}-token "
                f"context window of {self.model_id}. Send a shorter message or fewer images, choose a model with "
                "a larger window, or set CodeTether.context_tokens / CODETETHER_CONTEXT_TOKENS if its window is "
                "larger than that.")

    # -- deriving ----------------------------------------------------------------------

    async def derive(self, messages: Sequence[Message], extra: str | None = None) -> Derived:
        """The request's messages for ``messages`` (the transcript), ``extra`` riding along."""
        if not self.active:
            return Derived(attach_extra(list(messages), extra), 0)
        view = with_placeholders(messages)
        costs = self.costs.each(view)
        room = self.room(extra)
        summary = store.load_summary(self.session, messages)
        if self.mode == "always" and not self.compacted_turn:
            self.compacted_turn = True
            summary = await self._compact_always(messages, view, costs, summary, room) or summary
        return await self._report(await self._within(messages, view, costs, summary, room), extra)

    async def shorter(self, messages: Sequence[Message], extra: str | None, keep: int,
                      previous: Derived) -> Derived | None:
        """After a context-length error: the last ``keep`` messages (more when a tool result would lose its
        call) behind the summary; None when that leaves out no more than ``previous`` did."""
        view = with_placeholders(messages)
        cut = cut_keeping(view, keep)
        if cut <= previous.start:
            return None
        return await self._report(self._assembled(view, cut, store.load_summary(self.session, messages)), extra)

    def final_error(self, error: ContextLengthError) -> ContextLengthError:
        """The error the caller sees when no shorter request is left to try."""
        if self.active:
            hint = ("even the newest message with the summary of the earlier ones was too long; send a shorter "
                    "message, or set CodeTether.context_tokens / CODETETHER_CONTEXT_TOKENS to the window the "
                    "server really has")
        else:
            hint = ("metadata.rlm.mode is 'off', so the whole transcript was sent; set it to 'auto' to let "
                    "earlier turns be summarised, or start a new conversation")
        return ContextLengthError(error.status_code, f"{error.message} ({hint})", provider=error.provider)

    async def _report(self, derived: Derived, extra: str | None) -> Derived:
        if derived.dropped:
            store.count(self.session, "truncations")
            await self.sink.emit(ContextTruncatedEvent(dropped=derived.dropped))
        derived.messages = attach_extra(derived.messages, extra)
        return derived

    async def _within(self, messages: Sequence[Message], view: list[Message], costs: list[int],
                      summary: StoredSummary | None, room: int) -> Derived:
        total = sum(costs)
        if total <= room and (summary is None or self.mode == "auto"):
            return Derived(list(view), 0)
        start = summary.messages if summary is not None else 0
        if summary is not None and _prefix_cost(summary, 0) + sum(costs[start:]) <= room:
            return Derived(assemble(view, start, summary), start)
        cut = cut_for_tail(view, costs, int(self.threshold * room), low=start + 1)
        if cut <= start:  # nothing new to summarise: the newest messages alone are past the budget
            return self._truncated(view, costs, summary, room)
        made = await self._summary(messages, view, costs, summary, start, cut, room)
        if made is None:
            return self._truncated(view, costs, summary, room, " (a summary could not be made)")
        if _prefix_cost(made, 0) + sum(costs[cut:]) <= room:
            return Derived(assemble(view, cut, made), cut)
        return self._truncated(view, costs, made, room)

    def _assembled(self, view: list[Message], cut: int, summary: StoredSummary | None, reason: str = "") -> Derived:
        covered = summary.messages if summary is not None else 0
        return Derived(assemble(view, cut, summary, reason), cut, max(0, cut - covered))

    def _truncated(self, view: list[Message], costs: list[int], summary: StoredSummary | None, room: int,
                   reason: str = "") -> Derived:
        """The newest messages that fit behind the summary (or a note), older ones left out."""
        prefix = _prefix_cost(summary, len(view), reason)
        low = summary.messages if summary is not None else 0
        cut = cut_for_tail(view, costs, room - prefix, low=low)
        if prefix + sum(costs[cut:]) <= room:
            return self._assembled(view, cut, summary, reason)
        if summary is not None:  # the summary itself is too much now: the note alone
            return self._truncated(view, costs, None, room, reason)
        tools = view[-1].role == "tool"
        raise ContextBudgetError(
            f"The newest {'tool results with their call' if tools else 'message'} alone (about "
            f"{sum(costs[cut:]):,} tokens) no longer fit{'' if tools else 's'} the {self.budget:,} tokens a request "
            f"may use of the {self.window:,}-token context window of {self.model_id}. Choose a model with a larger "
            "window or set CodeTether.context_tokens / CODETETHER_CONTEXT_TOKENS if its window is larger.")

    # -- compaction ----------------------------------------------------------------------

    async def _compact_always(self, messages: Sequence[Message], view: list[Message], costs: list[int],
                              summary: StoredSummary | None, room: int) -> StoredSummary | None:
        """``always``: summarise everything before the newest user turn that no summary covers yet."""
        newest_user = max((i for i, m in enumerate(view) if m.role == "user"), default=0)
        start = summary.messages if summary is not None else 0
        if newest_user <= start:
            return None
        return await self._summary(messages, view, costs, summary, start, newest_user, room)

    async def _summary(self, messages: Sequence[Message], view: list[Message], costs: list[int],
                       previous: StoredSummary | None, start: int, cut: int, room: int) -> StoredSummary | None:
        """Summarise ``view[start:cut]`` on top of ``previous`` and store it; None when that cannot be done."""
        tail = sum(costs[cut:])
        cap = min(SUMMARY_MAX_TOKENS, room - tail - _prefix_cost(None, 0))
        if cap < SUMMARY_MIN_TOKENS:
            return None  # no room for a useful summary beside the newest messages
        before = self.fixed + sum(costs)
        await self.sink.emit(CompactionStartedEvent())
        limit = self.summary_budget - cap - estimate_text(SUMMARY_SYSTEM) - 4 * MESSAGE_OVERHEAD
        text = render_for_summary(view[start:cut], previous.text if previous else None, limit)
        try:
            summary_text, usage = await summarise(*self.summariser, text, cap)
        except Exception as exc:  # noqa: BLE001 - any failure falls back to a cut request; cancellation passes
            # No compaction_completed: the context_truncated that follows says what was done instead.
            log.warning("context compaction failed, cutting the request instead: %s", exc)
            return None
        self.session.usage.add(usage)
        summary = StoredSummary(text=summary_text, messages=cut, anchor=store.anchor_of(messages[cut - 1]),
                                tokens=estimate_text(summary_text))
        store.store_summary(self.session, summary)
        after = self.fixed + _prefix_cost(summary, 0) + tail
        await self.sink.emit(CompactionCompletedEvent(before_tokens=before, after_tokens=after))
        return summary


def _prefix_cost(summary: StoredSummary | None, dropped: int, reason: str = "") -> int:
    """Tokens of the message standing for what is left out (an upper bound when ``dropped`` is one)."""
    prefix = prefix_message(summary, max(dropped, 1), reason)
    return estimate_message(prefix) if prefix is not None else 0


def _checked_mode(mode: Any) -> str:
    if mode not in ("auto", "off", "always"):
        raise ContextBudgetError(f"metadata.rlm.mode must be 'auto', 'off' or 'always', got {mode!r}.")
    return str(mode)


def _checked_threshold(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ContextBudgetError(
            "metadata.rlm.threshold must be a number above 0 and at most 1 (the share of the budget the newest "
            f"messages keep after a compaction; default 0.35), got {value!r}.")
    return float(value)
