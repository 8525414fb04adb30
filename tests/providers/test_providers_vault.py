"""ProviderRegistry.from_vault through hvac against the loopback KV v2 Vault, end to end."""

from __future__ import annotations

import logging
import socket

import pytest

from codetether_magics.errors import CodeTetherError, ProviderAuthError, ProviderHTTPError
from codetether_magics.messages import Message
from codetether_magics.providers.anthropic import AnthropicProvider
from codetether_magics.providers.base import ModelRequest, TextDelta
from codetether_magics.providers.registry import ProviderRegistry
from codetether_magics.session.session import Session
from codetether_magics.testing import ScriptedModelServer, Turn
from codetether_magics.testing.vault_server import VaultServer

TOKEN = "hvs.ROOT-TOKEN-never-shown-1234"
OPENAI_KEY = "sk-vault-openai-SECRET-5678"
ANTHROPIC_KEY = "sk-ant-vault-SECRET-9012"
PREFIX = "codetether/providers"


@pytest.fixture
def model_server():
    with ScriptedModelServer() as server:
        yield server


def vault_for(server: ScriptedModelServer, **options) -> VaultServer:
    secrets = {
        f"{PREFIX}/openai": {"api_key": OPENAI_KEY, "base_url": server.openai_base_url,
                             "organization": "org-notebooks", "default_model": "gpt-4o-mini"},
        f"{PREFIX}/anthropic": {"api_key": ANTHROPIC_KEY, "base_url": server.anthropic_base_url,
                                "headers": '{"anthropic-beta": "tools-2024"}'},
        f"{PREFIX}/vllm": {"base_url": server.openai_base_url, "default_model": "qwen"},
    }
    return VaultServer(secrets, token=TOKEN, **options)


def environ(vault: VaultServer, **extra: str) -> dict[str, str]:
    return {"VAULT_ADDR": vault.url, "VAULT_TOKEN": TOKEN, **extra}


async def from_vault(env: dict[str, str], tmp_path) -> ProviderRegistry:
    return await ProviderRegistry.from_vault(environ=env, config_path=tmp_path / "none.toml")


async def answer(provider, model: str) -> str:
    request = ModelRequest(model=model, messages=[Message.user("hi")])
    return "".join([d.text async for d in provider.stream(request) if isinstance(d, TextDelta)])


async def test_keys_and_base_urls_come_from_vault(model_server, tmp_path):
    with vault_for(model_server) as vault:
        registry = await from_vault(environ(vault, OPENAI_API_KEY="sk-env-loses"), tmp_path)
    assert sorted(registry.names()) == ["anthropic", "openai", "vllm"]
    assert {registry.source_of(n) for n in registry.names()} == {"vault"}
    assert registry.default_model() == "openai/gpt-4o-mini"
    assert isinstance(registry.get("anthropic"), AnthropicProvider)
    model_server.enqueue(Turn.text("from openai"), Turn.text("from anthropic"), Turn.text("from vllm"))
    assert await answer(*registry.resolve_model(None)) == "from openai"
    assert await answer(*registry.resolve_model("anthropic/claude-sonnet-4-20250514")) == "from anthropic"
    assert await answer(*registry.resolve_model("vllm")) == "from vllm"
    first, second, third = model_server.model_requests
    assert first.headers["authorization"] == f"Bearer {OPENAI_KEY}"  # Vault beat OPENAI_API_KEY
    assert first.headers["openai-organization"] == "org-notebooks" and first.body["model"] == "gpt-4o-mini"
    assert second.headers["x-api-key"] == ANTHROPIC_KEY and second.headers["anthropic-beta"] == "tools-2024"
    assert "authorization" not in third.headers and third.body["model"] == "qwen"
    assert model_server.errors == []


async def test_vault_reads_use_the_token_and_run_concurrently(model_server, tmp_path):
    with vault_for(model_server, read_delay=0.2) as vault:
        await from_vault(environ(vault), tmp_path)
        requests = vault.requests
        assert vault.max_in_flight >= 2  # the three secret reads overlapped
    assert {r.token for r in requests} == {TOKEN}
    assert [r.method for r in requests][0] == "LIST"
    assert sorted(r.path for r in requests if r.method == "GET") == [
        f"/v1/secret/data/{PREFIX}/anthropic", f"/v1/secret/data/{PREFIX}/openai", f"/v1/secret/data/{PREFIX}/vllm"]


async def test_a_403_logs_in_again_once_and_succeeds(model_server, tmp_path):
    with vault_for(model_server) as vault:
        vault.fail_next(403)
        registry = await from_vault(environ(vault), tmp_path)
        lists = [r for r in vault.requests if r.method == "LIST"]
    assert len(registry) == 3
    assert len(lists) == 2  # refused, then retried after logging in again


async def test_repeated_403_is_a_clear_auth_error_without_the_token(model_server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with vault_for(model_server) as vault:
        vault.fail_next(403, count=2)
        with pytest.raises(ProviderAuthError) as caught:
            await from_vault(environ(vault), tmp_path)
    message = str(caught.value)
    assert "even after logging in again" in message and f"secret/{PREFIX}" in message and "VAULT_TOKEN" in message
    assert TOKEN not in message and TOKEN not in caplog.text


async def test_kubernetes_auth_logs_in_with_the_service_account_jwt(model_server, tmp_path):
    jwt = tmp_path / "sa-token"
    jwt.write_text("eyJ.k8s.jwt\n")
    with vault_for(model_server, k8s_role="notebooks", k8s_jwt="eyJ.k8s.jwt", auth_mount="k8s-prod") as vault:
        vault.revoke(TOKEN)  # only the login's token works
        vault.fail_next(403)  # and that one "expires" once: a second login follows
        registry = await from_vault({"VAULT_ADDR": vault.url, "VAULT_ROLE": "notebooks",
                                     "VAULT_AUTH_MOUNT": "k8s-prod", "VAULT_K8S_SA_JWT_PATH": str(jwt)}, tmp_path)
        logins = [r for r in vault.requests if r.path == "/v1/auth/k8s-prod/login"]
        used = {r.token for r in vault.requests if r.method in ("LIST", "GET")}
    assert len(registry) == 3
    assert len(logins) == 2
    assert used == {"k8s-token-1", "k8s-token-2"}


async def test_kubernetes_login_refused_is_an_auth_error(model_server, tmp_path):
    jwt = tmp_path / "sa-token"
    jwt.write_text("wrong-jwt")
    with vault_for(model_server, k8s_role="notebooks", k8s_jwt="right-jwt") as vault:
        with pytest.raises(ProviderAuthError, match="role 'notebooks'.*refused"):
            await from_vault({"VAULT_ADDR": vault.url, "VAULT_ROLE": "notebooks",
                              "VAULT_K8S_SA_JWT_PATH": str(jwt)}, tmp_path)
    with pytest.raises(ProviderAuthError, match="service-account token at"):
        await from_vault({"VAULT_ADDR": "http://127.0.0.1:1", "VAULT_ROLE": "r",
                          "VAULT_K8S_SA_JWT_PATH": str(tmp_path / "missing")}, tmp_path)


async def test_404_means_no_such_provider(model_server, tmp_path):
    with vault_for(model_server) as vault:
        vault.put(f"{PREFIX}/ghost", {"api_key": "x"})
        vault.put(f"{PREFIX}/team/nested", {"api_key": "y"})  # a folder, not a provider
        vault.delete_data(f"{PREFIX}/ghost")  # listed, but reading it answers 404
        registry = await from_vault(environ(vault), tmp_path)
    assert sorted(registry.names()) == ["anthropic", "openai", "vllm"]


async def test_empty_vault_path_falls_back_to_the_environment(tmp_path):
    with VaultServer({}, token=TOKEN) as vault:
        registry = await from_vault(environ(vault, GROQ_API_KEY="gsk-env",
                                            VAULT_MOUNT="kv", VAULT_SECRETS_PATH="other/place"), tmp_path)
        (listed,) = [r.path for r in vault.requests if r.method == "LIST"]
    assert listed == "/v1/kv/metadata/other/place"
    assert registry.names() == ["groq"] and registry.source_of("groq") == "environment"


async def test_unreachable_vault_is_logged_and_skipped(tmp_path, caplog):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    registry = await from_vault({"VAULT_ADDR": f"http://127.0.0.1:{port}", "VAULT_TOKEN": TOKEN,
                                 "ANTHROPIC_API_KEY": "sk-ant-env"}, tmp_path)
    assert registry.names() == ["anthropic"]
    assert f"127.0.0.1:{port}" in caplog.text and TOKEN not in caplog.text


async def test_secrets_never_reach_session_file_events_logs_or_errors(model_server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with vault_for(model_server) as vault:
        registry = await from_vault(environ(vault), tmp_path)
    secrets = (TOKEN, OPENAI_KEY, ANTHROPIC_KEY)
    model_server.enqueue(Turn.text("All good.", usage=(5, 2)),
                         Turn.error(400, f"key {ANTHROPIC_KEY} cannot use this model"))
    session = await Session.new(tmp_path)
    session.title = "vault test"
    events: list = []
    await session.prompt_with_events("hello", events.append, registry, model="openai/gpt-4o-mini",
                                     retry_delays=(0.0, 0.0, 0.0))
    with pytest.raises(ProviderHTTPError) as caught:
        await session.prompt_with_events("again", events.append, registry, model="anthropic/claude-x",
                                         retry_delays=(0.0, 0.0, 0.0))
    assert "cannot use this model" in str(caught.value)
    await session.save()
    saved = session.path.read_text()
    assert "All good." in saved
    seen = [saved, caplog.text, str(caught.value), repr(registry),
            *(event.model_dump_json() for event in events), *(repr(registry.get(n)) for n in registry.names())]
    for secret in secrets:
        assert not any(secret in text for text in seen), secret
    assert isinstance(caught.value, CodeTetherError)
