"""Titles, provenance, add_message and the AgentBus."""

from __future__ import annotations

from datetime import timedelta

import orjson

from codetether_magics import Message, Session
from codetether_magics.messages import ImagePart, TextPart
from codetether_magics.session.bus import AgentBus
from codetether_magics.session.metadata import ClaimProvenance


async def _session_with(*texts: str) -> Session:
    session = await Session.new()
    for text in texts:
        session.add_message(Message.user(text))
    return session


async def test_title_is_the_first_user_text_folded_and_cut():
    session = await Session.new()
    session.add_message(Message(role="system", content=[TextPart(text="system prompt")]))
    session.add_message(Message(role="user", content=[ImagePart(url="data:image/png;base64,AA")]))
    session.add_message(Message.user("   \n\t "))
    session.add_message(Message.user("  Why   does\nthe residual\tplot fan out?  "))
    await session.generate_title()
    assert session.title == "Why does the residual plot fan out?"
    parts = await Session.new()
    parts.add_message(Message(role="user", content=[TextPart(text="two"), TextPart(text="parts")]))
    await parts.generate_title()
    assert parts.title == "two parts"

    exact = "x" * 47
    longer = "word " * 20
    assert (await _titled(exact)) == exact
    assert (await _titled(exact + "y")) == exact + "..."
    assert (await _titled(longer)) == " ".join(longer.split())[:47] + "..."
    assert len(await _titled(longer)) == 50


async def _titled(text: str) -> str | None:
    session = await _session_with(text)
    await session.generate_title()
    return session.title


async def test_generate_keeps_a_title_regenerate_replaces_it():
    session = await _session_with("first prompt", "second prompt")
    session.title = "Hand-made"
    await session.generate_title()
    assert session.title == "Hand-made"
    await session.regenerate_title()
    assert session.title == "first prompt"
    empty = await Session.new()
    await empty.generate_title()
    assert empty.title is None


async def test_clear_title_and_context_change_bump_updated_at():
    session = await _session_with("first prompt")
    await session.generate_title()
    for action in ("clear", "context", "context-regen"):
        session.updated_at -= timedelta(hours=1)
        before = session.updated_at
        if action == "clear":
            session.clear_title()
            assert session.title is None
        else:
            session.title = "old"
            await session.on_context_change(action == "context-regen")
            assert session.title == ("first prompt" if action == "context-regen" else "old")
        assert session.updated_at > before


async def test_add_message_bumps_updated_at():
    session = await Session.new()
    session.updated_at -= timedelta(hours=1)
    before = session.updated_at
    session.add_message(Message.user("hi"))
    assert session.updated_at > before and session.messages[-1].text == "hi"


async def test_set_agent_name_and_provenance_records(monkeypatch):
    session = await Session.new()
    session.set_agent_name("plan")
    assert session.agent == "plan" and session.metadata.provenance.identity.agent_name == "plan"
    session.attach_worker_task_provenance("worker-7", "task-9")
    prov = session.metadata.provenance
    assert (prov.identity.origin, prov.identity.worker_id, prov.task_id) == ("worker", "worker-7", "task-9")
    session.attach_claim_provenance(ClaimProvenance(worker_id="worker-8", task_id="task-10", run_id="run-1",
                                                    claim_id="claim-1", tenant_id="tenant-a"))
    assert (prov.identity.worker_id, prov.task_id, prov.run_id) == ("worker-8", "task-10", "run-1")
    assert (prov.claim_id, prov.claimed_by, prov.identity.tenant_id) == ("claim-1", "worker-8", "tenant-a")
    assert prov.claimed_at is not None
    session.attach_claim_provenance(ClaimProvenance(worker_id="worker-8", task_id="task-10"))
    assert prov.run_id == "run-1"  # an empty claim field keeps the earlier value
    await session.save()
    doc = orjson.loads(session.path.read_bytes())
    assert doc["agent"] == "plan"
    assert doc["metadata"]["provenance"]["identity"]["agent_name"] == "plan"
    assert doc["metadata"]["provenance"]["claimed_at"].endswith("Z")

    monkeypatch.setenv("CODETETHER_WORKER_ID", "w-env")
    monkeypatch.setenv("CODETETHER_TASK_ID", "t-env")
    from_worker = await Session.new()
    assert from_worker.metadata.provenance.identity.origin == "worker"
    assert from_worker.metadata.provenance.task_id == "t-env"


async def test_bus_envelopes_on_the_agent_topics():
    bus = AgentBus()
    seen, only_tools = [], []
    bus.subscribe(seen.append, "agent.build.")
    bus.subscribe(only_tools.append, "agent.build.tool.")
    session = (await Session.new()).with_bus(bus)
    assert session.bus is bus

    session.add_message(Message.user("hello"))
    session.add_message(Message.assistant("hi there"))
    session.add_message(Message(role="tool", content=[]))  # tool results are not published
    session.publish("thinking", {"thinking": "hmm", "step": 1}, correlation_id="turn-1")
    session.publish("tool.request", {"request_id": "c1", "tool_name": "bash", "arguments": {"cmd": "ls"}, "step": 1})
    session.publish("tool.response", {"request_id": "c1", "tool_name": "bash", "result": "ok", "success": True, "step": 1})

    assert [e.topic for e in seen] == ["agent.build.user", "agent.build.assistant", "agent.build.thinking",
                                      "agent.build.tool.request", "agent.build.tool.response"]
    assert [e.topic for e in only_tools] == ["agent.build.tool.request", "agent.build.tool.response"]
    user = seen[0].to_dict()
    assert list(user) == ["id", "topic", "sender_id", "correlation_id", "timestamp", "message"]
    assert user["sender_id"] == "build" and user["timestamp"].endswith("Z")
    assert user["message"] == {"kind": "user_prompt", "agent_id": "build", "text": "hello",
                               "workspace": session.metadata.directory, "session_id": session.id}
    assert seen[1].message["kind"] == "agent_message" and seen[1].message["parts"] == [{"type": "text", "text": "hi there"}]
    assert seen[2].correlation_id == "turn-1" and seen[2].message["kind"] == "agent_thinking"
    assert seen[3].message["kind"] == "tool_request" and seen[4].message["kind"] == "tool_response"
    assert len({e.id for e in seen}) == 5
    session.add_message(Message(role="assistant", content=[]))  # only tool calls: published, no text part
    assert seen[-1].topic == "agent.build.assistant" and seen[-1].message["parts"] == []
    orjson.dumps([e.to_dict() for e in seen])  # JSON-serialisable


async def test_bus_subscribers_failing_or_leaving_do_not_break_the_session():
    bus = AgentBus()
    got = []

    def broken(envelope):
        raise RuntimeError("subscriber bug")

    bus.subscribe(broken)
    subscription = bus.subscribe(got.append)
    session = (await Session.new()).with_bus(bus)
    session.add_message(Message.user("one"))
    subscription.close()
    session.add_message(Message.user("two"))
    assert [e.message["text"] for e in got] == ["one"]
    assert [e.message["text"] for e in bus.recent] == ["one", "two"]
    assert (await Session.new()).publish("thinking", {"x": 1}) is None  # no bus: a no-op


async def test_bus_is_never_written_and_survives_saves():
    bus = AgentBus()
    session = (await Session.new()).with_bus(bus)
    session.max_steps = 7
    await session.save()
    raw = session.path.read_bytes()
    assert b"bus" not in raw and b"max_steps" not in raw
    assert session.bus is bus and session.max_steps == 7
