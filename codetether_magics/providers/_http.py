"""The one httpx configuration every provider uses, and the edge where httpx errors
become provider errors (only this package's providers catch httpx exceptions).
What a provider's stream does around this (partial answers, scrubbing the key from
errors) is in ``_streaming.py``.

Configuration: timeouts (a long read timeout, since a reasoning model may be quiet
for minutes between chunks; the real limits of a call are in ``_limits.py``), proxies
from ``HTTP(S)_PROXY``/``ALL_PROXY``/``NO_PROXY``,
and the CA bundle from ``SSL_CERT_FILE``/``SSL_CERT_DIR``. Everything is read from an
injectable mapping so tests need no monkeypatching.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import re
import ssl
from contextlib import asynccontextmanager
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any, AsyncIterator, Mapping
from datetime import datetime, timezone

import httpx

from ..errors import ProviderConnectionError, ProviderError, ProviderHTTPError, ProviderStreamError
from ._limits import CallLimits, Watchdog
from .context_errors import http_error
from .pool import pooled_client

__all__ = ["DEFAULT_TIMEOUT", "OpenStream", "create_http_client", "error_message", "open_stream",
           "parse_retry_after", "proxy_mounts", "ssl_verify", "stream_error"]

# The read timeout is only a backstop: silence is bounded by the call's watchdog (_limits.py), which
# also counts keep-alive comments as silence and can be set above it.
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=3600.0, write=60.0, pool=10.0)
_MAX_ERROR_TEXT = 1000


def create_http_client(environ: Mapping[str, str] | None = None, *,
                       timeout: httpx.Timeout = DEFAULT_TIMEOUT) -> httpx.AsyncClient:
    """An AsyncClient configured from ``environ`` (default ``os.environ``)."""
    environ = os.environ if environ is None else environ
    verify = ssl_verify(environ)
    return httpx.AsyncClient(timeout=timeout, verify=verify, mounts=proxy_mounts(environ, verify), trust_env=False)


def ssl_verify(environ: Mapping[str, str]) -> ssl.SSLContext:
    """The CA bundle from ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``, else certifi's (httpx's default)."""
    cafile, capath = environ.get("SSL_CERT_FILE") or None, environ.get("SSL_CERT_DIR") or None
    if not (cafile or capath):
        import certifi

        cafile = certifi.where()
    return _ssl_context(cafile, capath)


@lru_cache(maxsize=8)
def _ssl_context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    # Loading a CA bundle takes tens of milliseconds; a context is safe to share.
    try:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    except (OSError, ssl.SSLError) as exc:
        raise ProviderError(f"Cannot load the CA certificates from SSL_CERT_FILE={cafile!r} / "
                            f"SSL_CERT_DIR={capath!r}: {exc}. Point them at a PEM bundle or unset them.") from None


def _env(environ: Mapping[str, str], name: str) -> str:
    return environ.get(name.lower()) or environ.get(name.upper()) or ""


def proxy_mounts(environ: Mapping[str, str],
                 verify: ssl.SSLContext | bool = True) -> dict[str, httpx.AsyncBaseTransport | None]:
    """httpx mounts for the proxy variables, with ``NO_PROXY`` hosts going direct (curl's rules)."""
    mounts: dict[str, httpx.AsyncBaseTransport | None] = {}
    for scheme in ("http", "https", "all"):
        proxy = _env(environ, f"{scheme}_proxy")
        if proxy:
            url = proxy if "://" in proxy else f"http://{proxy}"
            mounts[f"{scheme}://"] = httpx.AsyncHTTPTransport(proxy=url, verify=verify)
    if not mounts:
        return {}
    for host in (h.strip() for h in _env(environ, "no_proxy").split(",")):
        if host == "*":
            return {}
        if host:
            mounts[_no_proxy_pattern(host)] = None  # None: the client's direct transport
    return mounts


def _no_proxy_pattern(host: str) -> str:
    if "://" in host:
        return host
    try:
        address = ipaddress.ip_address(host)
        return f"all://[{host}]" if address.version == 6 else f"all://{host}"
    except ValueError:
        return "all://localhost" if host == "localhost" else f"all://*{host}"


def parse_retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def error_message(raw: bytes, status: int) -> str:
    """The provider's own error text from an error body (JSON of any common shape, or plain text)."""
    text = raw.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, str):
            return error[:_MAX_ERROR_TEXT]
        message = _message_in(error)
        if message:
            return message
    if text.startswith("<"):  # an HTML error page from a proxy or load balancer: its title says enough
        title = re.search(r"<(title|h1)[^>]*>(.*?)</\1>", text, re.IGNORECASE | re.DOTALL)
        text = " ".join(title.group(2).split()) if title else ""
    if text:
        return text[:_MAX_ERROR_TEXT]
    return httpx.codes.get_reason_phrase(status) or "no error message"


# Error types in both APIs' error bodies and in-stream errors, as the status each stands for.
_ERROR_STATUS = {"invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
                 "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
                 "overloaded_error": 529}


def stream_error(error: Any, provider: str) -> ProviderHTTPError:
    """An error sent inside a stream (OpenAI ``data: {"error": ...}``, Anthropic ``event: error``) as the
    HTTP error it stands for, so rate limits and overloads are retried like their status codes."""
    if not isinstance(error, dict):
        return ProviderHTTPError(500, str(error)[:_MAX_ERROR_TEXT] or "stream error", provider=provider)
    code, kind = error.get("code"), error.get("type")
    kind = kind if isinstance(kind, str) else None
    status = code if isinstance(code, int) and 400 <= code < 600 else _ERROR_STATUS.get(kind or "", 500)
    message = _message_in(error) or kind or "stream error"
    return http_error(status, message, provider=provider, body=json.dumps(error))


def _message_in(error: Any) -> str | None:
    if isinstance(error, dict):
        for key in ("message", "detail", "msg"):
            if isinstance(error.get(key), str):
                return error[key][:_MAX_ERROR_TEXT]
    return None


class OpenStream:
    """A streaming response under the call's watchdog: iterate ``lines()`` (not the response itself)
    so that only data lines count as activity."""

    def __init__(self, response: httpx.Response, watchdog: Watchdog) -> None:
        self.response = response
        self._watchdog = watchdog

    async def lines(self) -> AsyncIterator[str]:
        dog = self._watchdog
        source = self.response.aiter_lines().__aiter__()
        while True:
            dog.waiting = True
            try:
                line = await source.__anext__()
            except StopAsyncIteration:
                return
            finally:
                dog.waiting = False
            if line and line[0] != ":":  # comments and blank lines are keep-alives, not data
                dog.touch()
            yield line


@asynccontextmanager
async def open_stream(client: httpx.AsyncClient | None, provider: str, url: str, *, headers: Mapping[str, str],
                      body: dict[str, Any], limits: CallLimits | None = None) -> AsyncIterator[OpenStream]:
    """POST ``body`` and yield the streaming response.

    An error status becomes ``ProviderHTTPError``; a transport failure (while
    connecting or while the body streams) becomes ``ProviderConnectionError``; silence past
    the idle timeout or a call past its total time becomes ``ProviderTimeoutError``
    (``_limits.py``). Without an injected client, the prompt's pooled client is used
    (``pool.pooled_connections``), else a fresh one is made and closed here: a client is bound
    to the event loop it first ran on, and a notebook may run prompts on several loops.
    Secrets are scrubbed from these errors by ``_streaming.guard_partial``, the one exit of a stream.
    """
    if client is None:
        client = pooled_client(create_http_client)  # the prompt's shared client (providers/pool.py), if any
    own_client = client is None
    client = client or create_http_client()
    watchdog = Watchdog(limits or CallLimits.from_environ(), provider, _origin(url))
    try:
        async with client.stream("POST", url, headers=dict(headers), json=body) as response:
            if response.status_code >= 400:
                raw = await response.aread()
                raise http_error(response.status_code, error_message(raw, response.status_code), provider=provider,
                                 retry_after=parse_retry_after(response.headers),
                                 body=raw.decode("utf-8", errors="replace"))
            await _expect_event_stream(response, provider)
            watchdog.waiting = False
            yield OpenStream(response, watchdog)
    except asyncio.CancelledError:
        if watchdog.claim_cancellation():
            raise watchdog.error() from None
        raise
    except httpx.UnsupportedProtocol:
        raise ProviderError(f"{provider}: base URL must start with http:// or https:// (got {_origin(url)!r})") \
            from None
    except httpx.InvalidURL as exc:
        raise ProviderError(f"{provider}: invalid base URL: {exc}") from None
    except httpx.TimeoutException as exc:
        raise ProviderConnectionError(f"{provider}: {_timeout_kind(exc)} timed out talking to {_origin(url)}") \
            from None
    except httpx.TransportError as exc:
        detail = str(exc) or type(exc).__name__
        raise ProviderConnectionError(f"{provider}: connection to {_origin(url)} failed: {detail}") from None
    finally:
        watchdog.stop()
        if own_client:
            await client.aclose()


async def _expect_event_stream(response: httpx.Response, provider: str) -> None:
    """A server that ignored ``stream: true`` and answered with one JSON document is a clear error."""
    if response.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return
    message = error_message(await response.aread(), response.status_code)
    raise ProviderStreamError(f"{provider}: expected a streamed answer (text/event-stream) but the server sent "
                              f"JSON: {message}. Check that the base URL points at a streaming-capable API.")


def _origin(url: str) -> str:
    try:
        parsed = httpx.URL(url)
        return f"{parsed.scheme}://{parsed.netloc.decode()}" if parsed.scheme else url
    except httpx.InvalidURL:
        return url


def _timeout_kind(exc: httpx.TimeoutException) -> str:
    kinds = {httpx.ConnectTimeout: "connecting", httpx.ReadTimeout: "reading the response",
             httpx.WriteTimeout: "sending the request", httpx.PoolTimeout: "waiting for a connection"}
    return kinds.get(type(exc), "the request")
