"""No save overwrites a turn it has not read: two kernels on one notebook, copied notebooks.

Real kernels (jupyter_client) against the scripted loopback model server. After every
scenario, every user turn ever sent is still in some session file (the notebook's folder
or the data dir), and the advice each conflict gives is followed literally and works.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import orjson
import pytest

from codetether_magics.testing import ScriptedModelServer, Turn
from tests.support.kernel import LiveKernel, kernel_env, make_notebook, new_api_key

pytestmark = pytest.mark.slow

import nbformat  # noqa: E402


def _user_turns_on_disk(*folders: Path) -> list[str]:
    texts = []
    for folder in folders:
        for path in folder.rglob("*.json"):
            try:
                doc = orjson.loads(path.read_bytes())
            except ValueError:
                continue
            if isinstance(doc, dict) and isinstance(doc.get("messages"), list):
                texts += [part["text"] for m in doc["messages"] if m.get("role") == "user"
                          for part in m.get("content", []) if part.get("type") == "text"]
    return texts


def _shown(run) -> str:
    """What a cell printed, displayed or raised, as one text."""
    parts = []
    for _, message in run.messages:
        content = message["content"]
        if message["msg_type"] == "stream":
            parts.append(content["text"])
        elif message["msg_type"] == "error":
            parts.append("\n".join(content["traceback"]))
        elif message["msg_type"] in ("display_data", "execute_result"):
            parts.append(content["data"].get("text/plain", ""))
    return "\n".join(parts)


def _ok(run) -> str:
    assert run.reply["content"]["status"] == "ok", _shown(run)
    return _shown(run)


def _failed(run) -> str:
    assert run.reply["content"]["status"] == "error", _shown(run)
    return _shown(run)


def _copy_notebook(folder: Path, source: str, copy: str) -> None:
    """Copy a notebook the way a user does in the file browser: the .ipynb with its transcript beside it."""
    for suffix in (".ipynb", ".codetether.json"):
        shutil.copy(folder / f"{source}{suffix}", folder / f"{copy}{suffix}")


@pytest.fixture
def folder(tmp_path) -> Path:
    """The notebooks' folder, apart from the data dir (which the isolation fixture puts in tmp_path)."""
    path = tmp_path / "work"
    path.mkdir()
    return path


def _kernel(folder: Path, notebook: str, server, key: str) -> LiveKernel:
    nbformat.write(make_notebook(), folder / notebook) if not (folder / notebook).exists() else None
    kernel = LiveKernel(folder, kernel_env(folder, server, key, CODETETHER_NOTEBOOK=notebook))
    _ok(kernel.execute("%load_ext codetether_magics"))
    return kernel


def test_new_from_a_second_kernel_and_a_stale_first_kernel_lose_no_turn(folder, isolated_environment):
    key = new_api_key()
    turns = [Turn.text("One."), Turn.text("Title one"), Turn.text("Two."), Turn.text("Fresh."),
             Turn.text("Title fresh"), Turn.text("Three again.")]
    with ScriptedModelServer(turns, api_key=key) as server:
        with _kernel(folder, "analysis.ipynb", server, key) as first, \
                _kernel(folder, "analysis.ipynb", server, key) as second:
            _ok(first.execute("%%codetether\nTurn one"))
            _ok(second.execute("%codetether status"))  # the second kernel reads the file now
            _ok(first.execute("%%codetether\nTurn two"))

            # --new in the stale second kernel: nothing is replaced, and it says what to do.
            refused = _failed(second.execute("%%codetether --new\nFresh in kernel two"))
            assert "was not replaced and nothing was lost. Run the same command again" in refused
            assert _user_turns_on_disk(folder) == ["Turn one", "Turn two"]
            _ok(second.execute("%%codetether --new\nFresh in kernel two"))  # the advice, followed

            # The first kernel's next turn finds the file changed under it.
            stale = _failed(first.execute("%%codetether\nTurn three"))
            kept = re.search(r"`%codetether resume ([0-9a-f-]{36})` continues it here", stale)
            assert kept, stale
            assert "Or run the cell again" in stale
            resumed = _ok(first.execute(f"%codetether resume {kept.group(1)}"))  # the advice, followed
            assert f"Resumed {kept.group(1)}" in resumed
            _ok(first.execute("%%codetether\nTurn three, again"))
        assert server.errors == [] and server.remaining == 0

    everything = _user_turns_on_disk(folder, isolated_environment)
    for turn in ("Turn one", "Turn two", "Fresh in kernel two", "Turn three", "Turn three, again"):
        assert turn in everything, turn
    notebook = orjson.loads((folder / "analysis.codetether.json").read_bytes())
    assert [m["content"][0]["text"] for m in notebook["messages"] if m["role"] == "user"] == \
           ["Turn one", "Turn two", "Turn three", "Turn three, again"]


def test_run_the_cell_again_continues_the_conversation_as_the_file_holds_it(folder, isolated_environment):
    key = new_api_key()
    turns = [Turn.text("One."), Turn.text("Title"), Turn.text("Two."), Turn.text("Three.")]
    with ScriptedModelServer(turns, api_key=key) as server:
        with _kernel(folder, "analysis.ipynb", server, key) as first, \
                _kernel(folder, "analysis.ipynb", server, key) as second:
            _ok(first.execute("%%codetether\nTurn one"))
            _ok(second.execute("%codetether status"))
            _ok(first.execute("%%codetether\nTurn two"))
            assert "run the cell again" in _failed(second.execute("%%codetether\nTurn three")).lower()
            _ok(second.execute("%%codetether\nTurn three"))  # the other advice, followed
        assert server.errors == [] and server.remaining == 0
    notebook = orjson.loads((folder / "analysis.codetether.json").read_bytes())
    users = [m["content"][0]["text"] for m in notebook["messages"] if m["role"] == "user"]
    assert users == ["Turn one", "Turn two", "Turn three"]
    assert "Turn three" in _user_turns_on_disk(isolated_environment)  # the refused copy was kept too


def test_a_copied_notebook_gets_its_own_id_before_either_archives(folder, isolated_environment):
    key = new_api_key()
    turns = [Turn.text("A."), Turn.text("Title A"), Turn.text("B."), Turn.text("Title B")]
    with ScriptedModelServer(turns, api_key=key) as server:
        with _kernel(folder, "a.ipynb", server, key) as a:
            _ok(a.execute("%%codetether\nTurn in A"))
            _copy_notebook(folder, "a", "b")
            with _kernel(folder, "b.ipynb", server, key) as b:
                _ok(b.execute("%codetether new"))  # b archives first: under an id of its own
                _ok(b.execute("%%codetether\nTurn in B"))
            _ok(a.execute("%codetether new"))
        assert server.errors == [] and server.remaining == 0
    archives = sorted((isolated_environment / "sessions").glob("*.json"))
    assert len(archives) == 2, archives
    assert len({orjson.loads(p.read_bytes())["id"] for p in archives}) == 2
    everything = _user_turns_on_disk(folder, isolated_environment)
    assert everything.count("Turn in A") == 2 and "Turn in B" in everything


def test_a_title_over_a_changed_file_is_refused_and_running_it_again_works(folder):
    key = new_api_key()
    with ScriptedModelServer([Turn.text("One."), Turn.text("Title"), Turn.text("Two.")], api_key=key) as server:
        with _kernel(folder, "analysis.ipynb", server, key) as first, \
                _kernel(folder, "analysis.ipynb", server, key) as second:
            _ok(first.execute("%%codetether\nTurn one"))
            _ok(second.execute("%codetether status"))
            _ok(first.execute("%%codetether\nTurn two"))
            refused = _failed(second.execute("%codetether title Mine"))
            assert "was not saved over. Run the same command again" in refused
            _ok(second.execute("%codetether title Mine"))
    notebook = orjson.loads((folder / "analysis.codetether.json").read_bytes())
    assert notebook["title"] == "Mine"
    assert [m["content"][0]["text"] for m in notebook["messages"] if m["role"] == "user"] == ["Turn one", "Turn two"]


def test_a_copy_gets_its_own_id_when_the_original_archived_first(folder, isolated_environment):
    key = new_api_key()
    turns = [Turn.text("A."), Turn.text("Title A"), Turn.text("A again."), Turn.text("B.")]
    with ScriptedModelServer(turns, api_key=key) as server:
        with _kernel(folder, "a.ipynb", server, key) as a:
            _ok(a.execute("%%codetether\nTurn in A"))
            _copy_notebook(folder, "a", "b")
            _ok(a.execute("%%codetether\nSecond turn in A"))
            _ok(a.execute("%codetether new"))  # the original archives first
        with _kernel(folder, "b.ipynb", server, key) as b:
            _ok(b.execute("%%codetether\nTurn in B"))
            archived_a = orjson.loads(next((isolated_environment / "sessions").glob("*.json")).read_bytes())["id"]
            assert orjson.loads((folder / "b.codetether.json").read_bytes())["id"] != archived_a  # before b archives
            _ok(b.execute("%codetether new"))
        assert server.errors == [] and server.remaining == 0
    archives = sorted((isolated_environment / "sessions").glob("*.json"))
    assert len({orjson.loads(p.read_bytes())["id"] for p in archives}) == len(archives) == 2
    everything = _user_turns_on_disk(folder, isolated_environment)
    for turn in ("Turn in A", "Second turn in A", "Turn in B"):
        assert turn in everything, turn
