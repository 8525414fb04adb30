"""A real MCP server for the tests, written with the SDK: stdio, or streamable HTTP with --http PORT.

Tools: add, echo, env (reads one environment variable), image (a PNG), slow (sleeps), touch (makes a file), whoami
(checks the HTTP Authorization header), noise (floods stderr), crash (the process exits mid-call). With $ECHO_PID_FILE
set it writes its pid there on start.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys

from mcp.server.mcpserver import Context, Image, MCPServer

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)

server = MCPServer("echo")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool()
def env(name: str) -> str:
    """The value of one environment variable of the server process."""
    return os.environ.get(name, "(unset)")


@server.tool()
def image() -> Image:
    """A 1x1 PNG image."""
    return Image(data=PNG, format="png")


@server.tool()
async def slow(seconds: float) -> str:
    """Sleep, then say so."""
    await asyncio.sleep(seconds)
    return f"slept {seconds}"


@server.tool()
def touch(name: str) -> str:
    """Create an empty file in the server's folder (a call with an effect a test can see)."""
    with open(os.path.basename(name), "a"):
        pass
    return f"touched {name}"


@server.tool()
def whoami(ctx: Context) -> str:
    """Over HTTP: whether the Authorization header is the one in $ECHO_EXPECT_AUTH."""
    headers = {k.lower(): v for k, v in (ctx.headers or {}).items()}
    expected = os.environ.get("ECHO_EXPECT_AUTH")
    return "authorised" if expected and headers.get("authorization") == expected else "refused"


@server.tool()
def noise(kilobytes: int) -> str:
    """Write this much to stderr (a chatty server), then one last line."""
    for _ in range(kilobytes):
        sys.stderr.write("x" * 1023 + "\n")
    sys.stderr.write("noise done\n")
    sys.stderr.flush()
    return "noisy"


@server.tool()
def crash() -> str:
    """Exit the server process in the middle of the call."""
    sys.stderr.write("echo server: crashing on purpose\n")
    sys.stderr.flush()
    os._exit(3)


def main() -> None:
    pid_file = os.environ.get("ECHO_PID_FILE")
    if pid_file:
        with open(pid_file, "w") as handle:
            handle.write(str(os.getpid()))
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()


if __name__ == "__main__":
    main()
