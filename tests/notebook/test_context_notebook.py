"""The budget as a notebook user meets it: ``CodeTether.context_tokens``, the live view's status
line for the budget's events, and the counts in ``%codetether usage``."""

from __future__ import annotations


import pytest
from traitlets import TraitError

from codetether_magics.agent.context import BUDGET_SHARE
from codetether_magics.events import (CompactionCompletedEvent, CompactionStartedEvent, ContextTruncatedEvent,
                                            SessionEventAdapter)
from codetether_magics.notebook.view import ViewState
from codetether_magics.testing import Turn
from tests.support.budget_server import BudgetServer, wire_tokens

KEY = "sk-test-notebook-budget-91c3"
LONG = "Fit a model to the sales data and explain the residual plot in detail, step by step. " * 12




def test_a_small_window_set_in_the_notebook_keeps_every_request_in_budget(shell, monkeypatch, capsys):
    window = 4000
    turns = [Turn.text(f"Answer {i}. " + LONG) for i in range(8)]
    turns.insert(1, Turn.text("Sales residuals"))  # the first turn's title call
    with BudgetServer(turns, api_key=KEY) as server:
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        shell.run_line_magic("config", f"CodeTether.context_tokens = {window}")
        for i in range(8):
            shell.run_cell_magic("codetether", "--no-stream", f"question {i}: {LONG}")
        capsys.readouterr()
        shell.run_line_magic("codetether", "usage")
        usage = capsys.readouterr().out
    assert server.errors == []
    assert max(wire_tokens("openai", r.body) for r in server.model_requests) <= int(window * BUDGET_SHARE)
    assert len(server.summaries) >= 1, _debug_sizes(server)
    assert f"context: {len(server.summaries)} compaction" in usage and "0 truncated requests" in usage


def test_a_bad_context_tokens_setting_is_refused(shell):
    magics = shell.magics_manager.registry["CodeTether"]
    with pytest.raises(TraitError, match="context_tokens must be 1 or more"):
        magics.context_tokens = 0
    magics.context_tokens = None  # back to the model's own window


def test_the_budget_events_show_in_the_status_line_and_round_trip_as_json():
    state = ViewState()
    state.apply(CompactionStartedEvent())
    assert "Summarising earlier turns" in state.status
    state.apply(CompactionCompletedEvent(before_tokens=120_000, after_tokens=30_000))
    assert "120,000 → 30,000" in state.status
    state.apply(ContextTruncatedEvent(dropped=7))
    assert "7 earlier messages left out" in state.status
    for event in (CompactionStartedEvent(), CompactionCompletedEvent(before_tokens=2, after_tokens=1),
                  ContextTruncatedEvent(dropped=1)):
        assert SessionEventAdapter.validate_json(event.model_dump_json()) == event


def _debug_sizes(server):
    return [wire_tokens("openai", r.body) for r in server.model_requests]
