"""The scripted loopback model server: wire output, request checks, faults and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from codetether_magics.testing import ScriptedModelServer, Turn, load_script

CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], "stream": True}
MESSAGES = {"model": "claude-test", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}], "stream": True}
ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01", "x-api-key": "sk-ant-test"}


def sse_data(response: httpx.Response) -> list[str]:
    return [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]


def test_openai_text_streams_word_by_word_and_ends_with_done():
    with ScriptedModelServer([Turn.text("Hello there friend", usage=(7, 3))]) as server:
        body = {**CHAT, "stream_options": {"include_usage": True}}
        response = httpx.post(server.openai_base_url + "/chat/completions", json=body)
    data = sse_data(response)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    pieces = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert "".join(p for p in pieces if p) == "Hello there friend"
    assert len([p for p in pieces if p]) == 3
    assert chunks[-1]["usage"]["prompt_tokens"] == 7 and chunks[-1]["usage"]["completion_tokens"] == 3
    assert server.errors == []


def test_openai_usage_only_sent_when_asked_for():
    with ScriptedModelServer([Turn.text("Hi", usage=(7, 3))]) as server:
        response = httpx.post(server.openai_base_url + "/chat/completions", json=CHAT)
    assert not any("usage" in json.loads(d) for d in sse_data(response)[:-1])


def test_anthropic_stream_has_message_start_blocks_and_stop():
    turn = Turn([{"type": "thinking", "text": "let me see"}, {"type": "text", "text": "Done."},
                 {"type": "usage", "prompt_tokens": 11, "completion_tokens": 4}])
    with ScriptedModelServer([turn]) as server:
        response = httpx.post(server.anthropic_base_url + "/v1/messages", json=MESSAGES, headers=ANTHROPIC_HEADERS)
    events = [json.loads(d) for d in sse_data(response)]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert events[0]["message"]["usage"]["input_tokens"] == 11
    assert events[-2]["usage"]["output_tokens"] == 4
    deltas = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    assert "".join(d.get("thinking", "") for d in deltas) == "let me see"
    assert any(d["type"] == "signature_delta" for d in deltas)
    assert "".join(d.get("text", "") for d in deltas) == "Done."


def test_requests_are_recorded_with_headers_and_body():
    with ScriptedModelServer(["one"]) as server:
        httpx.post(server.openai_base_url + "/chat/completions", json=CHAT, headers={"Authorization": "Bearer k"})
        (recorded,) = server.requests
    assert recorded.path == "/v1/chat/completions" and recorded.protocol == "openai"
    assert recorded.headers["authorization"] == "Bearer k"
    assert recorded.body["model"] == "gpt-test"
    assert recorded.to_dict()["headers"]["authorization"] == "<redacted>"


def test_empty_queue_answers_500_and_records_an_error():
    with ScriptedModelServer() as server:
        response = httpx.post(server.openai_base_url + "/chat/completions", json=CHAT)
    assert response.status_code == 500
    assert "no scripted turn left" in response.json()["error"]["message"]
    assert server.errors and "no scripted turn left" in server.errors[0]


def test_anthropic_request_without_version_header_is_rejected_like_the_real_api():
    with ScriptedModelServer(["unused"]) as server:
        response = httpx.post(server.anthropic_base_url + "/v1/messages", json=MESSAGES)
        assert server.remaining == 1  # a rejected request does not consume the turn
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "anthropic-version" in server.errors[0]


def test_orphan_tool_result_is_rejected():
    body = {**CHAT, "messages": [{"role": "user", "content": "hi"},
                                 {"role": "tool", "tool_call_id": "call_9", "content": "42"}]}
    with ScriptedModelServer(["unused"]) as server:
        response = httpx.post(server.openai_base_url + "/chat/completions", json=body)
    assert response.status_code == 400
    assert "call_9" in response.json()["error"]["message"]


def test_unmet_expectations_are_recorded_but_the_turn_is_answered():
    turn = Turn.text("ok", expect_tool_result="42", expect_image=True, expect_user_text="plot")
    with ScriptedModelServer([turn]) as server:
        response = httpx.post(server.openai_base_url + "/chat/completions", json=CHAT)
    assert response.status_code == 200
    assert len(server.errors) == 3


def test_met_expectations_leave_no_errors():
    png = "iVBORw0KGgo="
    messages = [{"role": "user", "content": [{"type": "text", "text": "see the plot"},
                                             {"type": "image", "source": {"type": "base64",
                                                                          "media_type": "image/png", "data": png}}]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "calc", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"}]}]
    turn = Turn.text("ok", expect_tool_result="42", expect_image=True, expect_model="claude-test")
    with ScriptedModelServer([turn]) as server:
        httpx.post(server.anthropic_base_url + "/v1/messages", json={**MESSAGES, "messages": messages},
                   headers=ANTHROPIC_HEADERS)
    assert server.errors == []


def test_error_turn_sends_status_retry_after_and_protocol_error_body():
    with ScriptedModelServer([Turn.error(429, "Rate limit reached", retry_after=3)]) as server:
        response = httpx.post(server.anthropic_base_url + "/v1/messages", json=MESSAGES, headers=ANTHROPIC_HEADERS)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.json() == {"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limit reached"}}


def test_error_turn_with_a_raw_body_sends_it_as_written():
    page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    with ScriptedModelServer([Turn.error(502, body=page, retry_after=1.5)]) as server:
        response = httpx.post(server.openai_base_url + "/chat/completions", json=CHAT)
    assert (response.status_code, response.text) == (502, page)
    assert response.headers["content-type"] == "text/plain" and response.headers["retry-after"] == "1.5"


def test_dropped_turn_leaves_the_chunked_body_incomplete():
    with ScriptedModelServer([Turn.dropped("partial answer")]) as server:
        with pytest.raises(httpx.RemoteProtocolError):
            with httpx.stream("POST", server.openai_base_url + "/chat/completions", json=CHAT) as response:
                for _ in response.iter_lines():
                    pass


def test_hang_before_headers_gives_a_read_timeout():
    with ScriptedModelServer([Turn.hang()]) as server:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(server.openai_base_url + "/chat/completions", json=CHAT, timeout=0.3)


def test_api_key_is_checked_when_configured():
    with ScriptedModelServer(["ok"], api_key="sk-right") as server:
        wrong = httpx.post(server.openai_base_url + "/chat/completions", json=CHAT,
                           headers={"Authorization": "Bearer sk-wrong"})
        right = httpx.post(server.openai_base_url + "/chat/completions", json=CHAT,
                           headers={"Authorization": "Bearer sk-right"})
    assert (wrong.status_code, right.status_code) == (401, 200)
    assert "sk-wrong" not in wrong.text


def test_turns_round_trip_through_json(tmp_path):
    turns = [Turn.text("hi", thinking="hmm", usage=(1, 2), expect_tools=["read"]),
             Turn.tool_call("read", {"path": "a"}, id="call_x"), Turn.error(503, "down", retry_after=1.5),
             Turn.dropped("so"), Turn.dropped("a b c", after_chunks=2), Turn.malformed(), Turn.hang(2.0, text="wait")]
    script = tmp_path / "turns.json"
    script.write_text(json.dumps([t.to_dict() for t in turns]))
    assert load_script(script) == turns


def test_bad_script_names_the_file_and_the_problem(tmp_path):
    script = tmp_path / "turns.json"
    script.write_text(json.dumps([{"steps": [{"type": "song", "text": "la"}]}]))
    with pytest.raises(ValueError, match=r"turns\.json.*'song'"):
        load_script(script)


def test_cli_prints_url_serves_and_accepts_turns_over_http(tmp_path):
    script = tmp_path / "turns.json"
    script.write_text(json.dumps(["from the script"]))
    command = [sys.executable, "-m", "codetether_magics.testing.scripted_server", "--script", str(script)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            url = process.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:")
            httpx.post(url + "/_scripted/turns", json=[{"steps": [{"type": "text", "text": "enqueued later"}]}])
            texts = []
            for _ in range(2):
                response = httpx.post(url + "/v1/chat/completions", json=CHAT)
                chunks = [json.loads(d) for d in sse_data(response)[:-1]]
                texts.append("".join(c["choices"][0]["delta"].get("content", "") for c in chunks))
            assert texts == ["from the script", "enqueued later"]
            recorded = httpx.get(url + "/_scripted/requests").json()
            assert [r["path"] for r in recorded if r["protocol"]] == ["/v1/chat/completions"] * 2
            assert httpx.get(url + "/_scripted/errors").json() == []
        finally:
            process.terminate()
            _, stderr = process.communicate(timeout=10)
    assert "Warning" not in stderr and "Traceback" not in stderr, stderr


def test_drop_after_n_chunks():
    with ScriptedModelServer([Turn.dropped("one two three four five", after_chunks=3)]) as server:
        lines = []
        with pytest.raises(httpx.RemoteProtocolError):
            with httpx.stream("POST", server.openai_base_url + "/chat/completions", json=CHAT) as response:
                for line in response.iter_lines():
                    lines.append(line)
    data = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    assert len(data) == 3  # the role chunk, "one ", "two "
    assert "".join(d["choices"][0]["delta"].get("content", "") for d in data) == "one two "
