"""ProviderRegistry from the environment and the config file (Vault: tests/providers/test_providers_vault.py)."""

from __future__ import annotations

import logging

import pytest

from codetether_magics.errors import NoProviderConfiguredError, ProviderError, ProviderNotFoundError
from codetether_magics.messages import Message
from codetether_magics.providers.anthropic import AnthropicProvider
from codetether_magics.providers.base import ModelRequest, TextDelta
from codetether_magics.providers.known import ollama_base_url
from codetether_magics.providers.openai import OpenAIProvider
from codetether_magics.providers.registry import ProviderRegistry
from codetether_magics.testing import ScriptedModelServer, Turn


def registry(environ: dict, tmp_path, config: str | None = None) -> ProviderRegistry:
    path = tmp_path / "config.toml"
    if config is not None:
        path.write_text(config)
    return ProviderRegistry.from_env(environ, config_path=path)


async def answer(provider, model: str) -> str:
    request = ModelRequest(model=model, messages=[Message.user("hi")])
    return "".join([d.text async for d in provider.stream(request) if isinstance(d, TextDelta)])


def test_nothing_configured_is_falsy_and_says_how_to_configure(tmp_path):
    empty = registry({}, tmp_path)
    assert not empty and len(empty) == 0 and empty.names() == []
    with pytest.raises(NoProviderConfiguredError) as caught:
        empty.resolve_model("openai/gpt-4o")
    message = str(caught.value)
    for hint in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OLLAMA_HOST", "VAULT_ADDR", "[providers.<name>]",
                 str(tmp_path / "config.toml")):
        assert hint in message
    with pytest.raises(NoProviderConfiguredError):
        empty.default_model()


def test_missing_provider_lists_the_available_ones(tmp_path):
    reg = registry({"OPENAI_API_KEY": "sk-a", "GROQ_API_KEY": "gsk-b"}, tmp_path)
    with pytest.raises(ProviderNotFoundError) as caught:
        reg.resolve_model("mistral/mistral-large-latest")
    assert str(caught.value) == "Provider 'mistral' not found. Available: groq, openai"
    with pytest.raises(ProviderNotFoundError, match="Provider 'x' not found. Available: groq, openai"):
        reg.get("x")


@pytest.mark.parametrize("variables, expected", [
    ({"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k"}, "openai/gpt-4o"),
    ({"MISTRAL_API_KEY": "k", "ANTHROPIC_API_KEY": "k"}, "anthropic/claude-sonnet-4-20250514"),
    ({"OLLAMA_HOST": "127.0.0.1:11434", "DEEPSEEK_API_KEY": "k"}, "deepseek/deepseek-chat"),
    ({"OLLAMA_HOST": "127.0.0.1:11434"}, "ollama/llama3.2"),
])
def test_default_model_follows_the_provider_order(tmp_path, variables, expected):
    assert registry(variables, tmp_path).default_model() == expected


def test_codetether_model_overrides_the_default(tmp_path):
    reg = registry({"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k", "CODETETHER_MODEL": "anthropic/claude-x"},
                   tmp_path)
    provider, model = reg.resolve_model(None)
    assert (provider.name, model) == ("anthropic", "claude-x")
    assert isinstance(provider, AnthropicProvider)


def test_model_string_splits_at_the_first_slash(tmp_path):
    reg = registry({"OPENROUTER_API_KEY": "k", "OPENAI_API_KEY": "k"}, tmp_path)
    provider, model = reg.resolve_model("openrouter/openai/gpt-5")
    assert (provider.name, model) == ("openrouter", "openai/gpt-5")
    assert provider.base_url == "https://openrouter.ai/api/v1"


def test_bare_names(tmp_path):
    reg = registry({"OPENAI_API_KEY": "k", "GROQ_API_KEY": "k"}, tmp_path)
    assert [reg.resolve_model("groq")[0].name, reg.resolve_model("groq")[1]] == ["groq", "llama-3.3-70b-versatile"]
    provider, model = reg.resolve_model("gpt-4o-mini")  # a bare model id goes to the default provider
    assert (provider.name, model) == ("openai", "gpt-4o-mini")


def test_env_fallback_can_be_disabled(tmp_path):
    assert not registry({"OPENAI_API_KEY": "k", "CODETETHER_DISABLE_ENV_FALLBACK": "true"}, tmp_path)
    assert registry({"OPENAI_API_KEY": "k", "CODETETHER_DISABLE_ENV_FALLBACK": "0"}, tmp_path)


def test_ollama_host_forms():
    assert ollama_base_url("127.0.0.1:11434") == "http://127.0.0.1:11434/v1"
    assert ollama_base_url("http://gpu-box:9000/") == "http://gpu-box:9000/v1"
    assert ollama_base_url("gpu-box") == "http://gpu-box:11434/v1"


async def test_env_keys_and_base_urls_reach_the_wire(tmp_path):
    with ScriptedModelServer([Turn.text("via openai"), Turn.text("via anthropic")], api_key=None) as server:
        reg = registry({"OPENAI_API_KEY": "sk-test-env-1", "OPENAI_BASE_URL": server.openai_base_url,
                        "ANTHROPIC_API_KEY": "sk-ant-env-2", "ANTHROPIC_BASE_URL": server.anthropic_base_url},
                       tmp_path)
        assert await answer(*reg.resolve_model("openai/gpt-4o-mini")) == "via openai"
        assert await answer(*reg.resolve_model("anthropic/claude-haiku")) == "via anthropic"
        first, second = server.model_requests
    assert first.headers["authorization"] == "Bearer sk-test-env-1" and first.body["model"] == "gpt-4o-mini"
    assert second.headers["x-api-key"] == "sk-ant-env-2" and second.body["model"] == "claude-haiku"
    assert server.errors == []


async def test_ollama_host_reaches_the_wire_without_a_key(tmp_path):
    with ScriptedModelServer([Turn.text("from ollama")]) as server:
        reg = registry({"OLLAMA_HOST": server.url.removeprefix("http://")}, tmp_path)
        assert await answer(*reg.resolve_model(None)) == "from ollama"
        (request,) = server.model_requests
    assert request.path == "/v1/chat/completions" and request.body["model"] == "llama3.2"
    assert "authorization" not in request.headers and server.errors == []


async def test_config_file_providers(tmp_path):
    with ScriptedModelServer([Turn.text("from vllm")]) as server:
        reg = registry({"OPENAI_API_KEY": "sk-env"}, tmp_path, f"""
default_model = "vllm/qwen"

[providers.openai]
api_key = "sk-config-loses"
default_model = "gpt-4o-mini"

[providers.vllm]
base_url = "{server.openai_base_url}"
headers = {{ X-Team = "notebooks" }}

[providers.proxy]
protocol = "anthropic"
base_url = "http://127.0.0.1:1"
api_key = "sk-proxy"
""")
        assert reg.names() == ["openai", "vllm", "proxy"]
        assert reg.source_of("openai") == "environment" and reg.source_of("vllm") == "config file"
        assert reg.default_model() == "vllm/qwen"
        assert reg.resolve_model("openai")[1] == "gpt-4o-mini"  # the config names the default model
        assert isinstance(reg.get("proxy"), AnthropicProvider)
        assert await answer(*reg.resolve_model(None)) == "from vllm"
        (request,) = server.model_requests
    assert request.headers["x-team"] == "notebooks" and "authorization" not in request.headers
    assert request.body["model"] == "qwen"


def test_config_file_default_path_follows_codetether_config(tmp_path):
    path = tmp_path / "elsewhere.toml"
    path.write_text('[providers.groq]\napi_key = "gsk"\n')
    reg = ProviderRegistry.from_env({"CODETETHER_CONFIG": str(path)})
    assert reg.names() == ["groq"] and reg.config_file_path == path
    xdg = ProviderRegistry.from_env({"XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    assert xdg.config_file_path == tmp_path / "xdg" / "codetether-agent" / "config.toml"


def test_broken_config_file_is_a_clear_error_without_the_key(tmp_path):
    with pytest.raises(ProviderError) as caught:
        registry({}, tmp_path, '[providers.openai]\napi_key = "sk-secret-123\n')
    assert str(tmp_path / "config.toml") in str(caught.value) and "not valid TOML" in str(caught.value)
    assert "sk-secret-123" not in str(caught.value)


def test_unusable_records_are_skipped_and_logged_without_the_key(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    reg = registry({}, tmp_path, '[providers.mystery]\napi_key = "sk-hidden-999"\n'
                                 '[providers.weird]\nbase_url = "http://x"\nprotocol = "grpc"\n')
    assert not reg
    assert "mystery" in caplog.text and "needs a base_url" in caplog.text
    assert "protocol 'grpc'" in caplog.text
    assert "sk-hidden-999" not in caplog.text


def test_register_and_try_resolve(tmp_path, caplog):
    reg = registry({}, tmp_path)
    reg.register(OpenAIProvider("local", None, "http://127.0.0.1:1/v1"), default_model="tiny")
    assert reg and "local" in reg and reg.default_model() == "local/tiny"
    assert reg.try_resolve_model("nope/model") is None
    assert "Provider 'nope' not found" in caplog.text
    assert reg.try_resolve_model("local/big")[1] == "big"


async def test_from_vault_without_vault_addr_is_the_env_registry(tmp_path):
    reg = await ProviderRegistry.from_vault(environ={"ANTHROPIC_API_KEY": "sk-ant"},
                                            config_path=tmp_path / "none.toml")
    assert reg.names() == ["anthropic"] and reg.source_of("anthropic") == "environment"


def test_repr_never_shows_keys(tmp_path):
    reg = registry({"OPENAI_API_KEY": "sk-visible-if-bug", "ANTHROPIC_API_KEY": "sk-ant-visible-if-bug"}, tmp_path)
    text = repr(reg) + repr(reg.get("openai")) + repr(reg.get("anthropic")) + repr(vars(reg))
    assert "visible-if-bug" not in text
