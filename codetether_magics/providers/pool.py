"""One pooled HTTP client for all the model calls of one prompt.

A provider without an injected client would otherwise open (and TLS-handshake) a new
connection for every step of a tool-using turn. A client cannot simply live forever: it is
bound to the event loop it first ran on, and a notebook may run prompts on several loops
(the worker-thread fallback makes one per cell). So the agent loop wraps each prompt in
``pooled_connections()``; inside it, providers share one client, created on first use (a
replayed prompt never makes one) and closed when the prompt ends.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, AsyncIterator, Callable

if TYPE_CHECKING:  # pragma: no cover
    import httpx

__all__ = ["pooled_client", "pooled_connections"]


class _LazyClient:
    def __init__(self) -> None:
        self.client: "httpx.AsyncClient | None" = None

    def get(self, create: "Callable[[], httpx.AsyncClient]") -> "httpx.AsyncClient":
        if self.client is None or self.client.is_closed:
            self.client = create()
        return self.client


_current: ContextVar[_LazyClient | None] = ContextVar("codetether_pooled_client", default=None)


def pooled_client(create: "Callable[[], httpx.AsyncClient]") -> "httpx.AsyncClient | None":
    """The prompt's shared client (made with ``create`` on first use), or None outside ``pooled_connections()``.

    The caller passes the factory (``_http.create_http_client``) so this module needs nothing
    of ``_http``, which imports it.
    """
    holder = _current.get()
    return holder.get(create) if holder is not None else None


@asynccontextmanager
async def pooled_connections() -> AsyncIterator[None]:
    holder = _LazyClient()
    token = _current.set(holder)
    try:
        yield
    finally:
        _current.reset(token)
        if holder.client is not None:
            await holder.client.aclose()
