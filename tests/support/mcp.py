"""Real MCP servers for the tests: the SDK-written echo server over stdio, or over streamable HTTP on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

__all__ = ["ECHO_SERVER", "free_port", "http_echo_server", "pid_alive", "stdio_entry", "wait_for", "write_config"]

ECHO_SERVER = Path(__file__).resolve().parent.parent / "mcp_servers" / "echo_server.py"


def stdio_entry(**env: str) -> dict[str, Any]:
    """A config entry that runs the echo server with this interpreter."""
    entry: dict[str, Any] = {"command": sys.executable, "args": [str(ECHO_SERVER)]}
    if env:
        entry["env"] = env
    return entry


def write_config(path: Path, servers: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"mcpServers": servers}), encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def http_echo_server(expect_auth: str) -> Iterator[str]:
    """The echo server on streamable HTTP at 127.0.0.1; yields its URL; stopped (and reaped) at the end."""
    port = free_port()
    env = dict(os.environ, ECHO_EXPECT_AUTH=expect_auth)
    process = subprocess.Popen([sys.executable, str(ECHO_SERVER), "--http", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _accepts(port) or process.poll() is not None, 20.0, "the HTTP MCP server to listen")
        assert process.poll() is None, "the HTTP MCP server exited at start"
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone: it runs nothing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
