"""The live view and the record in JupyterLab, in headless Chromium, against the loopback model server.

One agent cell streams math, a code block and a table, asks to run Python (the Approve
prompt shows the code once, highlighted), then answers with remote images in every spelling.
Checked: math is typeset and code highlighted WHILE streaming; the approval prompt; after the
run the cell holds one Markdown record and no widget; no request ever reaches the loopback
listener the images point at (live, in the record, in the reopened notebook, in nbconvert
HTML); the saved notebook reopened with no kernel ("No Kernel", none on the server) shows no
"Error displaying widget" and, once the python call is expanded, the agent's code; the dark theme. Screenshots: live.png, approval.png, record.png, reopened.png,
dark.png, nbconvert.png (under the test's tmp dir and out/screenshots/).
"""

from __future__ import annotations

import secrets

import nbformat
import pytest

from codetether_magics.testing import ScriptedModelServer, TextStep, ThinkingStep, ToolCallStep, Turn
from tests.support.browser import (
    CHROMIUM,
    RequestCounter,
    cell_output,
    chromium_page,
    jupyter_lab,
    keep_screenshot,
    lab_environment,
    open_notebook,
    run_cell,
    running_kernels,
    save_notebook,
    set_theme,
    shut_down_kernel_from_menu,
    shut_down_kernels,
    wait_cell_done,
    write_notebook,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: apt-get install chromium"),
]

CODE = "total = sum(i * i for i in range(1, 4))\nprint(total)"
PREAMBLE = (
    "The sum $\\sum_{i=1}^{3} i^2 = 14$ is easy to check.\n\n"
    "```python\ndef square(x):\n    return x * x\n```\n\n"
    "| n | square |\n|---|---|\n| 3 | 9 |\n\n"
    + " ".join(f"word{i}" for i in range(40))
)


_FONT = "e => [getComputedStyle(e).fontSize, getComputedStyle(e).fontFamily, getComputedStyle(e).lineHeight]"


def _answer(leak: str) -> str:
    return (f"Checked: the total is **14**. ![inline]({leak}/inline.png) <img src=\"{leak}/tag.png\"> "
            f"![reference][r] <{leak}/autolink>\n\n[r]: {leak}/reference.png")


def _turns(leak: str) -> list[Turn]:
    return [
        Turn([ThinkingStep("Plan: show the sum, then compute it."), TextStep(PREAMBLE),
              ToolCallStep("python", {"code": CODE})], chunk_delay=0.08),
        Turn.text(_answer(leak), usage=(50, 20), expect_tool_result="14"),
        Turn.text("Sum of squares", expect_system="title"),
    ]



def test_live_view_math_code_approval_then_one_inert_record(tmp_path):
    key = "sk-test-" + secrets.token_hex(12)
    root = tmp_path / "lab"
    root.mkdir()
    notebook = write_notebook(root / "record.ipynb", ["%load_ext codetether_magics",
                                                     "%%codetether\nShow the math, then run the code."])
    with RequestCounter() as leak, ScriptedModelServer(_turns(leak.url), api_key=key) as server, \
            jupyter_lab(root, env=lab_environment(server.openai_base_url, key, tmp_path / "data"),
                        log_path=tmp_path / "jupyter.log") as lab, chromium_page(height=1400) as page:
        seen = []
        page.on("request", lambda request: seen.append(request.url))
        open_notebook(page, lab, "record.ipynb")
        run_cell(page, 0)
        wait_cell_done(page, 0)
        run_cell(page, 1)
        output = cell_output(page, 1)

        # While it streams: math typeset, code highlighted, the table styled as Markdown.
        output.locator(".codetether-view mjx-container").first.wait_for(timeout=30_000)
        output.locator(".codetether-view .ct-code .k", has_text="def").first.wait_for(timeout=30_000)
        output.locator(".codetether-view.jp-RenderedMarkdown table").first.wait_for(timeout=30_000)
        assert "word39" not in output.inner_text(), "the whole answer arrived at once: nothing streamed"
        live_font = output.locator(".codetether-view .ct-text p").first.evaluate(_FONT)
        keep_screenshot(page, tmp_path / "live.png")

        # The approval prompt: the arguments once, as highlighted Python, not JSON.
        prompt = output.locator(".ct-approval")
        prompt.wait_for(timeout=30_000)
        assert "Approve this python call?" in prompt.inner_text()
        assert prompt.locator(".ct-code .n", has_text="total").count() >= 1
        assert output.inner_text().count("sum(i * i for i in range(1, 4))") == 1
        assert '"code"' not in output.inner_text()
        keep_screenshot(page, tmp_path / "approval.png")
        output.get_by_role("button", name="Approve").click()

        # The end: one Markdown record, no widget left in the output.
        record = output.locator("[data-mime-type='text/markdown']")
        record.get_by_text("Checked: the total is").wait_for(timeout=60_000)
        wait_cell_done(page, 1)
        assert output.locator(".jupyter-widgets, .widget-html, .codetether-view").count() == 0
        assert output.locator(".jp-OutputArea-output").count() == 1
        assert record.locator("details").count() == 2  # thinking, the python call
        assert "python · succeeded" in record.inner_text()
        assert record.locator("mjx-container").count() >= 1  # the record's math, typeset by JupyterLab
        assert record.locator("img").count() == 0
        assert record.locator("p").first.evaluate(_FONT) == live_font  # the same text, the same size
        keep_screenshot(page, tmp_path / "record.png")
        save_notebook(page)

        # The saved notebook, reopened with no kernel (Lab starts a fresh one on reopen: shut that
        # down too): no widget error anywhere, and the agent's code readable in the python call.
        shut_down_kernels(lab)
        page.reload()
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell [data-mime-type='text/markdown']", timeout=60_000)
        shut_down_kernel_from_menu(page)
        assert running_kernels(lab) == []
        reopened = cell_output(page, 1).locator("[data-mime-type='text/markdown']")
        call = reopened.locator("details").filter(has=page.locator("summary", has_text="python"))
        call.locator("summary").click()
        code = call.locator("pre", has_text="sum(i * i for i in range(1, 4))")
        code.wait_for(state="visible", timeout=10_000)
        assert "print(total)" in code.inner_text()
        page.wait_for_timeout(2_000)  # a widget error would show once the output area settles
        text = page.locator(".jp-NotebookPanel").inner_text()
        assert "Error displaying widget" not in text and "model not found" not in text
        assert "Checked: the total is" in text
        assert "No Kernel" in page.locator(".jp-StatusBar-Widget").first.inner_text()
        keep_screenshot(page, tmp_path / "reopened.png")

        set_theme(page, "JupyterLab Dark")
        page.wait_for_timeout(500)
        keep_screenshot(page, tmp_path / "dark.png")
        colour = page.locator("[data-mime-type='text/markdown'] p").first.evaluate("e => getComputedStyle(e).color")
        assert min(int(v) for v in colour[colour.index("(") + 1:-1].split(",")[:3]) > 150, colour  # light on dark

        # nbconvert's HTML of the saved notebook, opened in the same browser, loads nothing either.
        from nbconvert import HTMLExporter

        saved = nbformat.read(notebook, as_version=4)
        assert [o["output_type"] for o in saved.cells[1].outputs] == ["display_data"]
        assert set(saved.cells[1].outputs[0]["data"]) == {"text/markdown", "text/plain"}
        html, _ = HTMLExporter().from_notebook_node(saved)
        assert "Error displaying widget" not in html and "<img" not in html.split("jp-Cell", 1)[1]
        page.route("http*://**/*", lambda route: route.abort() if "127.0.0.1" not in route.request.url
                   else route.continue_())  # the template's CDN scripts: no network here
        page.set_content(html, wait_until="domcontentloaded")
        page.wait_for_timeout(1_000)
        keep_screenshot(page, tmp_path / "nbconvert.png")

        assert leak.paths == [], f"the model's Markdown made the browser send requests: {leak.paths}"
        assert not [url for url in seen if url.startswith(leak.url)]
        assert server.errors == []
        assert key not in page.content()
