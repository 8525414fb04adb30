"""The quickstart opened in JupyterLab with no API key (as on Binder) re-runs from its transcript.

JupyterLab tells the kernel the notebook's path (``__session__``), so the magic finds the
transcript beside it and, with no provider configured, replays every agent cell: the
`python` tool runs again, so the cell after it sees `squares`. Screenshot: replayed.png (also
kept in out/screenshots/).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.browser import (
    CHROMIUM,
    cell_output,
    chromium_page,
    jupyter_lab,
    keep_screenshot,
    open_notebook,
    run_all,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: apt-get install chromium"),
]

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def test_quickstart_replays_in_jupyterlab_without_a_key(tmp_path):
    root = tmp_path / "lab"
    root.mkdir()
    for name in ("quickstart.ipynb", "quickstart.codetether.json"):
        shutil.copy(NOTEBOOKS / name, root / name)
    transcript = (root / "quickstart.codetether.json").read_bytes()
    env = dict(os.environ, CODETETHER_DATA_DIR=str(tmp_path / "data"))  # no provider: conftest removed them
    with jupyter_lab(root, env=env, log_path=tmp_path / "jupyter.log") as lab, chromium_page(height=1600) as page:
        open_notebook(page, lab, "quickstart.ipynb")
        run_all(page)
        usage = page.locator(".jp-NotebookPanel .jp-Cell").filter(has_text="%codetether usage")
        usage.locator(".jp-OutputArea").get_by_text("tokens: 393 prompt").wait_for(timeout=60_000)
        keep_screenshot(page, tmp_path / "replayed.png")

        cells = page.locator(".jp-NotebookPanel .jp-Cell")
        answers = [cell_output(page, i).locator("[data-mime-type='text/markdown']").all_inner_texts()
                   for i in range(cells.count())]
        answers = [text for texts in answers for text in texts]
        assert answers[0].startswith("A Jupyter kernel is the process")
        assert "their sum is 385" in answers[1]
        squares = cells.filter(has_text="squares[-3:], sum(squares)").locator(".jp-OutputArea")
        assert "([64, 81, 100], 385)" in squares.inner_text()
        assert "Error" not in page.locator(".jp-NotebookPanel").inner_text()
    assert (root / "quickstart.codetether.json").read_bytes() == transcript
