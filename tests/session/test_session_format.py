"""The session file format (docs/design.md, "The session file"): every part type round-trips, bytes are compact,
keys are in order, unknown keys survive a load and a save."""

from __future__ import annotations

import json

import orjson
import pytest

from codetether_magics import Config, ImageAttachment, Message, Session
from codetether_magics.messages import FilePart, ImagePart, TextPart, ThinkingPart, ToolCallPart, ToolResultPart
from tests.support.session_factory import session_with_every_part

TOP_KEYS = ["id", "title", "created_at", "updated_at", "metadata", "agent", "messages", "tool_uses", "usage"]


async def test_every_part_type_round_trips_through_the_file(tmp_path):
    session = await session_with_every_part(str(tmp_path))
    assert await session.save() is True
    loaded = await Session.load(session.id)
    assert loaded.model_dump() == session.model_dump()
    kinds = [type(part) for m in loaded.messages for part in m.content]
    for kind in (TextPart, ImagePart, FilePart, ToolCallPart, ToolResultPart, ThinkingPart):
        assert kind in kinds
    call = loaded.messages[3].content[2]
    assert isinstance(call, ToolCallPart) and json.loads(call.arguments) == {"code": "df.var()", "n": 1}
    assert [m.role for m in loaded.messages] == ["system", "developer", "user", "assistant", "tool", "assistant"]
    assert loaded.tool_uses[0].input == {"code": "df.var()"} and loaded.usage.total_tokens == 15


async def test_bytes_on_disk_are_compact_ordered_and_tagged(tmp_path):
    session = await session_with_every_part(str(tmp_path))
    await session.save()
    raw = session.path.read_bytes()
    assert raw == orjson.dumps(orjson.loads(raw))  # compact: no indentation, no spaces
    assert b"\n" not in raw
    assert raw.startswith(b'{"id":"' + session.id.encode() + b'","title":"Residuals","created_at":"')
    doc = orjson.loads(raw)
    assert list(doc) == TOP_KEYS
    assert list(doc["metadata"]) == ["directory", "model", "notebook", "provenance", "auto_apply_edits",
                                     "allow_network", "shared", "rlm"]
    assert doc["metadata"]["rlm"] == {"mode": "auto", "threshold": 0.35, "max_iterations": 15,
                                      "max_subcalls": 50, "root_model": None, "subcall_model": None}
    assert doc["created_at"].endswith("Z") and doc["updated_at"].endswith("Z")
    assert doc["metadata"]["provenance"]["provenance_id"].startswith("ctprov_")
    assert len(doc["metadata"]["provenance"]["provenance_id"]) == len("ctprov_") + 32
    assert doc["metadata"]["provenance"]["issued_at"].endswith("Z")
    parts = [part for m in doc["messages"] for part in m["content"]]
    assert {p["type"] for p in parts} == {"text", "image", "file", "tool_call", "tool_result", "thinking"}
    call = next(p for p in parts if p["type"] == "tool_call")
    assert list(call) == ["type", "id", "name", "arguments"] and isinstance(call["arguments"], str)
    image = next(p for p in parts if p["type"] == "image")
    assert image["url"].startswith("data:image/png;base64,")
    assert list(doc["tool_uses"][0]) == ["id", "name", "input", "output", "success"]
    assert list(doc["usage"]) == ["prompt_tokens", "completion_tokens", "total_tokens",
                                  "cache_read_tokens", "cache_write_tokens"]
    assert "max_steps" not in raw.decode() and '"bus"' not in raw.decode()
    assert "ünïcødé".encode() in raw  # UTF-8, not \\u escapes


async def test_unknown_keys_survive_load_and_save(tmp_path):
    session = await session_with_every_part(str(tmp_path))
    await session.save()
    doc = orjson.loads(session.path.read_bytes())
    doc["from_the_future"] = {"x": [1, 2]}
    doc["metadata"]["worktree"] = "feature-x"
    doc["metadata"]["provenance"]["identity"]["key_id"] = "k1"
    doc["messages"][2]["content"][0]["cache_control"] = {"type": "ephemeral"}
    doc["messages"][2]["name"] = "alice"
    doc["tool_uses"][0]["duration_ms"] = 12
    doc["usage"]["reasoning_tokens"] = 7
    session.path.write_bytes(orjson.dumps(doc))

    loaded = await Session.load(session.id)
    loaded.add_message(Message.user("one more"))
    await loaded.save()
    again = orjson.loads(session.path.read_bytes())
    assert again["from_the_future"] == {"x": [1, 2]}
    assert again["metadata"]["worktree"] == "feature-x"
    assert again["metadata"]["provenance"]["identity"]["key_id"] == "k1"
    assert again["messages"][2]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert again["messages"][2]["name"] == "alice"
    assert again["tool_uses"][0]["duration_ms"] == 12 and again["usage"]["reasoning_tokens"] == 7
    assert list(again)[: len(TOP_KEYS)] == TOP_KEYS  # known keys keep their order
    assert again["messages"][-1]["content"][0]["text"] == "one more"


async def test_new_session_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    session = await Session.new()
    assert session.agent == "build" and session.messages == [] and session.title is None
    assert session.metadata.directory == str(tmp_path)
    assert len(session.id) == 36 and session.id.count("-") == 4
    assert session.metadata.provenance.session_id == session.id
    assert session.metadata.provenance.identity.origin == "local_cli"
    assert session.max_steps is None and session.path is None
    assert (await Session.new()).id != session.id


def test_image_attachment_and_config_are_exported():
    image = ImageAttachment(data_url="data:image/jpeg;base64,AAAA")
    assert image.resolved_mime_type() == "image/jpeg"
    assert Config().rlm.threshold == 0.35


async def test_apply_config_copies_rlm_and_is_idempotent():
    session = await Session.new()
    config = Config.model_validate({"rlm": {"mode": "always", "threshold": 0.5, "subcall_model": "openai/gpt-4o-mini"}})
    session.apply_config(config)
    first = session.metadata.rlm.model_dump()
    session.apply_config(config)
    assert session.metadata.rlm.model_dump() == first
    assert first["mode"] == "always" and first["subcall_model"] == "openai/gpt-4o-mini"
    config.rlm.threshold = 0.9  # a copy, not shared
    assert session.metadata.rlm.threshold == 0.5


@pytest.mark.parametrize("bad", [{"role": "wizard", "content": []},
                                 {"role": "user", "content": [{"type": "video", "url": "x"}]}])
def test_unknown_roles_and_part_types_are_refused(bad):
    with pytest.raises(ValueError):
        Message.model_validate(bad)


async def test_no_secret_from_the_environment_reaches_the_file(monkeypatch):
    secrets = {"OPENAI_API_KEY": "sk-test-not-in-files-123", "VAULT_TOKEN": "hvs.not-in-files-456",
               "ANTHROPIC_API_KEY": "sk-ant-not-in-files-789"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    session = await session_with_every_part()
    await session.save()
    raw = session.path.read_bytes()
    for value in secrets.values():
        assert value.encode() not in raw
