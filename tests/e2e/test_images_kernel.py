"""In a real ipykernel (nbclient) and under nbval: a figure shown in one cell is `last` in the next."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow

SETUP = (
    "%matplotlib inline\n"
    "from codetether_magics.notebook.images import ImageCapture\n"
    "capture = ImageCapture(get_ipython())\n"
    "capture.register()"
)


def notebook(*sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_figure_from_an_earlier_cell_resolves_in_a_real_kernel(tmp_path):
    nb = notebook(
        SETUP,
        "import matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\nplt.show()",
        "import hashlib, json\n"
        "print(json.dumps([hashlib.sha256(i.data_url.encode()).hexdigest() for i in capture.resolve(['last'])]))",
        "fig, ax = plt.subplots()\nax.plot([3, 1])\nfig",
        "print(json.dumps([hashlib.sha256(i.data_url.encode()).hexdigest()\n"
        "                  for i in capture.resolve(['Out[4]', '2', 'last'])]))",
    )
    NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    shown = nb.cells[1].outputs[0]["data"]["image/png"]
    returned = nb.cells[3].outputs[0]  # the execute_result of `fig`
    assert returned["output_type"] == "execute_result"
    # The data URLs sent to the model are exactly what the cells displayed.
    assert json.loads(nb.cells[2].outputs[0]["text"]) == [sha("data:image/png;base64," + shown)]
    resolved = json.loads(nb.cells[4].outputs[0]["text"])
    assert resolved == [sha("data:image/png;base64," + returned["data"]["image/png"]),
                        sha("data:image/png;base64," + shown)]  # 'last' == Out[4]: sent once


def test_capture_under_nbval_where_execution_count_never_moves(tmp_path):
    nb = notebook(
        SETUP,
        "import matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\nplt.show()",
        "assert get_ipython().execution_count == 1  # nbval: store_history=False\n"
        "[first] = capture.resolve(['last'])\n"
        "assert capture.resolve(['2']) == [first]",
        "plt.plot([9, 4, 1])\nplt.show()",
        "[second] = capture.resolve(['last'])\n"
        "assert second != first and capture.resolve(['4']) == [second]\n"
        "assert capture.resolve(['2', '4', 'last']) == [first, second]",
    )
    path = tmp_path / "capture.ipynb"
    nbformat.write(nb, path)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", str(path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "5 passed" in done.stdout
