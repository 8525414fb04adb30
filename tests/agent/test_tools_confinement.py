"""Tools stay in the working directory, whatever a transcript says: a poisoned transcript through the Python API.

The transcript's ``metadata.directory`` is each of ``/``, ``..``, ``~``, an absolute folder
outside and a symlink pointing out; the scripted model (a real loopback server, OpenAI
protocol) then asks for /etc/passwd, a secret beside the project, ``~`` and a write outside,
with an approver that says yes to everything. Nothing outside may be read or written, and
no byte of it may reach the model's next request (the exfiltration channel).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from codetether_magics.agent.loop import run_prompt
from codetether_magics.agent.tools.paths import tool_root
from codetether_magics.providers.openai import OpenAIProvider
from codetether_magics.session.session import Session
from codetether_magics.testing import ScriptedModelServer, Turn

SECRET = "TOP-SECRET-4d1f"
PASSWD_MARK = "root:x:0:0"


class OneProviderRegistry:
    def __init__(self, provider, model: str) -> None:
        self.provider, self.model = provider, model

    def default_model(self) -> str:
        return self.model

    def resolve_model(self, model):
        return self.provider, (model or self.model).partition("/")[2]


@pytest.fixture
def layout(tmp_path: Path, monkeypatch) -> dict[str, Path]:
    project, outside = tmp_path / "project", tmp_path / "outside"
    project.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET + "\n")
    (project / "inside.txt").write_text("inside text\n")
    (project / "out-link").symlink_to(outside)
    (project / "secret-link.txt").symlink_to(outside / "secret.txt")
    (project / "dangling.txt").symlink_to(outside / "created-through-a-link.txt")
    monkeypatch.chdir(project)
    return {"project": project, "outside": outside}


def attacks(outside: Path) -> list[tuple[str, dict]]:
    """Each call a hostile model (or a hostile transcript) makes to get out of the project."""
    return [
        ("read", {"path": "/etc/passwd"}),
        ("read", {"path": "../outside/secret.txt"}),
        ("read", {"path": str(outside / "secret.txt")}),
        ("read", {"path": "secret-link.txt"}),
        ("read", {"path": "out-link/secret.txt"}),
        ("read", {"path": "~/../etc/passwd"}),
        ("list", {"path": "/"}),
        ("list", {"path": ".."}),
        ("list", {"path": "out-link"}),
        ("glob", {"pattern": "*", "path": str(outside)}),
        ("glob", {"pattern": "../outside/*"}),
        ("grep", {"pattern": "root", "path": "/etc"}),
        ("grep", {"pattern": "SECRET", "path": "out-link"}),
        ("write", {"path": str(outside / "pwned.txt"), "content": "pwned"}),
        ("write", {"path": "../outside/pwned.txt", "content": "pwned"}),
        ("write", {"path": "out-link/pwned.txt", "content": "pwned"}),
        ("write", {"path": "dangling.txt", "content": "pwned"}),
        ("edit", {"path": "secret-link.txt", "old_string": "TOP", "new_string": "PWNED"}),
    ]


POISONED_DIRECTORIES = ["/", "..", "~", "outside", "out-link"]


async def poisoned_session(layout: dict[str, Path], directory: str) -> Session:
    """A transcript saved by 'someone else' whose directory points out of the project, loaded back."""
    session = await Session.new(layout["project"])
    session.title = "shared notebook"
    session.metadata.directory = {"outside": str(layout["outside"]),
                                  "out-link": str(layout["project"] / "out-link")}.get(directory, directory)
    path = layout["project"] / "analysis.codetether.json"
    await session.save(path)
    loaded = await Session.load_path(path)
    assert loaded.metadata.directory == session.metadata.directory  # the poison survived the round trip
    return loaded


def test_the_tool_root_is_the_folder_given_or_the_cwd(layout):
    assert tool_root(layout["project"]) == layout["project"].resolve()
    assert tool_root(None) == layout["project"].resolve()  # the cwd
    assert tool_root(layout["project"] / "missing") == layout["project"].resolve()


@pytest.mark.parametrize("directory", POISONED_DIRECTORIES)
async def test_a_poisoned_transcript_cannot_widen_the_tools(layout, directory):
    session = await poisoned_session(layout, directory)
    calls = attacks(layout["outside"])
    turns = [Turn.tool_call(name, args) for name, args in calls] + [Turn.text("done")]
    events: list = []
    with ScriptedModelServer(turns) as server:
        registry = OneProviderRegistry(OpenAIProvider("openai", "sk-test-confine", server.openai_base_url),
                                       "openai/gpt-4o")
        await run_prompt(session, "look around", [], events.append, registry, approver=lambda request: True,
                         retry_delays=(0.0,), title_model_call=False)
        bodies = json.dumps([request.body for request in server.model_requests])
    results = [e for e in events if e.type == "tool_call_complete"]
    escaped = [(r.name, r.output) for r in results if r.success]
    print(f"directory {directory!r}: {len(results)} tries, {len(escaped)} got out")
    assert len(results) == len(calls) and escaped == []
    refusals = ("outside the session directory", "may not contain '..'")
    odd = [r.output for r in results if not any(words in r.output for words in refusals)]
    assert odd == []
    assert PASSWD_MARK not in bodies and SECRET not in bodies  # nothing reached the model
    assert not (layout["outside"] / "pwned.txt").exists()
    assert (layout["outside"] / "secret.txt").read_text() == SECRET + "\n"
    assert sorted(os.listdir(layout["outside"])) == ["secret.txt"]


async def test_inside_the_project_the_same_tools_work(layout):
    session = await poisoned_session(layout, "/")
    turns = [Turn.tool_call("read", {"path": "inside.txt"}), Turn.tool_call("write", {"path": "new.txt", "content": "x"}),
             Turn.text("ok", expect_tool_result="Created new.txt")]
    with ScriptedModelServer(turns) as server:
        registry = OneProviderRegistry(OpenAIProvider("openai", "sk-test-confine", server.openai_base_url),
                                       "openai/gpt-4o")
        await run_prompt(session, "work", [], None, registry, approver=lambda request: True,
                         retry_delays=(0.0,), title_model_call=False)
        assert server.errors == []
        assert "inside text" in json.dumps(server.model_requests[1].body)
    assert (layout["project"] / "new.txt").read_text() == "x"
