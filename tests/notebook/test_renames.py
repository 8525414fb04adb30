"""A notebook renamed in the frontend keeps its conversation; nothing is ever overwritten."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from codetether_magics.notebook.path import NotebookLocation
from codetether_magics.notebook.renames import follow_rename, notebook_prompts
from codetether_magics.session.session import Session
from codetether_magics.messages import Message
from tests.support.kernel import kernel_env, make_notebook, run_notebook, text_of


def _notebook(path: Path, *prompts: str) -> Path:
    nb = make_notebook("%load_ext codetether_magics", *(f"%%codetether\n{p}" for p in prompts))
    nbformat.write(nb, path)
    return path


async def _transcript(folder: Path, notebook: str, *turns: tuple[str, str]) -> Session:
    session = await Session.new(str(folder))
    session.metadata.notebook = notebook
    session.metadata.model = "openai/gpt-4o"
    for prompt, answer in turns:
        session.add_message(Message.user(prompt))
        session.add_message(Message.assistant(answer))
    await session.save(path=folder / notebook.replace(".ipynb", ".codetether.json"))
    return session


def _location(path: Path) -> NotebookLocation:
    return NotebookLocation(path.resolve(), "test")


async def test_the_transcript_follows_the_renamed_notebook_with_a_notice(tmp_path, capsys):
    session = await _transcript(tmp_path, "Untitled.ipynb", ("Plot it", "Done."))
    renamed = _notebook(tmp_path / "analysis.ipynb", "Plot it")
    assert await follow_rename(_location(renamed)) is True
    assert not (tmp_path / "Untitled.codetether.json").exists()
    moved = await Session.load_path(tmp_path / "analysis.codetether.json")
    assert moved.id == session.id and moved.messages[0].text == "Plot it"
    assert (await Session.load(session.id)).path == (tmp_path / "analysis.codetether.json").resolve()
    out = capsys.readouterr().out
    assert out == ("CodeTether: this notebook was renamed from Untitled.ipynb; its conversation follows it "
                   "to analysis.codetether.json.\n")


@pytest.mark.parametrize("case", ["old notebook still there", "target exists", "no prompt matches", "tie"])
async def test_nothing_moves_when_it_is_not_clearly_a_rename(tmp_path, case, capsys):
    await _transcript(tmp_path, "Untitled.ipynb", ("Plot it", "Done."))
    renamed = _notebook(tmp_path / "analysis.ipynb", "Plot it" if case != "no prompt matches" else "Other")
    if case == "old notebook still there":
        _notebook(tmp_path / "Untitled.ipynb", "Plot it")
    if case == "target exists":
        (tmp_path / "analysis.codetether.json").write_bytes(b"precious")
    if case == "tie":
        await _transcript(tmp_path, "Untitled1.ipynb", ("Plot it", "Also done."))
    before = {p.name: p.read_bytes() for p in tmp_path.glob("*.codetether.json")}
    assert await follow_rename(_location(renamed)) is False
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.codetether.json")} == before
    assert capsys.readouterr().out == ""


def test_prompts_are_read_as_the_magic_sends_them(tmp_path):
    nb = make_notebook("# NBVAL_IGNORE_OUTPUT\n%%codetether --allow python\n# NBVAL_SKIP\n  Fit it.  \n",
                       "print('%%codetether not a magic')", "%%codetether")
    nb.cells.append(nbformat.v4.new_markdown_cell("%%codetether\nmarkdown"))
    nbformat.write(nb, tmp_path / "x.ipynb")
    assert notebook_prompts(tmp_path / "x.ipynb") == {"Fit it."}
    (tmp_path / "bad.ipynb").write_text("{not json")
    assert notebook_prompts(tmp_path / "bad.ipynb") == set()
    (tmp_path / "list.ipynb").write_text(json.dumps({"cells": [{"cell_type": "code", "source": ["%%codetether\n", "Hi"]}]}))
    assert notebook_prompts(tmp_path / "list.ipynb") == {"Hi"}


@pytest.mark.slow
async def test_a_renamed_notebook_replays_its_conversation_after_a_restart(tmp_path):
    """Renamed, reopened in a new kernel with no provider: the moved transcript answers the cell."""
    await _transcript(tmp_path, "Untitled.ipynb", ("Plot it", "The recorded answer."))
    nb = nbformat.read(_notebook(tmp_path / "analysis.ipynb", "Plot it"), as_version=4)
    executed = run_notebook(nb, tmp_path, kernel_env(tmp_path), name="analysis.ipynb")
    shown = text_of(executed.cells[1]) + text_of(executed.cells[1], "text/markdown")
    assert "this notebook was renamed from Untitled.ipynb" in shown
    assert "The recorded answer." in shown
    assert sorted(p.name for p in tmp_path.glob("*.codetether.json")) == ["analysis.codetether.json"]
