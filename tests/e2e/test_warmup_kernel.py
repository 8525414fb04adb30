"""In a real kernel: ``%load_ext`` stays silent and the first agent cell is as fast as later ones.

The warm-up imports run on the kernel's loop while it is idle; here they are also raced
against a user's own imports queued right behind ``%load_ext`` (as "Run All" does).
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import pytest

from codetether_magics.notebook.warmup import WARM_MODULES
from codetether_magics.testing import ScriptedModelServer, Turn
from tests.support.kernel import LiveKernel, kernel_env

pytestmark = pytest.mark.slow

ALL_WARM = f"import sys; print(all(m in sys.modules for m in {list(WARM_MODULES)!r}))"


def first_text_seconds(kernel: LiveKernel, code: str, word: str) -> float:
    """From sending ``code`` to the first iopub message showing ``word`` (the live view's update)."""
    msg_id = kernel.start(code)
    started = time.monotonic()
    shown = kernel.collect(msg_id, 60, until=lambda run: word in json.dumps(run.messages[-1][1]["content"]))
    kernel.collect(msg_id, 60)  # the rest, until idle
    return shown.messages[-1][0] - started


def test_load_is_silent_and_the_warm_up_ends_while_the_kernel_is_idle(tmp_path: Path):
    with LiveKernel(tmp_path, kernel_env(tmp_path)) as kernel:
        loaded = kernel.execute("%load_ext codetether_magics")
        assert loaded.reply["content"]["status"] == "ok"
        assert loaded.of_type("stream", "display_data", "error") == []  # loading printed nothing
        deadline = time.monotonic() + 20
        while kernel.execute(ALL_WARM).stream_text().strip() != "True":
            assert time.monotonic() < deadline, "the warm-up did not finish"
            time.sleep(0.2)


def test_cells_queued_behind_load_ext_race_the_warm_up_without_harm(tmp_path: Path):
    with ScriptedModelServer([Turn.text("Answer while warming up"), Turn.text("A title")]) as server:
        with LiveKernel(tmp_path, kernel_env(tmp_path, server)) as kernel:
            ids = [kernel.start("%load_ext codetether_magics"),  # all sent at once, as Run All does
                   kernel.start("import json, email.mime.text, http.client, pydantic, httpx, ipywidgets\n"
                                "%reload_ext codetether_magics"),
                   kernel.start("%%codetether\nhello")]
            runs = [kernel.collect(msg_id, 60) for msg_id in ids]
            for run in runs:
                assert run.reply["content"]["status"] == "ok", run.outputs_json()
                assert [m for _, m in run.of_type("stream") if m["content"]["name"] == "stderr"] == []
            assert "Answer while warming up" in runs[2].outputs_json()
            assert kernel.execute(ALL_WARM).stream_text().strip() == "True"


def test_the_first_agent_cell_streams_as_fast_as_later_ones(tmp_path: Path):
    turns = [Turn.text(f"Answer{i} and a few more words", chunk_delay=0.005) for i in range(5)]
    with ScriptedModelServer([turns[0], Turn.text("A title"), *turns[1:]]) as server:
        with LiveKernel(tmp_path, kernel_env(tmp_path, server)) as kernel:
            kernel.execute("%load_ext codetether_magics")
            time.sleep(2.0)  # someone typing the first prompt
            times = [first_text_seconds(kernel, f"%%codetether\nquestion {i}", f"Answer{i}") for i in range(5)]
    first, later = times[0], statistics.median(times[1:])
    # Without the warm-up the first cell paid ~0.5 s of imports before its first token (later: ~15 ms).
    assert first <= 2 * later + 0.03, (first, times)
