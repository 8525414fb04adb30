"""The agent loop's own cost, against the same SSE stream read with httpx alone.

Two measurements, both against the scripted loopback server (codetether_magics.testing)
in one run, each the best of several interleaved repeats. The server runs in its own
process so that writing the stream does not compete with the measured side for the GIL:

1. A streamed answer of N chunks: ``run_prompt`` with the real OpenAI provider and an
   event callback, against reading the same stream with ``httpx`` (``aiter_lines``, no
   parsing, stopping at ``data: [DONE]`` as the provider does). Overhead per streamed
   event = (loop - raw) / N.
2. A turn of K tool steps (a no-op tool) plus the final answer: ``run_prompt`` against
   reading the same K+1 streams raw. Overhead per step = (loop - raw) / (K+1).

Saving is off (``save=False``): storage has its own benchmark (bench_storage.py).

    python -m benchmarks agent [--quick]
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from typing import Any

import httpx

from codetether_magics.agent.loop import run_prompt
from codetether_magics.agent.tools.base import Tool
from codetether_magics.session.session import Session
from codetether_magics.testing import Turn

from ._loopback import KEY, openai_registry

PER_EVENT_TARGET_US = 50.0  # loop overhead per streamed event
PER_STEP_TARGET_MS = 5.0  # loop overhead per step (model call + tool call), beyond the raw stream


async def _noop(args: dict[str, Any]) -> str:
    return "ok"


NOOP_TOOL = Tool("noop", "does nothing", {"type": "object", "properties": {}}, _noop)


class _ServerProcess:
    """The scripted server's CLI in a subprocess; turns are queued over its control endpoint."""

    def __init__(self, process: subprocess.Popen, url: str) -> None:
        self.process = process
        self.url = url
        self.openai_base_url = url + "/v1"

    def enqueue(self, *turns: Turn) -> None:
        httpx.post(self.url + "/_scripted/turns", json=[t.to_dict() for t in turns], timeout=10).raise_for_status()


@contextlib.contextmanager
def _server_process():
    command = [sys.executable, "-m", "codetether_magics.testing.scripted_server"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().strip()  # the CLI prints its URL first
        if not url.startswith("http"):
            raise RuntimeError(f"scripted server did not start (printed {url!r})")
        yield _ServerProcess(process, url)
    finally:
        process.terminate()
        process.wait(timeout=10)


async def _raw_read(client: httpx.AsyncClient, server: _ServerProcess) -> int:
    body = {"model": "bench", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    lines = 0
    async with client.stream("POST", server.openai_base_url + "/chat/completions", json=body,
                             headers={"Authorization": f"Bearer {KEY}"}) as response:
        async for line in response.aiter_lines():
            lines += line.startswith("data: ")
            if line == "data: [DONE]":  # stop where every client (and the provider) stops
                break
    return lines


async def _time_raw(client, server, turns: list[Turn]) -> float:
    server.enqueue(*turns)
    started = time.perf_counter()
    for _ in turns:
        await _raw_read(client, server)
    return time.perf_counter() - started


async def _time_loop(client, server, turns: list[Turn], tmp: str) -> tuple[float, int]:
    server.enqueue(*turns)
    session = Session()
    session.metadata.directory = tmp
    session.title = "bench"
    counter = [0]

    def on_event(event: Any) -> None:
        counter[0] += 1

    registry = openai_registry(server.openai_base_url, client)
    started = time.perf_counter()
    await run_prompt(session, "hi", [], on_event, registry, tools=[NOOP_TOOL], save=False,
                     title_model_call=False, max_steps=len(turns) + 1)
    return time.perf_counter() - started, counter[0]


def _best(samples: list[float]) -> float:
    return min(samples)


async def _measure(quick: bool) -> list[dict[str, Any]]:
    chunks = 500 if quick else 2000
    steps = 5 if quick else 20
    repeats = 3 if quick else 7
    answer = [Turn.text(" ".join(f"w{i}" for i in range(chunks)))]
    tool_turn = [Turn.tool_call("noop", {}, id=f"call_{i}") for i in range(steps)] + [Turn.text("done")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, _server_process() as server:
        async with httpx.AsyncClient(timeout=30.0) as client:
            await _time_raw(client, server, answer)  # warm up the connection and the code paths
            await _time_loop(client, server, answer, tmp)
            raws, loop_runs = [], []
            for _ in range(repeats):  # interleaved, so drift affects both sides alike
                raws.append(await _time_raw(client, server, answer))
                loop_runs.append(await _time_loop(client, server, answer, tmp))
            raw, ours = _best(raws), _best([t for t, _ in loop_runs])
            events = loop_runs[0][1]
            per_event_us = (ours - raw) / chunks * 1e6
            rows.append({
                "benchmark": f"agent loop: streamed answer, {chunks} chunks ({events} events)",
                "ours": f"{ours * 1000:.1f} ms ({per_event_us:.1f} µs/event overhead)",
                "baseline": f"{raw * 1000:.1f} ms (httpx alone)",
                "ratio": round(ours / raw, 2),
                "target": f"overhead < {PER_EVENT_TARGET_US:.0f} µs/event",
                "ok": per_event_us < PER_EVENT_TARGET_US,
            })
            raws, ours_runs = [], []
            for _ in range(repeats):
                raws.append(await _time_raw(client, server, tool_turn))
                ours_runs.append((await _time_loop(client, server, tool_turn, tmp))[0])
            raw, ours = _best(raws), _best(ours_runs)
            per_step_ms = (ours - raw) / (steps + 1) * 1000
            rows.append({
                "benchmark": f"agent loop: {steps} tool steps + answer",
                "ours": f"{ours * 1000:.1f} ms ({per_step_ms:.2f} ms/step overhead)",
                "baseline": f"{raw * 1000:.1f} ms (httpx alone, same {steps + 1} streams)",
                "ratio": round(ours / raw, 2),
                "target": f"overhead < {PER_STEP_TARGET_MS:.0f} ms/step",
                "ok": per_step_ms < PER_STEP_TARGET_MS,
            })
    return rows


def run(quick: bool = False) -> list[dict[str, Any]]:
    return asyncio.run(_measure(quick))
