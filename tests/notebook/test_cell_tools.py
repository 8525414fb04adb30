"""The cell record, the context builder and the cell tools' answers to bad input (a real IPython shell)."""

from __future__ import annotations

import re
import sys

import pytest
from IPython.core.interactiveshell import InteractiveShell

from codetether_magics.errors import ToolError
from codetether_magics.notebook.cell_log import TEXT_HEAD, CellLog, CellRecord, TextBuffer
from codetether_magics.notebook.cell_tools import DEFAULT_CELLS, cell_tools
from codetether_magics.notebook.context import NotebookContext, build_context, render_cell
from codetether_magics.notebook.images import ImageCapture
from codetether_magics.notebook.cell_rewrite import RUNNER_NAME, rewrite_codetether_cell


@pytest.fixture
def shell(monkeypatch):
    ip = InteractiveShell.instance()
    monkeypatch.setattr(ip.display_formatter, "active_types", ["text/plain", "image/png"])
    capture, log = ImageCapture(ip, max_bytes=200), CellLog(ip)
    capture.listener = log
    ip.user_ns["_test_capture"] = capture
    ip.run_cell("_test_capture.register()")
    yield ip, capture, log
    capture.unregister()
    log.untee_streams()
    for name in ("a", "b", "big", "small"):
        ip.user_ns.pop(name, None)


def tools(shell):
    ip, capture, log = shell
    return {tool.name: tool for tool in cell_tools(log, capture, ip)}


async def test_cells_range_defaults_and_bad_ranges(shell):
    ip, _, log = shell
    assert await tools(shell)["cells"].handler({}) == "No cells have run in this kernel since the extension was loaded."
    for index in range(DEFAULT_CELLS + 3):
        ip.run_cell(f"a = {index}", store_history=True)
    cells = tools(shell)["cells"]
    listing = await cells.handler({})
    numbers = [c.number for c in log.finished_cells()]
    assert listing.startswith(f"(Cells {numbers[3]} to {numbers[-1]}, {DEFAULT_CELLS} of the {DEFAULT_CELLS + 3} "
                              f"run; for earlier cells: pass end={numbers[2]}.)")
    first = numbers[0]
    assert await cells.handler({"start": first, "end": first}) == f"Cell {first}:\n```python\na = 0\n```"
    for bad, message in [({"start": 5, "end": 2}, "start (5) is after end (2)"),
                         ({"start": True}, "'start' must be a whole cell number"),
                         ({"end": "3"}, "'end' must be a whole cell number"),
                         ({"start": 10_000}, "no executed cell in cells 10000 to …. Cells run so far:")]:
        with pytest.raises(ToolError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
            await cells.handler(bad)


async def test_cells_fit_one_tool_result(shell):
    ip, _, log = shell
    for index in range(8):
        ip.run_cell(f"print('{index}' * 1500)", store_history=True)
    numbers = [c.number for c in log.finished_cells()]
    newest = await tools(shell)["cells"].handler({})
    assert len(newest.encode()) <= 4096 and newest.startswith(f"(Cells {numbers[-2]} to {numbers[-1]}, 2 of the 8")
    ranged = await tools(shell)["cells"].handler({"start": numbers[0]})
    assert ranged.startswith(f"(Cells {numbers[0]} to {numbers[1]}, 2 of the 8 run; for the rest: pass "
                             f"start={numbers[2]}.)") and len(ranged.encode()) <= 4096


async def test_cell_image_no_image_last_and_over_the_cap(shell):
    ip, capture, _ = shell
    image = tools(shell)["cell_image"]
    with pytest.raises(ToolError, match="no cell has displayed a PNG or JPEG image"):
        await image.handler({"cell": "last"})
    with pytest.raises(ToolError, match='"cell" must be a cell number or "last", not'):
        await image.handler({"cell": [1]})
    tiny = b"\x89PNG\r\n\x1a\n" + b"\0" * 20
    ip.user_ns["small"], ip.user_ns["big"] = tiny, tiny + b"\0" * 500
    small = ip.run_cell("from IPython.display import Image, display\ndisplay(Image(data=small, format='png'))",
                        store_history=True)
    big = ip.run_cell("display(Image(data=big, format='png'))", store_history=True)
    quiet = ip.run_cell("a = 1", store_history=True)
    result = await image.handler({"cell": small.execution_count})
    assert result.images[0].data_url.startswith("data:image/png;base64,") and "(28 bytes)" in result.output
    with pytest.raises(ToolError, match=r"is 528 bytes, over the limit of 200 bytes"):
        await image.handler({"cell": "last"})
    with pytest.raises(ToolError, match=f"cell {quiet.execution_count} displayed no PNG or JPEG image "
                                        rf"\(cells with images: {small.execution_count}, {big.execution_count}\)"):
        await image.handler({"cell": quiet.execution_count})


async def test_insert_cell_once_per_run_and_bad_input(shell):
    ip = shell[0]
    insert = tools(shell)["insert_cell"]
    with pytest.raises(ToolError, match="'source' must be the non-empty text"):
        await insert.handler({"source": "  "})
    with pytest.raises(ToolError, match='cell_type must be "code" or "markdown", not \'raw\''):
        await insert.handler({"source": "x", "cell_type": "raw"})
    answer = await insert.handler({"source": "# Title", "cell_type": "markdown"})
    assert "%%markdown" in answer and ip.rl_next_input == "%%markdown\n# Title"
    with pytest.raises(ToolError, match="already inserted during this run"):
        await insert.handler({"source": "b = 2"})
    assert await tools(shell)["insert_cell"].handler({"source": "b = 2"})  # a new run may insert again


def test_errors_name_cells_and_library_frames_and_streams_are_restored(shell):
    ip, _, log = shell
    before = sys.stdout.__dict__.get("write")
    ip.run_cell("import json\njson.loads('{')", store_history=True)
    error = log.last_error().error
    assert error.kind == "JSONDecodeError" and "Cell " in error.traceback
    assert "json/decoder.py, line" in error.traceback and "/usr/" not in error.traceback
    assert sys.stdout.__dict__.get("write") is before  # our tee is gone when the cell ends
    ip.run_cell("print('x')\n1/0", store_history=True)
    record = log.last_error()
    assert record.error.summary == "ZeroDivisionError: division by zero"
    assert record.output.text(100) == "x\n"  # the shell's own traceback print is not output
    ip.run_cell("try:\n    {}['k']\nexcept KeyError as e:\n    raise ValueError('no k') from e", store_history=True)
    chained = log.last_error().error
    assert chained.traceback.startswith("(raised while handling KeyError: 'k')\nTraceback")
    assert chained.summary == "ValueError: no k"


def test_text_buffer_keeps_start_and_end():
    buffer = TextBuffer()
    for index in range(5000):
        buffer.append(f"line {index}\n")
    text = buffer.text(600)
    assert text.startswith("line 0\n") and text.rstrip().endswith("line 4999")
    assert "characters left out" in text and len(text) < 700 and len(buffer.head) == TEXT_HEAD


def test_drop_note_is_singular_or_plural_and_agent_cells_are_one_line():
    cells = [CellRecord(seq=i, source="x = 1" * 40, number=i, finished=True) for i in range(1, 4)]
    assert "[2 earlier cells left out to stay within 150 tokens" in build_context(cells, "", 150)
    assert "[1 earlier cell left out" in build_context(cells[1:], "", 150)
    agent = CellRecord(seq=9, source="# NBVAL_SKIP\n%%codetether\nhi", number=9)
    assert render_cell(agent) == "Cell 9: a %%codetether cell (this conversation)."
    assert build_context([], "", 2000) == ""


def test_context_since_the_last_committed_turn(shell):
    ip, _, log = shell
    context = NotebookContext(log, ip)
    ip.run_cell("a = 1", store_history=True)
    first = context.for_turn(2000)
    assert "a = 1" in first.text and "- new: a: int = 1" in first.text
    assert "a = 1" in context.for_turn(2000).text  # not committed (the turn failed): offered again
    first.commit()
    ip.run_cell("a = 'now text'\nb = [1, 2]", store_history=True)
    second = context.for_turn(2000).text
    assert "- changed: a: str len=8 = 'now text'" in second and "- new: b: list len=2" in second
    assert second.count("Cell ") == 1


def test_fix_line_cell_is_rewritten_to_stream():
    assert rewrite_codetether_cell(["%codetether fix\n"]) == [f"await {RUNNER_NAME}('--fix', '')\n"]
    assert rewrite_codetether_cell(["# NBVAL_SKIP\n", "%codetether fix  be brief\n"]) == [
        f"await {RUNNER_NAME}('--fix', 'be brief')\n"]
    assert rewrite_codetether_cell(["%codetether fix\n", "x = 1\n"]) == ["%codetether fix\n", "x = 1\n"]
    assert rewrite_codetether_cell(["%codetether fixes\n"]) == ["%codetether fixes\n"]


def test_many_wide_variables_stay_within_the_cap(shell):
    ip, _, log = shell
    context = NotebookContext(log, ip)
    code = "\n".join(f"wide_{i} = {{'k' * 300: {i}}}" for i in range(40))
    ip.run_cell(code, store_history=True)
    text = context.for_turn(400).text
    assert len(text.encode()) <= 400 * 4 and "- ... and " in text
    assert re.search(r"\nCell \d+:\n```python\nwide_0 = ", text)  # the one cell, shortened, not dropped
    for i in range(40):
        ip.user_ns.pop(f"wide_{i}")


def test_unload_in_the_middle_of_a_cell_leaves_no_wrapper_on_the_streams(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ip = InteractiveShell.instance()
    writes = [sys.stdout.__dict__.get("write"), sys.stderr.__dict__.get("write")]
    ip.run_cell("%load_ext codetether_magics")
    ip.run_cell("print('recorded')")
    magics = ip.magics_manager.registry["CodeTether"]
    assert [c.output.text(100) for c in magics.cell_log.finished_cells()] == ["recorded\n"]
    ip.run_cell("%unload_ext codetether_magics")  # its own cell started the tee; unloading ends it
    assert [sys.stdout.__dict__.get("write"), sys.stderr.__dict__.get("write")] == writes
