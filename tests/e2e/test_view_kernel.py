"""The live view in a real kernel: updates reach the frontend coalesced, the end leaves one record,
no widget stays alive, and nbval passes twice in a row."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from codetether_magics.notebook.view import WIDGET_MIME

pytestmark = pytest.mark.slow

STREAM_CELL = """\
import asyncio, time
from IPython.display import clear_output, display
from codetether_magics import events as ev
from codetether_magics.notebook.view import LiveView, record_bundle

view = LiveView()
view.show()
view.set_status("Waiting for openai/gpt-4o…")
started = time.monotonic()
text = ""
for i in range(300):  # 300 tokens, a few milliseconds apart
    text += f"token{i} "
    view.on_event(ev.TextChunkEvent(text=text))
    await asyncio.sleep(0.002)
view.on_event(ev.TextChunkEvent(text=text + "and $x^2$ <b>bold?</b>"))
view.on_event(ev.UsageReportEvent(prompt_tokens=7, completion_tokens=300, duration_ms=3, model="openai/gpt-4o"))
view.on_event(ev.ToolCallStartEvent(tool_call_id="c1", name="python", arguments='{"code": "1 + 1"}'))
view.on_event(ev.ToolCallCompleteEvent(tool_call_id="c1", name="python", output="2", success=True, duration_ms=3))
view.finish()
elapsed = time.monotonic() - started
# Beyond one per 50 ms: the first chunk, the tool call start, a trailing flush and finish() go out at once.
assert view.updates <= elapsed / 0.05 + 4, (view.updates, elapsed)
shown = view.shown_html()
assert shown.index("token299") < shown.index("<code>python</code>") < shown.index("1 step")
view.close()
clear_output(wait=True)
display(record_bundle(view.state), raw=True)
"""

COUNT_CELL = """\
import ipywidgets
print(len(ipywidgets.widgets.widget._instances))
"""


class CountingClient(NotebookClient):
    """Counts the widget ``value`` updates the frontend side receives."""

    value_updates = 0

    def handle_comm_msg(self, outs, msg, cell_index):
        state = msg["content"].get("data", {}).get("state", {})
        if msg["msg_type"] == "comm_msg" and "value" in state:
            self.value_updates += 1
        return super().handle_comm_msg(outs, msg, cell_index)


def test_view_streams_coalesced_then_leaves_one_record_and_no_widget(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(STREAM_CELL), nbformat.v4.new_code_cell(COUNT_CELL)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    client = CountingClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()

    outputs = nb.cells[0].outputs  # nbclient applied clear_output: the view's display is gone
    assert [o["output_type"] for o in outputs] == ["display_data"]
    record = outputs[0]["data"]
    assert WIDGET_MIME not in record and set(record) == {"text/markdown", "text/plain"}
    assert "token299 and $x^2$ &lt;b>bold?&lt;/b>" in record["text/markdown"]
    assert "<code>python</code> · succeeded" in record["text/markdown"]
    assert record["text/markdown"].endswith("<sub>openai/gpt-4o · 307 tokens (7 in, 300 out)</sub>")
    assert nb.cells[1].outputs[0]["text"] == "0\n"  # every widget of the view was closed

    # 300 chunks reached the frontend as a handful of updates.
    assert 2 <= client.value_updates <= 40, client.value_updates

    # The executed notebook passes nbval twice: the widget-only display is skipped, the record is stable.
    path = tmp_path / "view.ipynb"
    nb.cells[1].outputs = []  # the count is checked above; nbval compares it against nothing
    nb.cells[1].metadata["tags"] = ["nbval-ignore-output"]
    nbformat.write(nb, path)
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", str(path)],
            cwd=tmp_path, capture_output=True, text=True, timeout=180,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "2 passed" in done.stdout


def test_errors_show_once_and_no_widget_survives_many_cells(tmp_path):
    """nbclient (which applies clear_output) over a real kernel and the scripted server: a failed
    run keeps what streamed as its record and says what happened once, in the error output;
    a run that fails before anything streamed leaves only that line; widgets alive after 30
    agent cells are as many as after 1 (none)."""
    from codetether_magics.testing import ScriptedModelServer, Turn
    from tests.support.kernel import kernel_env, make_notebook, new_api_key, run_notebook

    key = new_api_key()
    count = "import ipywidgets\nprint(len(ipywidgets.widgets.widget._instances))"
    sources = ["%load_ext codetether_magics", "%%codetether\nfirst", count,
               "%%codetether\nfails after a tool call", "%%codetether\nfails at once", "%%codetether\ncut off",
               *[f"%%codetether\nq{i}" for i in range(30)], count]
    turns = [Turn.text("one", usage=(2, 1)), Turn.text("title"),
             Turn.tool_call("python", {"code": "x = 1"}), Turn.error(400, "bad request: *no*"),
             Turn.error(400, "refused outright"),
             Turn.dropped("partial answer", after_chunks=2),
             *[Turn.text(f"a{i}") for i in range(30)]]
    nb = make_notebook(*sources)
    for index in (3, 4):
        nb.cells[index].metadata["tags"] = ["raises-exception"]
    with ScriptedModelServer(turns, api_key=key) as server:
        executed = run_notebook(nb, tmp_path, kernel_env(tmp_path, server, key), timeout=120)
        assert server.errors == []
    cells = executed.cells
    for cell in cells:
        assert not [o for o in cell.outputs if WIDGET_MIME in o.get("data", {})]
    assert cells[2].outputs[0]["text"] == "0\n" and cells[-1].outputs[0]["text"] == "0\n"

    after_tool = cells[3].outputs
    assert [o["output_type"] for o in after_tool] == ["display_data", "error"]
    assert "<code>python</code> · denied" in after_tool[0]["data"]["text/markdown"]
    assert "bad request" not in str(after_tool[0]["data"])  # the error is in one place only ...
    assert len(after_tool[1]["traceback"]) == 1 and "bad request: *no*" in after_tool[1]["traceback"][0]

    at_once = cells[4].outputs  # ... and nothing streamed: no record at all, just the line
    assert [o["output_type"] for o in at_once] == ["error"] and "refused outright" in at_once[0]["traceback"][0]

    cut = cells[5].outputs
    assert [o["output_type"] for o in cut] == ["display_data"]
    assert cut[0]["data"]["text/plain"].startswith("partial") and cut[0]["data"]["text/plain"].count("cut off") == 1
    assert key not in json.dumps([c.outputs for c in cells])
