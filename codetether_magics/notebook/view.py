"""The live view of a running ``%%codetether`` cell, and the cell's one final output.

HTML rendered in the kernel (see ``render``) in a ``VBox``: each finished part (thinking,
a tool call, a paragraph of answer cut by a tool call) moves into an ``HTML`` widget of its
own that is never redrawn, so a ``<details>`` the user opened stays open and updates resend
only the part still growing; that part, the status line and the footer are one ``HTML``
widget (``live``). Approve / Deny buttons appear only while a tool waits for approval.

Updates are throttled: jupyter_server drops iopub messages above 1000/s. The first event
goes out at once (leading edge), later ones are coalesced to at most one flush per
``min_interval`` with a trailing flush on the running asyncio loop; ``finish`` always flushes.

The widget is displayed with a fixed ``text/plain`` and ``text/html`` beside the widget
mimetype, so nbval and static viewers see the same thing every run; the answer itself is
left by ``final_bundle`` (defined in ``render``), which holds nothing that changes between runs.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Callable

from . import render
from .render import final_bundle  # noqa: F401 - part of this module's interface

__all__ = ["VIEW_HTML", "VIEW_TEXT", "LiveView", "ViewState", "final_bundle"]

VIEW_TEXT = "CodeTether agent view"
VIEW_HTML = "<p><em>CodeTether agent view (a live widget while the cell runs; the answer follows).</em></p>"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


class _Block:
    """One part of the view: answer text, thinking, a tool call or an error."""

    __slots__ = ("kind", "text", "done", "name", "arguments", "output", "success", "duration_ms", "note", "html",
                 "stream", "earlier")

    def __init__(self, kind: str, **fields: Any) -> None:
        self.kind, self.text, self.done = kind, "", False
        self.name = self.arguments = self.note = ""
        self.output: str | None = None
        self.success: bool | None = None
        self.duration_ms: int | None = None
        self.html: str | None = None  # cached render; None when it must be rendered again
        self.stream = render.MarkdownStream() if kind == "text" else None
        self.earlier: str | None = None  # a text block: the turn's text shown by the text blocks before it
        for key, value in fields.items():
            setattr(self, key, value)

    def render(self) -> str:
        if self.html is None:
            self.html = self._render()
        return self.html

    def _render(self) -> str:
        if self.kind == "text":  # while streaming, only the unfinished Markdown blocks are rendered
            return render.render_text(self.text, None if self.done else self.stream)
        if self.kind == "thinking":
            return render.render_thinking(self.text, done=self.done)
        if self.kind == "tool":
            return render.render_tool(
                name=self.name, arguments=self.arguments, output=self.output,
                success=self.success, duration_ms=self.duration_ms, note=self.note,
            )
        return render.render_error(self.text)


class ViewState:
    """What the view shows, built from ``SessionEvent``s; ``html()`` renders it."""

    def __init__(self, model: str | None = None) -> None:
        self.model = model
        self.blocks: list[_Block] = []
        self.tools: dict[str, _Block] = {}
        self.status = ""
        self.prompt_tokens = self.completion_tokens = 0
        self.steps = 0  # model calls so far: one usage report each
        self.footer: list[str] | None = None  # set by finish
        self.approval: str = ""  # the rendered question while asking

    # -- events ---------------------------------------------------------------

    def apply(self, event: Any) -> None:
        handler = getattr(self, f"_on_{getattr(event, 'type', '')}", None)
        if handler is not None:  # an event type this view does not know is ignored
            handler(event)

    def _on_text_chunk(self, event: Any) -> None:
        self._set_text(event.text, done=False)
        self.status = "Writing…"

    def _on_text_complete(self, event: Any) -> None:
        self._set_text(event.text, done=True)

    def _set_text(self, text: str, *, done: bool) -> None:
        block = self._open_block("text")
        if block.earlier is None:  # once per block, not per chunk: the blocks before it are finished
            block.earlier = "".join(b.text for b in self.blocks if b.kind == "text" and b is not block)
        earlier = block.earlier
        if earlier and text.startswith(earlier):  # the text is cumulative over the whole turn
            text = text[len(earlier):]
        block.text, block.done, block.html = text, done, None

    def _on_thinking(self, event: Any) -> None:
        if getattr(event, "text", ""):  # an empty one only says the model is at work
            block = self._open_block("thinking")
            block.text, block.html = event.text, None
        self.status = "Thinking…"

    def _on_thinking_complete(self, event: Any) -> None:
        block = self._open_block("thinking")
        block.text, block.done, block.html = event.text, True, None

    def _open_block(self, kind: str) -> _Block:
        """The last block if it is an unfinished ``kind`` block, else a new one."""
        if self.blocks and self.blocks[-1].kind == kind and not self.blocks[-1].done:
            return self.blocks[-1]
        return self._append(_Block(kind))

    def _append(self, block: _Block) -> _Block:
        """Add ``block``; the block before it is finished (thinking stops when the answer starts)."""
        if self.blocks and not self.blocks[-1].done and self.blocks[-1].kind != "tool":
            self.blocks[-1].done, self.blocks[-1].html = True, None
        self.blocks.append(block)
        return block

    def _tool(self, event: Any) -> _Block:
        block = self.tools.get(event.tool_call_id)
        if block is None:
            block = _Block("tool", name=event.name, arguments=getattr(event, "arguments", ""))
            self.tools[event.tool_call_id] = self._append(block)
        block.html = None
        return block

    def _on_tool_call_start(self, event: Any) -> None:
        block = self._tool(event)
        block.arguments = event.arguments
        self.status = f"Running {event.name}…"

    def _on_tool_call_complete(self, event: Any) -> None:
        block = self._tool(event)
        block.output, block.success, block.duration_ms = event.output, event.success, event.duration_ms
        block.done, block.note = True, ""
        self.status = f"Waiting for {self.model}…" if self.model else "Waiting for the model…"

    def _on_tool_heartbeat(self, event: Any) -> None:
        block = self._tool(event)
        block.note = f"running… {event.elapsed_secs:.0f} s"
        self.status = f"Running {event.name}… {event.elapsed_secs:.0f} s"

    def _on_approval_request(self, event: Any) -> None:
        self._tool(event).note = "waiting for approval"
        self.status = f"Waiting for your approval to run {event.name}"

    def _on_stream_retry(self, event: Any) -> None:
        self.status = f"Retrying ({event.attempt}/{event.max_restarts}): {event.reason}"

    def _on_compaction_started(self, event: Any) -> None:
        self.status = "Summarising earlier turns to fit the context window…"

    def _on_compaction_completed(self, event: Any) -> None:
        self.status = f"Earlier turns summarised: about {event.before_tokens:,} → {event.after_tokens:,} tokens"

    def _on_context_truncated(self, event: Any) -> None:
        self.status = f"{event.dropped} earlier message{'s' if event.dropped != 1 else ''} left out to fit the " \
                      "context window"

    def _on_usage_report(self, event: Any) -> None:
        self.steps += 1
        self.prompt_tokens += event.prompt_tokens
        self.completion_tokens += event.completion_tokens
        self.model = self.model or event.model

    def _on_done(self, event: Any) -> None:
        self.status = ""

    def _on_error(self, event: Any) -> None:
        self._append(_Block("error", text=event.message, done=True))

    # -- the end --------------------------------------------------------------

    def finish(self, *, text: str, model: str | None, usage: Any, steps: int | None,
               error: str | None, elapsed: float, answer_below: bool = False) -> None:
        if answer_below:  # the cell's final Markdown output shows the answer: do not show it twice
            self.blocks = [b for b in self.blocks if b.kind != "text"]
        elif text.strip() and not any(b.kind == "text" and b.text.strip() for b in self.blocks):
            self._append(_Block("text", text=text, done=True))  # nothing streamed (replay, no-stream)
        if error and not any(b.kind == "error" and b.text == error for b in self.blocks):
            self._append(_Block("error", text=error, done=True))
        for block in self.blocks:
            if block.kind == "tool" and block.success is None and block.note != "denied":
                block.note, block.html = "did not finish", None
            elif not block.done:  # a finished text block gets one full render (exact Markdown)
                block.done, block.html = True, None
        prompt = getattr(usage, "prompt_tokens", None)
        completion = getattr(usage, "completion_tokens", None)
        if prompt is None:
            prompt, completion = self.prompt_tokens, self.completion_tokens
        total = getattr(usage, "total_tokens", None) or None
        steps = self.steps if steps is None else steps
        self.footer = [
            model or self.model or "",
            render.format_tokens(prompt or 0, completion or 0, total) if (prompt or completion or total) else "",
            f"{steps} step" + ("" if steps == 1 else "s"),
            render.format_duration(elapsed * 1000),
        ]
        self.status, self.approval = "", ""

    def settled(self) -> int:
        """How many leading blocks are finished: they will not change any more."""
        count = 0
        for block in self.blocks:
            if not (block.done and (block.kind != "tool" or block.success is not None)):
                break
            count += 1
        return count

    def html(self, start: int = 0) -> str:
        """The blocks from ``start`` on, then the approval question, status line or footer."""
        inner = [block.render() for block in self.blocks[start:]]
        if self.approval:
            inner.append(self.approval)
        if self.status and self.footer is None:
            inner.append(render.render_status(self.status))
        if self.footer is not None:
            inner.append(render.render_footer(self.footer))
        return render.wrap_view("".join(inner))


class LiveView:
    """The widget a running cell streams into; see the module docstring."""

    def __init__(
        self,
        *,
        model: str | None = None,
        min_interval: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import ipywidgets  # here, not at module import: loading the extension stays fast

        self._ipywidgets = ipywidgets
        self._state = ViewState(model)
        self._min_interval = min_interval
        self._clock = clock
        self._started = clock()
        self._last_flush = float("-inf")
        self._timer: asyncio.TimerHandle | None = None
        self._dirty = False
        self._seen_content = False  # the first answer content is shown at once, whatever the throttle
        self._lock = threading.RLock()  # events may come from a worker thread's loop
        self.updates = 0  # flushes that changed what the frontend shows
        self.parts: list[Any] = []  # one HTML widget per settled block, never redrawn
        self.live = ipywidgets.HTML(value=self._state.html())
        self.buttons = ipywidgets.HBox([])
        self.widget = ipywidgets.VBox([self.live, self.buttons])

    def shown_html(self) -> str:
        """Everything the view shows now, as one HTML string (for tests and exports)."""
        return "".join(part.value for part in (*self.parts, self.live))

    # -- display --------------------------------------------------------------

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        view = {"version_major": 2, "version_minor": 0, "model_id": self.widget.model_id}
        return {WIDGET_MIME: view, "text/plain": VIEW_TEXT, "text/html": VIEW_HTML}

    def show(self) -> None:
        from IPython.display import display

        display(self._repr_mimebundle_(), raw=True)

    # -- updates --------------------------------------------------------------

    def on_event(self, event: Any) -> None:
        with self._lock:
            self._state.apply(event)
            if not self._seen_content and _is_content(event):
                self._seen_content = True
                self._flush()  # the first chunk must not wait behind a status line's update
            elif getattr(event, "type", "") in _SHOW_AT_ONCE:
                self._flush()  # a tool may block the loop next: show the call before it runs
            else:
                self._request_flush()

    def set_status(self, text: str) -> None:
        with self._lock:
            self._state.status = text
            self._request_flush()

    def finish(self, *, text: str, model: str | None, usage: Any = None, steps: int | None = None,
               error: str | None = None, answer_below: bool = False) -> None:
        """Last update: the footer replaces the status line. ``usage`` and ``steps`` default to
        what the usage reports the view was given add up to. With ``answer_below`` the streamed
        answer text leaves the widget (thinking and tool calls stay), because the cell's final
        Markdown output right below it carries the same answer."""
        with self._lock:
            self._cancel_timer()
            elapsed = self._clock() - self._started
            self._state.finish(text=text, model=model, usage=usage, steps=steps, error=error, elapsed=elapsed,
                               answer_below=answer_below)
            if answer_below:  # blocks were removed: the per-block widgets no longer line up, rebuild them
                for part in self.parts:
                    part.close()
                self.parts = []
                self.widget.children = (self.live, self.buttons)
            self.buttons.children = ()
            self._flush()

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
        value = self._state.html(start=len(self.parts))
        if value != self.live.value:
            self.live.value = value
            changed = True
        self.updates += changed

    def _refresh_parts(self) -> bool:
        """Give newly settled blocks their own widgets; redraw a settled block that changed."""
        blocks, changed = self._state.blocks, False
        for part, block in zip(self.parts, blocks):
            if block.html is None:  # e.g. a late note on a finished tool call
                part.value, changed = render.wrap_view(block.render()), True
        settled = self._state.settled()
        if settled > len(self.parts):
            HTML = self._ipywidgets.HTML
            self.parts += [HTML(value=render.wrap_view(b.render())) for b in blocks[len(self.parts):settled]]
            self.widget.children = (*self.parts, self.live, self.buttons)
            changed = True
        return changed

    # -- approval -------------------------------------------------------------

    async def ask_approval(self, request: Any) -> bool:
        """Show Approve / Deny under the view and wait for a click."""
        import json

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
        arguments = json.dumps(request.arguments, ensure_ascii=False, default=str)
        with self._lock:
            self._state.approval = render.render_approval(request.name, arguments)
            self._state.status = f"Waiting for your approval to run {request.name}"
            self.buttons.children = (approve, deny)
            self._flush()  # the question must show now, whatever the throttle says
        try:
            approved = await decision
        finally:
            with self._lock:
                self.buttons.children = ()
                self._state.approval = ""
                self._state.status = ""
                block = self._state.tools.get(request.tool_call_id)
                if block is not None:
                    block.html = None
                    block.note = _decision_note(decision)
                self._request_flush()
        return approved


# Rare events after which the loop may be blocked (model-written code, an approval wait).
_SHOW_AT_ONCE = frozenset({"tool_call_start", "approval_request"})


def _is_content(event: Any) -> bool:
    kind = getattr(event, "type", "")
    return kind in _CONTENT or (kind == "thinking" and bool(getattr(event, "text", "")))


_CONTENT = frozenset({"text_chunk", "text_complete", "thinking_complete", "tool_call_start", "error"})


def _decision_note(decision: "asyncio.Future[bool]") -> str:
    if not decision.done() or decision.cancelled():
        return "not decided (cancelled)"
    return "approved, running…" if decision.result() else "denied"
