"""scripts/record_notebooks.py: recording the examples live again reproduces the committed notebooks."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import record_notebooks  # noqa: E402
from example_notebooks import EXAMPLES  # noqa: E402

from tests.test_replay_notebooks import _comparable  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXAMPLES))
def test_re_recording_reproduces_the_committed_notebook(tmp_path, name):
    """Live against the scripted server, in a fresh folder: no problem reported, the same
    cells and outputs as the committed notebook (images aside: they depend on fonts)."""
    assert record_notebooks.record(EXAMPLES[name], folder=tmp_path) == []
    fresh = nbformat.read(tmp_path / f"{name}.ipynb", as_version=4)
    committed = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    assert [(c.id, c.cell_type, c.source) for c in fresh.cells] == \
           [(c.id, c.cell_type, c.source) for c in committed.cells]
    for new, old in zip(fresh.cells, committed.cells):
        if new.cell_type == "code":
            assert _comparable(new.outputs) == _comparable(old.outputs), new.source
    assert (tmp_path / f"{name}.codetether.json").is_file()
    assert not (tmp_path / f"{name}.codetether.json.lock").exists()
