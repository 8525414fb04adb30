"""The agent loop's own cost, against the same SSE stream read with httpx alone.

Two measurements, both against the scripted loopback server (codetether_magics.testing)
in one run, each the best of several interleaved repeats. The server runs in its own
process so that writing the stream does not compete with the measured side for the GIL:

1. A streamed answer of N chunks: ``run_prompt`` with the real OpenAI provider and an
   event callback, against reading the same stream with ``httpx`` (``aiter_lines``, no
   parsing, stopping at ``data: [DONE]`` as the provider does). Overhead per streamed
   event = (loop - raw) / N.
2. The same answer on the OpenAI Responses API (model ``gpt-5``, so provider ``openai`` takes
   that path): ``run_prompt`` against reading the same ``/v1/responses`` stream with httpx,
   stopping at ``response.completed``. Overhead per streamed event = (loop - raw) / N.
3. A turn of K tool steps (a no-op tool) plus the final answer: ``run_prompt`` against
   reading the same K+1 streams raw. Overhead per step = (loop - raw) / (K+1).
4. Per-chunk cost as the answer grows: one model call's own work per small text delta (the
   accumulator and the cumulative text_chunk events a live view reads) once 4 MB of answer have
   arrived, against the same once 0.1 MB have (no network: deltas from memory).

Saving is off (``save=False``): storage has its own benchmark (bench_storage.py).

    python -m benchmarks agent [--quick]
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from typing import Any

import httpx

from codetether_magics.agent.loop import run_prompt
from codetether_magics.agent.tools.base import Tool
from codetether_magics.session.session import Session
from codetether_magics.testing import Turn

from ._loopback import KEY, ServerProcess, openai_registry, server_process

PER_EVENT_TARGET_US = 50.0  # loop overhead per streamed event
PER_STEP_TARGET_MS = 5.0  # loop overhead per step (model call + tool call), beyond the raw stream


async def _noop(args: dict[str, Any]) -> str:
    return "ok"


NOOP_TOOL = Tool("noop", "does nothing", {"type": "object", "properties": {}}, _noop, read_only=True)


async def _raw_read(client: httpx.AsyncClient, server: ServerProcess, responses_api: bool = False) -> int:
    if responses_api:
        path, body = "/responses", {"model": "gpt-5", "input": "hi", "stream": True}
    else:
        path, body = "/chat/completions", {"model": "bench", "messages": [{"role": "user", "content": "hi"}],
                                           "stream": True}
    lines = 0
    async with client.stream("POST", server.openai_base_url + path, json=body,
                             headers={"Authorization": f"Bearer {KEY}"}) as response:
        async for line in response.aiter_lines():
            lines += line.startswith("data: ")
            # Stop where every client (and the provider) stops.
            if line == "data: [DONE]" or line == "event: response.completed":
                break
    return lines


async def _time_raw(client, server, turns: list[Turn], responses_api: bool = False) -> float:
    server.enqueue(*turns)
    started = time.perf_counter()
    for _ in turns:
        await _raw_read(client, server, responses_api)
    return time.perf_counter() - started


async def _time_loop(client, server, turns: list[Turn], tmp: str, model: str | None = None) -> tuple[float, int]:
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
                     title_model_call=False, max_steps=len(turns) + 1, model=model)
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
    with tempfile.TemporaryDirectory() as tmp, server_process() as server:
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
            rows.append(await _responses_row(client, server, answer, tmp, chunks, repeats))
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


async def _responses_row(client, server, answer: list[Turn], tmp: str, chunks: int, repeats: int) -> dict[str, Any]:
    await _time_raw(client, server, answer, responses_api=True)  # warm up this path too
    await _time_loop(client, server, answer, tmp, model="openai/gpt-5")
    raws, loop_runs = [], []
    for _ in range(repeats):
        raws.append(await _time_raw(client, server, answer, responses_api=True))
        loop_runs.append((await _time_loop(client, server, answer, tmp, model="openai/gpt-5"))[0])
    raw, ours = _best(raws), _best(loop_runs)
    per_event_us = (ours - raw) / chunks * 1e6
    return {
        "benchmark": f"agent loop, Responses API: streamed answer, {chunks} chunks",
        "ours": f"{ours * 1000:.1f} ms ({per_event_us:.1f} µs/event overhead)",
        "baseline": f"{raw * 1000:.1f} ms (httpx alone, same /v1/responses stream)",
        "ratio": round(ours / raw, 2),
        "target": f"overhead < {PER_EVENT_TARGET_US:.0f} µs/event",
        "ok": per_event_us < PER_EVENT_TARGET_US,
    }


class _MemoryDeltas:
    """A provider whose answer is ``start`` characters, then ``count`` small deltas, timed."""

    name = "memory"

    def __init__(self, start: int, count: int) -> None:
        self.start, self.count, self.marks = start, count, [0.0, 0.0]

    async def stream(self, request: Any) -> Any:
        from codetether_magics.providers.base import TextDelta

        yield TextDelta("z" * self.start)
        self.marks[0] = time.perf_counter()
        for _ in range(self.count):
            yield TextDelta("word ")
        self.marks[1] = time.perf_counter()


async def _per_chunk(start: int, count: int) -> float:
    from codetether_magics.events import EventSink
    from codetether_magics.agent.model_call import StepStream
    from codetether_magics.providers.base import ModelRequest
    from codetether_magics.messages import Message

    seen = [0]

    def on_event(event: Any) -> None:
        seen[0] = len(getattr(event, "text", "") or "")  # what a live view reads

    source = _MemoryDeltas(start, count)
    request = ModelRequest(model="m", messages=[Message.user("hi")])
    await StepStream(source, EventSink(on_event), retry_delays=(), sleep=asyncio.sleep).run(request, "")
    return (source.marks[1] - source.marks[0]) / count


async def _growth_row(quick: bool) -> dict[str, Any]:
    count, repeats = (2000, 3) if quick else (10000, 5)
    small = min([await _per_chunk(100_000, count) for _ in range(repeats)])
    large = min([await _per_chunk(4_000_000, count) for _ in range(repeats)])
    return {
        "benchmark": "one model call: per-chunk cost at 4 MB of answer",
        "ours": f"{large * 1e6:.2f} µs/chunk at 4 MB",
        "baseline": f"{small * 1e6:.2f} µs/chunk at 0.1 MB",
        "ratio": round(large / small, 2),
        "target": "ratio < 2 (constant per chunk)",
        "ok": large / small < 2,
    }


async def _all(quick: bool) -> list[dict[str, Any]]:
    return [*await _measure(quick), await _growth_row(quick)]


def run(quick: bool = False) -> list[dict[str, Any]]:
    return asyncio.run(_all(quick))
