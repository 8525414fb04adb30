"""MCP tools: what the first cell pays to start a stdio server, and what each call costs beyond the SDK.

Both against the same real server (notebooks/mcp_server.py, written with the SDK) in one run,
each the best of several interleaved repeats:

1. Start: ``McpManager.start()`` (spawn through the parent-death guard, initialize, list tools,
   on the background MCP loop) against the SDK alone (``stdio_client`` + ``ClientSession``,
   initialize, list tools) on the caller's loop.
2. Per call: N ``percentile`` calls through our ``Tool`` handler (a hop to the MCP loop and
   back, result conversion, scrubbing) against N ``ClientSession.call_tool`` calls on an
   SDK session opened directly. Overhead per call = (ours - SDK) / N.

    python -m benchmarks mcp [--quick]
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "notebooks" / "mcp_server.py"
START_OVERHEAD_TARGET_MS = 150.0  # ours beyond the SDK's own start (one extra interpreter start for the guard)
PER_CALL_TARGET_US = 1000.0  # ours beyond ClientSession.call_tool
ARGUMENTS = {"numbers": [120, 135, 160, 190, 230, 280, 900], "q": 90}


async def _sdk_start() -> float:
    from mcp import ClientSession, StdioServerParameters, stdio_client

    started = time.perf_counter()
    async with stdio_client(StdioServerParameters(command=sys.executable, args=[str(SERVER)])) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            await session.list_tools()
            elapsed = time.perf_counter() - started
    return elapsed


async def _our_start(config: Path) -> float:
    from codetether_magics.agent.mcp import McpManager, load_config

    manager = McpManager(load_config(config))
    started = time.perf_counter()
    await manager.start()
    manager.tools()
    elapsed = time.perf_counter() - started
    assert [row.state for row in manager.status()] == ["running"]
    await asyncio.to_thread(manager.close)
    return elapsed


async def _sdk_calls(calls: int) -> float:
    from mcp import ClientSession, StdioServerParameters, stdio_client

    async with stdio_client(StdioServerParameters(command=sys.executable, args=[str(SERVER)])) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            await session.list_tools()
            await session.call_tool("percentile", ARGUMENTS)  # warm
            started = time.perf_counter()
            for _ in range(calls):
                await session.call_tool("percentile", ARGUMENTS)
            return time.perf_counter() - started


async def _our_calls(config: Path, calls: int) -> float:
    from codetether_magics.agent.mcp import McpManager, load_config

    manager = McpManager(load_config(config))
    await manager.start()
    tool = next(t for t in manager.tools() if t.name == "mcp__stats__percentile")
    assert (await tool.handler(ARGUMENTS)).output == "528.0"  # warm, and the answer is right
    started = time.perf_counter()
    for _ in range(calls):
        await tool.handler(ARGUMENTS)
    elapsed = time.perf_counter() - started
    await asyncio.to_thread(manager.close)
    return elapsed


async def _measure(quick: bool) -> list[dict[str, Any]]:
    repeats, calls = (2, 50) if quick else (5, 300)
    with tempfile.TemporaryDirectory(prefix="bench-mcp-") as folder:
        config = Path(folder) / "mcp.json"
        config.write_text(json.dumps({"mcpServers": {"stats": {"command": sys.executable, "args": [str(SERVER)]}}}))
        ours_start, sdk_start, ours_call, sdk_call = [], [], [], []
        for _ in range(repeats):
            sdk_start.append(await _sdk_start())
            ours_start.append(await _our_start(config))
            sdk_call.append(await _sdk_calls(calls))
            ours_call.append(await _our_calls(config, calls))
    start_ours, start_sdk = min(ours_start) * 1000, min(sdk_start) * 1000
    call_ours, call_sdk = min(ours_call) / calls * 1e6, min(sdk_call) / calls * 1e6
    return [
        {"benchmark": "MCP first cell: start a stdio server and list its tools (ms)", "ours": f"{start_ours:.0f}",
         "baseline": f"{start_sdk:.0f} (SDK alone)", "ratio": f"{start_ours / start_sdk:.2f}x",
         "target": f"<= SDK + {START_OVERHEAD_TARGET_MS:.0f} ms",
         "ok": start_ours - start_sdk <= START_OVERHEAD_TARGET_MS},
        {"benchmark": f"MCP tool call, mean of {calls} (us)", "ours": f"{call_ours:.0f}",
         "baseline": f"{call_sdk:.0f} (ClientSession.call_tool)", "ratio": f"{call_ours / call_sdk:.2f}x",
         "target": f"<= SDK + {PER_CALL_TARGET_US:.0f} us per call",
         "ok": call_ours - call_sdk <= PER_CALL_TARGET_US},
    ]


def run(quick: bool = False) -> list[dict[str, Any]]:
    return asyncio.run(_measure(quick))
