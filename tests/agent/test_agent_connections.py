"""The model calls of one prompt share one HTTP client (one connection per server), closed at the end."""

from __future__ import annotations

import httpx

from codetether_magics.agent.loop import run_prompt
from codetether_magics.agent.tools.base import Tool
from codetether_magics.providers.registry import ProviderRegistry
from codetether_magics.session.session import Session
from codetether_magics.testing import ScriptedModelServer, Turn


async def _noop(arguments):
    return "ok"


NOOP = Tool("noop", "does nothing", {"type": "object", "properties": {}}, _noop, read_only=True)


def _count_clients(monkeypatch) -> list[httpx.AsyncClient]:
    made: list[httpx.AsyncClient] = []
    original = httpx.AsyncClient.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(httpx.AsyncClient, "__init__", init)
    return made


async def test_three_steps_and_the_title_call_share_one_client(tmp_path, monkeypatch):
    turns = [Turn.tool_call("noop", {}, id="c1"), Turn.tool_call("noop", {}, id="c2"), Turn.text("done"),
             Turn.text("A title")]
    with ScriptedModelServer(turns) as server:
        registry = ProviderRegistry.from_env({"OPENAI_API_KEY": "sk-test-pool",
                                              "OPENAI_BASE_URL": server.openai_base_url})
        made = _count_clients(monkeypatch)
        session = Session()
        session.metadata.directory = str(tmp_path)
        result = await run_prompt(session, "go", [], None, registry, tools=[NOOP])
        assert result.text == "done" and session.title == "A title"
        assert len(server.model_requests) == 4 and server.errors == []
    assert len(made) == 1, f"{len(made)} clients for one prompt"
    assert made[0].is_closed  # closed when the prompt ended


async def test_each_prompt_gets_its_own_client(tmp_path, monkeypatch):
    with ScriptedModelServer([Turn.text("one"), Turn.text("two")]) as server:
        registry = ProviderRegistry.from_env({"OPENAI_API_KEY": "sk-test-pool",
                                              "OPENAI_BASE_URL": server.openai_base_url})
        made = _count_clients(monkeypatch)
        session = Session(title="set")  # titled: no title call
        session.metadata.directory = str(tmp_path)
        assert (await run_prompt(session, "a", [], None, registry, save=False)).text == "one"
        assert (await run_prompt(session, "b", [], None, registry, save=False)).text == "two"
    assert len(made) == 2 and all(client.is_closed for client in made)
