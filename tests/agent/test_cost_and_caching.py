"""Cost (the price table, cost_usd on usage_report, --budget / CODETETHER_COST_LIMIT_USD), Anthropic
prompt caching and extended thinking (--think), against the loopback scripted server."""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.core.error import UsageError

from codetether_magics.events import ErrorEvent, UsageReportEvent
from codetether_magics.agent.loop import run_prompt
from codetether_magics.agent.tools.base import Tool
from codetether_magics.errors import CostLimitError, ProviderError
from codetether_magics.notebook.magics import parse_cell_options
from codetether_magics.providers.base import ModelRequest, ToolSpec
from codetether_magics.providers.pricing import (PRICES_AS_OF, cost_limit_from_environ, cost_of, describe_cost,
                                                 estimate_request_tokens)
from codetether_magics.providers.registry import ProviderRegistry
from codetether_magics.session.session import Session
from codetether_magics.messages import Message, Usage
from codetether_magics.testing import ScriptedModelServer, Turn
from tests.support.provider_config import registry_from_config

EPHEMERAL = {"type": "ephemeral"}


def registry(tmp_path: Path, server: ScriptedModelServer) -> ProviderRegistry:
    return ProviderRegistry.from_env({"OPENAI_BASE_URL": server.openai_base_url,
                                      "ANTHROPIC_BASE_URL": server.anthropic_base_url},
                                     config_path=tmp_path / "none.toml")


async def echo(arguments: dict) -> str:
    return "echoed"


ECHO = Tool("echo", "Echo", {"type": "object", "properties": {}}, echo, read_only=True)


# -- the price table ---------------------------------------------------------------


def test_costs_follow_the_dated_price_table():
    assert PRICES_AS_OF[:4].isdigit()
    assert cost_of("openai", "gpt-4o", Usage(prompt_tokens=1_000_000, completion_tokens=100_000)) == 3.5
    # Anthropic: prompt tokens include the cache; reads at a tenth, writes at 1.25x the input price.
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=0, cache_read_tokens=600_000, cache_write_tokens=200_000)
    assert cost_of("anthropic", "claude-sonnet-4-20250514", usage) == pytest.approx(0.6 + 0.18 + 0.75)
    assert cost_of("openrouter", "openai/gpt-4o", Usage(prompt_tokens=1_000_000)) == 2.5
    assert cost_of("ollama", "llama3.2", Usage(prompt_tokens=10**6)) == 0
    assert cost_of("vllm", "my-finetune", Usage(prompt_tokens=10)) is None  # unknown: never guessed


@pytest.mark.parametrize("raw", ["abc", "-1", "inf"])
def test_a_bad_cost_limit_is_a_clear_error(raw):
    with pytest.raises(ProviderError, match="CODETETHER_COST_LIMIT_USD must be an amount"):
        cost_limit_from_environ({"CODETETHER_COST_LIMIT_USD": raw})
    assert cost_limit_from_environ({"CODETETHER_COST_LIMIT_USD": "$0.25"}) == 0.25


def test_request_size_estimate_counts_text_tools_and_images():
    small = ModelRequest(model="m", messages=[Message.user("x" * 400)])
    tools = [ToolSpec("t", "d" * 400, {"type": "object"})]
    assert 100 <= estimate_request_tokens(small) < 120
    assert estimate_request_tokens(ModelRequest(model="m", messages=small.messages, tools=tools)) > 200


async def test_usage_report_carries_cost_usd(tmp_path):
    with ScriptedModelServer([Turn.text("Priced.", usage=(1000, 200)), Turn.text("Free?")]) as server:
        events: list = []
        for model in ("openai/gpt-4o", "openai/unpriced-model"):
            await run_prompt(await Session.new(tmp_path), "hi", [], events.append, registry(tmp_path, server),
                             model=model, tools=[], title_model_call=False)
    priced, unpriced = [e for e in events if isinstance(e, UsageReportEvent)]
    assert priced.cost_usd == pytest.approx(1000 * 2.5e-6 + 200 * 10e-6)
    assert unpriced.cost_usd is None


def test_a_session_cost_in_one_line():
    usage = Usage(prompt_tokens=2000, completion_tokens=500, cache_read_tokens=1000)
    line = describe_cost(usage, "anthropic/claude-sonnet-4-20250514")
    assert line == f"cost: $0.0108 at anthropic/claude-sonnet-4-20250514 list prices of {PRICES_AS_OF}" \
        " (cache: 1000 read, 0 written)"
    assert describe_cost(usage, "vllm/x").startswith("cost: unknown") and "unchosen" in describe_cost(usage, None)


# -- the cost limit ----------------------------------------------------------------


async def test_a_budget_too_small_for_the_first_call_sends_nothing(tmp_path):
    with ScriptedModelServer() as server:
        session, events = await Session.new(tmp_path), []
        with pytest.raises(CostLimitError) as caught:
            await run_prompt(session, "x" * 4000, [], events.append, registry(tmp_path, server),
                             model="openai/gpt-4o", tools=[], title_model_call=False, budget_usd=0.0001)
        assert server.model_requests == []
    message = str(caught.value)
    assert "--budget 0.0001" in message and "$0.0001" in message and "Raise the limit" in message
    assert any(isinstance(e, ErrorEvent) and "--budget" in e.message for e in events)


async def test_the_limit_stops_the_loop_before_the_call_that_would_pass_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CODETETHER_COST_LIMIT_USD", "0.01")
    with ScriptedModelServer([Turn.tool_call("echo", {}, usage=(1000, 2000)), Turn.text("never sent")]) as server:
        session, events = await Session.new(tmp_path), []
        with pytest.raises(CostLimitError, match=r"CODETETHER_COST_LIMIT_USD=0\.01") as caught:
            await run_prompt(session, "go", [], events.append, registry(tmp_path, server), model="openai/gpt-4o",
                             tools=[ECHO], title_model_call=False)
        assert len(server.model_requests) == 1  # the first call (0.0225 $) ran; the second was never sent
    assert "$0.0225 spent" in str(caught.value)
    assert session.messages[-1].role == "tool"  # the tool ran and its result is kept


async def test_the_smaller_of_budget_and_environment_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("CODETETHER_COST_LIMIT_USD", "5")
    with ScriptedModelServer() as server:
        with pytest.raises(CostLimitError, match=r"--budget 0\.0"):
            await run_prompt(await Session.new(tmp_path), "hi", [], None, registry(tmp_path, server),
                             model="openai/gpt-4o", tools=[], title_model_call=False, budget_usd=0.0)


async def test_a_limit_with_an_unpriced_model_stops_with_advice(tmp_path):
    with ScriptedModelServer() as server:
        with pytest.raises(CostLimitError, match="price is not in the price table"):
            await run_prompt(await Session.new(tmp_path), "hi", [], None, registry(tmp_path, server),
                             model="openai/local-finetune", tools=[], title_model_call=False, budget_usd=1.0)
        assert server.model_requests == []


# -- Anthropic caching and thinking -------------------------------------------------------


async def test_anthropic_requests_carry_cache_breakpoints_and_the_thinking_budget(tmp_path):
    with ScriptedModelServer([Turn.tool_call("echo", {}), Turn.text("Done.")]) as server:
        await run_prompt(await Session.new(tmp_path), "go", [], None, registry(tmp_path, server),
                         model="anthropic/claude-sonnet-4-20250514", tools=[ECHO], title_model_call=False,
                         thinking_budget=2048)
        first, second = (r.body for r in server.model_requests)
        assert server.errors == []
    for body in (first, second):
        assert body["system"][-1]["cache_control"] == EPHEMERAL
        assert body["tools"][-1]["cache_control"] == EPHEMERAL
        assert body["messages"][-1]["content"][-1]["cache_control"] == EPHEMERAL
        assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
        assert body["max_tokens"] > 2048 and "temperature" not in body
    assert second["messages"][-1]["content"][-1]["type"] == "tool_result"  # the newest turn moves the breakpoint
    assert "cache_control" not in second["messages"][0]["content"][-1]  # only three breakpoints, ever
    assert sum(str(body).count("cache_control") for body in (second,)) == 3


async def test_prompt_caching_can_be_turned_off_for_a_proxy(tmp_path):
    with ScriptedModelServer([Turn.text("ok")]) as server:
        reg = registry_from_config(tmp_path, f'[providers.proxy]\nprotocol = "anthropic"\n'
                                   f'base_url = "{server.anthropic_base_url}"\nprompt_caching = false\n'
                                   'default_model = "c"\n')
        await run_prompt(await Session.new(tmp_path), "hi", [], None, reg, model="proxy/c", tools=[],
                         title_model_call=False)
        assert "cache_control" not in str(server.model_requests[0].body)


async def test_anthropic_cache_usage_counts_in_the_totals(tmp_path):
    turn = Turn([{"type": "text", "text": "cached"},
                 {"type": "usage", "prompt_tokens": 1200, "completion_tokens": 10, "cache_read_tokens": 1000,
                  "cache_write_tokens": 150}])
    with ScriptedModelServer([turn]) as server:
        session = await Session.new(tmp_path)
        await run_prompt(session, "hi", [], None, registry(tmp_path, server), model="anthropic/claude-x", tools=[],
                         title_model_call=False)
    usage = session.usage
    assert (usage.prompt_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (1200, 1000, 150)
    assert usage.total_tokens == 1210


# -- the cell options ---------------------------------------------------------------


def test_think_and_budget_options_parse_and_are_checked():
    options = parse_cell_options("--think 4096 --budget 0.25")
    assert (options.think, options.budget) == (4096, 0.25)
    assert parse_cell_options("").think is None and parse_cell_options("").budget is None  # off by default
    with pytest.raises(UsageError, match="at least 1024"):
        parse_cell_options("--think 100")
    with pytest.raises(UsageError, match="--budget must be"):
        parse_cell_options("--budget -1")




def test_a_cell_with_think_and_budget(shell, tmp_path, monkeypatch, capsys):
    with ScriptedModelServer([Turn.text("Thought it over.", usage=(2000, 500)), Turn.text("A title")]) as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-cell-000000")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_base_url)
        assert shell.run_cell("%%codetether -m anthropic/claude-sonnet-4-20250514 --think 2048 --budget 1\n"
                              "Think first.").success
        assert server.model_requests[0].body["thinking"]["budget_tokens"] == 2048
        assert "Thought it over." in capsys.readouterr().out
        result = shell.run_cell("%%codetether --budget 0.000001\nAgain.")
        captured = capsys.readouterr()
        assert not result.success and "--budget 1e-06" in captured.out + captured.err
        assert len(server.model_requests) == 2  # the step and the title; the over-budget cell sent nothing


def test_the_environment_limit_stops_a_cell_before_it_calls_the_model(shell, server, monkeypatch, capsys):
    monkeypatch.setenv("CODETETHER_COST_LIMIT_USD", "0.000001")
    result = shell.run_cell("%%codetether\nSummarise the data frame.")
    captured = capsys.readouterr()
    assert not result.success
    assert "CODETETHER_COST_LIMIT_USD=1e-06" in captured.out + captured.err
    assert server.model_requests == []  # stopped before the call, not after it
