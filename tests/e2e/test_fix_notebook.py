"""notebooks/fix.ipynb: the fix flow, recorded against the scripted server, replayed offline.

(``pytest --nbval notebooks`` runs it too; these check what nbval cannot.)
"""

from __future__ import annotations

import json

import nbformat
import pytest

from tests.e2e.test_replay_notebooks import (NOTEBOOKS, RECORDED_EXAMPLES, ROOT, SECRET, _comparable, _copy_example,
                                         _execute, _notebook, _transcript, record_notebooks)


def test_the_fix_turns_hold_the_exception_and_no_notebook_context():
    session = _transcript("fix")
    prompts = [m.text for m in session.messages if m.role == "user"]
    assert len(prompts) == 2 and all(p.startswith("Cell 3 raised KeyError: 'banana'") for p in prompts)
    assert 'total = stock["banana"] + stock["apple"]' in prompts[0] and "insert_cell" in prompts[0]
    assert prompts[1].endswith("In one sentence: when is .get with a default the wrong fix?")
    assert "[Notebook context" not in (NOTEBOOKS / "fix.codetether.json").read_text()
    assert [u.name for u in session.tool_uses] == ["insert_cell"]


def test_no_secret_or_machine_path_in_the_fix_notebook():
    for path in (NOTEBOOKS / "fix.ipynb", NOTEBOOKS / "fix.codetether.json"):
        assert not SECRET.search(path.read_text())
        assert str(ROOT) not in path.read_text() and "/tmp/" not in path.read_text()


@pytest.mark.slow
def test_with_no_provider_the_fix_notebook_replays_top_to_bottom(tmp_path):
    path = _copy_example("fix", tmp_path)
    transcript = (tmp_path / "fix.codetether.json").read_bytes()
    executed, saved = _execute(path), _notebook("fix")
    assert [c.source for c in executed.cells] == [c.source for c in saved.cells]  # zip below drops none
    compared = 0
    for ran, kept in zip(executed.cells, saved.cells):
        if ran.cell_type == "code" and ran.outputs and ran.outputs[0].output_type != "error":
            assert _comparable(ran.outputs) == _comparable(kept.outputs), ran.source
            compared += "%codetether" in ran.source
    assert compared >= 1  # the fix cell's replayed output was among those compared
    assert "Fix KeyError" not in json.dumps(executed.cells[3].outputs)
    assert (tmp_path / "fix.codetether.json").read_bytes() == transcript


@pytest.mark.slow
def test_re_recording_reproduces_the_fix_notebook(tmp_path):
    assert record_notebooks.record(RECORDED_EXAMPLES["fix"], folder=tmp_path) == []
    fresh = nbformat.read(tmp_path / "fix.ipynb", as_version=4)
    assert [c.source for c in fresh.cells] == [c.source for c in _notebook("fix").cells]
    for new, old in zip(fresh.cells, _notebook("fix").cells):
        assert new.source == old.source and _comparable(new.get("outputs", [])) == _comparable(old.get("outputs", []))
    fresh_messages = json.loads((tmp_path / "fix.codetether.json").read_text())["messages"]
    assert fresh_messages == json.loads((NOTEBOOKS / "fix.codetether.json").read_text())["messages"]
