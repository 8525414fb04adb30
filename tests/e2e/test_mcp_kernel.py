"""MCP servers in real kernels (nbclient and jupyter_client) with the scripted model server.

A notebook with ``mcp.json`` beside it: loading the extension does not import the SDK, the
first agent cell starts the server and later cells reuse it, ``%codetether mcp`` lists it, a
failed server is one line and the turn goes on, a secret from the config shows nowhere; and
after shutdown, restart or a kill of the kernel, no server process is left behind.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from codetether_magics.testing import ScriptedModelServer, Turn
from tests.support.kernel import LiveKernel, kernel_env, make_notebook, run_notebook, text_of
from tests.support.mcp import pid_alive, stdio_entry, wait_for, write_config

pytestmark = pytest.mark.slow

SECRET = "kernel-mcp-secret-93be41d0"

CELLS = [
    "%load_ext codetether_magics",
    "import sys; print('mcp' in sys.modules)",
    "%codetether mcp",
    "%%codetether --allow mcp__echo\nAdd 2 and 40 with the tool.",
    "%%codetether --allow mcp\nWhat is the token?",
    "%%codetether\nAdd again, without --allow.",
    "%codetether mcp",
    "print('mcp' in sys.modules)",
]


def test_a_notebook_uses_one_server_across_cells(tmp_path: Path):
    pid_file = tmp_path / "echo.pid"
    write_config(tmp_path / "mcp.json", {
        "echo": stdio_entry(TOKEN="${ECHO_TOKEN}", ECHO_PID_FILE=str(pid_file)),
        "missing": {"command": "no-such-program-4711"},
    })
    turns = [
        Turn.tool_call("mcp__echo__add", {"a": 2, "b": 40}, expect_tools=("mcp__echo__add", "python", "read")),
        Turn.text("The sum is 42.", expect_tool_result="42"),
        Turn.text("Adding"),  # the first turn's title request
        Turn.tool_call("mcp__echo__env", {"name": "TOKEN"}),
        Turn.text("The token is hidden from me.", expect_tool_result="[redacted]"),
        Turn.tool_call("mcp__echo__add", {"a": 1, "b": 1}),
        Turn.text("Not allowed.", expect_tool_result="needs approval; re-run the cell with --allow mcp__echo__add"),
    ]
    with ScriptedModelServer(turns) as server:
        executed = run_notebook(make_notebook(*CELLS), tmp_path, kernel_env(tmp_path, server, ECHO_TOKEN=SECRET))
        assert server.errors == [] and server.remaining == 0
    cells = executed.cells
    assert text_of(cells[1]).strip() == "False"  # %load_ext did not import the SDK
    before = text_of(cells[2])
    assert "echo  [not started]" in before and "missing  [not started]" in before
    first = text_of(cells[3])
    assert "MCP server 'missing' exited before it answered (cannot run 'no-such-program-4711'" in first
    assert first.count("MCP server 'missing'") == 1  # one line, and the turn went on
    assert "The sum is 42." in text_of(cells[3], "text/markdown")
    assert "MCP server 'missing'" not in text_of(cells[4])  # reported once, not in every cell
    listing = text_of(cells[6])
    assert "echo  [running]" in listing and "    mcp__echo__add" in listing
    assert "missing  [failed: exited before it answered" in listing
    assert text_of(cells[7]).strip() == "True"
    pid = int(pid_file.read_text())
    wait_for(lambda: not pid_alive(pid), 15, "the server to stop with the kernel")
    seen = json.dumps(executed) + (tmp_path / "analysis.codetether.json").read_text()
    assert SECRET not in seen


def test_a_server_that_dies_mid_turn_is_one_line_and_the_turn_goes_on(tmp_path: Path):
    write_config(tmp_path / "mcp.json", {"echo": stdio_entry()})
    turns = [
        Turn.tool_call("mcp__echo__crash", {}),
        Turn.text("The server went away; I carry on.", expect_tool_result="MCP server 'echo' stopped unexpectedly"),
        Turn.text("Crash"),
        Turn.text("No tools left.", expect_tools=("python",)),
    ]
    cells = ["%load_ext codetether_magics", "%%codetether --allow mcp\nCrash it.", "%%codetether\nAnd now?",
             "%codetether mcp"]
    with ScriptedModelServer(turns) as server:
        executed = run_notebook(make_notebook(*cells), tmp_path, kernel_env(tmp_path, server))
        assert server.errors == []
        offered = [t.get("function", t)["name"] for t in server.model_requests[-1].body["tools"]]
    assert not any(name.startswith("mcp__") for name in offered)
    crashed = text_of(executed.cells[1])
    assert crashed.count("MCP server 'echo' stopped unexpectedly (echo server: crashing on purpose)") == 1
    assert "I carry on." in text_of(executed.cells[1], "text/markdown")
    kinds = [output.get("name") or ("record" if "text/markdown" in output.get("data", {}) else "other")
             for output in executed.cells[1].outputs]
    assert kinds[-2:] == ["record", "stderr"]  # after the record, which replaces the cell's earlier outputs
    assert "echo  [failed: stopped unexpectedly" in text_of(executed.cells[3])


def test_replay_runs_an_allowed_mcp_call_again(tmp_path: Path):
    write_config(tmp_path / "mcp.json", {"echo": stdio_entry()})
    cells = ["%load_ext codetether_magics", "%%codetether --allow mcp__echo__touch\nTouch it."]
    turns = [Turn.tool_call("mcp__echo__touch", {"name": "touched.txt"}), Turn.text("Touched."), Turn.text("Touch")]
    with ScriptedModelServer(turns) as server:
        run_notebook(make_notebook(*cells), tmp_path, kernel_env(tmp_path, server))
        assert server.errors == []
    touched = tmp_path / "touched.txt"
    assert touched.is_file()
    touched.unlink()
    replayed = run_notebook(make_notebook(*cells), tmp_path, kernel_env(tmp_path, CODETETHER_REPLAY="1"))
    assert "Touched." in text_of(replayed.cells[1], "text/markdown")
    assert touched.is_file()  # the server was called again: the cell allows it now


def test_replay_refuses_a_recorded_mcp_call_not_allowed_now(tmp_path: Path):
    pid_file = tmp_path / "echo.pid"
    write_config(tmp_path / "mcp.json", {"echo": stdio_entry(ECHO_PID_FILE=str(pid_file))})
    turns = [Turn.tool_call("mcp__echo__touch", {"name": "touched.txt"}), Turn.text("Touched."), Turn.text("Touch")]
    with ScriptedModelServer(turns) as server:
        run_notebook(make_notebook("%load_ext codetether_magics", "%%codetether --allow mcp\nTouch it."), tmp_path,
                     kernel_env(tmp_path, server))
        assert server.errors == []
    (tmp_path / "touched.txt").unlink()
    pid_file.unlink()
    nb = make_notebook("%load_ext codetether_magics", "%%codetether\nTouch it.")  # the same prompt, no --allow
    replayed = run_notebook(nb, tmp_path, kernel_env(tmp_path, CODETETHER_REPLAY="1"), allow_errors=True)
    shown = text_of(replayed.cells[1])
    assert "Replay did not run the recorded `mcp__echo__touch` call(s)" in shown
    assert "--allow mcp__echo__touch" in shown
    assert not (tmp_path / "touched.txt").exists() and not pid_file.exists()  # not run, no server started


def test_a_replay_starts_no_server_for_a_call_it_does_not_run(tmp_path: Path):
    """Recorded refused (nobody to ask), replayed where the server cannot even start (offline CI):
    the same record, no start-up failure line, no process started."""
    pid_file = tmp_path / "echo.pid"
    write_config(tmp_path / "mcp.json", {"echo": stdio_entry(ECHO_PID_FILE=str(pid_file))})
    cells = ["%load_ext codetether_magics", "%%codetether\nAdd 1 and 2."]
    turns = [Turn.tool_call("mcp__echo__add", {"a": 1, "b": 2}),
             Turn.text("I may not run it.", expect_tool_result="needs approval"), Turn.text("Add")]
    with ScriptedModelServer(turns) as server:
        # Recorded by someone who chose the file (a folder's own mcp.json would not start unasked).
        chosen = kernel_env(tmp_path, server, CODETETHER_MCP_CONFIG=str(tmp_path / "mcp.json"))
        recorded = run_notebook(make_notebook(*cells), tmp_path, chosen)
        assert server.errors == []
    pid_file.unlink()
    write_config(tmp_path / "mcp.json", {"echo": {"command": "no-such-program-4711"}})
    replayed = run_notebook(make_notebook(*cells), tmp_path, kernel_env(tmp_path, CODETETHER_REPLAY="1"))
    assert text_of(replayed.cells[1], "text/markdown") == text_of(recorded.cells[1], "text/markdown")
    assert "MCP server" not in text_of(replayed.cells[1]) and not pid_file.exists()


def _started_server(kernel: LiveKernel, pid_file: Path) -> int:
    for code in ("%load_ext codetether_magics", "%codetether mcp start"):
        run = kernel.execute(code, timeout=60)
        assert run.reply["content"]["status"] == "ok", run.outputs_json()
    pid = int(pid_file.read_text())
    assert pid_alive(pid)
    return pid


@pytest.mark.parametrize("how", ["shutdown", "restart", "kill"])
def test_no_server_outlives_its_kernel(tmp_path: Path, how: str):
    pid_file = tmp_path / "echo.pid"
    write_config(tmp_path / "mcp.json", {"echo": stdio_entry(ECHO_PID_FILE=str(pid_file))})
    kernel = LiveKernel(tmp_path, kernel_env(tmp_path))
    try:
        pid = _started_server(kernel, pid_file)
        if how == "shutdown":
            kernel.km.shutdown_kernel(now=False)
        elif how == "restart":
            kernel.km.restart_kernel(now=False)
        else:  # SIGKILL: no atexit runs; the server is told by the kernel's death (Linux)
            if not sys.platform.startswith("linux"):
                pytest.skip("the parent-death signal is Linux only")
            kernel.km.shutdown_kernel(now=True)
        wait_for(lambda: not pid_alive(pid), 15, f"the server to stop after a kernel {how}")
    finally:
        kernel.kc.stop_channels()
        if kernel.km.is_alive():
            kernel.km.shutdown_kernel(now=True)


def test_interrupting_an_mcp_call_keeps_the_server_and_the_kernel(tmp_path: Path):
    pid_file = tmp_path / "echo.pid"
    write_config(tmp_path / "mcp.json", {"echo": stdio_entry(ECHO_PID_FILE=str(pid_file))})
    turns = [Turn.tool_call("mcp__echo__slow", {"seconds": 60}),
             Turn.tool_call("mcp__echo__add", {"a": 20, "b": 22}),
             Turn.text("42 it is.", expect_tool_result="42")]
    with ScriptedModelServer(turns) as server, LiveKernel(tmp_path, kernel_env(tmp_path, server)) as kernel:
        pid = _started_server(kernel, pid_file)
        msg_id = kernel.start("%%codetether --allow mcp --no-stream\nSleep a minute.")
        wait_for(lambda: _slept(server), 20, "the model to ask for the slow tool")
        time.sleep(1.0)  # the call is now in the server
        started = time.monotonic()
        kernel.interrupt()
        stopped = kernel.collect(msg_id, 30)
        assert time.monotonic() - started < 5
        assert stopped.reply["content"]["status"] == "error"  # a KeyboardInterrupt, the kernel is fine
        again = kernel.execute("%%codetether --allow mcp --no-stream\nAdd 20 and 22.", timeout=60)
        assert again.reply["content"]["status"] == "ok", again.outputs_json()
        assert "42 it is." in again.outputs_json()
        assert int(pid_file.read_text()) == pid and pid_alive(pid)  # the same server, not restarted
        assert server.errors == []


def _slept(server: ScriptedModelServer) -> bool:
    return len(server.model_requests) >= 1
