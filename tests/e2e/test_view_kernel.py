"""The live view in a real kernel: updates reach the frontend coalesced, and nbval passes twice."""

from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from codetether_magics.notebook.view import VIEW_HTML, VIEW_TEXT, WIDGET_MIME, final_bundle

pytestmark = pytest.mark.slow

STREAM_CELL = """\
import asyncio, time
from codetether_magics import events as ev
from codetether_magics.notebook.view import LiveView, final_bundle
from IPython.display import display

view = LiveView(model="openai/gpt-4o")
view.show()
view.set_status("Waiting for openai/gpt-4o…")
started = time.monotonic()
text = ""
for i in range(300):  # 300 tokens, a few milliseconds apart
    text += f"token{i} "
    view.on_event(ev.TextChunkEvent(text=text))
    await asyncio.sleep(0.002)
view.on_event(ev.ToolCallStartEvent(tool_call_id="c1", name="python", arguments='{"code": "1 + 1"}'))
view.on_event(ev.ToolCallCompleteEvent(tool_call_id="c1", name="python", output="2", success=True, duration_ms=3))
view.finish(text=text, model="openai/gpt-4o", usage=None, steps=2)
elapsed = time.monotonic() - started
# Beyond one per 50 ms: the first chunk, the tool call start, a trailing flush and finish() go out at once.
assert view.updates <= elapsed / 0.05 + 4, (view.updates, elapsed)
display(final_bundle("The answer is **2** <b>bold?</b>"), raw=True)
"""


class CountingClient(NotebookClient):
    """Counts the widget ``value`` updates the frontend side receives."""

    value_updates = 0

    def handle_comm_msg(self, outs, msg, cell_index):
        state = msg["content"].get("data", {}).get("state", {})
        if msg["msg_type"] == "comm_msg" and "value" in state:
            self.value_updates += 1
        return super().handle_comm_msg(outs, msg, cell_index)


def test_view_streams_coalesced_and_leaves_a_fixed_output(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(STREAM_CELL)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    client = CountingClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()

    outputs = nb.cells[0].outputs
    assert [o["output_type"] for o in outputs] == ["display_data", "display_data"]
    widget, final = outputs
    assert widget["data"]["text/plain"] == VIEW_TEXT and widget["data"]["text/html"] == VIEW_HTML
    model_id = widget["data"][WIDGET_MIME]["model_id"]
    assert dict(final["data"]) == final_bundle("The answer is **2** <b>bold?</b>")
    assert "&lt;b>" in final["data"]["text/markdown"]

    # 300 chunks reached the frontend as a handful of updates, and the last state is complete.
    assert 2 <= client.value_updates <= 40, client.value_updates
    states = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    view_box = states[model_id]["state"]  # the displayed view is the saved VBox
    parts = [states[child.removeprefix("IPY_MODEL_")]["state"] for child in view_box["children"]]
    shown = "".join(part.get("value", "") for part in parts)
    assert shown.index("token299") < shown.index("<code>python</code>") < shown.index("2 steps")
    assert "openai/gpt-4o · " in shown

    # The executed notebook passes nbval: the widget's text and the final bundle are stable.
    path = tmp_path / "view.ipynb"
    nbformat.write(nb, path)
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", str(path)],
            cwd=tmp_path, capture_output=True, text=True, timeout=180,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "1 passed" in done.stdout
