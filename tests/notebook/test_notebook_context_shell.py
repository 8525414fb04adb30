"""The notebook context and the cell tools in a real IPython shell, against the scripted model
server in both protocols: what each request carries, and what the transcript keeps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

from codetether_magics import load_ipython_extension, unload_ipython_extension
from codetether_magics.notebook.context import FOOTER, HEADER
from codetether_magics.notebook.fix import NO_EXCEPTION
from codetether_magics.testing import ScriptedModelServer, Turn

KEY = "sk-test-context-0123456789abcdef"
PROTOCOLS = ["openai", "anthropic"]


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    ip = InteractiveShell.instance()
    monkeypatch.setattr(ip.display_formatter, "active_types", ["text/plain", "text/html", "image/png"])
    load_ipython_extension(ip)
    yield ip
    unload_ipython_extension(ip)
    ip.config.pop("CodeTether", None)
    for name in ("prices", "total", "n", "png", "secret_note"):
        ip.user_ns.pop(name, None)


@pytest.fixture(params=PROTOCOLS)
def server(request, monkeypatch: pytest.MonkeyPatch):
    with ScriptedModelServer(api_key=KEY) as server:
        if request.param == "openai":
            monkeypatch.setenv("OPENAI_API_KEY", KEY)
            monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
            monkeypatch.setenv("CODETETHER_MODEL", "openai/gpt-4o-mini")
        else:
            monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
            monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_base_url)
            monkeypatch.setenv("CODETETHER_MODEL", "anthropic/claude-sonnet-4-20250514")
        server.protocol = request.param
        yield server
        assert server.errors == []


def png_bytes(size: tuple[int, int] = (4, 3)) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def user_texts(server, request) -> list[str]:
    """The text of every user message of one recorded request, in its protocol's shape."""
    texts = []
    for message in request.body["messages"]:
        if message["role"] != "user":
            continue
        content = message["content"]
        if isinstance(content, str):
            texts.append(content)
        else:
            texts.append("".join(b.get("text", "") for b in content if b.get("type") == "text"))
    return texts


def transcript(tmp_path: Path) -> dict:
    [path] = list(tmp_path.glob("*.codetether.json"))
    return json.loads(path.read_text())


def test_each_turn_sees_the_cells_since_the_last_one_and_the_transcript_keeps_none(shell, server, tmp_path):
    server.enqueue(*[Turn.text("Price is missing."), Turn.text("Title"), Turn.text("Now fine.")])
    shell.run_cell("prices = {'apple': 3}\nprint('loaded', len(prices), 'rows')", store_history=True)
    result = shell.run_cell("total = prices['price']", store_history=True)
    assert isinstance(result.error_in_exec, KeyError)
    assert shell.run_cell("%%codetether\nWhy did that fail?").success
    shell.run_cell("n = 7", store_history=True)
    assert shell.run_cell("%%codetether\nAnd now?").success

    first, _title, second = server.requests
    context = user_texts(server, first)[-1]
    assert context.startswith(HEADER)
    assert "print('loaded', len(prices), 'rows')" in context and "loaded 1 rows" in context
    assert "Error: KeyError: 'price'" in context and "total = prices['price']" in context
    assert "- new: prices: dict len=1" in context
    assert context.endswith(f"{FOOTER}\n\nWhy did that fail?")
    later = user_texts(server, second)
    assert "KeyError" not in later[-1] and "n = 7" in later[-1] and "- new: n: int = 7" in later[-1]
    assert later[0] == "Why did that fail?"  # the earlier turn goes back as the user wrote it
    # Nothing of the context is stored: the transcript holds the prompts as written.
    saved = [m for m in transcript(tmp_path)["messages"] if m["role"] == "user"]
    assert [[p["text"] for p in m["content"]] for m in saved] == [["Why did that fail?"], ["And now?"]]


def test_context_is_capped_oldest_cells_dropped_with_a_note(shell, server):
    server.enqueue(*[Turn.text("ok"), Turn.text("Title")])
    shell.run_cell("%config CodeTether.context_cells_tokens = 300")
    for index in range(12):
        shell.run_cell(f"print('row {index} ' + 'x' * 150)", store_history=True)
    assert shell.run_cell("%%codetether\nSummarise.").success
    context = user_texts(server, server.requests[0])[-1]
    assert "earlier cells left out to stay within 300 tokens; the `cells` tool shows them." in context
    assert "row 11 " in context and "row 0 " not in context
    assert len(context.encode()) <= 300 * 4 + len("Summarise.") + 8


def test_zero_tokens_sends_no_context(shell, server):
    server.enqueue(*[Turn.text("ok"), Turn.text("Title")])
    shell.run_cell("%config CodeTether.context_cells_tokens = 0")
    shell.run_cell("n = 1", store_history=True)
    assert shell.run_cell("%%codetether\nHi.").success
    assert user_texts(server, server.requests[0]) == ["Hi."]


def test_cell_image_reaches_the_model_as_an_image_beside_the_tool_result(shell, server, tmp_path):
    import base64

    PNG = png_bytes()
    shell.user_ns["png"] = PNG
    plot = shell.run_cell("from IPython.display import Image, display\ndisplay(Image(data=png))", store_history=True)
    server.enqueue(*[Turn.tool_call("cell_image", {"cell": "last"}), Turn.text("A dot."), Turn.text("Title")])
    assert shell.run_cell("%%codetether\nWhat does my plot show?").success
    first, second, _ = server.requests
    assert f"[Cell {plot.execution_count} displayed an image: cell_image" in user_texts(server, first)[-1]
    data = base64.b64encode(PNG).decode()
    if server.protocol == "anthropic":
        result = next(b for m in second.body["messages"] for b in m["content"] if b["type"] == "tool_result")
        assert result["content"][1] == {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                    "data": data}}
        assert result["content"][0]["text"].startswith(f"The image of cell {plot.execution_count} follows")
    else:
        roles = [m["role"] for m in second.body["messages"]]
        assert roles[-2:] == ["tool", "user"]  # the image right after the tool message
        image = second.body["messages"][-1]["content"][-1]
        assert image == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}
    tool_message = next(m for m in transcript(tmp_path)["messages"] if m["role"] == "tool")
    assert [p["type"] for p in tool_message["content"]] == ["tool_result", "image"]


def test_bad_tool_inputs_are_results_the_model_can_act_on(shell, server):
    shell.run_cell("n = 1", store_history=True)
    server.enqueue(*[
        Turn.tool_call("cells", {"start": 900, "end": 910}),
        Turn.tool_call("cell_image", {"cell": 1},
                       expect_tool_result="Error: cells: no executed cell in cells 900 to 910"),
        Turn.tool_call("insert_cell", {"source": "n = 2"},
                       expect_tool_result="displayed no PNG or JPEG image (cells with images: none yet)"),
        Turn.tool_call("insert_cell", {"source": "n = 3"}, expect_tool_result="Inserted a new code cell (1 line)"),
        Turn.text("Done.", expect_tool_result="a cell was already inserted during this run"),
        Turn.text("Title"),
    ])
    assert shell.run_cell("%%codetether\nLook around.").success
    assert shell.rl_next_input == "n = 2"  # the first insertion stands; nothing ran it
    assert shell.user_ns["n"] == 1


def test_fix_sends_the_last_exception_and_asks_for_insert_cell(shell, server, tmp_path, capsys):
    assert shell.run_cell("%codetether fix").success  # no exception yet: one line, no model call
    assert capsys.readouterr().out.strip() == NO_EXCEPTION and server.requests == []
    assert shell.run_cell("%%codetether --fix\nPlease.").success  # the cell form too
    assert capsys.readouterr().out.strip() == NO_EXCEPTION and server.requests == []
    shell.run_cell("prices = {'apple': 3}", store_history=True)
    failing = shell.run_cell("def total(d):\n    return d['price']\ntotal(prices)", store_history=True)
    server.enqueue(*[Turn.tool_call("insert_cell", {"source": "prices.get('price', 0)"}),
                    Turn.text("The key is missing; see the new cell."), Turn.text("Title")])
    assert shell.run_cell("%%codetether --fix\nKeep it short.").success
    prompt = transcript(tmp_path)["messages"][0]["content"][0]["text"]
    number = failing.execution_count
    assert prompt.startswith(f"Cell {number} raised KeyError: 'price'")
    assert f"  Cell {number}, line 3, in <module>\n    total(prices)" in prompt
    assert f"  Cell {number}, line 2, in total\n    return d['price']" in prompt
    assert "insert_cell" in prompt and prompt.endswith("Keep it short.")
    assert "/tmp/" not in prompt and "ipython-input" not in prompt  # the same text on every machine
    assert shell.rl_next_input == "prices.get('price', 0)"
    system = server.requests[0].body.get("system") or server.requests[0].body["messages"][0]["content"]
    assert "insert_cell" in json.dumps(system) and "`cells` shows earlier cells" in json.dumps(system)


def test_a_secret_printed_in_a_cell_never_reaches_the_model(shell, server, monkeypatch):
    monkeypatch.setenv("MY_SERVICE_API_KEY", "very-secret-value-123")
    server.enqueue(*[Turn.text("ok"), Turn.text("Title")])
    shell.run_cell("import os\nprint(os.environ['MY_SERVICE_API_KEY'])", store_history=True)
    assert shell.run_cell("%%codetether\nWhat did I print?").success
    body = json.dumps(server.requests[0].body)
    assert "very-secret-value-123" not in body and "[redacted]" in body
