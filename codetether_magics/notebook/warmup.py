"""After ``%load_ext``, import what a ``%%codetether`` cell needs while the kernel is idle.

``%load_ext`` imports almost nothing, so that it stays fast; left at that, the first agent
cell would pay about half a second of imports (the loop, the providers, httpx, pydantic's
models, Vault's client, ipywidgets, markdown-it, the CA bundle) before its first token, and
later cells none.
So loading schedules those imports on the kernel's own event loop, ONE module per turn of the
loop: the kernel stays responsive between them (an execute request or an interrupt is handled
after at most one import), and by the time someone has typed a prompt they are done.

Why on the kernel's thread and not in a background thread: two threads importing at once
can deadlock on Python's per-module import locks when their imports meet in a cycle
(CPython then raises ``_DeadlockError`` in one of them, i.e. in a user's ``import``). On one
thread that cannot happen. Outside ipykernel (no running loop) nothing is scheduled.

Warnings raised by these imports are silenced (they would land in whichever cell is current);
an import that fails is logged at debug level and retried, loudly, by the cell that needs it.
"""

from __future__ import annotations

import importlib
import logging
import sys
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import asyncio

__all__ = ["WARM_MODULES", "Warmup"]

log = logging.getLogger(__name__)

# What the first cell imports, heaviest first (the live path, then what it may need).
WARM_MODULES = (
    "codetether_magics.notebook.cell",  # the tools, the view, pydantic models, ipywidgets
    "codetether_magics.agent.loop",  # reached through the prompt door, so imported on the first prompt
    "codetether_magics.notebook.binding",
    "codetether_magics.notebook.mcp_tools",  # the MCP manager (no server is started)
    "codetether_magics.agent.mcp.manager",
    "concurrent.futures.thread",  # saves and loads run in worker threads
    "codetether_magics.providers.registry",
    "codetether_magics.providers.vault",  # hvac + requests
    "codetether_magics.providers.openai",
    "codetether_magics.providers.anthropic",
    "codetether_magics.notebook.replay",
    "httpx",
    "httpcore",  # httpx imports its transport's machinery on the first client
    "anyio._backends._asyncio",  # and httpcore its async backend on the first request
    "ipywidgets",
    "markdown_it",
)


def _exercise_session() -> None:
    """The first session made and encoded builds pydantic's serialisers for its lists (a few ms)."""
    from ..session.codec import encode_session
    from ..session.metadata import ExecutionProvenance
    from ..session.session import Session

    session = Session()
    session.metadata.provenance = ExecutionProvenance.for_session(session.id, session.agent)
    encode_session(session)


def _exercise_markdown() -> None:
    """The first render builds the Markdown parser and the code highlighter."""
    from .view.markdown import highlight_code, markdown_to_html

    markdown_to_html("*warm* $x$")
    highlight_code("x = 1", "python")


def _load_ca_bundle() -> None:
    """The first client loads the CA bundle (~15 ms); the context is cached by the bundle's path."""
    import os

    from ..providers._http import ssl_verify

    ssl_verify(os.environ)


class Warmup:
    """The imports scheduled by one load; ``cancel()`` (on unload) stops the ones not done."""

    def __init__(self, modules: tuple[str, ...] = WARM_MODULES) -> None:
        self.pending: list[Any] = [name for name in modules if name not in sys.modules]
        self.pending += [_load_ca_bundle, _exercise_session, _exercise_markdown]
        self._handle: asyncio.Handle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> bool:
        """Schedule the imports on the running loop; False (and nothing done) when there is none."""
        asyncio = sys.modules.get("asyncio")  # not imported: no loop can be running (and loading stays light)
        if asyncio is None:
            return False
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self._next()
        return True

    def _next(self) -> None:
        self._handle = self._loop.call_soon(self._step) if self.pending and self._loop else None

    def _step(self) -> None:
        step = self.pending.pop(0)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                importlib.import_module(step) if isinstance(step, str) else step()
        except Exception:  # noqa: BLE001 - the cell that needs it raises the real error
            log.debug("warming up %s failed", step, exc_info=True)
        self._next()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        self.pending = []

    @property
    def done(self) -> bool:
        return not self.pending
