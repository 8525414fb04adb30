"""McpManager against real MCP servers written with the SDK: stdio subprocesses and streamable HTTP on loopback.

Starting, listing, calling, images, failures at start (no program, a crash, a hang past the
bound), a server that dies mid-session, an interrupted call, and secrets kept out of every
output, reason and log line.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from pathlib import Path

import pytest

from codetether_magics.agent.mcp import McpManager, load_config
from codetether_magics.errors import ToolError
from tests.support.mcp import http_echo_server, pid_alive, stdio_entry, wait_for, write_config

SECRET = "echo-secret-7f3a9c2e51"


@pytest.fixture
async def manager(tmp_path: Path):
    managers: list[McpManager] = []

    def make(servers: dict, **options) -> McpManager:
        made = McpManager(load_config(write_config(tmp_path / "mcp.json", servers)), **options)
        managers.append(made)
        return made

    yield make
    for made in managers:
        made.close()


def tools_of(manager: McpManager) -> dict:
    return {tool.name: tool for tool in manager.tools()}


async def test_stdio_server_lists_its_tools_with_their_schemas(manager):
    echo = manager({"echo": stdio_entry()})
    assert [row.state for row in echo.status()] == ["not started"]
    await echo.start()
    [row] = echo.status()
    assert (row.state, row.reason) == ("running", None)
    tools = tools_of(echo)
    assert {"mcp__echo__add", "mcp__echo__image", "mcp__echo__crash"} <= set(tools)
    add = tools["mcp__echo__add"]
    assert add.read_only is False  # an MCP tool always needs approval
    assert add.parameters["properties"].keys() == {"a", "b"} and add.parameters["required"] == ["a", "b"]
    assert add.description == "Add two integers. (MCP server 'echo', tool 'add')"
    await echo.start()  # starting again reuses the running server
    assert tools_of(echo)["mcp__echo__add"] is add


async def test_calls_return_text_errors_and_images(manager):
    echo = manager({"echo": stdio_entry()})
    await echo.start()
    tools = tools_of(echo)
    result = await tools["mcp__echo__add"].handler({"a": 2, "b": 40})
    assert (result.output, result.success, result.images) == ("42", True, [])
    bad = await tools["mcp__echo__add"].handler({"a": "two"})
    assert bad.success is False and "validation error" in bad.output.lower()
    picture = await tools["mcp__echo__image"].handler({})
    [image] = picture.images
    assert image.mime_type == "image/png" and image.data_url.startswith("data:image/png;base64,iVBORw0KGgo")
    assert picture.output == "[image 1: image/png, 70 bytes, attached for the model]"


async def test_env_secret_never_reaches_output_reason_or_logs(manager, caplog, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ECHO_TOKEN", SECRET)
    caplog.set_level(logging.DEBUG)
    leaky = [sys.executable, "-c", "import os,sys; sys.stderr.write('token=' + os.environ['TOKEN'] + '\\n'); "
                                   "sys.exit(1)"]
    both = manager({"echo": stdio_entry(TOKEN="${ECHO_TOKEN}"),
                    "leaky": {"command": leaky[0], "args": leaky[1:], "env": {"TOKEN": "${ECHO_TOKEN}"}}})
    await both.start()
    result = await tools_of(both)["mcp__echo__env"].handler({"name": "TOKEN"})
    assert result.output == "[redacted]"  # the server does see it; the model never does
    status = {row.key: row for row in both.status()}
    assert status["leaky"].state == "failed" and "token=[redacted]" in status["leaky"].reason
    notices = both.take_notices()
    everything = "\n".join([result.output, *notices, *(str(row) for row in status.values()), caplog.text])
    assert SECRET not in everything


async def test_a_stdio_server_gets_its_env_not_the_kernels_keys(manager, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-kernel-only-0123456789")
    echo = manager({"echo": stdio_entry(GIVEN="yes")})
    await echo.start()
    env = tools_of(echo)["mcp__echo__env"]
    assert (await env.handler({"name": "GIVEN"})).output == "yes"
    assert (await env.handler({"name": "OPENAI_API_KEY"})).output == "(unset)"  # only PATH, HOME, ... and its env


async def test_servers_that_fail_to_start_fail_alone(manager, tmp_path: Path):
    pid_file = tmp_path / "hang.pid"
    hang = f"import os,time; open({str(pid_file)!r},'w').write(str(os.getpid())); time.sleep(60)"
    servers = manager({
        "echo": stdio_entry(),
        "missing": {"command": "no-such-program-4711"},
        "crashing": {"command": sys.executable, "args": ["-c", "raise SystemExit('bad settings: no database')"]},
        "hanging": {"command": sys.executable, "args": ["-c", hang]},
    }, start_timeout=1.5)
    started = time.monotonic()
    await servers.start()
    assert time.monotonic() - started < 6  # bounded by the start timeout, plus the hung server's stop
    status = {row.key: (row.state, row.reason) for row in servers.status()}
    assert status["echo"] == ("running", None)
    assert status["missing"] == ("failed", "exited before it answered (cannot run 'no-such-program-4711': "
                                           "No such file or directory)")
    assert status["crashing"] == ("failed", "exited before it answered (bad settings: no database)")
    assert status["hanging"] == ("failed", "did not start within 1.5 s")
    wait_for(lambda: not pid_alive(int(pid_file.read_text())), 10, "the hung server to be stopped")
    notices = servers.take_notices()
    assert len(notices) == 3 and all("the agent goes on without its tools" in line for line in notices)
    assert any(line.startswith("MCP server 'hanging' did not start within 1.5 s") for line in notices)
    assert servers.take_notices() == []  # each failure is reported once
    assert {name.split("__")[1] for name in tools_of(servers)} == {"echo"}


async def test_a_server_that_dies_mid_session_is_reported_and_can_restart(manager, tmp_path: Path):
    pid_file = tmp_path / "echo.pid"
    echo = manager({"echo": stdio_entry(ECHO_PID_FILE=str(pid_file))})
    await echo.start()
    first_pid = int(pid_file.read_text())
    crash = tools_of(echo)["mcp__echo__crash"]
    with pytest.raises(ToolError, match=r"MCP server 'echo' stopped unexpectedly \(echo server: crashing on "
                                        r"purpose\) during the call"):
        await crash.handler({})
    assert [line.split(";")[0] for line in echo.take_notices()] == [
        "MCP server 'echo' stopped unexpectedly (echo server: crashing on purpose)"]
    assert echo.tools() == []  # the next step goes on without its tools
    with pytest.raises(ToolError, match="MCP server 'echo' is not running"):
        await crash.handler({})  # a call the model made from an older tool list
    await echo.restart("echo")
    assert int(pid_file.read_text()) != first_pid
    assert (await tools_of(echo)["mcp__echo__add"].handler({"a": 1, "b": 1})).output == "2"


async def test_an_interrupted_call_leaves_the_server_working(manager):
    echo = manager({"echo": stdio_entry()})
    await echo.start()
    tools = tools_of(echo)
    call = asyncio.ensure_future(tools["mcp__echo__slow"].handler({"seconds": 30}))
    await asyncio.sleep(0.5)
    started = time.monotonic()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert time.monotonic() - started < 1.0
    assert [row.state for row in echo.status()] == ["running"]
    assert (await tools["mcp__echo__add"].handler({"a": 20, "b": 22})).output == "42"


async def test_a_slow_call_past_the_call_timeout_is_an_error_for_the_model(manager):
    echo = manager({"echo": stdio_entry()}, call_timeout=0.5)
    await echo.start()
    with pytest.raises(ToolError, match="MCP server 'echo': .*"):
        await tools_of(echo)["mcp__echo__slow"].handler({"seconds": 5})
    assert (await tools_of(echo)["mcp__echo__add"].handler({"a": 1, "b": 2})).output == "3"


async def test_a_chatty_servers_stderr_stays_small(manager):
    from codetether_magics.agent.mcp.connection import STDERR_LIMIT

    echo = manager({"echo": stdio_entry()})
    await echo.start()
    assert (await tools_of(echo)["mcp__echo__noise"].handler({"kilobytes": 1500})).output == "noisy"
    connection = echo._connections["echo"]
    assert connection._stderr_size() <= STDERR_LIMIT
    assert connection.stderr_tail() == "noise done"  # the tail that explains a failure is kept


async def test_deferred_tools_start_their_server_on_the_first_call(manager):
    echo = manager({"echo": stdio_entry()})
    deferred = echo.deferred_tools(["mcp__echo__add", "mcp__echo__add", "mcp__other__x", "python", "mcp__echo"])
    assert [tool.name for tool in deferred] == ["mcp__echo__add"] and deferred[0].read_only is False
    assert [row.state for row in echo.status()] == ["not started"]  # offering them started nothing
    assert (await deferred[0].handler({"a": 1, "b": 2})).output == "3"
    assert [row.state for row in echo.status()] == ["running"]
    [gone] = echo.deferred_tools(["mcp__echo__gone"])
    with pytest.raises(ToolError, match="MCP tool mcp__echo__gone is not available now .server 'echo' running, "
                                        "without a tool of that name"):
        await gone.handler({})


async def test_close_stops_the_server_process(manager, tmp_path: Path):
    pid_file = tmp_path / "echo.pid"
    echo = manager({"echo": stdio_entry(ECHO_PID_FILE=str(pid_file))})
    await echo.start()
    pid = int(pid_file.read_text())
    assert pid_alive(pid)
    echo.close()
    wait_for(lambda: not pid_alive(pid), 10, "the server to stop")
    assert [row.state for row in echo.status()] == ["not started"]


async def test_streamable_http_server_with_a_secret_header(manager, monkeypatch, caplog):
    monkeypatch.setenv("DOCS_TOKEN", SECRET)
    caplog.set_level(logging.DEBUG)
    with http_echo_server(expect_auth=f"Bearer {SECRET}") as url:
        servers = manager({
            "docs": {"url": url, "headers": {"Authorization": "Bearer ${DOCS_TOKEN}"}},
            "wrong_path": {"url": url.replace("/mcp", "/nope"), "headers": {"Authorization": "Bearer ${DOCS_TOKEN}"}},
        }, start_timeout=10)
        await servers.start()
        status = {row.key: row for row in servers.status()}
        assert status["docs"].state == "running", status["docs"].reason
        assert status["wrong_path"].state == "failed"
        tools = tools_of(servers)
        assert (await tools["mcp__docs__whoami"].handler({})).output == "authorised"  # the header arrived
        assert (await tools["mcp__docs__add"].handler({"a": 1, "b": 41})).output == "42"
        leaked = (await tools["mcp__docs__echo"].handler({"text": f"Bearer {SECRET}"})).output
        assert leaked == "[redacted]"
        everything = "\n".join([leaked, *servers.take_notices(), *(str(r) for r in status.values()), caplog.text])
        assert SECRET not in everything


async def test_unreachable_http_server_fails_with_a_reason(manager):
    from tests.support.mcp import free_port

    servers = manager({"gone": {"url": f"http://127.0.0.1:{free_port()}/mcp"}}, start_timeout=10)
    await servers.start()
    [row] = servers.status()
    assert row.state == "failed" and row.reason
