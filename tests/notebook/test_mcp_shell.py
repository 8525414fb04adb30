"""``%codetether mcp`` in a plain IPython shell: help, bad actions, start and restart, a config that changes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from IPython.core.error import UsageError

from tests.support.mcp import pid_alive, stdio_entry, wait_for, write_config




def test_help_names_the_mcp_subcommand(shell, capsys):
    shell.run_line_magic("codetether", "help")
    assert "%codetether mcp [start | restart [SERVER]]   MCP servers: state and tools" in capsys.readouterr().out


@pytest.mark.parametrize(("line", "problem"), [
    ("mcp stop", "unknown mcp action 'stop'. Usage: %codetether mcp [start | restart [SERVER]]"),
    ("mcp start now", "too many arguments: 'start now'"),
    ("mcp restart a b", "too many arguments: 'restart a b'"),
])
def test_bad_mcp_lines_are_usage_errors(shell, tmp_path: Path, line: str, problem: str):
    write_config(tmp_path / "mcp.json", {"echo": stdio_entry()})
    with pytest.raises(UsageError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        shell.run_line_magic("codetether", line)


def test_restart_of_an_unknown_server_names_the_known_ones(shell, tmp_path: Path):
    write_config(tmp_path / "mcp.json", {"echo": stdio_entry()})
    with pytest.raises(UsageError, match=r"%codetether mcp: no MCP server 'nope' in .*mcp.json; known: echo"):
        shell.run_line_magic("codetether", "mcp restart nope")


def test_start_restart_and_a_changed_config(shell, tmp_path: Path, capsys):
    pid_file = tmp_path / "echo.pid"
    config = write_config(tmp_path / "mcp.json", {"echo": stdio_entry(ECHO_PID_FILE=str(pid_file))})
    shell.run_line_magic("codetether", "mcp start")
    out = capsys.readouterr().out
    assert f"MCP config: {config}" in out and "echo  [running]" in out and "    mcp__echo__add" in out
    first = int(pid_file.read_text())

    shell.run_line_magic("codetether", "mcp restart echo")
    second = int(pid_file.read_text())
    assert second != first and pid_alive(second)
    wait_for(lambda: not pid_alive(first), 10, "the old server to stop")

    write_config(config, {"echo": stdio_entry(ECHO_PID_FILE=str(pid_file), CHANGED="yes")})
    os.utime(config, ns=(1, 1))  # a new stamp even within the file system's time resolution
    shell.run_line_magic("codetether", "mcp")
    assert "echo  [not started]" in capsys.readouterr().out  # the new config, its server not started yet
    wait_for(lambda: not pid_alive(second), 10, "the server of the old config to stop")
