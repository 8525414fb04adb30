"""Two kernels on one notebook and a copy of it, driven in a random order as a careless user (or an
attacker racing them) would: every user turn ever sent is still in some session file.

Each step picks a kernel and one of: a turn, a turn with ``--new``, ``%codetether new``,
``%codetether title``; a step that fails for a conflict is followed by the same step again (the
advice every conflict gives). Seeded, so a failure replays.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import nbformat
import pytest

from codetether_magics.testing import ScriptedModelServer, Turn
from tests.e2e.test_notebook_conflicts import _shown, _user_turns_on_disk
from tests.support.kernel import LiveKernel, kernel_env, make_notebook, new_api_key

pytestmark = pytest.mark.slow

ACTIONS = ("turn", "new turn", "new", "title")


def _kernel(folder: Path, notebook: str, server, key: str) -> LiveKernel:
    if not (folder / notebook).exists():
        nbformat.write(make_notebook(), folder / notebook)
    kernel = LiveKernel(folder, kernel_env(folder, server, key, CODETETHER_NOTEBOOK=notebook))
    assert kernel.execute("%load_ext codetether_magics").reply["content"]["status"] == "ok"
    return kernel


def _code(action: str, step: int) -> str:
    return {"turn": f"%%codetether\nturn {step}", "new turn": f"%%codetether --new\nturn {step}",
            "new": "%codetether new", "title": f"%codetether title Title {step}"}[action]


@pytest.mark.parametrize("seed", [1, 2])
def test_random_races_on_one_notebook_and_its_copy_lose_no_turn(tmp_path: Path, isolated_environment, seed: int):
    folder = tmp_path / "work"
    folder.mkdir()
    rng = random.Random(seed)
    key = new_api_key()
    sent, errors, conflicts = [], [], 0
    with ScriptedModelServer([Turn.text("ok.")] * 200, api_key=key) as server:
        kernels = [_kernel(folder, "analysis.ipynb", server, key), _kernel(folder, "analysis.ipynb", server, key)]
        try:
            for step in range(20):
                if step == 6:  # the notebook is copied with its transcript, and opened in a third kernel
                    shutil.copy(folder / "analysis.ipynb", folder / "copy.ipynb")
                    if (folder / "analysis.codetether.json").exists():
                        shutil.copy(folder / "analysis.codetether.json", folder / "copy.codetether.json")
                    kernels.append(_kernel(folder, "copy.ipynb", server, key))
                kernel, action = rng.choice(kernels), rng.choice(ACTIONS)
                if action in ("turn", "new turn"):
                    sent.append(f"turn {step}")
                run = kernel.execute(_code(action, step), timeout=60)
                if run.reply["content"]["status"] != "ok":
                    shown = _shown(run)
                    conflicts += 1
                    assert "another kernel" in shown or "changed" in shown, shown  # only conflicts may fail
                    again = kernel.execute(_code(action, step), timeout=60)  # the advice: run it again
                    if again.reply["content"]["status"] != "ok":
                        errors.append(_shown(again))
        finally:
            for kernel in kernels:
                kernel.__exit__(None, None, None)
        assert server.errors == []
    on_disk = _user_turns_on_disk(folder, isolated_environment)
    lost = [turn for turn in sent if turn not in on_disk]
    print(f"\nseed {seed}: {len(sent)} turns sent, {conflicts} conflicts, {len(lost)} lost, "
          f"{len(errors)} advice failures")
    assert conflicts > 0  # the race did happen
    assert lost == [] and errors == []
