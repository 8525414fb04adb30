"""Provider ``google``: Gemini through Google's OpenAI-compatible endpoint."""

from __future__ import annotations

import pytest

from codetether_magics.providers.base import ModelRequest, TextDelta
from codetether_magics.providers.known import DEFAULT_ORDER
from codetether_magics.providers.openai import OpenAIProvider
from codetether_magics.providers.registry import ProviderRegistry
from codetether_magics.messages import Message
from codetether_magics.testing import ScriptedModelServer, Turn


def registry(tmp_path, **environ: str) -> ProviderRegistry:
    return ProviderRegistry.from_env(environ, config_path=tmp_path / "none.toml")


@pytest.mark.parametrize("variable", ["GEMINI_API_KEY", "GOOGLE_API_KEY"])
def test_either_key_variable_configures_google_with_its_default_model(tmp_path, variable):
    reg = registry(tmp_path, **{variable: "AIza-test-key-000000"})
    provider, model = reg.resolve_model(None)
    assert reg.default_model() == "google/gemini-2.5-pro" and model == "gemini-2.5-pro"
    assert isinstance(provider, OpenAIProvider)
    assert provider.base_url == "https://generativelanguage.googleapis.com/v1beta/openai"
    assert provider.key_hint == variable  # what a 401 will tell the user to check


def test_gemini_key_wins_over_google_key(tmp_path):
    reg = registry(tmp_path, GEMINI_API_KEY="AIza-gemini-0000000", GOOGLE_API_KEY="AIza-google-0000000")
    assert reg.get("google").key_hint == "GEMINI_API_KEY"


def test_google_comes_after_anthropic_in_the_default_order(tmp_path):
    assert DEFAULT_ORDER.index("google") == DEFAULT_ORDER.index("anthropic") + 1
    both = registry(tmp_path, GEMINI_API_KEY="AIza-0000000000", ANTHROPIC_API_KEY="sk-ant-0000000000")
    assert both.default_model().startswith("anthropic/")
    later = registry(tmp_path, GEMINI_API_KEY="AIza-0000000000", GROQ_API_KEY="gsk-00000000000")
    assert later.default_model() == "google/gemini-2.5-pro"


async def test_gemini_base_url_reaches_the_wire_with_the_key_as_bearer(tmp_path):
    with ScriptedModelServer() as server:
        server.enqueue(Turn.text("Hello from Gemini"))
        reg = registry(tmp_path, GEMINI_API_KEY="AIza-wire-test-0000", GEMINI_BASE_URL=server.openai_base_url)
        provider, model = reg.resolve_model("google/gemini-2.5-flash")
        request = ModelRequest(model=model, messages=[Message.user("hi")], system="Be brief.", max_tokens=50)
        text = "".join([d.text async for d in provider.stream(request) if isinstance(d, TextDelta)])
        (sent,) = server.model_requests
    assert text == "Hello from Gemini"
    assert sent.headers["authorization"] == "Bearer AIza-wire-test-0000"
    assert sent.body["model"] == "gemini-2.5-flash"
    # Google's endpoint speaks the compatible dialect: a system message and max_tokens.
    assert sent.body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent.body["max_tokens"] == 50 and "max_completion_tokens" not in sent.body
