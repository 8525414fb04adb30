"""A `%%codetether` cell run through JupyterLab's UI in headless Chromium, live against the loopback server.

Checks what only a real frontend shows: the widget displays part of the answer while the
model is still streaming, then the cell ends with the final Markdown output rendered.
Run in the dark theme. Screenshots: during.png and after.png (also kept as live-dark.png and
record-dark.png in out/screenshots/).
"""

from __future__ import annotations

import secrets

import pytest

from codetether_magics.testing import ScriptedModelServer, Turn
from tests.support.browser import (
    CHROMIUM,
    cell_output,
    chromium_page,
    jupyter_lab,
    keep_screenshot,
    lab_environment,
    open_notebook,
    run_cell,
    set_theme,
    wait_cell_done,
    write_notebook,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: apt-get install chromium"),
]

WORDS = [f"word{i}" for i in range(1, 41)]
ANSWER = "Streaming " + " ".join(WORDS) + " **finished**."
CHUNK_DELAY = 0.12  # seconds between streamed words: ~5 s of streaming for the browser to catch

# The output area of a cell, as text, from inside the page.
_OUTPUT_TEXT = "(i) => document.querySelectorAll('.jp-NotebookPanel .jp-Cell')[i]" \
               "?.querySelector('.jp-OutputArea')?.innerText ?? ''"


def _wait_output_contains(page, cell: int, text: str, timeout_ms: int = 30_000) -> str:
    page.wait_for_function(f"([i, t]) => ({_OUTPUT_TEXT})(i).includes(t)", arg=[cell, text], timeout=timeout_ms)
    return page.evaluate(_OUTPUT_TEXT, cell)


def test_live_cell_streams_into_the_widget_then_shows_final_markdown(tmp_path):
    key = "sk-test-" + secrets.token_hex(12)
    root = tmp_path / "lab"
    root.mkdir()
    write_notebook(root / "live.ipynb", ["%load_ext codetether_magics", "%%codetether\nCount to forty, slowly."])
    turns = [Turn.text(ANSWER, usage=(20, 45)), Turn.text("Counting slowly")]  # the answer, then the title call
    with ScriptedModelServer(turns, chunk_delay=CHUNK_DELAY, api_key=key) as server, \
            jupyter_lab(root, env=lab_environment(server.openai_base_url, key, tmp_path / "data"),
                        log_path=tmp_path / "jupyter.log") as lab, \
            chromium_page() as page:
        open_notebook(page, lab, "live.ipynb")
        set_theme(page, "JupyterLab Dark")  # the live view in the dark theme (the record test has the light one)
        run_cell(page, 0)
        wait_cell_done(page, 0)
        run_cell(page, 1)

        during = _wait_output_contains(page, 1, WORDS[2])
        keep_screenshot(page, tmp_path / "during.png", "live-dark.png")
        assert WORDS[-1] not in during, "the whole answer arrived at once: nothing streamed"

        final = cell_output(page, 1).locator("[data-mime-type='text/markdown']")
        final.locator("strong", has_text="finished").wait_for(timeout=60_000)
        wait_cell_done(page, 1)
        keep_screenshot(page, tmp_path / "after.png", "record-dark.png")
        assert "45 out" in cell_output(page, 1).inner_text()  # the widget's footer: the model's usage
        final_text = final.inner_text()
        assert final_text.startswith("Streaming word1 word2") and WORDS[-1] in final_text
        assert "**" not in final_text  # rendered as Markdown, not shown raw
        assert key not in page.content()
        assert server.errors == []
        assert server.model_requests[0].body["messages"][-1]["content"] == "Count to forty, slowly."
    assert (tmp_path / "during.png").stat().st_size > 0 and (tmp_path / "after.png").stat().st_size > 0
