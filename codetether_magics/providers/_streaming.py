"""What the providers of both wire protocols share: the settings a credential record gives
(key, base URL, organization, extra headers, an injected client), a repr without the key,
and the one exit of every stream, ``guard_partial``: a partial answer is kept, and the key
is scrubbed from any error. Each protocol module adds only its ``_events`` and mapping.
"""

from __future__ import annotations

import re
from contextlib import aclosing
from typing import Any, AsyncIterator, ClassVar, Iterable, Mapping

import httpx

from ..errors import ProviderConnectionError, ProviderError, ProviderHTTPError, ProviderStreamError
from ..messages import FilePart
from ._http import redact
from .base import ModelRequest, ProviderEvent, TextDelta, ThinkingDelta, ToolCallDelta

__all__ = ["StreamingProvider", "file_placeholder", "guard_partial"]


_CREDENTIAL_HEADER = re.compile(r"auth|key|token|secret|cookie", re.IGNORECASE)


class StreamingProvider:
    """Base of ``OpenAIProvider`` and ``AnthropicProvider``."""

    default_base_url: ClassVar[str]

    def __init__(self, name: str, api_key: str | None, base_url: str | None = None, *,
                 http_client: httpx.AsyncClient | None = None, organization: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        self.name = name
        self._api_key = api_key or None
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.organization = organization  # Anthropic ignores it; accepted so Vault records fit both classes
        self._headers = dict(headers or {})
        self._client = http_client

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(name={self.name!r}, base_url={self.base_url!r})"

    def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        return guard_partial(self._events(request), self.name, self._secrets())

    def _secrets(self) -> list[str | None]:
        # The key, and credentials sent as extra headers (Azure's api-key, a proxy's token).
        return [self._api_key, *(v for k, v in self._headers.items() if _CREDENTIAL_HEADER.search(k))]

    def _events(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        raise NotImplementedError


def file_placeholder(part: FilePart) -> dict[str, Any]:
    """A file attachment as both protocols see it: a text block naming the path."""
    return {"type": "text", "text": f"[attached file: {part.path}]"}


_CONTENT = (TextDelta, ThinkingDelta, ToolCallDelta)
_BROKEN = (ProviderConnectionError, ProviderHTTPError, ProviderStreamError)  # failures a partial answer survives


async def guard_partial(events: AsyncIterator[ProviderEvent], provider: str,
                        secrets: Iterable[str | None] = ()) -> AsyncIterator[ProviderEvent]:
    """Pass ``events`` through. Every error leaving here has ``secrets`` scrubbed from it (servers echo
    keys in error bodies and in error events inside a stream); once content has arrived, a failure
    becomes ``ProviderStreamError(partial=True)`` so the loop keeps it instead of retrying."""
    got_content = False
    async with aclosing(events):
        try:
            async for event in events:
                got_content = got_content or isinstance(event, _CONTENT)
                yield event
        except ProviderError as exc:
            error = _scrubbed(exc, list(secrets))
            if got_content and isinstance(error, _BROKEN) and not getattr(error, "partial", False):
                raise ProviderStreamError(f"{provider}: the stream broke after part of the answer arrived: {error}",
                                          partial=True) from None
            if error is exc:
                raise
            raise error from None


def _scrubbed(exc: ProviderError, secrets: list[str | None]) -> ProviderError:
    """``exc`` itself when it names no secret, else the same error with the secrets replaced."""
    text = str(exc)
    if redact(text, secrets) == text:
        return exc
    if isinstance(exc, ProviderHTTPError):
        return ProviderHTTPError(exc.status_code, redact(exc.message, secrets), provider=exc.provider,
                                 retry_after=exc.retry_after)
    if isinstance(exc, ProviderStreamError):
        return ProviderStreamError(redact(text, secrets), partial=exc.partial)
    return type(exc)(redact(text, secrets))
