"""The live view of a running ``%%codetether`` cell: an ipywidgets ``VBox`` fed with events.

HTML rendered in the kernel (``html``) in ``HTMLMath`` widgets (the frontend typesets the
math the record's Markdown will show): each finished part (thinking, a tool call, a
paragraph of answer cut by a tool call) moves into a widget of its own that is never redrawn,
so a ``<details>`` the user opened stays open and updates resend only the part still growing;
that part and the status line are one widget (``live``). Approve / Deny buttons appear only
while the user is asked.

Updates are throttled: jupyter_server drops iopub messages above 1000/s. The first content
goes out at once (leading edge), later events are coalesced to at most one flush per
``min_interval`` with a trailing flush on the running asyncio loop; ``finish`` always flushes.

The widget is displayed with the widget mimetype alone: nbval skips such a display, and the
run ends with ``close()`` (the cell's output is cleared and the record displayed instead),
so no widget of it stays alive in the kernel or in the saved notebook.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any, Callable

from . import html
from .markdown import MarkdownStream, markdown_to_html
from .record import footer_items
from .state import Block, ViewState

__all__ = ["WIDGET_MIME", "LiveView"]

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
EXACT_LIMIT = 32 * 1024  # a finished text block up to this size is rendered again in one piece (~20 ms)
CHUNK_SIZE = 16 * 1024  # frozen pieces fill one widget up to this much HTML, then a new one starts


class LiveView:
    """The widget a running cell streams into; see the module docstring."""

    def __init__(self, state: ViewState | None = None, *, min_interval: float = 0.05,
                 clock: Callable[[], float] = time.monotonic) -> None:
        import ipywidgets  # here, not at module import: loading the extension stays fast

        self._ipywidgets = ipywidgets
        self.state = state if state is not None else ViewState()
        self._min_interval = min_interval
        self._clock = clock
        self._started = clock()
        self._last_flush = float("-inf")
        self._timer: asyncio.TimerHandle | None = None
        self._dirty = False
        self._seen_content = False  # the first answer content is shown at once, whatever the throttle
        self._finished = False
        self._lock = threading.RLock()  # events may come from a worker thread's loop
        self.updates = 0  # flushes that changed what the frontend shows
        self.parts: list[Any] = []  # widgets of the settled blocks, never redrawn
        self._owners: list[Block] = []  # the block each of ``parts`` shows
        self._chunks: list[Any] = []  # the open text block's frozen pieces
        self._chunk_html: list[str] = []
        self._chunked: Block | None = None  # the block those pieces belong to
        self._pieces_shown = 0
        self.style = ipywidgets.HTML(value=html.CODE_CSS)
        self.live = ipywidgets.HTMLMath(value=self._html())
        self.buttons = ipywidgets.HBox([])
        self.widget = ipywidgets.VBox([self.style, self.live, self.buttons])

    def shown_html(self) -> str:
        """Everything the view shows now, as one HTML string (for tests)."""
        return "".join(part.value for part in (*self.parts, *self._chunks, self.live))

    # -- display and the end ----------------------------------------------------------

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {WIDGET_MIME: {"version_major": 2, "version_minor": 0, "model_id": self.widget.model_id}}

    def show(self) -> None:
        from IPython.display import display

        display(self._repr_mimebundle_(), raw=True)

    def close(self) -> None:
        """Close every widget of the view: after the run none stays alive in the kernel."""
        with self._lock:
            self._cancel_timer()
            self._finished = True
            for widget in (*self.buttons.children, *self.parts, *self._chunks, self.style, self.live, self.buttons,
                           self.widget):
                _close(widget)

    def finish(self, *, error: str | None = None) -> None:
        """The last update: every block finished, the footer in place of the status line."""
        with self._lock:
            self.state.end(error=error)
            self._finished = True
            self.buttons.children = ()
            self._flush()

    # -- updates ------------------------------------------------------------------------

    def on_event(self, event: Any) -> None:
        with self._lock:
            self.state.apply(event)
            if not self._seen_content and _is_content(event):
                self._seen_content = True
                self._flush()  # the first chunk must not wait behind a status line's update
            elif getattr(event, "type", "") in _SHOW_AT_ONCE:
                self._flush()  # a tool may block the loop next: show the call before it runs
            else:
                self._request_flush()

    def set_status(self, text: str) -> None:
        with self._lock:
            self.state.status = text
            self._request_flush()

    def _request_flush(self) -> None:
        self._dirty = True
        wait = self._last_flush + self._min_interval - self._clock()
        if wait <= 0:
            self._flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no loop: the next event or finish() flushes
            self._timer = loop.call_later(wait, self._on_timer)

    def _on_timer(self) -> None:
        with self._lock:
            self._timer = None
            if self._dirty:
                self._flush()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _flush(self) -> None:
        self._cancel_timer()
        self._dirty = False
        self._last_flush = self._clock()
        changed = self._refresh_parts()
        value = self._html(start=len(self._owners_settled()))
        if value != self.live.value:
            self.live.value = value
            changed = True
        self.updates += changed

    def _owners_settled(self) -> list[Block]:
        return list(dict.fromkeys(self._owners))  # the settled blocks, in order, once each

    def _render(self, block: Block) -> str:
        """A block's HTML; for the open text block only its open rest (its frozen pieces have widgets)."""
        if block.html is None:
            text = None
            if block.kind == "text":
                text = self._text_html(block)
            elif block.kind == "thinking" and not block.done:  # long reasoning streams at a flat cost too
                block.stream = block.stream or MarkdownStream()
                text = block.stream.render(block.text)
            block.html = html.render_block(block, text)
        return block.html

    def _text_html(self, block: Block) -> str:
        if block.done and len(block.text) <= EXACT_LIMIT:  # a finished block: one exact render
            return markdown_to_html(block.text)
        if block.stream is None:
            block.stream = MarkdownStream()
        return block.stream.update(block.text)  # the pieces before it go into chunk widgets

    def _html(self, start: int = 0) -> str:
        """The blocks from ``start`` on, then the status line, or the footer once finished."""
        inner = [self._render(block) for block in self.state.blocks[start:]]
        if self._finished:
            elapsed = html.format_duration((self._clock() - self._started) * 1000)
            steps = self.state.steps
            counts = [f"{steps} step" + ("" if steps == 1 else "s")] if steps else []
            inner.append(html.render_footer([*footer_items(self.state), *counts, elapsed]))
        elif self.state.status:
            inner.append(html.render_status(self.state.status))
        return html.wrap_view("".join(inner))

    def _refresh_parts(self) -> bool:
        """Give newly settled blocks (and the open text block's frozen pieces) widgets of their own;
        redraw a settled block that changed (a late note on a finished tool call)."""
        changed = False
        for part, block in zip(self.parts, self._owners):
            if block.html is None and block.kind != "text":
                part.value, changed = html.wrap_view(self._render(block)), True
        blocks = self.state.blocks
        shown = len(self._owners_settled())
        settled = shown
        while settled < len(blocks) and blocks[settled].settled:
            settled += 1
        for block in blocks[shown:settled]:
            self._settle(block)
            changed = True
        if settled < len(blocks) and blocks[settled].kind == "text":
            self._render(blocks[settled])  # its stream freezes pieces now
            changed = self._show_pieces(blocks[settled]) or changed
        self.widget.children = (self.style, *self.parts, *self._chunks, self.live, self.buttons)
        return changed

    def _settle(self, block: Block) -> None:
        rendered = self._render(block)
        if block.kind == "text" and block.stream is not None and len(block.text) > EXACT_LIMIT:
            self._show_pieces(block)  # a long block keeps its pieces (all of them if it never streamed)
            widgets = self._chunks
        else:  # a short one is rendered again in one piece
            for widget in self._chunks:
                _close(widget)
            widgets = []
        self._chunks, self._chunk_html, self._chunked, self._pieces_shown = [], [], None, 0
        widgets.append(self._ipywidgets.HTMLMath(value=html.wrap_view(rendered)))
        self.parts += widgets
        self._owners += [block] * len(widgets)

    def _show_pieces(self, block: Block) -> bool:
        """Put the stream's new frozen pieces into chunk widgets (filling the last up to a size)."""
        pieces = block.stream.pieces if block.stream is not None else []
        if block is not self._chunked:  # the first pieces of this block (an earlier one settled)
            self._chunked, self._pieces_shown, self._chunk_html = block, 0, []
        new = pieces[self._pieces_shown:]
        if not new:
            return False
        self._pieces_shown = len(pieces)
        for piece in new:
            if self._chunks and len(self._chunk_html[-1]) + len(piece) <= CHUNK_SIZE:
                self._chunk_html[-1] += piece
                self._chunks[-1].value = _text_view(self._chunk_html[-1])
            else:
                self._chunk_html.append(piece)
                self._chunks.append(self._ipywidgets.HTMLMath(value=_text_view(piece)))
        return True

    # -- approval -------------------------------------------------------------------------

    async def ask_approval(self, request: Any) -> bool:
        """Ask in the tool call's own part (its arguments shown once, as code); wait for a click."""
        loop = asyncio.get_running_loop()
        decision: asyncio.Future[bool] = loop.create_future()

        def decide(value: bool) -> Callable[[Any], None]:
            def on_click(_button: Any) -> None:  # runs on the kernel's thread: hand over safely
                loop.call_soon_threadsafe(lambda: decision.done() or decision.set_result(value))
            return on_click

        approve = self._ipywidgets.Button(description="Approve", button_style="success", icon="check")
        deny = self._ipywidgets.Button(description="Deny", button_style="danger", icon="times")
        approve.on_click(decide(True))
        deny.on_click(decide(False))
        with self._lock:
            block = self.state.tool(request.tool_call_id, request.name)
            # The request's own arguments, whole: the event's are cut at 4 KiB, and what the user
            # approves must be all of what runs.
            block.arguments = json.dumps(request.arguments, ensure_ascii=False, default=str)
            block.note = html.ASKING
            self.state.status = ""
            self.buttons.children = (approve, deny)
            self._flush()  # the question must show now, whatever the throttle says
        try:
            return await decision
        finally:
            with self._lock:
                self.buttons.children = ()
                _close(approve)
                _close(deny)
                block.note, block.html = _decision_note(decision), None
                self._request_flush()


# Rare events after which the loop may be blocked (model-written code, an approval wait).
_SHOW_AT_ONCE = frozenset({"tool_call_start", "approval_request"})
_CONTENT = frozenset({"text_chunk", "text_complete", "thinking_complete", "tool_call_start", "error"})


def _is_content(event: Any) -> bool:
    kind = getattr(event, "type", "")
    return kind in _CONTENT or (kind == "thinking" and bool(getattr(event, "text", "")))


def _text_view(inner: str) -> str:
    return html.wrap_view(f'<div class="ct-text">{inner}</div>')


def _close(widget: Any) -> None:
    """Close a widget and the layout and style widgets every DOM widget makes for itself."""
    for part in (getattr(widget, "layout", None), getattr(widget, "style", None), widget):
        if part is not None and hasattr(part, "close"):
            part.close()


def _decision_note(decision: "asyncio.Future[bool]") -> str:
    if not decision.done() or decision.cancelled():
        return "not decided (cancelled)"
    return "running…" if decision.result() else "denied"
