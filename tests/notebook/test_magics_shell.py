"""The magics in a plain IPython shell (the worker-thread path) against the loopback server.

Fast checks that need no kernel: load / unload mirror each other, loading is silent, quick
and light, help comes from magic_arguments, the traitlets config is used, the replay
switches work, and the ``%codetether`` subcommands manage the notebook's sessions.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from codetether_magics import load_ipython_extension, unload_ipython_extension
from codetether_magics.notebook.cell_rewrite import RUNNER_NAME, rewrite_codetether_cell
from codetether_magics.notebook.magics import CodeTether
from codetether_magics.testing import Turn


def get_ipython() -> InteractiveShell:
    """The process's one shell (other test modules share it)."""
    return InteractiveShell.instance()


def _magics(ip) -> CodeTether:
    return ip.magics_manager.registry["CodeTether"]


# -- load / unload ------------------------------------------------------------------


def test_load_twice_then_unload_removes_everything(monkeypatch: pytest.MonkeyPatch):
    ip = get_ipython()
    monkeypatch.setattr(ip, "kernel", object(), raising=False)  # as under ipykernel
    before = len(ip.configurables)
    hooks_before = {name: list(callbacks) for name, callbacks in ip.events.callbacks.items()}
    load_ipython_extension(ip)
    first = _magics(ip)
    assert first.capture is not None  # images are captured from the start
    load_ipython_extension(ip)  # a no-op
    assert _magics(ip) is first
    assert ip.input_transformers_cleanup.count(rewrite_codetether_cell) == 1
    assert ip.user_ns[RUNNER_NAME] == first.run_cell_async
    assert ip.find_cell_magic("codetether") and ip.find_line_magic("codetether")

    unload_ipython_extension(ip)
    assert "CodeTether" not in ip.magics_manager.registry
    assert ip.find_cell_magic("codetether") is None and ip.find_line_magic("codetether") is None
    assert rewrite_codetether_cell not in ip.input_transformers_cleanup
    assert RUNNER_NAME not in ip.user_ns and RUNNER_NAME not in ip.user_ns_hidden
    assert len(ip.configurables) == before
    assert {name: list(callbacks) for name, callbacks in ip.events.callbacks.items()} == hooks_before
    assert "publish" not in vars(ip.display_pub)  # the image hook's wrapper is gone
    unload_ipython_extension(ip)  # unloading twice is harmless too


def test_load_is_silent_fast_and_defers_heavy_imports(tmp_path: Path):
    script = (
        "import sys, time\n"
        "from IPython.testing.globalipapp import get_ipython\n"
        "ip = get_ipython()\n"
        "start = time.perf_counter()\n"
        "ip.run_line_magic('load_ext', 'codetether_magics')\n"
        "elapsed = time.perf_counter() - start\n"
        "heavy = [m for m in ('httpx', 'ipywidgets', 'hvac', 'markdown_it', 'pydantic') if m in sys.modules]\n"
        "sys.__stdout__.write(f'RESULT {elapsed:.3f} {heavy}\\n')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert done.stderr == ""
    (line,) = done.stdout.splitlines()  # nothing but our own report: loading printed nothing
    _, elapsed, heavy = line.split(" ", 2)
    assert heavy == "[]"
    assert float(elapsed) < 0.5


def test_help_comes_from_magic_arguments(shell, capsys):
    shell.run_cell("%%codetether?\n")
    shown = capsys.readouterr().out
    for option in ("--model", "--image", "--new", "--session", "--max-steps", "--allow", "--replay", "--live",
                   "--no-stream"):
        assert option in shown
    shell.run_line_magic("codetether", "help")
    assert "export md|json [PATH]" in capsys.readouterr().out


# -- running cells --------------------------------------------------------------------


def test_config_traits_reach_the_request_and_the_loop(shell, server, capsys):
    server.enqueue(
        Turn.tool_call("python", {"code": "configured = 'yes'"}, expect_model="gpt-4.1-nano"),
        Turn.text("Configured title"),
    )
    shell.run_line_magic("config", 'CodeTether.model = "openai/gpt-4.1-nano"')
    shell.run_line_magic("config", "CodeTether.max_steps = 1")
    shell.run_line_magic("config", "CodeTether.auto_approve = True")
    shell.run_cell("%%codetether\nSet a variable.")
    out = capsys.readouterr().out
    assert shell.user_ns["configured"] == "yes"  # auto_approve: the python tool ran without asking
    assert "Stopped after 1 step (max_steps)" in out  # max_steps = 1: no second model call
    assert len(server.model_requests) == 2  # the step, then the first turn's title


def test_replay_switches_answer_from_the_transcript(shell, server, monkeypatch, capsys):
    server.enqueue(Turn.text("Answer A"), Turn.text("Title"), Turn.text("Answer B"), Turn.text("Answer C"))
    for prompt in ("A?", "B?", "C?"):
        assert shell.run_cell(f"%%codetether\n{prompt}").success
    unload_ipython_extension(shell)  # a fresh kernel: the prompt counts start again
    load_ipython_extension(shell)
    capsys.readouterr()
    requests = len(server.model_requests)
    transcript = (Path.cwd() / "notebook.codetether.json").read_bytes()

    shell.run_cell("%%codetether --replay --new\nA?")  # a replay writes nothing, even with --new
    monkeypatch.setenv("CODETETHER_REPLAY", "1")
    shell.run_cell("%%codetether\nB?")
    monkeypatch.delenv("CODETETHER_REPLAY")
    shell.run_line_magic("config", "CodeTether.replay = True")
    shell.run_cell("%%codetether\nC?")
    out = capsys.readouterr().out
    assert [answer in out for answer in ("Answer A", "Answer B", "Answer C")] == [True] * 3
    assert len(server.model_requests) == requests  # no network call
    assert (Path.cwd() / "notebook.codetether.json").read_bytes() == transcript

    server.enqueue(Turn.text("Live again"))
    shell.run_cell("%%codetether --live\nA?")  # --live wins over CodeTether.replay
    assert "Live again" in capsys.readouterr().out
    shell.run_line_magic("config", "CodeTether.replay = False")


def test_no_provider_and_no_recording_is_a_short_clear_error(shell, capsys):
    result = shell.run_cell("%%codetether\nHello?")
    captured = capsys.readouterr()
    assert not result.success
    assert "CodeTether: " in captured.out + captured.err
    assert "Traceback" not in captured.out + captured.err


def test_empty_cell_and_bad_image_are_usage_errors(shell, server, capsys):
    shell.run_cell("%%codetether\n# NBVAL_SKIP\n\n")
    assert "the cell has no prompt" in capsys.readouterr().err
    shell.run_cell("%%codetether -i no_such_variable\nLook.")
    assert "no_such_variable" in capsys.readouterr().err
    assert server.model_requests == []


# -- %codetether subcommands ---------------------------------------------------------


def test_new_resume_session_bind_title_model(shell, server, tmp_path, isolated_environment, capsys):
    server.enqueue(Turn.text("First answer."), Turn.text("First title"))
    shell.run_cell("%%codetether\nFirst question.")
    first_id = json.loads((tmp_path / "notebook.codetether.json").read_text())["id"]

    shell.run_line_magic("codetether", "new")
    out = capsys.readouterr().out
    assert f"%codetether resume {first_id}" in out
    assert (isolated_environment / "sessions" / f"{first_id}.json").exists()
    fresh = json.loads((tmp_path / "notebook.codetether.json").read_text())
    assert fresh["id"] != first_id and fresh["messages"] == []  # the notebook's file now holds the new one

    # --session ID continues the old conversation: its history goes with the request.
    server.enqueue(Turn.text("Continued.", expect_user_text="Second question."))
    shell.run_cell(f"%%codetether --session {first_id}\nSecond question.")
    history = [m["content"] for m in server.model_requests[-1].body["messages"] if m["role"] == "user"]
    assert history == ["First question.", "Second question."]
    resumed = json.loads((tmp_path / "notebook.codetether.json").read_text())
    assert (resumed["id"], resumed["metadata"]["notebook"]) == (first_id, "notebook.ipynb")

    shell.user_ns["x"] = "expanded"
    shell.run_cell("%codetether title My analysis of {x} for $5")
    shell.run_line_magic("codetether", "model anthropic/claude-sonnet-4-20250514")
    shell.run_line_magic("codetether", "status")
    out = capsys.readouterr().out
    assert "anthropic/claude-sonnet-4-20250514 (CodeTether.model)" in out
    title = json.loads((tmp_path / "notebook.codetether.json").read_text())["title"]
    assert title == "My analysis of {x} for $5"  # no variable expansion
    shell.run_line_magic("config", "CodeTether.model = None")

    shell.run_line_magic("codetether", f"bind {tmp_path / 'other.ipynb'}")
    assert "other.codetether.json (new)" in capsys.readouterr().out
    with pytest.raises(UsageError, match="No session 'no-such-session'"):
        shell.run_line_magic("codetether", "resume no-such-session")
    with pytest.raises(UsageError, match=r"unknown subcommand 'frobnicate'\. Use one of: status, new, list"):
        shell.run_line_magic("codetether", "frobnicate")


def test_a_corrupt_transcript_is_reported_and_left_alone(shell, tmp_path):
    transcript = tmp_path / "notebook.codetether.json"
    transcript.write_text('{"id": "broken", "messages": [')
    with pytest.raises(UsageError, match=r"%codetether status: .*notebook\.codetether\.json"):
        shell.run_line_magic("codetether", "status")
    result = shell.run_cell("%%codetether\nHello?")
    assert not result.success
    assert transcript.read_text() == '{"id": "broken", "messages": ['


def test_bad_config_values_are_refused_with_the_reason(shell):
    from traitlets import TraitError

    magics = _magics(shell)
    with pytest.raises(TraitError, match="max_steps must be 1 or more"):
        magics.max_steps = 0
    with pytest.raises(TraitError, match="approval_timeout must be more than 0"):
        magics.approval_timeout = -1
    assert magics.max_steps is None


def test_a_transcript_from_another_machine_still_runs(shell, server, tmp_path):
    """The recorded directory does not exist here: tools work in the notebook's folder instead."""
    server.enqueue(Turn.text("First."), Turn.text("Title"))
    shell.run_cell("%%codetether\nHello.")
    transcript = tmp_path / "notebook.codetether.json"
    data = json.loads(transcript.read_text())
    data["metadata"]["directory"] = "/home/someone-else/project"
    transcript.write_text(json.dumps(data))
    unload_ipython_extension(shell)  # a new kernel on this machine
    load_ipython_extension(shell)

    server.enqueue(Turn.text("Still fine.", expect_system=f"Working directory: {tmp_path}"))
    assert shell.run_cell("%%codetether\nAgain.").success
    assert json.loads(transcript.read_text())["metadata"]["directory"] == str(tmp_path)
