"""MessageBuilder: the one accumulator every provider's deltas go through."""

from __future__ import annotations

import json

from codetether_magics.agent.message_builder import MessageBuilder
from codetether_magics.messages import TextPart, ThinkingPart, ToolCallPart
from codetether_magics.providers.base import Finish, TextDelta, ThinkingDelta, ToolCallDelta, UsageDelta


def build(*deltas):
    builder = MessageBuilder()
    for delta in deltas:
        builder.feed(delta)
    return builder


def test_parts_in_order_of_arrival_and_runs_merged():
    builder = build(ThinkingDelta("plan "), ThinkingDelta("it"), ThinkingDelta(signature="sig-1"),
                    TextDelta("Hel"), TextDelta("lo"), Finish("stop"))
    message = builder.message()
    assert message.role == "assistant"
    assert message.content == [ThinkingPart(text="plan it", signature="sig-1"), TextPart(text="Hello")]
    assert builder.text == "Hello" and builder.thinking == "plan it" and builder.finish_reason == "stop"


def test_tool_call_fragments_joined_by_index_even_interleaved():
    builder = build(
        ToolCallDelta(0, id="a", name="read"), ToolCallDelta(1, id="b", name="grep"),
        ToolCallDelta(0, arguments='{"path": '), ToolCallDelta(1, arguments='{"pattern": "x"}'),
        ToolCallDelta(0, arguments='"f.py"}'), Finish("tool_calls"),
    )
    calls = builder.message().tool_calls
    assert [(c.id, c.name, json.loads(c.arguments)) for c in calls] == [
        ("a", "read", {"path": "f.py"}), ("b", "grep", {"pattern": "x"})]


def test_missing_id_is_generated_once_and_empty_arguments_are_an_empty_object():
    builder = build(ToolCallDelta(0, name="list"))
    first, second = builder.message().tool_calls[0], builder.message().tool_calls[0]
    assert first.id.startswith("call_") and first.id == second.id
    assert first.arguments == "{}"


def test_without_tool_calls_keeps_text_only():
    builder = build(TextDelta("so far"), ToolCallDelta(0, id="a", name="read", arguments='{"pa'))
    assert builder.message(without_tool_calls=True).content == [TextPart(text="so far")]
    assert isinstance(builder.message().content[1], ToolCallPart)
    assert builder.tool_calls[0].is_complete() is False


def test_usage_later_values_replace_earlier_ones():
    builder = build(UsageDelta(prompt_tokens=10), UsageDelta(completion_tokens=4, cache_read_tokens=2),
                    UsageDelta(completion_tokens=9))
    usage = builder.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens, usage.cache_read_tokens) == (10, 9, 19, 2)


def test_empty_deltas_do_not_make_parts():
    builder = build(TextDelta(""), Finish("stop"))
    assert builder.message().content == [] and not builder.has_content()
