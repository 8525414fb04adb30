"""The notebook context's cost, against the request it rides in (same run).

200 cells run in a real IPython shell with the extension's cell record listening (prints,
a KeyError every 20th cell, new variables); then the context for a turn that has seen none
of them is built (``NotebookContext.for_turn`` at the default 2,000 tokens), against one
streamed model request carrying that context (``run_prompt`` with the real OpenAI provider
and the scripted loopback server, one step, no tools).

    python -m benchmarks nbcontext [--quick]
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import statistics
import time
from typing import Any

import httpx
from IPython.core.interactiveshell import InteractiveShell

from codetether_magics.agent.loop import run_prompt
from codetether_magics.notebook.cell_log import CellLog
from codetether_magics.notebook.context import NotebookContext
from codetether_magics.notebook.images import ImageCapture
from codetether_magics.session.session import Session
from codetether_magics.testing import ScriptedModelServer, Turn

from ._loopback import openai_registry
from ._rows import ms_target_row

CELLS = 200
TARGET_MS = 5.0


def _notebook_with_cells(count: int) -> tuple[NotebookContext, Any]:
    shell = InteractiveShell.instance()
    capture, log = ImageCapture(shell), CellLog(shell)
    capture.listener = log
    shell.user_ns["_bench_capture"] = capture
    shell.run_cell("_bench_capture.register()")
    context = NotebookContext(log, shell)
    with contextlib.redirect_stdout(_Sink()), contextlib.redirect_stderr(_Sink()):  # keep the table clean
        for index in range(count):
            code = (f"rows_{index} = list(range({index}))\nprint('cell {index}:', len(rows_{index}), 'rows')"
                    if index % 20 else f"lookup = {{'a': 1}}\nlookup['missing_{index}']")
            shell.run_cell(code, store_history=True)
    return context, capture


class _Sink(io.StringIO):
    """Swallows the cells' output; a Python subclass, so the cell record can tee its ``write`` as in a kernel."""


async def _request_seconds(text: str, repeats: int) -> float:
    times = []
    with ScriptedModelServer() as server:
        async with httpx.AsyncClient(timeout=30.0) as client:
            registry = openai_registry(server.openai_base_url, client)
            for _ in range(repeats):
                server.enqueue(Turn.text("An answer of a few words."))
                session = Session()
                session.title = "bench"
                started = time.perf_counter()
                await run_prompt(session, "What happened?", [], None, registry, tools=[], save=False,
                                 title_model_call=False, max_steps=1, notebook_context=text)
                times.append(time.perf_counter() - started)
    return statistics.median(times)


def run(quick: bool = False) -> list[dict[str, Any]]:
    repeats = 5 if quick else 21
    context, capture = _notebook_with_cells(CELLS)
    try:
        context.for_turn(2000)  # warm up
        builds = []
        for _ in range(repeats):
            started = time.perf_counter()
            built = context.for_turn(2000)
            builds.append(time.perf_counter() - started)
    finally:
        capture.unregister()
    ours = statistics.median(builds)
    request = asyncio.run(_request_seconds(built.text, repeats))
    return [ms_target_row(
        f"notebook context for {CELLS} executed cells, 2,000 tokens (median)",
        ours=f"{ours * 1000:.2f} ms ({len(built.text):,} characters)",
        baseline=f"{request * 1000:.1f} ms (the streamed loopback request it rides in)",
        ratio=round(ours / request, 3),
        measured_ms=ours * 1000, target_ms=TARGET_MS,
    )]
