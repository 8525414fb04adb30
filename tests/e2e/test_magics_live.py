"""The live path at the message level: a real kernel (jupyter_client), the scripted model server.

Proves what nbclient cannot show: the widget updates stream while the cell runs (before its
execute_reply), an interrupt mid-stream stops the run within a second and keeps what
streamed in the transcript, the kernel stays usable, and an Approve click made while the
cell runs reaches it (JupyterLab sets JPY_SESSION_NAME, so the magic asks instead of refusing).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from codetether_magics.testing import ScriptedModelServer, Turn
from tests.support.kernel import KernelRun, LiveKernel, kernel_env, new_api_key

pytestmark = pytest.mark.slow

STORY = " ".join(f"word{i}" for i in range(60))
PARTIAL = "Partial answer before the model goes quiet"
INTERRUPT_LIMIT = 1.0  # seconds: an interrupt must stop the run within a second


def _html_values(run: KernelRun) -> list[str]:
    return [m["content"]["data"]["state"].get("value", "") for _, m in run.widget_updates()]


def _date(message: dict) -> str:
    return str(message["header"]["date"])


def _button(run: KernelRun, description: str) -> str | None:
    for _, message in run.of_type("comm_open"):
        state = message["content"].get("data", {}).get("state", {})
        if state.get("_model_name") == "ButtonModel" and state.get("description") == description:
            return message["content"]["comm_id"]
    return None


def _click(kernel: LiveKernel, comm_id: str) -> None:
    content = {"comm_id": comm_id, "data": {"method": "custom", "content": {"event": "click"}}}
    kernel.kc.shell_channel.send(kernel.kc.session.msg("comm_msg", content))


def test_streams_live_interrupts_fast_and_asks_for_approval(tmp_path: Path):
    key = new_api_key()
    notebook = tmp_path / "live.ipynb"
    notebook.write_text("{}")
    turns = [
        Turn.text(STORY, chunk_delay=0.02),
        Turn.text("Story title"),
        Turn.hang(text=PARTIAL),
        Turn.text("Yes, still here."),
        Turn.tool_call("python", {"code": "approved_value = 7"}),
        Turn.text("It ran.", expect_tool_result="(no output)"),
        Turn.tool_call("python", {"code": "denied_value = 1"}),
        Turn.text("Understood.", expect_tool_result="did not approve"),
        Turn.tool_call("python", {"code": "import time\nprint('sleeping', flush=True)\ntime.sleep(60)"}),
    ]
    with ScriptedModelServer(turns, api_key=key) as server:
        env = kernel_env(tmp_path, server, key, JPY_SESSION_NAME=str(notebook))
        with LiveKernel(tmp_path, env) as kernel:
            assert kernel.execute("%load_ext codetether_magics").stream_text() == ""
            _streams_before_the_reply(kernel)
            _interrupt_mid_stream(kernel, tmp_path / "live.codetether.json")
            _approve_while_the_cell_runs(kernel)
            _interrupt_blocking_tool_code(kernel)
            assert key not in kernel.seen_json()  # no output, widget state or error carries the key
        assert server.errors == []
    assert key not in (tmp_path / "live.codetether.json").read_text()


def _streams_before_the_reply(kernel: LiveKernel) -> None:
    run = kernel.execute("%%codetether\nTell me a long story.")
    assert run.reply["content"]["status"] == "ok"
    updates = run.widget_updates()
    values = _html_values(run)
    # Many partial states, each sent before the cell's execute_reply ...
    partial = [v for v in values if "word10" in v and "word59" not in v]
    assert partial, values
    assert all(_date(m) < _date(run.reply) for _, m in updates)
    # ... spread over the stream (60 words at 20 ms), yet coalesced to ~20 updates a second.
    assert updates[-1][0] - updates[0][0] > 0.5
    print(f"{len(updates)} updates over {updates[-1][0] - updates[0][0]:.2f} s")
    assert len(updates) < 60
    final = run.of_type("display_data")[-1][1]["content"]["data"]
    assert final["text/markdown"].startswith(STORY + "\n\n<sub>") and final["text/plain"].startswith(STORY)
    assert run.of_type("clear_output"), "the live view is replaced by the record"


def _interrupt_mid_stream(kernel: LiveKernel, transcript: Path) -> None:
    msg_id = kernel.start("%%codetether\nTake your time.")
    seen = kernel.collect(msg_id, until=lambda run: any(PARTIAL in v for v in _html_values(run)))
    started = time.monotonic()
    kernel.interrupt()
    rest = kernel.collect(msg_id, timeout=10)
    elapsed = rest.reply_time - started
    print(f"interrupt took {elapsed:.3f} s")
    assert elapsed < INTERRUPT_LIMIT, f"the interrupt took {elapsed:.2f} s"
    assert rest.reply["content"]["status"] == "error"
    assert rest.reply["content"]["ename"] == "KeyboardInterrupt"
    errors = [m["content"] for _, m in rest.of_type("error")]
    assert len(errors) == 1 and len(errors[0]["traceback"]) == 1  # one line says what happened
    assert errors[0]["traceback"][0] == "Stopped by the user: what it said so far is saved in live.codetether.json"
    final = [m["content"]["data"] for _, m in seen.of_type("display_data") + rest.of_type("display_data")][-1]
    assert PARTIAL in final["text/plain"]  # the record: what streamed, not an error
    assert "Error" not in json.dumps(final) and "Interrupted" not in json.dumps(final)
    # What streamed is in the transcript beside the notebook.
    saved = json.loads(transcript.read_text())
    assert saved["messages"][-1]["role"] == "assistant" and PARTIAL in json.dumps(saved["messages"][-1])
    # The kernel is fine: plain code and another agent cell both run.
    assert kernel.execute("print(1 + 1)").stream_text() == "2\n"
    again = kernel.execute("%%codetether\nStill there?")
    assert again.reply["content"]["status"] == "ok"
    assert again.of_type("display_data")[-1][1]["content"]["data"]["text/plain"].startswith("Yes, still here.")


def _approve_while_the_cell_runs(kernel: LiveKernel) -> None:
    msg_id = kernel.start("%%codetether\nSet approved_value.")
    seen = kernel.collect(msg_id, until=lambda run: _button(run, "Approve") is not None)
    _click(kernel, _button(seen, "Approve"))
    rest = kernel.collect(msg_id, timeout=30)
    assert rest.reply["content"]["status"] == "ok"
    assert rest.of_type("display_data")[-1][1]["content"]["data"]["text/plain"].startswith(
        "[python: succeeded]\n\nIt ran.")
    assert kernel.execute("print(approved_value)").stream_text() == "7\n"

    msg_id = kernel.start("%%codetether\nSet denied_value.")
    seen = kernel.collect(msg_id, until=lambda run: _button(run, "Deny") is not None)
    _click(kernel, _button(seen, "Deny"))
    rest = kernel.collect(msg_id, timeout=30)
    assert rest.of_type("display_data")[-1][1]["content"]["data"]["text/plain"].startswith(
        "[python: denied]\n\nUnderstood.")  # a denial reads as denied, not failed
    assert kernel.execute("print('denied_value' in globals())").stream_text() == "False\n"


def _interrupt_blocking_tool_code(kernel: LiveKernel) -> None:
    """The model's code blocks the event loop (time.sleep): the interrupt must still stop it."""
    msg_id = kernel.start("%%codetether --allow python\nWait a minute.")
    kernel.collect(msg_id, until=lambda run: any("sleeping" in v for v in _html_values(run)))  # code, highlighted
    time.sleep(0.2)  # the view shows the call just before the code starts sleeping
    started = time.monotonic()
    kernel.interrupt()
    rest = kernel.collect(msg_id, timeout=10)
    assert rest.reply_time - started < INTERRUPT_LIMIT
    assert rest.reply["content"]["ename"] == "KeyboardInterrupt"
    assert kernel.execute("print('usable')").stream_text() == "usable\n"
