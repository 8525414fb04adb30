"""Read-only tool calls of one step run concurrently; results and events keep the call order;
a failing call does not stop the others; calls that need approval run one at a time, in order.
Real providers against the scripted loopback server, both protocols."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from codetether_magics.agent.loop import run_prompt
from codetether_magics.agent.tools.base import Tool, ToolResult
from codetether_magics.errors import ToolError
from codetether_magics.session.session import Session
from codetether_magics.testing import ToolCallStep, Turn
from tests.support.budget_server import BudgetServer
from tests.agent.test_context_loopback import registry_for

SCHEMA = {"type": "object", "properties": {"seconds": {"type": "number"}, "name": {"type": "string"}}}


@pytest.fixture(params=["openai", "anthropic"])
def protocol(request) -> str:
    return request.param


class Clock:
    """Records when each call ran."""

    def __init__(self) -> None:
        self.spans: dict[str, tuple[float, float]] = {}
        self.order: list[str] = []

    def tool(self, name: str, *, read_only: bool = True, fail: bool = False) -> Tool:
        async def handler(args: dict[str, Any]) -> ToolResult:
            label = args["name"]
            self.order.append(label)
            started = time.perf_counter()
            await asyncio.sleep(args["seconds"])
            self.spans[label] = (started, time.perf_counter())
            if fail:
                raise ToolError(f"{label} broke")
            return ToolResult(output=f"result of {label}")

        return Tool(name, f"{name} for tests", SCHEMA, handler, read_only=read_only)


def two_calls(tool: str, first: float, second: float, third_tool: str | None = None) -> list[Turn]:
    steps = [ToolCallStep(tool, {"seconds": first, "name": "A"}), ToolCallStep(tool, {"seconds": second, "name": "B"})]
    if third_tool:
        steps.append(ToolCallStep(third_tool, {"seconds": 0.05, "name": "C"}))
    return [Turn(steps), Turn.text("done", expect_tool_result="result of B")]


async def run(tmp_path, server, protocol, tools, approver=None) -> tuple[Session, list[Any], float]:
    session = await Session.new(tmp_path)
    session.title = "concurrency"
    events: list[Any] = []
    started = time.perf_counter()
    await run_prompt(session, "go", [], events.append, registry_for(server, protocol), tools=tools,
                     approver=approver, system="test", retry_delays=(0.0,))
    return session, events, time.perf_counter() - started


def results_in_transcript(session: Session) -> list[str]:
    return [m.content[0].content for m in session.messages if m.role == "tool"]


async def test_two_slow_read_only_calls_overlap_and_keep_their_order(tmp_path, protocol):
    clock = Clock()
    with BudgetServer(two_calls("slow", 0.6, 0.2)) as server:
        session, events, elapsed = await run(tmp_path, server, protocol, [clock.tool("slow")])
    assert server.errors == []
    (a0, a1), (b0, b1) = clock.spans["A"], clock.spans["B"]
    assert b0 < a1 and a0 < b1  # they ran at the same time
    assert b1 < a1  # B finished first ...
    assert results_in_transcript(session) == ["result of A", "result of B"]  # ... but A's result comes first
    completes = [e.name for e in events if e.type == "tool_call_complete"]
    ids = [e.tool_call_id for e in events if e.type == "tool_call_complete"]
    starts = [e.tool_call_id for e in events if e.type == "tool_call_start"]
    assert completes == ["slow", "slow"] and ids == starts
    assert [u.output for u in session.tool_uses] == ["result of A", "result of B"]
    assert elapsed < 0.6 + 0.2  # not one after the other


async def test_a_failing_read_only_call_does_not_stop_the_other(tmp_path, protocol):
    clock = Clock()
    failing = clock.tool("flaky", fail=True)
    steps = [ToolCallStep("flaky", {"seconds": 0.05, "name": "A"}), ToolCallStep("slow", {"seconds": 0.2, "name": "B"})]
    with BudgetServer([Turn(steps), Turn.text("done", expect_tool_result="result of B")]) as server:
        session, events, _ = await run(tmp_path, server, protocol, [failing, clock.tool("slow")])
    assert server.errors == []
    assert results_in_transcript(session) == ["Error: A broke", "result of B"]
    assert [e.success for e in events if e.type == "tool_call_complete"] == [False, True]


async def test_calls_that_need_approval_run_alone_in_order(tmp_path, protocol):
    clock = Clock()
    asked: list[str] = []

    async def approver(request) -> bool:
        asked.append(request.arguments["name"])
        return True

    tools = [clock.tool("change", read_only=False), clock.tool("look")]
    with BudgetServer(two_calls("change", 0.2, 0.05, third_tool="look")) as server:
        session, events, _ = await run(tmp_path, server, protocol, tools, approver)
    assert server.errors == []
    assert asked == ["A", "B"] and clock.order == ["A", "B", "C"]
    (a0, a1), (b0, b1), (c0, _) = clock.spans["A"], clock.spans["B"], clock.spans["C"]
    assert a1 <= b0 and b1 <= c0  # no overlap: each waited for the one before it
    assert results_in_transcript(session) == ["result of A", "result of B", "result of C"]


async def test_an_interrupt_during_concurrent_calls_records_every_call(tmp_path, protocol):
    clock = Clock()
    with BudgetServer(two_calls("slow", 5.0, 5.0)) as server:
        session = await Session.new(tmp_path)
        session.title = "interrupt"
        task = asyncio.ensure_future(run_prompt(session, "go", [], None, registry_for(server, protocol),
                                                tools=[clock.tool("slow")], system="test", retry_delays=(0.0,)))
        while len(clock.order) < 2:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    results = results_in_transcript(session)
    assert len(results) == 2 and all("interrupted" in r for r in results)  # no tool call left without a result
