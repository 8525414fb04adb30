"""Run one ``%%codetether`` cell: options, session, images, live or replay, the view, the answer.

Under ipykernel the cell was rewritten into ``await run_cell(...)`` on the kernel's loop, so
widget updates stream while it runs and a kernel interrupt cancels it (``CancelledError``):
the loop saves what streamed, the view says "Interrupted" and the cell ends with a short
``KeyboardInterrupt``. Elsewhere ``run_blocking`` runs the same coroutine on a worker thread
with its own loop and cancels it on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

from IPython.core.error import UsageError

from .magics import parse_cell_options
from .transform import strip_nbval_lines

__all__ = ["CellError", "choose_mode", "replay_forced", "run_blocking", "run_cell", "run_sync"]

T = TypeVar("T")

WAKE_INTERVAL = 0.1  # seconds; see _wake_loop
INTERRUPTED = "Interrupted"


class CellError(Exception):
    """A failed run, shown as one line (no traceback of our internals)."""

    def _render_traceback_(self) -> list[str]:
        return [f"CodeTether: {self}"]


def replay_forced(options: Any, *, replay_config: bool, environ: Any) -> bool:
    """Whether ``--replay``, ``CodeTether.replay`` or ``CODETETHER_REPLAY`` asks for replay
    (``--live`` still wins: see ``choose_mode``)."""
    env = str(environ.get("CODETETHER_REPLAY", "")).strip().lower()
    return bool(options.replay or replay_config or env in ("1", "true", "yes"))


def choose_mode(options: Any, *, replay_config: bool, environ: Any, provider_configured: bool,
                has_recording: bool) -> str:
    """"live" or "replay", by the SPEC section 7 rules."""
    if options.live:
        return "live"
    if replay_forced(options, replay_config=replay_config, environ=environ):
        return "replay"
    if not provider_configured and has_recording:
        return "replay"
    return "live"


async def run_cell(magics: Any, line: str, body: str) -> None:
    options = parse_cell_options(line)
    prompt = strip_nbval_lines(body).strip("\n")
    if not prompt.strip():
        raise UsageError("%%codetether: the cell has no prompt; write it on the lines under %%codetether.")
    from .cellrun import CellRun  # the heavy imports start here, on the first run

    run = CellRun(magics, options, prompt)
    async with _wake_loop():
        await run.execute()


@contextlib.asynccontextmanager
async def _wake_loop() -> AsyncIterator[None]:
    """Keep the kernel's loop waking up while the cell runs.

    ipykernel turns SIGINT into a callback on its loop; while the loop sleeps in select()
    waiting for a slow model, that callback waits too (measured: 18 s). A tick every
    ``WAKE_INTERVAL`` makes an interrupt stop the run within a second.
    """

    async def tick() -> None:
        while True:
            await asyncio.sleep(WAKE_INTERVAL)

    ticker = asyncio.ensure_future(tick())
    try:
        yield
    finally:
        ticker.cancel()


def run_blocking(magics: Any, line: str, cell: str) -> None:
    """The cell magic outside ipykernel: a worker thread with its own loop; Ctrl-C cancels."""
    run_sync(lambda: run_cell(magics, line, cell))


def run_sync(make_coroutine: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to the end from synchronous code, even inside a running loop.

    It runs on a worker thread with its own loop (a kernel's loop is busy running this
    very cell); Ctrl-C in the calling thread cancels it and waits for its cleanup.
    """
    loop = asyncio.new_event_loop()
    started, finished = threading.Event(), threading.Event()
    box: dict[str, Any] = {}

    def work() -> None:
        asyncio.set_event_loop(loop)
        box["task"] = loop.create_task(make_coroutine())
        started.set()
        try:
            box["result"] = loop.run_until_complete(box["task"])
        except BaseException as exc:  # handed to the calling thread below
            box["error"] = exc
        finally:
            loop.close()
            finished.set()

    threading.Thread(target=work, name="codetether-run", daemon=True).start()
    started.wait()
    # Wait on an Event, not Thread.join: on Python 3.11 a Ctrl-C inside join() can mark a
    # still-running thread as finished (bpo-45274), and the cleanup would be skipped.
    try:
        while not finished.wait(0.1):
            pass
    except KeyboardInterrupt:
        loop.call_soon_threadsafe(box["task"].cancel)
        finished.wait()
        if "error" not in box:
            raise
    error = box.get("error")
    if isinstance(error, asyncio.CancelledError):
        raise KeyboardInterrupt from None
    if error is not None:
        raise error
    return box["result"]
