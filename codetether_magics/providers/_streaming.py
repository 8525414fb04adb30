"""What the providers of every wire protocol share: the settings a credential record gives
(key, base URL, organization, extra headers, an injected client), a repr without the key,
and the one exit of every stream, ``guard_partial``: a partial answer is kept, every known
secret is scrubbed from any error, and an error says what to do (a 401 names the key to
check). Each protocol module adds only its ``_events`` and mapping.
"""

from __future__ import annotations

from contextlib import aclosing
from urllib.parse import urlsplit
from typing import Any, AsyncIterator, ClassVar, Iterable, Mapping

import httpx

from ..errors import (ProviderConnectionError, ProviderError, ProviderHTTPError, ProviderStreamError,
                      ProviderTimeoutError)
from ..messages import FilePart
from ..redaction import add_secret, redact
from .base import ModelRequest, ProviderEvent, TextDelta, ThinkingDelta, ToolCallDelta

__all__ = ["StreamingProvider", "file_placeholder", "guard_partial", "tool_images_intro"]


class StreamingProvider:
    """Base of ``OpenAIProvider`` and ``AnthropicProvider``."""

    default_base_url: ClassVar[str]

    def __init__(self, name: str, api_key: str | None, base_url: str | None = None, *,
                 http_client: httpx.AsyncClient | None = None, organization: str | None = None,
                 headers: Mapping[str, str] | None = None, key_hint: str | None = None) -> None:
        self.name = name
        self._api_key = api_key or None
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.organization = organization  # Anthropic ignores it; accepted so Vault records fit both classes
        self._headers = dict(headers or {})
        self._client = http_client
        # Where the key came from, for the advice a 401 gives ("OPENAI_API_KEY", "api_key in ...").
        self.key_hint = key_hint or f"the API key of provider {name!r}"
        for secret in self._secrets():
            add_secret(secret)  # scrubbed from every output of the package from now on

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(name={self.name!r}, base_url={self.base_url!r})"

    def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        return guard_partial(self._events(request), self.name, self._secrets(), key_hint=self.key_hint)

    def _secrets(self) -> list[str | None]:
        # The key, EVERY extra header value (a credential header may have any name: Azure's api-key, a
        # gateway's X-Portkey-Virtual-Key, a proxy's Proxy-Ticket ...), and a password written into the
        # base URL (https://user:password@host).
        return [self._api_key, *self._headers.values(), urlsplit(self.base_url).password]

    def _events(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        raise NotImplementedError


def file_placeholder(part: FilePart) -> dict[str, Any]:
    """A file attachment as both protocols see it: a text block naming the path."""
    return {"type": "text", "text": f"[attached file: {part.path}]"}


def tool_images_intro(count: int) -> str:
    """The text before a tool's images, which both OpenAI wires send in a user message after the tool output."""
    return ("The image output of the tool call above:" if count == 1
            else f"The {count} image outputs of the tool calls above:")


_CONTENT = (TextDelta, ThinkingDelta, ToolCallDelta)
# Failures a partial answer survives.
_BROKEN = (ProviderConnectionError, ProviderHTTPError, ProviderStreamError, ProviderTimeoutError)


async def guard_partial(events: AsyncIterator[ProviderEvent], provider: str, secrets: Iterable[str | None] = (),
                        *, key_hint: str | None = None) -> AsyncIterator[ProviderEvent]:
    """Pass ``events`` through. Every error leaving here has ``secrets`` and every known secret scrubbed
    from it (servers echo keys in error bodies and in error events inside a stream), and a 401 says to
    check ``key_hint``; once content has arrived, a failure becomes ``ProviderStreamError(partial=True)``
    so the loop keeps it instead of retrying."""
    got_content = False
    async with aclosing(events):
        try:
            async for event in events:
                got_content = got_content or isinstance(event, _CONTENT)
                yield event
        except ProviderError as exc:
            error = _with_advice(_scrubbed(exc, list(secrets)), key_hint)
            if got_content and isinstance(error, _BROKEN) and not getattr(error, "partial", False):
                raise ProviderStreamError(f"{provider}: the stream broke after part of the answer arrived: {error}",
                                          partial=True) from None
            if error is exc:
                raise
            raise error from None


def _scrubbed(exc: ProviderError, secrets: list[str | None]) -> ProviderError:
    """``exc`` itself when it names no secret, else the same error with the secrets replaced."""
    text = str(exc)
    if redact(text, extra=secrets) == text:
        return exc
    if isinstance(exc, ProviderHTTPError):
        # type(exc): a ContextLengthError stays one (the loop answers it with a shorter request).
        return type(exc)(exc.status_code, redact(exc.message, extra=secrets), provider=exc.provider,
                         retry_after=exc.retry_after)
    if isinstance(exc, ProviderStreamError):
        return ProviderStreamError(redact(text, extra=secrets), partial=exc.partial)
    return type(exc)(redact(text, extra=secrets))


def _with_advice(exc: ProviderError, key_hint: str | None) -> ProviderError:
    """A refused key (401) names where the key came from, so the user knows which one to fix."""
    if not (isinstance(exc, ProviderHTTPError) and exc.status_code == 401 and key_hint):
        return exc
    advice = f" Check {key_hint}: the server refused the key."
    return type(exc)(exc.status_code, exc.message + advice, provider=exc.provider, retry_after=exc.retry_after)
