"""The context budget's pure parts: the estimate, the model windows, safe cuts, placeholders,
and which provider error bodies are context-length errors (real bodies, both ways)."""

from __future__ import annotations

import json

import pytest

from codetether_magics.agent.context import context_window, estimate_text, table_window
from codetether_magics.agent.context.derive import (assemble, attach_extra, cut_for_tail, cut_keeping, minimal_cut,
                                                    with_placeholders)
from codetether_magics.agent.context.tokens import IMAGE_TOKENS, estimate_message
from codetether_magics.errors import ContextBudgetError, ContextLengthError, ProviderHTTPError
from codetether_magics.providers._http import error_message, stream_error
from codetether_magics.providers.context_errors import http_error, is_context_length
from codetether_magics.messages import ImagePart, Message, TextPart, ToolCallPart, ToolResultPart
from tests.support.budget_server import REAL_BODIES

PNG = "data:image/png;base64,iVBORw0KGgo="


# -- the estimate --------------------------------------------------------------------


def test_prose_costs_about_four_bytes_a_token_and_dense_text_about_2_8():
    prose = "The residual plot fans out because the variance grows with the fitted value. " * 20
    dense = "eyJhbGciOiJIUzI1NiJ9" * 80  # base64-like: no whitespace at all
    assert estimate_text(prose) == pytest.approx(len(prose) / 4.0, rel=0.02)
    assert estimate_text(dense) == pytest.approx(len(dense) / 2.8, rel=0.01)
    assert estimate_text("") == 0


def test_the_estimate_counts_utf8_bytes_not_characters():
    assert estimate_text("é" * 280) == estimate_text("e" * 560)  # two bytes each


def test_an_image_costs_2000_tokens_whatever_its_size():
    small = Message(role="user", content=[ImagePart(url=PNG, mime_type="image/png")])
    large = Message(role="user", content=[ImagePart(url=PNG + "A" * 400_000, mime_type="image/png")])
    assert estimate_message(small) == estimate_message(large) >= IMAGE_TOKENS


# -- windows -------------------------------------------------------------------------


@pytest.mark.parametrize("model, window", [
    ("gpt-4o", 128_000), ("gpt-4o-mini", 128_000), ("gpt-4.1-mini", 1_047_576), ("o3-mini", 200_000),
    ("o1-mini", 128_000), ("gpt-5", 400_000), ("openai/gpt-5-mini", 400_000), ("gpt-4", 8_192),
    ("claude-sonnet-4-20250514", 200_000), ("claude-3-5-haiku-20241022", 200_000), ("claude-opus-4-1", 200_000),
    ("gemini-2.5-pro", 1_048_576), ("llama3.1:8b", 131_072), ("meta-llama/llama-3.3-70b-instruct", 131_072),
    ("qwen2.5-coder:7b", 32_768), ("qwen3-coder", 262_144), ("mistral-large-latest", 131_072),
    ("deepseek-chat", 131_072), ("someone/brand-new-model", 128_000),
])
def test_known_models_have_their_window_and_unknown_ones_128k(model, window):
    assert table_window(model) == window


def test_the_setting_wins_over_the_environment_which_wins_over_the_table():
    assert context_window("gpt-4o", 3000, {"CODETETHER_CONTEXT_TOKENS": "9000"}) == 3000
    assert context_window("gpt-4o", None, {"CODETETHER_CONTEXT_TOKENS": "9_000"}) == 9000
    assert context_window("gpt-4o", None, {"CODETETHER_CONTEXT_TOKENS": " "}) == 128_000


@pytest.mark.parametrize("value", ["lots", "-5", "0", "12.5"])
def test_a_bad_window_setting_is_a_clear_error(value):
    with pytest.raises(ContextBudgetError, match="CODETETHER_CONTEXT_TOKENS must be"):
        context_window("gpt-4o", None, {"CODETETHER_CONTEXT_TOKENS": value})
    with pytest.raises(ContextBudgetError, match="CodeTether.context_tokens must be"):
        context_window("gpt-4o", value)


# -- cuts and placeholders -------------------------------------------------------------


def _user(text: str, images: int = 0) -> Message:
    return Message(role="user", content=[TextPart(text=text)] + [ImagePart(url=PNG, mime_type="image/png")] * images)


def _tool_round(call_id: str) -> list[Message]:
    return [Message(role="assistant", content=[ToolCallPart(id=call_id, name="read", arguments="{}")]),
            Message(role="tool", content=[ToolResultPart(tool_call_id=call_id, content="result")])]


def test_images_of_all_but_the_last_two_user_turns_become_placeholders():
    messages = [_user("one", 1), Message.assistant("a"), _user("two", 1), Message.assistant("b"), _user("three", 2)]
    view = with_placeholders(messages)
    images = [sum(isinstance(p, ImagePart) for p in m.content) for m in view]
    assert images == [0, 0, 1, 0, 2]
    assert "image (image/png) from an earlier turn" in view[0].content[1].text
    assert isinstance(messages[0].content[1], ImagePart)  # the transcript is untouched
    assert view[2] is messages[2]  # messages still sent whole are not copied


def test_no_cut_ever_separates_a_tool_result_from_its_call():
    messages = [_user("q"), *_tool_round("c1"), *_tool_round("c2"), Message.assistant("done")]
    # indexes: 0 user, 1 call, 2 result, 3 call, 4 result, 5 answer
    for count in range(1, 7):
        assert messages[cut_keeping(messages, count)].role != "tool"
    assert cut_keeping(messages, 2) == 3  # keeping 2 would start at a result: its call comes along
    assert minimal_cut(messages[:5]) == 3  # the newest results with their call
    costs = [100] * len(messages)
    assert cut_for_tail(messages, costs, 250) == 5  # 200 fits from index 4, but that is a result
    assert cut_for_tail(messages, costs, 350) == 3  # the result with its call
    assert cut_for_tail(messages, costs, 10) == minimal_cut(messages)


def test_what_is_left_out_is_stood_for_by_one_user_message_up_front():
    messages = [_user("q1"), Message.assistant("a1"), _user("q2"), Message.assistant("a2"), _user("q3")]
    derived = assemble(messages, 2, None)
    assert derived[0].role == "user" and "2 earlier messages" in derived[0].text
    assert derived[1:] == messages[2:]
    assert assemble(messages, 0, None) == messages


def test_extra_context_rides_first_in_the_newest_user_message_of_the_copy():
    messages = [_user("q1"), Message.assistant("a1"), _user("q2"), *_tool_round("c")]
    sent = attach_extra(list(messages), "cell 3 raised ValueError")
    assert sent[2].content[0].text == "cell 3 raised ValueError\n\n" and sent[2].content[1].text == "q2"
    assert messages[2].text == "q2"  # the transcript's message is untouched
    assert attach_extra([Message.assistant("a")], "ctx")[0].text == "ctx\n\n"


# -- which errors are about the context window -------------------------------------------


@pytest.mark.parametrize("name", sorted(REAL_BODIES))
def test_real_context_length_bodies_are_recognised(name):
    raw = REAL_BODIES[name]
    error = http_error(400, error_message(raw.encode(), 400), provider=name, body=raw)
    assert isinstance(error, ContextLengthError) and not error.retryable
    assert error.message  # the provider's own words are kept
    assert "context" in str(error).lower() or "too long" in str(error).lower()


# Real error bodies that are NOT about the window (from public recordings of the same APIs).
OTHER_ERRORS = [
    (400, '{"error": {"code": "unsupported_value", "message": "Unsupported value: \'messages[0].role\' does not '
          'support \'system\' with this model.", "param": "messages[0].role", "type": "invalid_request_error"}}'),
    (400, '{"error": {"message": "This model does not support effort level \'xhigh\'. Supported levels: high, low, '
          'max, medium.", "type": "invalid_request_error"}, "type": "error"}'),
    (400, '{"error": {"code": "tool_use_failed", "message": "Tool call validation failed: parameters for tool '
          'get_something_by_name did not match schema", "type": "invalid_request_error"}}'),
    (401, '{"error": {"message": "Incorrect API key provided: DEADBEEF.", "code": "invalid_api_key"}}'),
    (429, '{"error": {"message": "Request too large for gpt-4o on tokens per min (TPM): Limit 30000, Requested '
          '52000. The input or output tokens must be reduced in order to run successfully.", '
          '"type": "tokens", "code": "rate_limit_exceeded"}}'),
]


@pytest.mark.parametrize("status, raw", OTHER_ERRORS)
def test_other_errors_are_not_taken_for_context_length_errors(status, raw):
    error = http_error(status, error_message(raw.encode(), status), provider="p", body=raw)
    assert type(error) is ProviderHTTPError
    assert not is_context_length(status, raw)


def test_an_in_stream_context_error_is_recognised_too():
    error = stream_error(json.loads(REAL_BODIES["openai"])["error"], "openai")
    assert isinstance(error, ContextLengthError) and error.status_code == 400
