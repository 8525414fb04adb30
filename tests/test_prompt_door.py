"""The prompt door: ``Session.prompt*`` reach the agent loop without ``session/`` importing it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from codetether_magics import _prompt_door
from codetether_magics.session.session import Session, SessionResult

REPO = Path(__file__).resolve().parent.parent


def test_importing_the_session_imports_no_agent_provider_or_notebook_code():
    code = (
        "import sys\n"
        "from codetether_magics.session.session import Session\n"
        "from codetether_magics import _prompt_door\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('codetether_magics.'))\n"
        "print([m for m in loaded if m.split('.')[1] in ('agent', 'providers', 'notebook', 'testing')])\n"
        "print('httpx' in sys.modules, _prompt_door.installed() is not None)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60,
                          check=True)
    assert done.stdout.splitlines() == ["[]", "False True"]  # nothing above storage, yet the door is wired


async def test_prompt_goes_through_the_installed_runner(tmp_path):
    calls = []

    async def fake_loop(session, message, images, events, registry, **options):
        calls.append((session, message, images, events, registry, options))
        return SessionResult(text=f"echo: {message}", session_id=session.id)

    session = await Session.new(tmp_path)
    previous = _prompt_door.install(fake_loop)
    try:
        result = await session.prompt("hello")
        again = await session.prompt_with_events("twice", print, "a registry", model="x/y")
    finally:
        _prompt_door.install(previous)
    assert result == SessionResult(text="echo: hello", session_id=session.id)
    assert again.text == "echo: twice"
    assert calls[0] == (session, "hello", [], None, None, {})
    assert calls[1] == (session, "twice", [], print, "a registry", {"model": "x/y"})


async def test_the_root_runner_is_the_agent_loop(tmp_path, monkeypatch):
    from codetether_magics.agent import loop

    seen = []

    async def spy(session, message, images, events, registry, **options):
        seen.append(message)
        return SessionResult(text="from the loop", session_id=session.id)

    monkeypatch.setattr(loop, "run_prompt", spy)  # the root's runner looks the loop up at each prompt
    session = await Session.new(tmp_path)
    assert (await session.prompt("via the root")).text == "from the loop"
    assert seen == ["via the root"]


async def test_without_a_runner_the_error_says_what_to_do(tmp_path):
    session = await Session.new(tmp_path)
    previous = _prompt_door.install(None)
    try:
        with pytest.raises(RuntimeError, match="No agent loop is installed behind Session.prompt; import "
                                               "codetether_magics"):
            await session.prompt("hello")
    finally:
        _prompt_door.install(previous)
    assert _prompt_door.installed() is previous
