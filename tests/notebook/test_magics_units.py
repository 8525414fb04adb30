"""Pure pieces of the magics: the cell rewrite, option parsing, the notebook path, approval."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest
from IPython.core.error import UsageError

from codetether_magics.agent.tools.base import ApprovalRequest
from codetether_magics.errors import ToolError
from codetether_magics.notebook.approval import (
    ApprovalPolicy,
    decide,
    frontend_can_answer,
    make_approver,
    parse_allow,
)
from codetether_magics.notebook.cell_rewrite import RUNNER_NAME, rewrite_codetether_cell
from codetether_magics.notebook.magics import parse_cell_options
from codetether_magics.notebook.path import find_notebook, transcript_path


def _rewrite(cell: str) -> list[str]:
    return rewrite_codetether_cell(cell.splitlines(keepends=True))


def _call_arguments(lines: list[str]) -> tuple[str, str]:
    (statement,) = lines
    call = ast.parse(statement).body[0].value.value  # Expr(Await(Call))
    assert call.func.id == RUNNER_NAME
    return call.args[0].value, call.args[1].value


# -- the cell rewrite -----------------------------------------------------------


def test_rewrite_keeps_braces_dollars_and_quotes_and_drops_nbval_lines():
    cell = ("\n# NBVAL_IGNORE_OUTPUT\n%%codetether -m openai/x --allow python\n"
            "f\"{x}\" costs $5 '''\n# NBVAL_SKIP\nend\\n")
    line, body = _call_arguments(_rewrite(cell))
    assert line == "-m openai/x --allow python"
    assert body == "f\"{x}\" costs $5 '''\nend\\n"


def test_rewrite_leaves_other_cells_and_help_alone():
    untouched = ["x = 1\n", "%%capture\n%%codetether\nhi\n", "%%codetether?\n", "%%codetethers\nhi\n",
                 "# hi\n%%codetether\nhi"]
    for cell in untouched:
        assert _rewrite(cell) == cell.splitlines(keepends=True)


def test_rewrite_magic_without_options():
    assert _call_arguments(_rewrite("%%codetether\nhello")) == ("", "hello")


# -- options ----------------------------------------------------------------------


def test_options_parse_every_flag():
    options = parse_cell_options(
        '-m "openai/gpt-4o-mini" -i last -i fig --new --max-steps 3 --allow python,bash --allow read --no-stream --live'
    )
    assert options.model == "openai/gpt-4o-mini"
    assert options.image == ["last", "fig"]
    assert options.new and options.live and options.no_stream and not options.replay
    assert options.max_steps == 3
    assert options.allow == ["python,bash", "read"]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("--bogus", "unrecognized arguments: --bogus"),
        ("--max-steps many", "invalid int value: 'many'"),
        ("--max-steps 0", "--max-steps must be 1 or more"),
        ("--replay --live", "choose one"),
        ("--new --session abc", "choose one"),
        ("-m", "expected one argument"),
    ],
)
def test_bad_options_answer_with_usage_and_the_problem(line, problem):
    with pytest.raises(UsageError) as caught:
        parse_cell_options(line)
    message = str(caught.value)
    assert problem in message
    assert "Usage: %%codetether [-m MODEL]" in message


# -- notebook path ----------------------------------------------------------------


def test_notebook_path_order(tmp_path: Path):
    env = {"JPY_SESSION_NAME": str(tmp_path / "b.ipynb"), "CODETETHER_NOTEBOOK": str(tmp_path / "d.ipynb")}
    ns = {"__session__": str(tmp_path / "a.ipynb"), "__vsc_ipynb_file__": str(tmp_path / "c.ipynb")}
    assert find_notebook(ns, env, cwd=tmp_path).path.name == "a.ipynb"
    assert find_notebook({}, env, cwd=tmp_path).path.name == "b.ipynb"
    assert find_notebook({"__vsc_ipynb_file__": ns["__vsc_ipynb_file__"]}, {}, cwd=tmp_path).path.name == "c.ipynb"
    assert find_notebook({}, {"CODETETHER_NOTEBOOK": "d.ipynb"}, cwd=tmp_path).path == tmp_path / "d.ipynb"
    bound = find_notebook({}, {"CODETETHER_NOTEBOOK": "d.ipynb"}, bound="sub/e.ipynb", cwd=tmp_path)
    assert bound.path == tmp_path / "sub" / "e.ipynb" and bound.source == "%codetether bind"
    # A JupyterLab console's session name is not a notebook: skipped.
    assert find_notebook({}, {"JPY_SESSION_NAME": "Console 1"}, cwd=tmp_path).path.name == "notebook.ipynb"


def test_notebook_fallback_is_the_only_notebook_or_a_fixed_name(tmp_path: Path):
    assert find_notebook({}, {}, cwd=tmp_path).path == tmp_path / "notebook.ipynb"
    (tmp_path / "analysis.ipynb").write_text("{}")
    found = find_notebook({}, {}, cwd=tmp_path)
    assert found.path == tmp_path / "analysis.ipynb"
    assert found.transcript == tmp_path / "analysis.codetether.json"
    (tmp_path / "other.ipynb").write_text("{}")
    assert find_notebook({}, {}, cwd=tmp_path).path == tmp_path / "notebook.ipynb"
    assert transcript_path(Path("/x/my.data.ipynb")) == Path("/x/my.data.codetether.json")


# -- approval ---------------------------------------------------------------------


def test_approval_decisions():
    assert decide("python", ApprovalPolicy()) == "refuse"
    assert decide("python", ApprovalPolicy(can_ask=True)) == "ask"
    assert decide("python", ApprovalPolicy(allowed=frozenset({"python"}))) == "allow"
    assert decide("python", ApprovalPolicy(allowed=frozenset({"all"}))) == "allow"
    assert decide("python", ApprovalPolicy(allowed=frozenset({"bash"}))) == "refuse"
    assert decide("python", ApprovalPolicy(auto_approve=True)) == "allow"


def test_frontend_detection():
    assert not frontend_can_answer({}, {})
    assert frontend_can_answer({}, {"JPY_SESSION_NAME": "/n/a.ipynb"})
    assert frontend_can_answer({"__session__": "/n/a.ipynb"}, {})
    assert frontend_can_answer({"__vsc_ipynb_file__": "/n/a.ipynb"}, {})


def test_parse_allow_names_unknown_tools():
    assert parse_allow(["python, bash", "all"], ["python", "bash"]) == {"python", "bash", "all"}
    with pytest.raises(ValueError, match=r"unknown tool 'pyhton'.*Known tools: bash, python"):
        parse_allow(["pyhton"], ["python", "bash"])


async def test_refusal_tells_the_model_how_to_allow_the_tool():
    request = ApprovalRequest("call_1", "python", {"code": "1"})
    with pytest.raises(ToolError, match=r"tool 'python' needs approval; re-run the cell with --allow python"):
        await make_approver(ApprovalPolicy(), None)(request)
    assert await make_approver(ApprovalPolicy(allowed=frozenset({"python"})), None)(request) is True


async def test_approver_asks_and_times_out_as_deny():
    request = ApprovalRequest("call_1", "python", {"code": "1"})
    asked = []

    async def ask(req):
        asked.append(req)
        return True

    assert await make_approver(ApprovalPolicy(can_ask=True), ask)(request) is True
    assert asked == [request]

    async def never(req):
        await asyncio.Event().wait()

    with pytest.raises(ToolError, match="nobody answered the approval request within 0.01 s"):
        await make_approver(ApprovalPolicy(can_ask=True, timeout=0.01), never)(request)

    async def deny(req):
        return False

    assert await make_approver(ApprovalPolicy(can_ask=True), deny)(request) is False
    with pytest.raises(ToolError):  # nobody to ask: ask is never called
        await make_approver(ApprovalPolicy(), ask)(request)
    assert len(asked) == 1
    assert await make_approver(ApprovalPolicy(auto_approve=True), None)(request) is True


# -- live or replay, and the fallback runner ---------------------------------------


@pytest.mark.parametrize(
    ("line", "config", "env", "provider", "recorded", "expected"),
    [
        ("", False, {}, True, True, "live"),  # a provider and a recording: live by default
        ("", False, {}, False, True, "replay"),  # no provider, the transcript holds the turn
        ("", False, {}, False, False, "live"),  # nothing to replay: live (and a clear error)
        ("--replay", False, {}, True, True, "replay"),
        ("", True, {}, True, True, "replay"),  # %config CodeTether.replay = True
        ("", False, {"CODETETHER_REPLAY": "1"}, True, True, "replay"),
        ("", False, {"CODETETHER_REPLAY": " True\n"}, True, True, "replay"),  # as the registry skip reads it
        ("", False, {"CODETETHER_REPLAY": "0"}, True, True, "live"),
        ("--live", True, {"CODETETHER_REPLAY": "1"}, False, True, "live"),  # --live wins over everything
    ],
)
def test_live_or_replay(line, config, env, provider, recorded, expected):
    from codetether_magics.notebook.mode import choose_mode

    options = parse_cell_options(line)
    mode = choose_mode(options, replay_config=config, environ=env, provider_configured=provider,
                       has_recording=recorded)
    assert mode == expected


def test_fallback_runner_cancels_on_ctrl_c_and_lets_the_run_clean_up():
    import os
    import signal
    import threading

    from codetether_magics.notebook.sync import run_sync

    cleaned = threading.Event()

    async def forever():
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.set()  # the loop saves the partial turn here

    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        run_sync(forever)
    assert cleaned.is_set()
    assert run_sync(lambda: asyncio.sleep(0, result="done")) == "done"
