"""The context budget end to end: real providers over HTTP against scripted loopback servers,
in both protocols. Every request the server saw is measured with the package's estimator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from codetether_magics.agent.context import BUDGET_SHARE
from codetether_magics.agent.loop import run_prompt
from codetether_magics.agent.tools.base import Tool
from codetether_magics.errors import ContextBudgetError, ContextLengthError
from codetether_magics.providers.anthropic import AnthropicProvider
from codetether_magics.providers.openai import OpenAIProvider
from codetether_magics.session.session import Session
from codetether_magics.messages import ImageAttachment, Message, TextPart, ToolCallPart, ToolResultPart
from codetether_magics.testing import Turn
from tests.support.budget_server import REAL_BODIES, BudgetServer, wire_tokens

API_KEY = "sk-test-budget-7d1e0c"
PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
SYSTEM = "You are a careful data-science assistant in a test."
PROSE = ("The model's residuals fan out as the fitted values grow, which hints at heteroscedasticity; a log "
         "transform of the target or weighted least squares would be the usual next step to try. ")


class OneProviderRegistry:
    def __init__(self, provider: Any, model: str) -> None:
        self.provider, self.model = provider, model

    def default_model(self) -> str:
        return self.model

    def resolve_model(self, model):
        return self.provider, (model or self.model).partition("/")[2]


@pytest.fixture(params=["openai", "anthropic"])
def protocol(request) -> str:
    return request.param


def registry_for(server: BudgetServer, protocol: str) -> OneProviderRegistry:
    if protocol == "openai":
        return OneProviderRegistry(OpenAIProvider("openai", API_KEY, server.openai_base_url), "openai/gpt-4o")
    return OneProviderRegistry(AnthropicProvider("anthropic", API_KEY, server.anthropic_base_url),
                               "anthropic/claude-sonnet-4-20250514")


async def lookup(args: dict[str, Any]) -> str:
    return f"lookup {args.get('q')}: " + PROSE


TOOLS = [Tool("lookup", "Look a fact up.", {"type": "object", "properties": {"q": {"type": "string"}}}, lookup, read_only=True)]


async def new_session(tmp_path: Path, mode: str = "auto") -> Session:
    session = await Session.new(tmp_path)
    session.title = "budget test"
    session.metadata.rlm.mode = mode
    return session


async def prompt(session: Session, server: BudgetServer, protocol: str, message: str, **options: Any):
    events: list[Any] = []
    options.setdefault("retry_delays", (0.0, 0.0, 0.0))
    options.setdefault("tools", TOOLS)
    options.setdefault("system", SYSTEM)
    images = options.pop("images", [])
    result = await run_prompt(session, message, images, events.append, registry_for(server, protocol), **options)
    return result, events


def types(events: list[Any]) -> list[str]:
    return [e.type for e in events]


def history(session: Session, turns: int, tool_every: int = 0) -> None:
    """Earlier turns put straight into the transcript (about 200 tokens a message)."""
    for i in range(turns):
        session.add_message(Message.user(f"earlier question {i}: " + PROSE * 3))
        if tool_every and i % tool_every == 0:
            call = f"call_old_{i}"
            session.add_message(Message(role="assistant", content=[
                ToolCallPart(id=call, name="lookup", arguments=json.dumps({"q": str(i)}))]))
            session.add_message(Message(role="tool", content=[ToolResultPart(tool_call_id=call, content=PROSE * 2)]))
        session.add_message(Message.assistant(f"earlier answer {i}: " + PROSE * 3))


def request_texts(protocol: str, body: dict[str, Any]) -> str:
    return json.dumps(body.get("messages"))


# -- a long session under a small window ------------------------------------------------


async def test_sixty_turns_under_a_3000_token_window_stay_in_budget(tmp_path, protocol):
    window = 3000
    budget = int(window * BUDGET_SHARE)
    session = await new_session(tmp_path)
    turns = []
    for i in range(60):
        if i % 3 == 1:
            turns.append(Turn.tool_call("lookup", {"q": f"fact {i}"}, expect_user_text=f"question {i}:"))
        turns.append(Turn.text(f"Answer {i}. " + PROSE * 2, expect_user_text=f"question {i}:"))
    all_events: list[Any] = []
    with BudgetServer(turns) as server:
        for i in range(60):
            images = [ImageAttachment(data_url=PNG, mime_type="image/png")] if i % 5 == 0 else []
            result, events = await prompt(session, server, protocol, f"question {i}: " + PROSE * 2,
                                          images=images, context_tokens=window)
            assert result.text.startswith(f"Answer {i}.")
            all_events += events
    assert server.errors == []  # every request valid for the real API (no orphan tool result), every turn matched
    sizes = [wire_tokens(protocol, r.body) for r in server.model_requests]
    assert max(sizes) <= budget, sizes
    assert len(server.rejected) == 0 and server.remaining == 0
    # the transcript kept everything: 60 questions, 20 tool rounds, 60 answers
    assert [m.role for m in session.messages].count("user") == 60
    assert len(session.messages) == 60 * 2 + 20 * 2
    assert sum(isinstance(p, TextPart) and "not sent again" in p.text for m in session.messages for p in m.content) == 0
    # compaction happened, and far less often than once a request: the summary is reused
    summaries = len(server.summaries)
    assert 2 <= summaries < 30, summaries
    assert types(all_events).count("compaction_started") == summaries == types(all_events).count(
        "compaction_completed")
    completed = [e for e in all_events if e.type == "compaction_completed"]
    assert all(e.after_tokens < e.before_tokens for e in completed)
    # every later request carries the latest summary instead of the early turns
    last = request_texts(protocol, server.turn_requests[-1].body)
    assert f"Summary {summaries}:" in last and "question 0:" not in last


async def test_the_stored_summary_is_used_by_the_next_turn_without_a_new_summary_call(tmp_path, protocol):
    session = await new_session(tmp_path)
    history(session, 8)
    window = 2500
    with BudgetServer([Turn.text("first"), Turn.text("second"), Turn.text("third")]) as server:
        await prompt(session, server, protocol, "question A", context_tokens=window)
        assert len(server.summaries) == 1
        await prompt(session, server, protocol, "question B", context_tokens=window)
        await session.save(path=tmp_path / "kept.codetether.json")
        again = await Session.load_path(tmp_path / "kept.codetether.json")  # a new kernel: from the file
        await prompt(again, server, protocol, "question C", context_tokens=window)
    assert server.errors == []
    assert len(server.summaries) == 1  # turns B and C paid nothing more
    assert len(server.turn_requests) == 3  # A, B and C: the check below sees each of them
    for request in server.turn_requests:
        assert "Summary 1:" in request_texts(protocol, request.body)
    saved = json.loads((tmp_path / "kept.codetether.json").read_text())
    assert list(saved)[:9] == ["id", "title", "created_at", "updated_at", "metadata", "agent", "messages",
                               "tool_uses", "usage"]
    assert list(saved)[9:] == ["context_budget"]
    assert saved["context_budget"]["summary"]["text"].startswith("Summary 1:")
    assert saved["context_budget"]["compactions"] == 1
    assert len(saved["messages"]) == 8 * 2 + 3 * 2  # append-only: no message rewritten or dropped
    assert saved["messages"][0]["content"][0]["text"].startswith("earlier question 0")


async def test_a_summary_that_no_longer_matches_the_transcript_is_not_used(tmp_path, protocol):
    session = await new_session(tmp_path)
    history(session, 8)
    with BudgetServer([Turn.text("one"), Turn.text("two")]) as server:
        await prompt(session, server, protocol, "question A", context_tokens=2500)
        # the messages under the summary shifted (another copy of the file, edited by hand): never trust it then
        session.messages[:0] = [Message.user("an older question " + PROSE), Message.assistant("an older answer")]
        await prompt(session, server, protocol, "question B", context_tokens=2500)
    assert len(server.summaries) == 2  # the stored summary described other messages: a new one was made
    assert "Summary 2:" in request_texts(protocol, server.turn_requests[-1].body)
    assert "Summary 1:" not in request_texts(protocol, server.turn_requests[-1].body)


# -- the provider says the request is too long ---------------------------------------------


CASES = [("openai", "openai"), ("openai", "llamacpp"), ("openai", "vllm"), ("openai", "openrouter"),
         ("anthropic", "anthropic")]


@pytest.mark.parametrize("wire, body", CASES)
async def test_a_real_context_length_error_is_retried_with_6_then_3_messages(tmp_path, wire, body):
    session = await new_session(tmp_path)
    history(session, 10, tool_every=1)  # 40 messages: question, tool call, tool result, answer
    with BudgetServer([Turn.text("Fits now.")], reject_over=500, reject_body=REAL_BODIES[body]) as server:
        result, events = await prompt(session, server, wire, "the newest question")
    assert result.text == "Fits now."
    assert server.errors == []  # no orphan tool result in any shortened request
    assert len(server.rejected) == 2  # the whole transcript, then the last 6: one call each
    assert len(server.model_requests) == 3
    # the last 6 of 41 start at an answer (35 left out); the last 3 would start at a tool result,
    # so its call comes along (37 left out)
    assert [e.dropped for e in events if e.type == "context_truncated"] == [35, 37]
    sizes = [wire_tokens(wire, r.body) for r in server.model_requests]
    assert sizes[0] > sizes[1] > 500 >= sizes[2]
    kept = request_texts(wire, server.model_requests[-1].body)
    assert "the newest question" in kept and "37 earlier messages" in kept and "call_old_9" in kept
    assert "error" not in types(events)
    assert len(session.messages) == 10 * 4 + 2  # nothing dropped from the transcript
    assert json.loads(session.model_dump_json())["context_budget"]["truncations"] == 2


@pytest.mark.parametrize("wire, body", [("openai", "openai"), ("anthropic", "anthropic")])
async def test_when_even_the_last_message_is_too_long_the_providers_error_reaches_the_user(tmp_path, wire, body):
    session = await new_session(tmp_path)
    history(session, 10)
    with BudgetServer([], reject_over=10, reject_body=REAL_BODIES[body]) as server:
        with pytest.raises(ContextLengthError) as caught:
            await prompt(session, server, wire, "the newest question")
    assert len(server.rejected) == 4  # whole, 6, 3, 1
    message = str(caught.value)
    assert ("maximum context length" in message or "prompt is too long" in message) and "newest message" in message
    assert API_KEY not in message
    assert session.messages[-1].text == "the newest question"  # the turn is in the transcript


# -- modes -------------------------------------------------------------------------------


async def test_off_sends_the_whole_transcript_and_does_not_retry_shorter(tmp_path, protocol):
    session = await new_session(tmp_path, mode="off")
    history(session, 10)
    session.add_message(Message(role="user", content=[TextPart(text="old plot")]))
    with BudgetServer([Turn.text("all of it")]) as server:
        await prompt(session, server, protocol, "newest", context_tokens=3000,
                     images=[ImageAttachment(data_url=PNG)])
    assert server.summaries == [] and server.errors == []
    body = server.model_requests[0].body
    assert wire_tokens(protocol, body) > 3000  # past the window: off means off
    assert "earlier question 0" in request_texts(protocol, body)
    with BudgetServer([], reject_over=10, reject_body=REAL_BODIES[protocol]) as server:
        with pytest.raises(ContextLengthError, match="mode is 'off'"):
            await prompt(session, server, protocol, "again")
    assert len(server.rejected) == 1


async def test_always_compacts_at_every_turn(tmp_path, protocol):
    session = await new_session(tmp_path, mode="always")
    turns = [Turn.text(f"answer {i}") for i in range(3)]
    with BudgetServer(turns) as server:
        for i in range(3):
            _, events = await prompt(session, server, protocol, f"question {i}")
            assert types(events).count("compaction_completed") == (1 if i else 0)
    assert len(server.summaries) == 2
    last = request_texts(protocol, server.turn_requests[-1].body)
    assert "Summary 2:" in last and "question 2" in last and "question 0" not in last
    summary_input = request_texts(protocol, server.summaries[-1].body)
    assert "Summary 1:" in summary_input and "question 1" in summary_input  # built on the previous summary


# -- bad input -------------------------------------------------------------------------


async def test_a_window_smaller_than_system_prompt_and_message_fails_before_any_call(tmp_path, protocol):
    session = await new_session(tmp_path)
    with BudgetServer([Turn.text("never")]) as server:
        with pytest.raises(ContextBudgetError, match="context window") as caught:
            await prompt(session, server, protocol, "a question " * 50, context_tokens=200)
        assert server.requests == []
    assert "CODETETHER_CONTEXT_TOKENS" in str(caught.value)
    assert session.messages == []  # nothing was added or sent


async def test_a_failing_summary_call_falls_back_to_a_cut_request_with_a_note(tmp_path, protocol):
    session = await new_session(tmp_path)
    history(session, 12)
    with BudgetServer([Turn.text("still answered")], fail_summaries=True) as server:
        result, events = await prompt(session, server, protocol, "question", context_tokens=3000)
    assert result.text == "still answered"
    assert len(server.summaries) == 1 and server.errors == []
    order = types(events)
    assert order.index("compaction_started") < order.index("context_truncated") < order.index("text_complete")
    assert "compaction_completed" not in order
    sent = server.turn_requests[0].body
    assert "a summary could not be made" in request_texts(protocol, sent)
    assert wire_tokens(protocol, sent) <= 2700


@pytest.mark.parametrize("field, value, problem", [("mode", "sometimes", "mode must be"),
                                                    ("threshold", 0, "threshold must be"),
                                                    ("threshold", 1.5, "threshold must be")])
async def test_a_bad_rlm_setting_is_a_clear_error(tmp_path, field, value, problem):
    session = await new_session(tmp_path)
    setattr(session.metadata.rlm, field, value)
    with BudgetServer([]) as server:
        with pytest.raises(ContextBudgetError, match=problem):
            await prompt(session, server, "openai", "hi")
        assert server.requests == []


async def test_summaries_go_to_the_subcall_model_when_one_is_set(tmp_path, protocol):
    session = await new_session(tmp_path)
    side = "openai/gpt-4o-mini" if protocol == "openai" else "anthropic/claude-3-5-haiku-20241022"
    session.metadata.rlm.subcall_model = side
    history(session, 12)
    with BudgetServer([Turn.text("answered")]) as server:
        await prompt(session, server, protocol, "question", context_tokens=3000)
    assert server.errors == [] and len(server.summaries) == 1
    assert server.summaries[0].body["model"] == side.partition("/")[2]
    assert server.turn_requests[0].body["model"] != side.partition("/")[2]


async def test_the_notebook_context_is_counted_in_the_same_budget(tmp_path, protocol):
    session = await new_session(tmp_path)
    history(session, 8)
    notebook = "In [7]: df.describe()  # what the notebook did since the last turn\n" + PROSE * 10
    with BudgetServer([Turn.text("seen", expect_user_text="In [7]")]) as server:
        await prompt(session, server, protocol, "question", context_tokens=3000, notebook_context=lambda: notebook)
    assert server.errors == [] and len(server.summaries) == 1  # without the context it would all fit
    sent = server.turn_requests[0].body
    assert wire_tokens(protocol, sent) <= 2700
    assert request_texts(protocol, sent).count("In [7]: df.describe()") == 1
    assert "In [7]" not in session.model_dump_json()  # never stored
    with BudgetServer([]) as server:
        with pytest.raises(ContextBudgetError, match="notebook context"):
            await prompt(session, server, protocol, "again", context_tokens=3000,
                         notebook_context=PROSE * 60)
        assert server.requests == []
