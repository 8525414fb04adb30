"""The shared httpx configuration (proxies, CA bundle, timeouts) and error translation helpers."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

from codetether_magics.errors import ProviderConnectionError, ProviderError
from codetether_magics.messages import Message
from codetether_magics.providers._http import (DEFAULT_TIMEOUT, create_http_client, error_message,
                                               parse_retry_after, proxy_mounts, ssl_verify, stream_error)
from codetether_magics.providers._sse import parse_sse
from codetether_magics.providers.base import ModelRequest, TextDelta
from codetether_magics.providers.openai import OpenAIProvider
from codetether_magics.testing import ScriptedModelServer, Turn


async def answer(provider, model: str = "m") -> str:
    request = ModelRequest(model=model, messages=[Message.user("hi")])
    return "".join([d.text async for d in provider.stream(request) if isinstance(d, TextDelta)])


def test_proxy_mounts_follow_curl_rules():
    mounts = proxy_mounts({"HTTPS_PROXY": "proxy.corp:3128", "no_proxy": "localhost, 127.0.0.1,.corp.example,::1"})
    assert isinstance(mounts["https://"], httpx.AsyncHTTPTransport)
    assert {k for k, v in mounts.items() if v is None} == {
        "all://localhost", "all://127.0.0.1", "all://*.corp.example", "all://[::1]"}
    assert proxy_mounts({"HTTP_PROXY": "http://p:1", "NO_PROXY": "*"}) == {}
    assert proxy_mounts({"NO_PROXY": "localhost"}) == {}


async def test_requests_go_through_the_proxy_from_the_environment():
    with ScriptedModelServer([Turn.text("via the proxy")]) as proxy:
        async with create_http_client({"HTTP_PROXY": proxy.url}) as client:
            provider = OpenAIProvider("openai", "sk-p", "http://models.example/v1", http_client=client)
            assert await answer(provider) == "via the proxy"
        (request,) = proxy.model_requests
    assert request.headers["host"] == "models.example"  # the proxy was asked for the real origin


async def test_no_proxy_hosts_go_direct():
    with ScriptedModelServer() as proxy, ScriptedModelServer([Turn.text("direct")]) as target:
        async with create_http_client({"HTTP_PROXY": proxy.url, "NO_PROXY": "127.0.0.1"}) as client:
            assert await answer(OpenAIProvider("openai", "k", target.openai_base_url, http_client=client)) == "direct"
        assert proxy.requests == []


def test_timeouts():
    client = create_http_client({})
    assert client.timeout == DEFAULT_TIMEOUT
    assert DEFAULT_TIMEOUT.connect == 10.0 and DEFAULT_TIMEOUT.read >= 120.0


def test_bad_ca_bundle_is_a_clear_error(tmp_path):
    with pytest.raises(ProviderError, match="SSL_CERT_FILE=.*missing.pem"):
        ssl_verify({"SSL_CERT_FILE": str(tmp_path / "missing.pem")})


@pytest.fixture
def self_signed(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return cert, context


async def test_ssl_cert_file_is_trusted(self_signed):
    cert, context = self_signed
    with ScriptedModelServer([Turn.text("over TLS")], ssl_context=context) as server:
        assert server.url.startswith("https://127.0.0.1:")
        async with create_http_client({"SSL_CERT_FILE": str(cert)}) as client:
            assert await answer(OpenAIProvider("openai", "k", server.openai_base_url, http_client=client)) \
                == "over TLS"
        async with create_http_client({}) as untrusting:  # certifi's bundle does not know this certificate
            with pytest.raises(ProviderConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
                await answer(OpenAIProvider("openai", "k", server.openai_base_url, http_client=untrusting))


def test_retry_after_forms():
    assert parse_retry_after(httpx.Headers({"retry-after": "7"})) == 7.0
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "1500", "retry-after": "9"})) == 1.5
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    assert 25 <= parse_retry_after(httpx.Headers({"retry-after": when})) <= 31
    assert parse_retry_after(httpx.Headers({"retry-after": "soon"})) is None
    assert parse_retry_after(httpx.Headers({})) is None


@pytest.mark.parametrize("body, expected", [
    (b'{"error": {"message": "Rate limit", "type": "x"}}', "Rate limit"),
    (b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}', "Overloaded"),
    (b'{"error": "model \\"llama9\\" not found, try pulling it first"}',
     'model "llama9" not found, try pulling it first'),
    (b'{"detail": "Not Found"}', "Not Found"),
    (b"upstream connect error", "upstream connect error"),
    (b"", "Bad Gateway"),
])
def test_error_message_shapes(body, expected):
    assert error_message(body, 502) == expected


@pytest.mark.parametrize("error, status, message", [
    ({"message": "Upstream overloaded", "code": 502}, 502, "Upstream overloaded"),  # OpenRouter: an int code
    ({"message": "bad tool schema", "type": "invalid_request_error", "code": None}, 400, "bad tool schema"),
    ({"type": "overloaded_error", "message": "Overloaded"}, 529, "Overloaded"),
    ({"type": "rate_limit_error"}, 429, "rate_limit_error"),
    ({"detail": "worker crashed", "code": "internal"}, 500, "worker crashed"),
    ("model went away", 500, "model went away"),
])
def test_stream_error_shapes(error, status, message):
    raised = stream_error(error, "p")
    assert (raised.status_code, raised.message, raised.provider) == (status, message, "p")


async def test_sse_parser_rules():
    async def lines():
        for line in [": keep-alive", "event: delta", "data: {\"a\":", "data: 1}", "", "id: 5", "retry: 10",
                     "data:no-space", "", "data: tail-without-blank-line"]:
            yield line

    events = [e async for e in parse_sse(lines())]
    assert [(e.event, e.data) for e in events] == [("delta", '{"a":\n1}'), ("message", "no-space"),
                                                    ("message", "tail-without-blank-line")]


async def test_unsupported_base_url_is_a_clear_error():
    with pytest.raises(ProviderError, match="must start with http:// or https://"):
        await answer(OpenAIProvider("vllm", None, "gpu-box:8000/v1"))
