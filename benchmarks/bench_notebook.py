"""The notebook layer's costs, each against a baseline measured in the same run.

1. ``%load_ext``: ``import codetether_magics`` + ``load_extension`` into an InteractiveShell,
   timed inside a fresh subprocess, against ``import IPython`` timed the same way.
2. First answer byte to first widget update: ``run_prompt`` (real OpenAI provider, scripted
   loopback server, words 10 ms apart) streaming into a ``LiveView`` right after its status
   line was drawn, from sending the request to the first widget change showing the answer's
   first word, against the same stream read with httpx alone until the bytes holding that
   word arrive. The difference is the delay the loop and the view add (target < 60 ms).
3. Coalescing: how many widget updates a long stream costs, against one per event.
4. One flush late in a long answer: the view's render at 100 KB of streamed answer (finished
   Markdown blocks are kept, only the open one is parsed), against markdown-it rendering the
   whole answer, which is what a naive flush costs.

    python -m benchmarks notebook [--quick]
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx

from codetether_magics.agent.loop import run_prompt
from codetether_magics.notebook.render import markdown_to_html
from codetether_magics.notebook.view import LiveView, ViewState
from codetether_magics.session.session import Session
from codetether_magics.testing import ScriptedModelServer, Turn

from ._loopback import KEY, openai_registry

LOAD_TARGET_S = 0.5  # "%load_ext ... takes well under a second"
FIRST_UPDATE_TARGET_MS = 60.0
FLUSH_TARGET_MS = 25.0  # at 20 flushes/s, half a core at most
RATE = 20  # updates per second the view may send

_LOAD_OURS = """
import time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
started = time.perf_counter()
import codetether_magics
shell.extension_manager.load_extension("codetether_magics")
print(time.perf_counter() - started)
"""
_LOAD_BASELINE = """
import time
started = time.perf_counter()
import IPython
print(time.perf_counter() - started)
"""


def _subprocess_seconds(code: str) -> tuple[float, str]:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    lines = done.stdout.strip().splitlines()
    return float(lines[-1]), "\n".join(lines[:-1]) + done.stderr


def _bench_load(repeats: int) -> dict[str, Any]:
    ours_runs = [_subprocess_seconds(_LOAD_OURS) for _ in range(repeats)]
    baseline = statistics.median(_subprocess_seconds(_LOAD_BASELINE)[0] for _ in range(repeats))
    ours = statistics.median(seconds for seconds, _ in ours_runs)
    silent = all(not printed.strip() for _, printed in ours_runs)
    return {
        "benchmark": "%load_ext codetether_magics (import + load, fresh process, median)",
        "ours": f"{ours * 1000:.0f} ms" + ("" if silent else " (printed output!)"),
        "baseline": f"{baseline * 1000:.0f} ms (import IPython)",
        "ratio": round(ours / baseline, 2),
        "target": f"< {LOAD_TARGET_S * 1000:.0f} ms, prints nothing",
        "ok": ours < LOAD_TARGET_S and silent,
    }


# Each measurement opens its own client (a fresh connection for both paths): on a reused
# keep-alive connection the loopback server's small writes can stall ~40 ms (Nagle against
# delayed ACK), which would make either side look slow by accident.


async def _first_answer_byte(server: ScriptedModelServer, turn: Turn, first_word: str) -> float:
    """Seconds until the bytes holding the answer's first word arrive, read with httpx alone."""
    server.enqueue(turn)
    body = {"model": "bench", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    first = 0.0
    async with httpx.AsyncClient(timeout=30.0) as client:
        started = time.perf_counter()
        async with client.stream("POST", server.openai_base_url + "/chat/completions", json=body,
                                 headers={"Authorization": f"Bearer {KEY}",
                                          "Accept": "text/event-stream"}) as response:
            received = b""
            async for data in response.aiter_raw():
                received += data
                if not first and first_word.encode() in received:
                    first = time.perf_counter() - started
    return first


async def _through_view(server: ScriptedModelServer, turn: Turn,
                        first_word: str) -> tuple[float, LiveView, int, float]:
    """Seconds to the first widget update showing the answer; the view; events; stream seconds."""
    server.enqueue(turn)
    view = LiveView(model="openai/bench")
    view.set_status("Waiting for openai/bench…")  # as the magic does, just before the run
    first: list[float] = []

    def shown(_change: Any) -> None:  # the answer may show in the live part or in a settled part
        if not first and first_word in view.shown_html():
            first.append(time.perf_counter())

    view.live.observe(shown, names="value")
    view.widget.observe(shown, names="children")
    events = [0]

    def on_event(event: Any) -> None:
        events[0] += 1
        view.on_event(event)

    session = Session()
    session.title = "bench"
    async with httpx.AsyncClient(timeout=30.0) as client:
        registry = openai_registry(server.openai_base_url, client)
        started = time.perf_counter()
        result = await run_prompt(session, "hi", [], on_event, registry, tools=[], save=False,
                                  title_model_call=False, max_steps=1)
        duration = time.perf_counter() - started
    view.finish(text=result.text, model="openai/bench", usage=session.usage, steps=1)
    return first[0] - started, view, events[0], duration


async def _bench_stream(quick: bool) -> list[dict[str, Any]]:
    repeats = 7 if quick else 21
    words = 300 if quick else 1000
    # Words 10 ms apart, as a model streams: the first update must come from the stream, not finish().
    short = Turn.text("Hello " + " ".join(f"w{i}" for i in range(20)), chunk_delay=0.01)
    long = Turn.text("Start " + " ".join(f"w{i}" for i in range(words)), chunk_delay=0.001)
    with ScriptedModelServer() as server:
        await _first_answer_byte(server, short, "Hello")  # warm up the code paths
        await _through_view(server, short, "Hello")
        raws, ourss = [], []
        for _ in range(repeats):  # interleaved, so drift on a busy machine hits both alike
            raws.append(await _first_answer_byte(server, short, "Hello"))
            ourss.append((await _through_view(server, short, "Hello"))[0])
        raw, ours = statistics.median(raws), statistics.median(ourss)
        _, view, events, duration = await _through_view(server, long, "Start")
    delay_ms = (ours - raw) * 1000
    allowed = int(duration * RATE) + 4  # 20/s over the stream (+1 at the edges), status, first event, finish
    return [
        {
            "benchmark": "first streamed answer byte -> first widget update (loopback, median)",
            "ours": f"{ours * 1000:.1f} ms to the widget ({delay_ms:.1f} ms after the bytes arrive)",
            "baseline": f"{raw * 1000:.1f} ms to the same bytes (httpx alone)",
            "ratio": round(ours / raw, 2),
            "target": f"< {FIRST_UPDATE_TARGET_MS:.0f} ms after the bytes",
            "ok": delay_ms < FIRST_UPDATE_TARGET_MS,
        },
        {
            "benchmark": f"widget updates for a {duration:.2f} s stream of {events} events",
            "ours": f"{view.updates} updates",
            "baseline": f"{events} (one per event)",
            "ratio": round(view.updates / events, 3),
            "target": f"<= {RATE}/s (+4) = {allowed}",
            "ok": view.updates <= allowed,
        },
    ]


def _bench_flush(repeats: int) -> dict[str, Any]:
    paragraph = "Some *Markdown* with `code`, a [link](https://example.org) and <b>raw html</b>. " * 12
    text = "\n\n".join(f"## Part {i}\n\n{paragraph}\n\n```python\nx = {i}\n```" for i in range(100))
    text = text[: 100 * 1024]

    def chunk(upto: int) -> Any:
        return type("TextChunk", (), {"type": "text_chunk", "text": text[:upto]})()

    def flush_at_the_end() -> float:
        """Stream the answer in 200 flushes; time the last one (the most expensive)."""
        state = ViewState("openai/bench")
        for upto in range(0, len(text), len(text) // 200):
            state.apply(chunk(upto))
            state.html()
        state.apply(chunk(len(text)))
        started = time.perf_counter()
        state.html()
        return time.perf_counter() - started

    def markdown_alone() -> float:
        started = time.perf_counter()
        markdown_to_html(text)
        return time.perf_counter() - started

    markdown_to_html("warm up")
    ours = statistics.median(flush_at_the_end() for _ in range(repeats))
    baseline = statistics.median(markdown_alone() for _ in range(repeats))
    return {
        "benchmark": f"one view flush while streaming, at {len(text) // 1024} KB of answer (median)",
        "ours": f"{ours * 1000:.2f} ms",
        "baseline": f"{baseline * 1000:.1f} ms (markdown-it rendering the whole answer)",
        "ratio": round(ours / baseline, 3),
        "target": f"< {FLUSH_TARGET_MS:.0f} ms",
        "ok": ours * 1000 < FLUSH_TARGET_MS,
    }


def run(quick: bool = False) -> list[dict[str, Any]]:
    rows = [_bench_load(3 if quick else 7)]
    rows += asyncio.run(_bench_stream(quick))
    rows.append(_bench_flush(3 if quick else 9))
    return rows
