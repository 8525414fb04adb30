"""One run of a ``%%codetether`` cell, start to finish: session, images, live or replay, the view, the answer.

Under ipykernel the cell was rewritten into ``await run_cell(...)`` on the kernel's loop, so
widget updates stream while it runs and a kernel interrupt cancels it (``CancelledError``):
the loop saves what streamed, the record keeps it and the cell ends with one short
``KeyboardInterrupt`` line saying it was stopped. Elsewhere the magic runs the same coroutine on a worker thread
(``sync.run_sync``) with its own loop and cancels it on Ctrl-C.

Every option is used here: ``--model`` and ``--max-steps`` go to the loop, ``--allow`` to
the approval policy, ``--image`` to the user message, ``--new`` / ``--session`` choose the
session, ``--replay`` / ``--live`` the mode, ``--no-stream`` drops the live view.
A replayed cell answers from the transcript beside the notebook and saves nothing, so
there ``--new`` and ``--session`` have no effect. Live and replay take one road (``road``):
the same loop call, with the recording as the provider and the live approval rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any, AsyncIterator

from IPython.core.error import UsageError
from IPython.display import clear_output, display

from ..agent.tools import builtin_tools
from ..errors import CodeTetherError, McpConfigError, SessionConflictError
from ..events import ErrorEvent, UsageReportEvent
from .approval import ApprovalPolicy, frontend_can_answer, make_approver, parse_allow
from .cell_tools import cell_tools
from .images import ImageRefError, sent_image_urls
from .kernel_tools import notebook_tools
from .mode import choose_mode, replay_forced
from .redact import redact, redacting
from .replay import replay_road
from .road import TurnRoad
from .turn_usage import remember_usage
from .view import LiveView, ViewState, record_bundle
from .view.held_output import HeldOutput

__all__ = ["CellError", "CellRun", "run_cell"]

WAKE_INTERVAL = 0.1  # seconds; see _wake_loop


class CellError(Exception):
    """A failed run, shown as one line (no traceback of our internals)."""

    def _render_traceback_(self) -> list[str]:
        return [f"CodeTether: {self}"]


async def run_cell(magics: Any, options: Any, prompt: str) -> None:
    """Run one cell whose options the magic has parsed and whose prompt it has checked."""
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


class CellRun:
    def __init__(self, magics: Any, options: Any, prompt: str) -> None:
        self.magics = magics
        self.shell = magics.shell
        self.options = options
        self.prompt = redact(prompt)  # a key pasted into a prompt must not reach the model or the transcript
        self.state = ViewState()  # what the run showed: the live view's and the record's one source
        self.view: LiveView | None = None
        self.live_session: Any = None  # the session a live run writes (a replay writes none)
        self.held = HeldOutput()  # what the run prints, written once the view is cleared

    async def execute(self) -> None:
        self.held.start()
        try:
            await self._execute()
        finally:
            self.held.release()

    async def _execute(self) -> None:
        state = self.magics.state
        session = None
        try:
            session = await state.current()
            occurrence = state.occurrence(session, self.prompt)
            mode, registry = await self._mode(session, occurrence)
            if mode == "live":  # a replay answers from the notebook's transcript and writes nothing
                session = await state.for_cell(self.options)
                self.live_session = session
            tools, approver = self._tools(session, await self._mcp_tools(session, mode, occurrence))
            images = self._images(session, mode)
            try:
                road = await self._road(session, mode, registry, approver, occurrence)
                self._open_view(road.model)
                await self._run(road, images, tools)
            finally:
                state.count_run(session, self.prompt)
        except asyncio.CancelledError:
            self._finish(session)
            raise _interrupted(state.location().transcript) from None
        except CodeTetherError as exc:
            message = redact(str(exc))
            self._finish(session, error=message)
            raise CellError(message) from None
        self._finish(session)

    # -- choices ------------------------------------------------------------------

    async def _mcp_tools(self, session: Any, mode: str, occurrence: int) -> list[Any]:
        """The MCP servers' tools (servers start on first use; in a replay, on a call that may run);
        a bad config fails the cell, naming the file."""
        replaying = None
        if mode == "replay":
            from .replay import find_recorded_turn

            turn = find_recorded_turn(session, self.prompt, occurrence)
            replaying = [call.name for m in (turn.assistant_messages if turn else []) for call in m.tool_calls]
        try:
            return await self.magics.mcp.tools(replaying, consent=self._allows_mcp())
        except McpConfigError as exc:
            raise UsageError(f"%%codetether: {redact(str(exc))}") from None

    def _allows_mcp(self) -> bool:
        """The cell allows MCP tools (or every tool): consent to start an ``mcp.json`` beside the notebook."""
        names = {name.strip() for value in self.options.allow for name in value.split(",")}
        return self.magics.auto_approve or any(n in ("all", "mcp") or n.startswith("mcp__") for n in names)

    def _tools(self, session: Any, mcp_tools: list[Any]) -> tuple[list[Any], Any]:
        directory = self.magics.state.tool_root(session)
        tools = [redacting(tool) for tool in (*builtin_tools(directory), *notebook_tools(self.shell),
                                              *self._cell_tools(), *mcp_tools)]
        servers = [server.key for server in self.magics.mcp.config.servers]
        try:
            allowed = parse_allow(self.options.allow, [tool.name for tool in tools], servers)
        except ValueError as exc:
            raise UsageError(f"%%codetether: {exc}") from None
        policy = ApprovalPolicy(
            allowed=allowed,
            auto_approve=self.magics.auto_approve,
            can_ask=not self.options.no_stream and frontend_can_answer(self.shell.user_ns),
            timeout=self.magics.approval_timeout,
        )
        ask = lambda request: self.view.ask_approval(request)  # noqa: E731 - the view opens later
        return tools, make_approver(policy, ask)

    def _cell_tools(self) -> list[Any]:
        """cells, cell_image and insert_cell: they need the cell record kept since %load_ext."""
        log, capture = self.magics.cell_log, self.magics.capture
        return cell_tools(log, capture, self.shell) if log is not None and capture is not None else []

    async def _mode(self, session: Any, occurrence: int) -> tuple[str, Any]:
        forced = replay_forced(self.options, replay_config=self.magics.replay, environ=os.environ)
        # An empty registry in live mode is fine here: the loop raises its "how to configure" error.
        registry = None if forced and not self.options.live else await _load_registry()
        mode = choose_mode(
            self.options,
            replay_config=self.magics.replay,
            environ=os.environ,
            provider_configured=bool(registry),
            has_recording=_replayable(session, self.prompt, occurrence),
        )
        return mode, registry

    def _images(self, session: Any, mode: str) -> list[Any]:
        refs = self.options.image
        capture = self.magics.capture
        if not refs:
            return []
        if capture is None:
            raise UsageError("%%codetether: images need the extension loaded with %load_ext codetether_magics")
        try:
            return capture.resolve(refs, already_sent=sent_image_urls(session))
        except ImageRefError as exc:
            if mode == "replay":  # the recorded answer does not depend on it
                return []
            raise UsageError(f"%%codetether: {exc}") from None

    def _model(self) -> str | None:
        return self.options.model or self.magics.model

    # -- running ------------------------------------------------------------------

    async def _road(self, session: Any, mode: str, registry: Any, approver: Any, occurrence: int) -> TurnRoad:
        """Live and replay differ only in the road's data: the call the cell makes is the same."""
        if mode == "replay":
            return replay_road(session, self.prompt, approver, occurrence=occurrence,
                               provider_configured=None if registry is None else bool(registry))
        await self.magics.state.before_live_run(session)
        model = self._model() or session.metadata.model or _default_model(registry)
        context = self._notebook_context()  # what the notebook did since the last turn
        return TurnRoad(
            session=session, registry=registry, model=model, approver=approver,
            after=context.commit if context is not None else None,  # the model saw it: the next turn starts here
            options={"context_tokens": self.magics.context_tokens,
                     "notebook_context": context.text if context is not None else None,
                     "thinking_budget": getattr(self.options, "think", None),
                     "budget_usd": getattr(self.options, "budget", None)},
        )

    def _open_view(self, model: str | None) -> None:
        if self.options.no_stream:
            return
        self.view = LiveView(self.state)
        self.view.show()
        self.view.set_status(f"Waiting for {model or 'the model'}…")

    def _on_event(self, event: Any) -> None:
        if isinstance(event, ErrorEvent):
            event = ErrorEvent(message=redact(event.message))
        if isinstance(event, UsageReportEvent) and self.live_session is not None:
            remember_usage(self.live_session, event)  # for the footer of this turn's replays
        if self.view is not None:
            self.view.on_event(event)
        else:
            self.state.apply(event)

    async def _run(self, road: TurnRoad, images: list[Any], tools: list[Any]) -> Any:
        max_steps = self.options.max_steps or self.magics.max_steps
        try:
            return await road.run(self.prompt, images, self._on_event, tools=tools, max_steps=max_steps)
        except SessionConflictError:  # another kernel wrote the notebook's file: keep this turn elsewhere
            raise await self.magics.state.keep_after_conflict(road.session) from None

    def _notebook_context(self) -> Any:
        builder = self.magics.notebook_context
        return builder.for_turn(self.magics.context_cells_tokens) if builder is not None else None

    def _finish(self, session: Any, *, error: str | None = None) -> None:
        """Replace the live view by the one static record of the run.

        The view's widgets are closed and the cell's output cleared (nbclient and JupyterLab
        apply ``clear_output``; nbval ignores it and skips the widget-only display), then what
        the run printed and the record are written. An error that ended the run is not in it:
        the cell's error output right below says it, once.
        """
        self.state.end(error=error)
        bundle = record_bundle(self.state, _call_arguments(session, self.state.tools))
        if self.view is not None:
            self.view.close()
            clear_output(wait=True)  # it clears when the next output arrives, without a jump
        self.held.release()
        if bundle is not None:
            display(bundle, raw=True)
        self.magics.mcp.print_notices()  # after the record: clear_output above removed what came before


def _call_arguments(session: Any, wanted: Any) -> dict[str, str]:
    """Full arguments of the run's tool calls by id, from the transcript (events carry them
    capped); a replay finds the same ids in the recorded turn."""
    found: dict[str, str] = {}
    missing = set(wanted)
    for message in reversed(session.messages if session is not None else []):
        for call in message.tool_calls if message.role == "assistant" else ():
            if call.id in missing:
                found[call.id] = call.arguments
                missing.discard(call.id)
        if not missing:
            break
    return found


async def _load_registry() -> Any:
    """The providers from Vault, the environment and the config file (possibly none)."""
    from ..providers.registry import ProviderRegistry

    return await ProviderRegistry.from_vault()


def _default_model(registry: Any) -> str | None:
    try:
        return registry.default_model() if registry else None
    except CodeTetherError:  # the loop reports it properly in a moment
        return None


def _interrupted(transcript: Any) -> KeyboardInterrupt:
    interrupt = KeyboardInterrupt()
    line = f"Stopped by the user: what it said so far is saved in {Path(transcript).name}"
    interrupt._render_traceback_ = lambda: [line]  # type: ignore[attr-defined] - IPython shows just this
    return interrupt


def _replayable(session: Any, prompt: str, occurrence: int) -> bool:
    """True when the transcript holds this turn, or holds others but not this one.

    In the second case, with no provider configured, replay's own error ("the transcript of X has
    no recorded answer for the cell ...; to record it ...") says more than "no provider configured".
    """
    from .replay import find_recorded_turn

    if find_recorded_turn(session, prompt, occurrence) is not None:
        return True
    return any(message.role == "user" for message in session.messages)
