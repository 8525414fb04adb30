"""MCP tools through the agent loop: a real stdio MCP server, the scripted model server in both protocols.

The model is offered ``mcp__echo__add`` with the server's own schema, calls it, and the
server's answer reaches the next request; without ``--allow`` the call is refused and the
model is told how to allow it (by tool, by server, or every MCP tool).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from codetether_magics.agent.loop import run_prompt
from codetether_magics.agent.mcp import McpManager, load_config
from codetether_magics.notebook.approval import ApprovalPolicy, decide, make_approver, parse_allow
from codetether_magics.providers.anthropic import AnthropicProvider
from codetether_magics.providers.openai import OpenAIProvider
from codetether_magics.session.session import Session
from codetether_magics.testing import FakeRegistry, ScriptedModelServer, Turn
from tests.support.mcp import stdio_entry, write_config

SECRET = "mcp-loop-secret-5d1e77ab"
API_KEY = "sk-test-mcp-loop-0a1b2c3d4e"


def registry_for(server: ScriptedModelServer, protocol: str) -> FakeRegistry:
    """One real provider of ``protocol`` talking to the loopback server."""
    if protocol == "openai":
        return FakeRegistry(OpenAIProvider("openai", API_KEY, server.openai_base_url), "openai/gpt-4o")
    return FakeRegistry(AnthropicProvider("anthropic", API_KEY, server.anthropic_base_url),
                        "anthropic/claude-sonnet-4-20250514")


@pytest.fixture(params=["openai", "anthropic"])
def protocol(request) -> str:
    return request.param


@pytest.fixture
async def echo(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ECHO_TOKEN", SECRET)
    manager = McpManager(load_config(write_config(tmp_path / "mcp.json",
                                                  {"echo": stdio_entry(TOKEN="${ECHO_TOKEN}")})))
    await manager.start()
    yield manager
    manager.close()


async def run(tmp_path: Path, server, protocol: str, echo: McpManager, allow: list[str]) -> tuple[Session, list]:
    session = await Session.new(tmp_path)
    session.title = "mcp test"
    tools = echo.tools()
    policy = ApprovalPolicy(allowed=parse_allow(allow, [t.name for t in tools], ["echo"]))
    events: list[Any] = []
    await run_prompt(session, "Add 2 and 40", [], events.append, registry_for(server, protocol), tools=tools,
                     approver=make_approver(policy, None), retry_delays=(0.0, 0.0, 0.0))
    return session, events


def offered(request) -> dict[str, Any]:
    """The tools of a recorded model request, by name, with their schema (either protocol)."""
    tools = {}
    for tool in request.body.get("tools", []):
        spec = tool.get("function", tool)
        tools[spec["name"]] = spec.get("parameters", spec.get("input_schema"))
    return tools


@pytest.mark.parametrize("allow", ["mcp", "mcp__echo", "mcp__echo__add", "all"])
async def test_the_model_calls_an_allowed_mcp_tool(tmp_path, protocol, echo, allow):
    turns = [Turn.tool_call("mcp__echo__add", {"a": 2, "b": 40}, expect_tools=("mcp__echo__add", "mcp__echo__image")),
             Turn.text("2 + 40 = 42", expect_tool_result="42")]
    with ScriptedModelServer(turns) as server:
        session, events = await run(tmp_path, server, protocol, echo, [allow])
    assert server.errors == []  # the second request carried the server's answer
    schema = offered(server.model_requests[0])["mcp__echo__add"]
    assert schema["properties"]["a"]["type"] == "integer" and schema["required"] == ["a", "b"]
    done = next(e for e in events if e.type == "tool_call_complete")
    assert (done.name, done.output, done.success) == ("mcp__echo__add", "42", True)
    assert session.tool_uses[0].name == "mcp__echo__add" and session.tool_uses[0].input == {"a": 2, "b": 40}


async def test_without_allow_the_call_is_refused_and_the_model_told_how(tmp_path, protocol, echo):
    turns = [Turn.tool_call("mcp__echo__add", {"a": 2, "b": 40}),
             Turn.text("I was not allowed.", expect_tool_result="--allow mcp__echo__add")]
    with ScriptedModelServer(turns) as server:
        session, events = await run(tmp_path, server, protocol, echo, [])
    assert server.errors == []
    result = session.tool_uses[0]
    assert result.success is False
    assert "--allow mcp__echo for every tool of that MCP server, --allow mcp for all MCP tools" in result.output
    assert any(e.type == "approval_request" and e.name == "mcp__echo__add" for e in events)


async def test_a_secret_the_server_returns_never_reaches_the_model_or_transcript(tmp_path, protocol, echo):
    turns = [Turn.tool_call("mcp__echo__env", {"name": "TOKEN"}),
             Turn.text("It is hidden.", expect_tool_result="[redacted]")]
    with ScriptedModelServer(turns) as server:
        session, events = await run(tmp_path, server, protocol, echo, ["mcp"])
    assert server.errors == []
    await session.save()
    seen = json.dumps([r.body for r in server.requests]) + Path(session.path).read_text()
    seen += json.dumps([e.model_dump() for e in events])
    assert SECRET not in seen


async def test_an_image_result_reaches_the_model_as_an_image(tmp_path, protocol, echo):
    turns = [Turn.tool_call("mcp__echo__image", {}),
             Turn.text("A single pixel.", expect_image=True, expect_tool_result="[image 1: image/png")]
    with ScriptedModelServer(turns) as server:
        session, _ = await run(tmp_path, server, protocol, echo, ["mcp__echo__image"])
        second = json.dumps(server.model_requests[1].body)
    assert server.errors == []  # the second request carried an image in the protocol's own format
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    assert png in second  # the server's own pixels
    [tool_message] = [m for m in session.messages if m.role == "tool"]
    assert [part.type for part in tool_message.content] == ["tool_result", "image"]


def test_allow_groups_match_only_their_own_tools():
    available = ["python", "mcp__echo__add", "mcp__echo__image", "mcp__db__query"]
    policy = ApprovalPolicy(allowed=parse_allow(["mcp__echo"], available, ["echo", "db"]))
    assert [decide(name, policy) for name in available] == ["refuse", "allow", "allow", "refuse"]
    everything = ApprovalPolicy(allowed=parse_allow(["mcp"], available, ["echo", "db"]))
    assert [decide(name, everything) for name in available] == ["refuse", "allow", "allow", "allow"]
    failed_server = parse_allow(["mcp__db"], ["python"], ["db"])  # configured, not running: still a valid name
    assert failed_server == {"mcp__db"}
    assert parse_allow(["mcp__db__query"], ["python"], ["db"]) == {"mcp__db__query"}  # its server is down


def test_allow_of_an_unknown_mcp_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown tool 'mcp__nope'.*the MCP groups mcp, mcp__echo"):
        parse_allow(["mcp__nope"], ["python"], ["echo"])
    with pytest.raises(ValueError, match="unknown tool 'mcp__nope__add'"):
        parse_allow(["mcp__nope__add"], ["python"], ["echo"])
    with pytest.raises(ValueError, match="MCP names need an mcpServers config"):
        parse_allow(["mcp"], ["python"], [])
