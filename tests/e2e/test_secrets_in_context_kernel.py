"""Keys a user types or prints in a notebook, as an attacker reading the model's logs would look for them.

A real kernel (nbclient) against the scripted server: the key is set with ``%env``, a first
wrong key is replaced by the right one, pasted into a prompt, a key is assigned in Python (``os.environ[...] = ``), printed
by a cell, printed by the ``python`` tool and read back with the ``cells`` tool. None of them
reaches a model request, the transcript, or the saved notebook.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codetether_magics.testing import ScriptedModelServer, Turn
from tests.support.kernel import kernel_env, make_notebook, run_notebook, text_of

pytestmark = pytest.mark.slow

KEY = "sk-proj-RightKey0123456789abcdefCANARY"
WRONG = "sk-proj-WrongKey9876543210zyxwvuCANARY"
OTHER = "ghp_0123456789abcdefghijABCDEFGHIJ012345"  # a token in a credential-named variable nobody reads


def test_keys_typed_or_printed_in_cells_never_reach_the_model(tmp_path: Path):
    turns = [
        Turn.tool_call("python", {"code": "import os; print(os.environ['OPENAI_API_KEY'])"}),
        Turn.tool_call("cells", {}),
        Turn.text("Done."),
        Turn.text("Keys"),
    ]
    cells = [
        "%load_ext codetether_magics",
        f"%env OPENAI_API_KEY={WRONG}",
        f"%env OPENAI_API_KEY={KEY}",
        f"import os\nos.environ['GITHUB_TOKEN'] = '{OTHER}'\ndel os.environ['GITHUB_TOKEN']",
        "print(os.environ['OPENAI_API_KEY'])",
        f"%%codetether --allow python\nCheck my setup: is {KEY} right?",
    ]
    with ScriptedModelServer(turns, api_key=KEY) as server:
        env = kernel_env(tmp_path, server, api_key=KEY)
        env.pop("OPENAI_API_KEY")  # the notebook sets it
        nb = run_notebook(make_notebook(*cells), tmp_path, env, timeout=120)
        assert server.errors == []
        sent = json.dumps([r.body for r in server.model_requests])
    assert "Done." in text_of(nb.cells[5], "text/markdown")
    assert "%env OPENAI_API_KEY=" in sent and "[redacted]" in sent  # the cells went, without their keys
    saved = (tmp_path / "analysis.codetether.json").read_text()
    shown = json.dumps([c.get("outputs", []) for c in nb.cells[5:]])
    for value in (KEY, WRONG, OTHER):
        assert value not in sent, value
        assert value not in saved and value not in shown
