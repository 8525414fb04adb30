"""The providers of part two as a user reaches them: a real kernel, ``%%codetether`` cells, the loopback
server. The OpenAI Responses API (chosen by the model, or by ``CODETETHER_OPENAI_API``) and Google Gemini
(its key alone in the environment makes it the default) answer a cell, and the footer says who answered."""

from __future__ import annotations

from pathlib import Path

import pytest

from codetether_magics.testing import ScriptedModelServer, Turn
from tests.support.kernel import LiveKernel, kernel_env, new_api_key

pytestmark = pytest.mark.slow


def _answer(kernel: LiveKernel, cell: str) -> str:
    run = kernel.execute(cell)
    assert run.reply["content"]["status"] == "ok", run.outputs_json()
    return run.outputs_json()


@pytest.mark.parametrize(("option", "extra"), [("-m openai/gpt-5", {}),
                                               ("", {"CODETETHER_OPENAI_API": "responses"})],
                         ids=["reasoning-model", "CODETETHER_OPENAI_API"])
def test_a_cell_answered_through_the_responses_api(tmp_path: Path, option: str, extra: dict[str, str]):
    key = new_api_key()
    with ScriptedModelServer([Turn.text("Forty-two, via Responses."), Turn.text("A title")], api_key=key) as server:
        with LiveKernel(tmp_path, kernel_env(tmp_path, server, key, **extra)) as kernel:
            _answer(kernel, "%load_ext codetether_magics")
            shown = _answer(kernel, f"%%codetether {option}\nWhat is 6*7?")
        assert server.errors == []
        paths = [r.path for r in server.model_requests]
    assert paths and set(paths) == {"/v1/responses"}, paths  # the title call too: no Chat Completions
    assert "Forty-two, via Responses." in shown
    assert key not in shown


def test_a_gemini_key_alone_makes_google_answer_the_cell(tmp_path: Path):
    key = "AIza-kernel-test-" + new_api_key()[-12:]
    with ScriptedModelServer([Turn.text("Hello from Gemini."), Turn.text("A title")], api_key=key) as server:
        env = kernel_env(tmp_path, GEMINI_API_KEY=key, GEMINI_BASE_URL=server.openai_base_url)
        with LiveKernel(tmp_path, env) as kernel:
            _answer(kernel, "%load_ext codetether_magics")
            shown = _answer(kernel, "%%codetether\nSay hello.")
        assert server.errors == []
        first = server.model_requests[0]
    assert first.path == "/v1/chat/completions" and first.body["model"] == "gemini-2.5-pro"
    assert first.headers["authorization"] == f"Bearer {key}"
    assert "Hello from Gemini." in shown and "google/gemini-2.5-pro" in shown  # the footer names it
    assert key not in shown
