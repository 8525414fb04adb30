"""``%%codetether`` in real notebooks: nbclient, a real ipykernel, the scripted loopback model server.

One notebook exercises every option and proves each one reaches the request or the loop
(the server checks each request against the turn's ``expect``); a second notebook in a new
kernel resumes the transcript beside the notebook; a third, with no provider configured,
replays it. The API key must appear nowhere: not in the executed notebooks, the transcript,
the exports or the data dir.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from codetether_magics.messages import Usage
from codetether_magics.notebook.view.record import format_cost
from codetether_magics.providers.pricing import cost_of
from codetether_magics.testing import ScriptedModelServer, Turn
from tests.support.kernel import kernel_env, make_notebook, new_api_key, run_notebook, text_of

pytestmark = pytest.mark.slow

WIDGET = "application/vnd.jupyter.widget-view+json"
PLOT = "%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\nplt.show()"
FIRST_PROMPT = "What is in {this} plot? It costs $5, see f'{x!r}'."

CELLS = {
    "load": "%load_ext codetether_magics",
    "reload": "%reload_ext codetether_magics",
    "plot": PLOT,
    "image": "# NBVAL_IGNORE_OUTPUT\n%%codetether -m openai/gpt-4o-mini -i last --max-steps 2\n" + FIRST_PROMPT,
    "refused": "%%codetether\nDefine x.",
    "allowed": "%%codetether --allow python\nDefine x now.",
    "x": "print(x)",
    "max_steps": "%%codetether --max-steps 1\nKeep looking.",
    "no_stream": "%%codetether --no-stream\nShort answer please.",
    "bad_option": "%%codetether --bogus\nhi",
    "bad_allow": "%%codetether --allow pyhton\nhi",
    "config_model": '%config CodeTether.model = "openai/gpt-4.1-nano"',
    "configured": "%%codetether\nWhich model?",
    "lines": "%codetether status\n%codetether usage\n%codetether title\n%codetether export md\n"
             "%codetether export json transcript-copy.json",
    "reset": "%reset -f",  # clears the user namespace: the agent cells must keep working
    "new": "%%codetether --new\nFresh start.",
    "list": "%codetether list",
    "autoawait_off": "%autoawait off",  # no top-level await: the cell magic runs on a worker thread
    "threaded": "%%codetether --no-stream\nFrom a thread?",
}

TURNS = [
    # image: -m, -i last and the exact prompt reach the request
    Turn.text("A rising curve.", usage=(11, 3), expect_model="gpt-4o-mini", expect_image=True,
              expect_user_text=FIRST_PROMPT),
    Turn.text("Plot question"),  # the first turn's title request
    # refused: nobody can approve in nbclient, the model is told how to allow it
    Turn.tool_call("python", {"code": "x = 41"}, expect_model="gpt-4o-mini"),  # the session keeps its model
    Turn.text("I could not run it.", expect_tool_result="re-run the cell with --allow python"),
    # allowed: the python tool runs in the user's namespace (a key it reads is redacted), then variables sees x
    Turn.tool_call("python", {"code": "import os\nx = 41\nprint('hello from the tool', x + 1)\n"
                                      "os.environ['OPENAI_API_KEY']"}),
    Turn.tool_call("variables", {}, expect_tool_result="stdout:\nhello from the tool 42\n\nvalue:\n'[redacted]'"),
    Turn.text("Done: x is 41.", expect_tool_result="x: int = 41"),
    # max_steps 1: the loop stops after one model call
    Turn.tool_call("variables", {}),
    # no_stream
    Turn.text("Short."),
    # configured: %config CodeTether.model reaches the request
    Turn.text("gpt-4.1-nano here.", expect_model="gpt-4.1-nano"),
    # new conversation (and its title request)
    Turn.text("Fresh.", expect_user_text="Fresh start."),
    Turn.text("Fresh title"),
    Turn.text("Thread answer.", expect_user_text="From a thread?"),
]


def _widget_html(nb: nbformat.NotebookNode) -> list[str]:
    """The values of every HTML widget nbclient saved with the notebook (the views' parts and footers)."""
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    return [w["state"]["value"] for w in state.values() if w.get("model_name") == "HTMLModel"]


def _footer(model: str, prompt: int, completion: int) -> str:
    """The record's footer line: model, tokens, and the cost at the price table's prices."""
    provider, _, local = model.partition("/")
    cost = cost_of(provider, local, Usage(prompt_tokens=prompt, completion_tokens=completion))
    tokens = f"{model} · {prompt + completion:,} tokens ({prompt:,} in, {completion:,} out)"
    return f"{tokens} · {format_cost(cost)}" if cost else tokens


def _cells(nb: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    return dict(zip(CELLS, nb.cells))


_NOTEBOOK_CONTEXT = re.compile(r"^\[Notebook context.*?\[End of the notebook context\.\]\n\n", re.S)


def _request_user_texts(request) -> list[str]:
    """The user messages' text, without the notebook context a live turn adds before the newest one."""
    return [_NOTEBOOK_CONTEXT.sub("", m["content"]) for m in request.body["messages"]
            if m["role"] == "user" and isinstance(m["content"], str)]


def _assert_no_key(key: str, folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            assert key not in path.read_text(errors="replace"), f"API key leaked into {path}"


def test_every_option_in_a_real_notebook_then_resume_and_replay(tmp_path: Path, isolated_environment: Path):
    key = new_api_key()
    nb = make_notebook(*CELLS.values())
    for name in ("bad_option", "bad_allow"):
        nb.cells[list(CELLS).index(name)].metadata["tags"] = ["raises-exception"]

    with ScriptedModelServer(TURNS, api_key=key) as server:
        executed = run_notebook(nb, tmp_path, kernel_env(tmp_path, server, key))
        requests = server.model_requests
        assert server.errors == []
        assert server.remaining == 0
    cells = _cells(executed)

    # Loading is silent (nbval compares stderr too), reloading as well.
    assert cells["load"].outputs == [] and cells["reload"].outputs == []

    # The image turn: a PNG data URL in the OpenAI request, the NBVAL line not sent.
    image_parts = [p for m in requests[0].body["messages"] if isinstance(m["content"], list) for p in m["content"]
                   if p.get("type") == "image_url"]
    assert len(image_parts) == 1 and image_parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert "NBVAL" not in json.dumps(requests[0].body)
    # The live view was cleared at the end (nbclient applies clear_output): one record stays, whose
    # footer counts the cell's own model call (not the title request after it).
    for cell in executed.cells:
        assert not [o for o in cell.outputs if WIDGET in o.get("data", {})], cell.source
    assert [o["data"] for o in cells["image"].outputs] == [{
        "text/markdown": f"A rising curve.\n\n<sub>{_footer('openai/gpt-4o-mini', 11, 3)}</sub>",
        "text/plain": f"A rising curve.\n\n{_footer('openai/gpt-4o-mini', 11, 3)}"}]
    assert _widget_html(executed), "the live views streamed"

    assert "I could not run it." in text_of(cells["refused"])
    assert "<code>python</code> · denied" in text_of(cells["refused"], "text/markdown")
    allowed = text_of(cells["allowed"], "text/markdown")
    assert "<code>python</code> · succeeded</summary>\n\n```python\nimport os\nx = 41\n" in allowed  # code as code
    assert "<code>variables</code> · succeeded" in allowed and "\n\nDone: x is 41.\n\n<sub>" in allowed
    assert text_of(cells["x"]).strip() == "41"  # the python tool ran in the user's namespace

    # --max-steps 1: one request for that cell, and the answer says why it stopped.
    assert "Stopped after 1 step (max_steps)" in text_of(cells["max_steps"], "text/markdown")
    # --no-stream: no widget, only the final bundle.
    assert [o["data"]["text/plain"] for o in cells["no_stream"].outputs] == ["Short.\n\nopenai/gpt-4o-mini"]

    for name, problem in (("bad_option", "unrecognized arguments: --bogus"), ("bad_allow", "unknown tool 'pyhton'")):
        shown = text_of(cells[name])
        assert problem in shown, shown
        if name == "bad_option":
            assert "Usage: %%codetether [-m MODEL]" in shown

    lines = text_of(cells["lines"])
    assert f"Transcript: {tmp_path / 'analysis.codetether.json'} (saved)" in lines
    assert "Model:      openai/gpt-4.1-nano (CodeTether.model)" in lines
    assert "Plot question" in lines  # the title
    assert "tokens: 11 prompt + 3 completion = 14 total" in lines  # the usage the server reported
    markdown = (tmp_path / "analysis.codetether.md").read_text()
    assert markdown.count("## User") == 6
    assert '**Tool call `python`**\n\n```json\n{\n  "code": "x = 41"\n}\n```' in markdown  # arguments indented
    exported = json.loads((tmp_path / "transcript-copy.json").read_text())
    assert [m["role"] for m in exported["messages"]][:2] == ["user", "assistant"]

    assert [o["data"]["text/plain"] for o in cells["threaded"].outputs] == ["Thread answer.\n\nopenai/gpt-4.1-nano"]

    # --new: the request carries no history, and the old conversation stays reachable.
    assert _request_user_texts(requests[-3]) == ["Fresh start."]
    listing = text_of(cells["list"])
    old_id = exported["id"]
    assert old_id in listing and "Fresh title" in listing
    assert (isolated_environment / "sessions" / f"{old_id}.json").exists()

    transcript = json.loads((tmp_path / "analysis.codetether.json").read_text())
    assert transcript["title"] == "Fresh title" and transcript["metadata"]["notebook"] == "analysis.ipynb"

    live_record = _resume_in_a_new_kernel(tmp_path, key)
    _replay_without_a_provider(tmp_path, live_record)
    _assert_no_key(key, tmp_path)


def _resume_in_a_new_kernel(folder: Path, key: str) -> list:
    turns = [Turn.text("Continuing where we were.", usage=(30, 4), expect_user_text="And now?")]
    with ScriptedModelServer(turns, api_key=key) as server:
        nb = make_notebook("%load_ext codetether_magics", "%%codetether\nAnd now?", "%codetether status")
        executed = run_notebook(nb, folder, kernel_env(folder, server, key))
        assert server.errors == []
        (request,) = server.model_requests
    # The new kernel continued the conversation saved beside the notebook.
    assert _request_user_texts(request) == ["Fresh start.", "From a thread?", "And now?"]
    assert "Messages:   6;" in text_of(executed.cells[2])
    return executed.cells[1].outputs


def _replay_without_a_provider(folder: Path, live_record: list) -> None:
    nb = make_notebook("%load_ext codetether_magics", "%%codetether\nAnd now?")
    executed = run_notebook(nb, folder, kernel_env(folder))  # no OPENAI_* at all
    # The replay leaves the live run's record, byte for byte: the recorded model and tokens included.
    assert executed.cells[1].outputs == live_record
    assert live_record[0]["data"]["text/plain"] == \
        f"Continuing where we were.\n\n{_footer('openai/gpt-4.1-nano', 30, 4)}"
