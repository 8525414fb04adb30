"""The notebook context, the cell tools and the fix flow in real kernels.

nbclient against the scripted server speaking Anthropic; jupyter_client (a frontend's execute
requests) against it speaking OpenAI, reading the ``set_next_input`` payload of the execute reply.
(nbval, which keeps no history, runs notebooks/fix.ipynb: its numbers come from our own count.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codetether_magics.testing import ScriptedModelServer, Turn
from tests.support.kernel import LiveKernel, kernel_env, make_notebook, new_api_key, run_notebook, text_of

pytestmark = pytest.mark.slow

PNG_CELL = ("import base64\nfrom IPython.display import Image, display\n"
            "display(Image(data=base64.b64decode('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4"
            "z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg==')))")


def _user_texts(body: dict) -> list[str]:
    texts = []
    for message in body["messages"]:
        if message["role"] == "user":
            content = message["content"]
            texts.append(content if isinstance(content, str) else
                         "".join(b.get("text", "") for b in content if b.get("type") == "text"))
    return texts


def test_nbclient_context_tools_and_fix_in_anthropic(tmp_path: Path):
    key = new_api_key()
    turns = [
        Turn.tool_call("cells", {"start": 3, "end": 3}),
        Turn.tool_call("cell_image", {"cell": 4}, expect_tool_result="Error: KeyError: 'price'"),
        Turn.text("A red dot; prices has no 'price'.", expect_image=True),
        Turn.text("Title"),
        Turn.tool_call("insert_cell", {"source": "total = prices.get('price', 0)"},
                       expect_user_text="Cell 3 raised KeyError: 'price'"),
        Turn.text("The key is missing; I proposed a fix below."),
    ]
    cells = ["%load_ext codetether_magics", "prices = {'apple': 3}\nprint('loaded', len(prices))",
             "total = prices['price']", PNG_CELL, "%%codetether\nWhat went wrong, and what did I plot?",
             "%codetether fix", "x = 1"]
    with ScriptedModelServer(turns, api_key=key) as server:
        env = kernel_env(tmp_path, None, ANTHROPIC_API_KEY=key, ANTHROPIC_BASE_URL=server.anthropic_base_url,
                         CODETETHER_MODEL="anthropic/claude-sonnet-4-20250514")
        nb = run_notebook(make_notebook(*cells), tmp_path, env, allow_errors=True, timeout=120)
        assert server.errors == []
        requests = [r.body for r in server.requests]
    assert "The key is missing" in text_of(nb.cells[5], "text/markdown")
    first = _user_texts(requests[0])[-1]
    # numbered as In[N]: nbclient keeps history (nbval does not, and counts the same from the loading cell)
    assert "Cell 2:\n```python\nprices = {'apple': 3}" in first and "loaded 1" in first
    assert "Cell 3:" in first and "Error: KeyError: 'price'" in first
    assert "[Cell 4 displayed an image: cell_image" in first
    assert "- new: prices: dict len=1" in first and "display" not in first.split("Variables")[1]  # imports are not news
    result = next(b for m in requests[2]["messages"] for b in m["content"] if b.get("type") == "tool_result"
                  and b["tool_use_id"] == requests[2]["messages"][-2]["content"][-1]["id"])
    assert [b["type"] for b in result["content"]] == ["text", "image"]
    fix = _user_texts(requests[4])[-1]
    assert "Cell 3 raised KeyError: 'price'" in fix and "total = prices['price']" in fix
    assert "ipykernel_" not in fix  # no per-kernel temp file names: replay finds the turn on any machine
    saved = json.loads((tmp_path / "analysis.codetether.json").read_text())
    user_messages = [m for m in saved["messages"] if m["role"] == "user"]
    assert user_messages[0]["content"] == [{"type": "text", "text": "What went wrong, and what did I plot?"}]
    assert "[Notebook context" not in json.dumps(saved)


def test_jupyter_client_insert_cell_payload_and_history_numbers_in_openai(tmp_path: Path):
    key = new_api_key()
    turns = [
        Turn.tool_call("insert_cell", {"source": "# a note\nThe fix.", "cell_type": "markdown"}),
        Turn.tool_call("insert_cell", {"source": "again"}, expect_tool_result="%%markdown"),
        Turn.text("Proposed.", expect_tool_result="a cell was already inserted during this run"),
        Turn.text("Title"),
    ]
    with ScriptedModelServer(turns, api_key=key) as server, \
            LiveKernel(tmp_path, kernel_env(tmp_path, server, key)) as kernel:
        kernel.execute("%load_ext codetether_magics")
        kernel.execute("print('hello from cell two')")
        run = kernel.execute("%%codetether --no-stream\nAdd a note.", timeout=120)
        assert run.reply["content"]["status"] == "ok"
        payload = run.reply["content"]["payload"]
        assert payload == [{"source": "set_next_input", "text": "%%markdown\n# a note\nThe fix.", "replace": False}]
        nothing = kernel.execute("%codetether fix")  # no exception in this kernel: one line, no model call
        assert nothing.stream_text().strip().startswith("CodeTether: no exception in this kernel")
        assert server.errors == []
        requests = [r.body for r in server.requests]
    assert len(requests) == 4
    context = _user_texts(requests[0])[-1]
    assert "Cell 2:\n```python\nprint('hello from cell two')" in context  # the execution count, as In[2]
