"""Secret canaries through every error path: a credential (API key, ANY header value, a Vault token from
any source) never reaches an error, event, output or log line, and a credential with a control character
is refused when read, naming where it came from but never the value."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from codetether_magics.agent.loop import run_prompt
from codetether_magics.errors import CredentialError, ProviderAuthError, ProviderError, ProviderHTTPError
from codetether_magics.notebook.redact import redact as notebook_redact
from codetether_magics.providers.base import ModelRequest
from codetether_magics.providers.registry import ProviderRegistry
from codetether_magics.redaction import REDACTED, redact, scrubbing_logger
from codetether_magics.session.session import Session
from codetether_magics.messages import Message
from codetether_magics.testing import ScriptedModelServer, Turn
from codetether_magics.testing.vault_server import VaultServer

KEY = "sk-canary-KEY-7f3a9c2e11"
TICKET = "gw-pass-CANARY-55aa77"  # a credential in a header whose name says nothing about credentials
VAULT_TOKEN = "hvs.CANARY-vault-token-3141"
CANARIES = (KEY, TICKET, VAULT_TOKEN)
CHECKED: list[str] = []  # every text a canary was looked for in, for the figures


@pytest.fixture(autouse=True, scope="module")
def figures():
    yield
    print(f"\nsecret canaries: {len(CANARIES)} values, {len(CHECKED)} texts checked, 0 leaks")


def assert_clean(*texts: str) -> None:
    for text in texts:
        CHECKED.append(text)
        for canary in CANARIES:
            assert canary not in text, f"{canary} leaked into: {text[:300]}"


def config_with(tmp_path: Path, server: ScriptedModelServer, protocol: str = "openai") -> Path:
    """``protocol``: openai, anthropic, or responses (OpenAI's Responses API)."""
    base = server.anthropic_base_url if protocol == "anthropic" else server.openai_base_url
    api = 'api = "responses"\n' if protocol == "responses" else ""
    protocol = "openai" if protocol == "responses" else protocol
    path = tmp_path / "config.toml"
    path.write_text(f'[providers.gw]\nbase_url = "{base}"\napi_key = "{KEY}"\nprotocol = "{protocol}"\n{api}'
                    f'default_model = "m"\n[providers.gw.headers]\nX-Gateway-Pass = "{TICKET}"\n')
    return path


def registry_for(tmp_path: Path, server: ScriptedModelServer, protocol: str = "openai") -> ProviderRegistry:
    return ProviderRegistry.from_env({}, config_path=config_with(tmp_path, server, protocol))


def ask() -> ModelRequest:
    return ModelRequest(model="m", messages=[Message.user("hi")])


ECHOES = [
    pytest.param(lambda: Turn.error(400, f"bad key {KEY}, pass {TICKET}"), id="http-400-body"),
    pytest.param(lambda: Turn.error(401, f"Incorrect API key provided: {KEY} ({TICKET})"), id="http-401-body"),
    pytest.param(lambda: Turn([{"type": "error_event", "message": f"quota of {KEY}/{TICKET}",
                                "error_type": "invalid_request_error"}]), id="in-stream-error"),
    pytest.param(lambda: Turn([{"type": "text", "text": "partial "},
                               {"type": "error_event", "message": f"cut for {TICKET} {KEY}",
                                "error_type": "invalid_request_error"}]), id="in-stream-error-after-text"),
]


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "responses"])
@pytest.mark.parametrize("echo", ECHOES)
async def test_echoed_credentials_never_reach_errors_events_or_logs(protocol, echo, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with ScriptedModelServer() as server:
        server.enqueue(echo())
        registry = registry_for(tmp_path, server, protocol)
        session = await Session.new(tmp_path)
        events: list = []
        try:
            await run_prompt(session, "hi", [], events.append, registry, model="gw/m", tools=[],
                             title_model_call=False, retry_delays=())
            error_text = ""
        except ProviderError as exc:
            error_text = f"{exc} {exc!r} {getattr(exc, 'message', '')}"
        assert server.model_requests[0].headers["x-gateway-pass"] == TICKET  # it was sent, only never shown
        assert server.model_requests[0].path.endswith("/responses") == (protocol == "responses")
    await session.save()
    assert_clean(error_text, caplog.text, session.path.read_text(),
                 *(e.model_dump_json() for e in events), repr(registry.get("gw")))
    assert REDACTED in error_text + "".join(e.model_dump_json() for e in events)


async def test_a_401_names_the_key_variable_to_check(tmp_path):
    with ScriptedModelServer(api_key="sk-the-right-one-000") as server:
        registry = ProviderRegistry.from_env({"OPENAI_API_KEY": "sk-the-wrong-one-111",
                                              "OPENAI_BASE_URL": server.openai_base_url},
                                             config_path=tmp_path / "none.toml")
        provider, _ = registry.resolve_model("openai/m")
        with pytest.raises(ProviderHTTPError) as caught:
            _ = [d async for d in provider.stream(ask())]
    assert caught.value.status_code == 401 and "Check OPENAI_API_KEY" in str(caught.value)
    assert "sk-the-wrong-one-111" not in str(caught.value)


async def test_a_5xx_after_the_retries_says_to_try_again_or_pick_another_model(tmp_path):
    with ScriptedModelServer() as server:
        server.enqueue(*[Turn.error(503, "upstream unavailable") for _ in range(3)])
        registry = ProviderRegistry.from_env({"OPENAI_BASE_URL": server.openai_base_url},
                                             config_path=tmp_path / "none.toml")
        session = await Session.new(tmp_path)
        with pytest.raises(ProviderHTTPError) as caught:
            await run_prompt(session, "hi", [], None, registry, model="openai/m", tools=[], title_model_call=False,
                             retry_delays=(0.0, 0.0))
    message = str(caught.value)
    assert "upstream unavailable" in message and "after 2 retries" in message
    assert "try again" in message and "-m provider/model" in message


def test_no_provider_says_one_env_line_in_the_notebook_is_enough(tmp_path):
    registry = ProviderRegistry.from_env({}, config_path=tmp_path / "none.toml")
    with pytest.raises(ProviderError, match=r"%env OPENAI_API_KEY=") as caught:
        registry.resolve_model(None)
    assert "GEMINI_API_KEY" in str(caught.value)


BAD = ["sk-line1\nline2-0000", "sk-with-cr\r-000000", "sk-nul\x00-0000000", "sk-escape\x1b[31m-00"]


@pytest.mark.parametrize("value", BAD)
def test_a_key_with_a_control_character_in_the_environment_is_refused(value, tmp_path):
    with pytest.raises(CredentialError) as caught:
        ProviderRegistry.from_env({"ANTHROPIC_API_KEY": value}, config_path=tmp_path / "none.toml")
    message = str(caught.value)
    assert "ANTHROPIC_API_KEY" in message and value not in message and value.strip()[:9] not in message


@pytest.mark.parametrize("value", BAD)
def test_a_key_or_header_with_a_control_character_in_the_config_file_is_refused(value, tmp_path):
    escaped = "".join(f"\\u{ord(c):04x}" if ord(c) < 32 else c for c in value)  # TOML's own escapes
    header = f'api_key = "sk-ok-00000000"\n[providers.gw.headers]\nX-Pass = "{escaped}"'
    for table in (f'api_key = "{escaped}"', header):
        path = tmp_path / "config.toml"
        path.write_text(f'[providers.gw]\nbase_url = "http://127.0.0.1:9/v1"\n{table}\n')
        with pytest.raises(CredentialError) as caught:
            ProviderRegistry.from_env({}, config_path=path)
        assert "[providers.gw] in the config file" in str(caught.value) and value not in str(caught.value)
        assert_clean(str(caught.value))


async def test_a_key_with_a_newline_in_vault_is_refused_naming_the_secret(tmp_path):
    bad = "sk-vault-bad\n-0000000"
    with VaultServer({"codetether/providers/openai": {"api_key": bad}}, token=VAULT_TOKEN) as vault:
        with pytest.raises(CredentialError) as caught:
            await ProviderRegistry.from_vault(environ={"VAULT_ADDR": vault.url, "VAULT_TOKEN": VAULT_TOKEN},
                                              config_path=tmp_path / "none.toml")
    assert "Vault secret for provider 'openai'" in str(caught.value) and bad not in str(caught.value)
    assert_clean(str(caught.value))


async def test_vault_token_with_a_newline_is_refused(tmp_path):
    with pytest.raises(CredentialError, match="VAULT_TOKEN") as caught:
        await ProviderRegistry.from_vault(environ={"VAULT_ADDR": "http://127.0.0.1:9",
                                                   "VAULT_TOKEN": "hvs.two\nlines-000"},
                                          config_path=tmp_path / "none.toml")
    assert "hvs.two" not in str(caught.value)


async def test_vault_token_file_with_a_nul_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".vault-token").write_text("hvs.file\x00token-0000\n")
    with pytest.raises(CredentialError, match=r"~/.vault-token") as caught:
        await ProviderRegistry.from_vault(environ={"VAULT_ADDR": "http://127.0.0.1:9"},
                                          config_path=tmp_path / "none.toml")
    assert "hvs.file" not in str(caught.value)


@pytest.mark.parametrize("source", ["env", "file"])
async def test_a_vault_token_echoed_in_a_403_never_reaches_the_error_or_logs(source, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    environ = {"VAULT_ADDR": ""}
    if source == "file":
        monkeypatch.setenv("HOME", str(tmp_path))
        (tmp_path / ".vault-token").write_text(VAULT_TOKEN + "\n")  # the vault CLI writes a newline: fine
    else:
        environ["VAULT_TOKEN"] = VAULT_TOKEN
    with VaultServer({"codetether/providers/openai": {"api_key": KEY}}, token="hvs.another-valid-token",
                     echo_token=True) as vault:
        environ["VAULT_ADDR"] = vault.url
        with pytest.raises(ProviderAuthError) as caught:
            await ProviderRegistry.from_vault(environ=environ, config_path=tmp_path / "none.toml")
        assert any(r.token == VAULT_TOKEN for r in vault.requests)  # the token was sent and echoed
    assert "permission denied for token" in str(caught.value)
    assert_clean(str(caught.value), repr(caught.value), caplog.text)


async def test_a_kubernetes_login_token_is_a_secret_too(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    jwt = tmp_path / "jwt"
    jwt.write_text("eyJ-service-account-jwt-0000")
    with VaultServer({"codetether/providers/openai": {"api_key": KEY}}, token=None, k8s_role="nb",
                     k8s_jwt="eyJ-service-account-jwt-0000", echo_token=True) as vault:
        env = {"VAULT_ADDR": vault.url, "VAULT_ROLE": "nb", "VAULT_K8S_SA_JWT_PATH": str(jwt)}
        await ProviderRegistry.from_vault(environ=env, config_path=tmp_path / "none.toml")
        issued = next(r.token for r in vault.requests if r.token)
    logger = scrubbing_logger("codetether_magics.providers.vault")
    logger.warning("Vault said: token %s and jwt %s", issued, "eyJ-service-account-jwt-0000")
    assert issued not in caplog.text and "eyJ-service-account-jwt-0000" not in caplog.text
    assert caplog.text.count(REDACTED) == 2
    assert notebook_redact(f"printed {issued}") == f"printed {REDACTED}"


def test_every_configured_header_value_is_scrubbed_from_notebook_output(tmp_path):
    with ScriptedModelServer() as server:
        registry_for(tmp_path, server)
    # The notebook's redaction (tool outputs, cell errors) and the package's are one rule.
    text = f"os.environ says {TICKET} and {KEY}"
    assert notebook_redact(text) == redact(text) == f"os.environ says {REDACTED} and {REDACTED}"


def test_log_records_with_arguments_and_tracebacks_are_scrubbed(tmp_path, caplog):
    with ScriptedModelServer() as server:
        registry_for(tmp_path, server)
    caplog.set_level(logging.DEBUG)
    logger = scrubbing_logger("codetether_magics.providers.registry")
    try:
        raise RuntimeError(f"boom with {KEY}")
    except RuntimeError:
        logger.exception("failed for %s", TICKET)
    assert "boom with" in caplog.text and "failed for" in caplog.text
    assert_clean(caplog.text)



async def test_a_tool_printing_a_key_is_scrubbed_from_its_event(tmp_path, monkeypatch):
    from codetether_magics.events import ToolCallCompleteEvent
    from codetether_magics.agent.tools.base import Tool

    monkeypatch.setenv("SOME_SERVICE_API_KEY", KEY)  # credential-like names count even when no provider uses them

    async def leaky(arguments: dict) -> str:
        return f"env: SOME_SERVICE_API_KEY={KEY}"

    with ScriptedModelServer([Turn.tool_call("leaky", {}), Turn.text("done")]) as server:
        registry = registry_for(tmp_path, server)
        events: list = []
        await run_prompt(await Session.new(tmp_path), "go", [], events.append, registry, model="gw/m",
                         tools=[Tool("leaky", "prints env", {"type": "object"}, leaky, read_only=True)], title_model_call=False)
    (done,) = [e for e in events if isinstance(e, ToolCallCompleteEvent)]
    assert done.output == f"env: SOME_SERVICE_API_KEY={REDACTED}"
    assert_clean(*(e.model_dump_json() for e in events))


async def test_credentials_written_into_the_base_url_are_secrets_too(tmp_path):
    with ScriptedModelServer() as server:
        server.enqueue(Turn.error(400, "user bob:url-password-CANARY-01 refused"))
        base = server.openai_base_url.replace("http://", "http://bob:url-password-CANARY-01@")
        registry = ProviderRegistry.from_env({"OPENAI_BASE_URL": base}, config_path=tmp_path / "none.toml")
        provider, _ = registry.resolve_model("openai/m")
        with pytest.raises(ProviderHTTPError) as caught:
            _ = [d async for d in provider.stream(ask())]
    assert "refused" in str(caught.value)
    assert "url-password-CANARY-01" not in str(caught.value) and "bob:[redacted]" in str(caught.value)
