"""The example notebooks, their transcripts, the quickstart job and the Binder setup.

``pytest --nbval notebooks`` (the second half of ``make test``) re-runs the notebooks
offline; these tests check what it cannot: that each agent cell's saved output is the
recorded answer, that the files hold no secret and no machine-specific path, that the
quickstart job replays with no model call even when a provider is configured, that a
notebook re-runs with no provider at all, and that re-recording reproduces the notebooks.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from codetether_magics.notebook.cell_rewrite import strip_nbval_lines
from codetether_magics.notebook.replay import find_recorded_turn
from codetether_magics.notebook.view.record import format_cost
from codetether_magics.session.session import Session
from codetether_magics.testing import ScriptedModelServer

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
sys.path.insert(0, str(ROOT / "scripts"))

import record_notebooks  # noqa: E402
from example_notebooks import EXAMPLES as RECORDED_EXAMPLES  # noqa: E402

EXAMPLES = ["quickstart", "plots", "data", "mcp"]
SECRET = re.compile(r"sk-[A-Za-z0-9_-]{8,}|Bearer\s+\S+|hvs\.[A-Za-z0-9]+")


def _notebook(name: str):
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


def _transcript(name: str) -> Session:
    return Session.model_validate_json((NOTEBOOKS / f"{name}.codetether.json").read_text())


def _prompt(source: str) -> str:
    """The prompt a %%codetether cell sends: its body without `# NBVAL_` lines, as the magic reads it."""
    body = source.split("\n", 1)[1] if "\n" in source else ""
    return strip_nbval_lines(body).strip("\n")


def _recorded_answer(turn) -> str:
    """What the loop answered in the recording: its steps' texts, joined by blank lines."""
    return "\n\n".join(m.text for m in turn.assistant_messages if m.text.strip())


def _recorded_footer(turn, session) -> str:
    """The record's last line: the model and this turn's tokens, as the transcript recorded them."""
    usages = [(m.model_extra or {}).get("usage", {}) for m in turn.assistant_messages]
    prompt, completion = (sum(u.get(k, 0) for u in usages) for k in ("prompt_tokens", "completion_tokens"))
    model = (turn.assistant_messages[0].model_extra or {}).get("model") or session.metadata.model
    cost = sum(u.get("cost_usd") or 0 for u in usages)
    footer = f"{model} · {prompt + completion:,} tokens ({prompt:,} in, {completion:,} out)" if prompt or completion \
        else model
    return f"{footer} · {format_cost(cost)}" if cost else footer


def _agent_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("%%codetether")]


@pytest.mark.parametrize("name", EXAMPLES)
def test_first_markdown_cell_says_how_the_answers_were_recorded(name):
    first = _notebook(name).cells[0]
    assert first.cell_type == "markdown"
    assert "scripted test model" in first.source and "ScriptedModelServer" in first.source
    assert "OPENAI_API_KEY" in first.source and "--live" in first.source
    assert f"{name}.codetether.json" in first.source


@pytest.mark.parametrize("name", EXAMPLES)
def test_each_agent_cell_shows_its_recorded_answer_once(name):
    nb, session = _notebook(name), _transcript(name)
    cells = _agent_cells(nb)
    assert cells, f"{name}.ipynb has no %%codetether cell"
    seen: dict[str, int] = {}
    for cell in cells:
        prompt = _prompt(cell.source)
        turn = find_recorded_turn(session, prompt, seen.get(prompt, 0))
        seen[prompt] = seen.get(prompt, 0) + 1
        assert turn is not None, f"no recorded turn for {prompt!r} in {name}.codetether.json"
        # The live view was cleared: the cell's one output is its record, with no widget in it.
        assert [o.output_type for o in cell.outputs] == ["display_data"], f"{name}: {prompt!r}"
        record = cell.outputs[0]["data"]
        assert set(record) == {"text/markdown", "text/plain"}, f"{name}: {prompt!r}"
        for message in turn.assistant_messages:
            assert message.text.strip() in record["text/plain"]
        assert record["text/plain"].endswith(_recorded_footer(turn, session))


@pytest.mark.parametrize("name", EXAMPLES)
def test_no_secret_or_machine_path_in_the_saved_files(name):
    for path in (NOTEBOOKS / f"{name}.ipynb", NOTEBOOKS / f"{name}.codetether.json"):
        text = path.read_text()
        assert not SECRET.search(text), f"{path.name} holds something that looks like a secret"
    outputs = json.dumps([c.get("outputs", []) for c in _notebook(name).cells])
    assert str(ROOT) not in outputs and "/tmp/" not in outputs


def test_binder_installs_the_package_with_the_notebooks_extra():
    post_build = (ROOT / "binder" / "postBuild").read_text()
    assert os.access(ROOT / "binder" / "postBuild", os.X_OK)
    assert 'pip install --no-cache-dir -e ".[notebooks]"' in post_build
    # The extra postBuild installs exists (a line-level check: tomllib is Python 3.11+ only).
    assert re.search(r"(?m)^notebooks\s*=\s*\[", (ROOT / "pyproject.toml").read_text())
    assert "jupyterlab" in (ROOT / "binder" / "requirements.txt").read_text()


@pytest.mark.slow
def test_quickstart_job_replays_without_any_model_call(tmp_path):
    """Even with a provider configured, the quickstart job never calls it: every answer is replayed."""
    output = tmp_path / "quickstart.ipynb"
    with ScriptedModelServer([]) as server:
        env = dict(os.environ, OPENAI_BASE_URL=server.openai_base_url, OPENAI_API_KEY="sk-test-unused")
        run = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "quickstart.py"), "--output", str(output)],
            env=env, capture_output=True, text=True, timeout=240, cwd=ROOT,
        )
        assert run.returncode == 0, run.stderr
        assert server.model_requests == []
    assert f"Executed copy: {output}" in run.stdout
    assert ".venv/bin/jupyter lab notebooks/quickstart.ipynb" in run.stdout
    executed, recorded = nbformat.read(output, as_version=4), _notebook("quickstart")
    for ran, saved in zip(_agent_cells(executed), _agent_cells(recorded)):
        finals = [[o["data"] for o in c.outputs if "text/markdown" in o.get("data", {})] for c in (ran, saved)]
        assert finals[0] == finals[1]


def _execute(path: Path, *, allow_errors: bool = False):
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=allow_errors,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def _comparable(outputs: list) -> list:
    """Outputs as nbval compares them: no widget model ids, no images, no execution counts."""
    kept = []
    for output in outputs:
        data = {k: v for k, v in output.get("data", {}).items()
                if k not in ("application/vnd.jupyter.widget-view+json", "image/png")}
        kept.append((output["output_type"], data, output.get("text")))
    return kept


def _copy_example(name: str, folder: Path) -> Path:
    for suffix in (".ipynb", ".codetether.json"):
        (folder / f"{name}{suffix}").write_bytes((NOTEBOOKS / f"{name}{suffix}").read_bytes())
    return folder / f"{name}.ipynb"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["data", "plots"])
def test_with_no_provider_the_notebook_reruns_top_to_bottom_from_its_transcript(tmp_path, name):
    """No key, no CODETETHER_REPLAY: the magic replays on its own; the python tool's variables
    exist for the later cells, every output equals the saved one, and the transcript is untouched."""
    path = _copy_example(name, tmp_path)
    transcript = (tmp_path / f"{name}.codetether.json").read_bytes()
    executed, saved = _execute(path), _notebook(name)
    assert [c.source for c in executed.cells] == [c.source for c in saved.cells]  # zip below drops none
    compared = 0
    for ran, kept in zip(executed.cells, saved.cells):
        if ran.cell_type == "code" and "nbval-ignore-output" not in kept.metadata.get("tags", []):
            assert _comparable(ran.outputs) == _comparable(kept.outputs), ran.source
            compared += "%%codetether" in ran.source
    assert compared >= 1  # the agent cells' replayed outputs were among those compared
    assert (tmp_path / f"{name}.codetether.json").read_bytes() == transcript


@pytest.mark.slow
@pytest.mark.parametrize("forced", [True, False], ids=["CODETETHER_REPLAY=1", "no-provider"])
def test_a_prompt_with_no_recorded_turn_says_which_cell_and_how_to_record(tmp_path, monkeypatch, forced):
    if forced:
        monkeypatch.setenv("CODETETHER_REPLAY", "1")
    path = _copy_example("quickstart", tmp_path)
    nb = nbformat.read(path, as_version=4)
    cell = _agent_cells(nb)[0]
    cell.source = "%%codetether\nA question that was never recorded"
    nbformat.write(nb, path)
    executed = _execute(path, allow_errors=True)
    outputs = json.dumps(_agent_cells(executed)[0].outputs)
    assert ("the transcript of quickstart.ipynb has no recorded answer for the cell "
            "'A question that was never recorded'") in outputs
    assert "quickstart.ipynb" in outputs and "--live" in outputs and "OPENAI_API_KEY" in outputs
    # With no provider it says that too (forced replay never looked for one, so it claims nothing).
    assert ("no model provider is configured to answer it live" in outputs) is (not forced)
    assert "%env OPENAI_API_KEY=" in outputs
    # The later cells still replay: the next agent cell's answer is there.
    assert "**385**" in json.dumps(_agent_cells(executed)[1].outputs)


@pytest.mark.slow
@pytest.mark.parametrize("name", EXAMPLES)
def test_re_recording_reproduces_the_committed_notebook(tmp_path, monkeypatch, name):
    """scripts/record_notebooks.py, live against the scripted server in a fresh folder, reports no
    problem and gives the committed cells and outputs (images aside: they depend on fonts).
    When this fails after a change to the magic's or the view's output, re-record the notebooks.
    The recorder's own config file (here one naming another provider) must not reach the kernel."""
    config = tmp_path / "user-config.toml"
    config.write_text('default_model = "anthropic/claude-elsewhere"\n'
                      '[providers.anthropic]\napi_key = "sk-ant-user-config"\nbase_url = "http://127.0.0.1:9"\n')
    monkeypatch.setenv("CODETETHER_CONFIG", str(config))
    assert record_notebooks.record(RECORDED_EXAMPLES[name], folder=tmp_path) == []
    fresh, committed = nbformat.read(tmp_path / f"{name}.ipynb", as_version=4), _notebook(name)
    assert [(c.id, c.cell_type, c.source) for c in fresh.cells] == \
           [(c.id, c.cell_type, c.source) for c in committed.cells]
    for new, old in zip(fresh.cells, committed.cells):
        if new.cell_type == "code":
            assert _comparable(new.outputs) == _comparable(old.outputs), new.source
    assert (tmp_path / f"{name}.codetether.json").is_file()
    assert not (tmp_path / f"{name}.codetether.json.lock").exists()
