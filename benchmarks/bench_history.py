"""What a turn costs as the session grows, each against a baseline measured in the same run.

1. First streamed text with 30 MB of history against an empty history: ``run_prompt`` with
   saving on (so the user message's save, a rewrite of the whole file, runs in that turn),
   from the call to the first ``text_chunk`` event, the scripted server in its own process,
   interleaved repeats, medians. The 30 MB are in the session file as tool records
   (``tool_uses``), which requests do not carry: both requests are the same size, as they are
   once the context budget bounds what is sent, so the difference is what the session's size
   costs on the first token's path. One save of that session is shown beside it: what the
   first text waited for when the user message was saved before the request.
2. Transcript writes in a first turn of 3 tool calls in one step, then the answer and the
   model's title, at 30 MB: every write counted at ``storage.write_atomic``; bytes written
   against the file's size.

    python -m benchmarks history [--quick]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from typing import Any

import httpx

from codetether_magics.agent.loop import run_prompt
from codetether_magics.messages import ToolUse
from codetether_magics.session import files, storage
from codetether_magics.session.session import Session
from codetether_magics.testing import ToolCallStep, Turn

from ._loopback import openai_registry, server_process
from ._rows import ms_target_row
from .bench_agent import NOOP_TOOL

MB = 1_000_000
FIRST_TEXT_SLACK_MS = 10.0  # what a 30 MB history may add to the first text (one save: ~100+ ms)


def _history(size: int) -> list[ToolUse]:
    output = "o" * 4_000  # a tool's output as the model gets it is capped at 4 KiB
    return [ToolUse(id=f"call_{i}", name="python", input={"code": f"step({i})"}, output=output)
            for i in range(size // 4_100)]


async def _session(folder: str, size: int, title: str | None = "bench") -> Session:
    session = await Session.new(folder)
    session.title = title
    session.tool_uses = _history(size)
    await session.save()
    return session


async def _first_text(client: httpx.AsyncClient, server: Any, session: Session) -> float:
    server.enqueue(Turn.text("First words of the answer and then some more"))
    first: list[float] = []

    def on_event(event: Any) -> None:
        if event.type == "text_chunk" and not first:
            first.append(time.perf_counter())

    started = time.perf_counter()
    await run_prompt(session, "hi", [], on_event, openai_registry(server.openai_base_url, client),
                     tools=[], title_model_call=False, max_steps=1)
    return first[0] - started


async def _one_save(session: Session) -> float:
    session.add_message(session.messages[-1])  # a change, so the save really writes
    started = time.perf_counter()
    await session.save()
    return time.perf_counter() - started


async def _first_text_rows(client: httpx.AsyncClient, server: Any, folder: str, size: int,
                           repeats: int) -> list[dict[str, Any]]:
    empty, full = await _session(folder, 0), await _session(folder, size)
    await _first_text(client, server, empty)  # warm up the code paths and the connection
    await _first_text(client, server, full)
    empties, fulls = [], []
    for _ in range(repeats):  # interleaved, so drift on a busy machine hits both alike
        empties.append(await _first_text(client, server, empty))
        fulls.append(await _first_text(client, server, full))
    zero, big = statistics.median(empties), statistics.median(fulls)
    save = min([await _one_save(full) for _ in range(3)])
    added_ms = (big - zero) * 1000
    return [ms_target_row(
        f"first streamed text with {size / MB:.0f} MB of history, saving on (loopback, median)",
        ours=f"{big * 1000:.1f} ms ({added_ms:+.1f} ms; one save of it: {save * 1000:.0f} ms, run beside)",
        baseline=f"{zero * 1000:.1f} ms (empty history)",
        ratio=round(big / zero, 2),
        measured_ms=added_ms, target_ms=FIRST_TEXT_SLACK_MS, target_prefix="+ <",
    )]


async def _writes_row(client: httpx.AsyncClient, server: Any, folder: str, size: int) -> dict[str, Any]:
    session = await _session(folder, size, title=None)  # a first turn: the model proposes a title
    file_bytes = session.path.stat().st_size
    writes: list[int] = []
    real = storage.write_atomic

    def counting(path: Any, data: Any, durable: bool = True) -> Any:
        writes.append(sum(len(part) for part in data))
        return real(path, data, durable)

    three = Turn([ToolCallStep("noop", {}, f"call_{i}") for i in range(3)])
    server.enqueue(three, Turn.text("All three done."), Turn.text("Three no-ops"))
    storage.write_atomic = counting
    try:
        await run_prompt(session, "run the no-op three times", [], None,
                         openai_registry(server.openai_base_url, client), tools=[NOOP_TOOL])
    finally:
        storage.write_atomic = real
    assert session.title == "Three no-ops" and len(session.tool_uses) == len(_history(size)) + 3
    allowed = 2 + 2  # two steps, the user message, the title
    return {
        "benchmark": f"transcript writes, first turn of 3 tool calls in one step + answer + title, {size / MB:.0f} MB",
        "ours": f"{len(writes)} writes, {sum(writes) / MB:.0f} MB written",
        "baseline": f"{file_bytes / MB:.0f} MB (the session file)",
        "ratio": round(sum(writes) / file_bytes, 2),
        "target": f"≤ {allowed} writes (one per step, the message, the title)",
        "ok": len(writes) <= allowed,
    }


async def _all(quick: bool) -> list[dict[str, Any]]:
    size = (5 if quick else 30) * MB
    with tempfile.TemporaryDirectory() as folder, server_process() as server:
        previous = os.environ.get("CODETETHER_DATA_DIR")
        os.environ["CODETETHER_DATA_DIR"] = folder
        try:
            async with httpx.AsyncClient(timeout=60.0) as client:
                rows = await _first_text_rows(client, server, folder, size, 5 if quick else 15)
                rows.append(await _writes_row(client, server, folder, size))
        finally:
            if previous is None:
                os.environ.pop("CODETETHER_DATA_DIR", None)
            else:
                os.environ["CODETETHER_DATA_DIR"] = previous
    assert files.write_atomic is storage.write_atomic
    return rows


def run(quick: bool = False) -> list[dict[str, Any]]:
    return asyncio.run(_all(quick))
