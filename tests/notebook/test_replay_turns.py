"""Finding recorded turns in a transcript and streaming them back (no agent loop needed)."""

from __future__ import annotations

import pytest

from codetether_magics.errors import ReplayError
from codetether_magics.messages import Message, TextPart, ThinkingPart, ToolCallPart, ToolResultPart
from codetether_magics.notebook.replay import (
    ReplayProvider,
    find_recorded_turn,
    recorded_prompt_count,
)
from codetether_magics.providers.base import (
    Finish,
    ModelRequest,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
)
from codetether_magics.session.session import Session


def _transcript() -> Session:
    """Two runs of "hello", one with a tool call, and another prompt in between."""
    return Session(
        messages=[
            Message.user("hello"),
            Message.assistant("Hi! First answer."),
            Message.user("what is 2**10?"),
            Message(
                role="assistant",
                content=[
                    ThinkingPart(text="use python", signature="sig-1"),
                    TextPart(text="Let me compute."),
                    ToolCallPart(id="call_1", name="python", arguments='{"code": "2**10"}'),
                ],
            ),
            Message(role="tool", content=[ToolResultPart(tool_call_id="call_1", content="1024")]),
            Message.assistant("It is **1024**."),
            Message.user("  hello\n"),
            Message.assistant("Hello again."),
        ]
    )


def test_finds_the_kth_occurrence_of_the_same_prompt():
    session = _transcript()
    first = find_recorded_turn(session, "hello")
    second = find_recorded_turn(session, "hello", occurrence=1)
    assert first is not None and second is not None
    assert (first.index, [m.text for m in first.replies]) == (0, ["Hi! First answer."])
    assert (second.index, [m.text for m in second.replies]) == (6, ["Hello again."])
    assert find_recorded_turn(session, "hello", occurrence=2) is None
    assert recorded_prompt_count(session, "hello") == 2


def test_a_turn_runs_up_to_the_next_user_message():
    turn = find_recorded_turn(_transcript(), "what is 2**10?")
    assert turn is not None
    assert [m.role for m in turn.replies] == ["assistant", "tool", "assistant"]
    assert turn.tool_results() == {"call_1": "1024"}
    assert [m.text for m in turn.assistant_messages] == ["Let me compute.", "It is **1024**."]


def test_unknown_prompt_and_bad_occurrence():
    session = _transcript()
    assert find_recorded_turn(session, "never asked") is None
    with pytest.raises(ValueError, match="occurrence must be 0 or more"):
        find_recorded_turn(session, "hello", occurrence=-1)


async def _collect(provider: ReplayProvider) -> list:
    return [delta async for delta in provider.stream(ModelRequest(model="x", messages=[]))]


async def test_provider_streams_each_recorded_answer_in_order_then_refuses():
    turn = find_recorded_turn(_transcript(), "what is 2**10?")
    provider = ReplayProvider("openai", turn, "what is 2**10?")

    first = await _collect(provider)
    assert first[0] == ThinkingDelta(text="use python", signature="sig-1")
    texts = [d.text for d in first if isinstance(d, TextDelta)]
    assert "".join(texts) == "Let me compute."
    assert [d for d in first if isinstance(d, ToolCallDelta)] == [
        ToolCallDelta(0, id="call_1", name="python", arguments='{"code": "2**10"}')
    ]
    assert first[-1] == Finish("tool_calls")

    second = await _collect(provider)
    assert "".join(d.text for d in second if isinstance(d, TextDelta)) == "It is **1024**."
    assert second[-1] == Finish("stop")

    with pytest.raises(ReplayError, match="asked for one more") as info:
        await _collect(provider)
    assert "--live" in str(info.value)


async def test_long_text_is_streamed_in_several_chunks_that_rebuild_it_exactly():
    text = "word " * 40 + "\n\n```python\nprint('x')\n```\n  trailing  "
    session = Session(messages=[Message.user("q"), Message.assistant(text)])
    provider = ReplayProvider("openai", find_recorded_turn(session, "q"), "q")
    chunks = [d.text for d in await _collect(provider) if isinstance(d, TextDelta)]
    assert len(chunks) > 10
    assert "".join(chunks) == text
