"""What a cell run showed, built from its ``SessionEvent``s: the one source of the live view and the record.

Blocks in the order they happened: thinking, text (a paragraph of the answer, cut by tool
calls) and tool calls.
The usage reports add up to this turn's tokens, cost and model. A replay streams the same
events from the transcript, so the same state, and the same record, come out of it.
"""

from __future__ import annotations

from typing import Any, Literal

__all__ = ["Block", "ToolStatus", "ViewState"]

ToolStatus = Literal["succeeded", "failed", "denied"]


class Block:
    """One part of the run: answer text, thinking, a tool call or a note."""

    __slots__ = ("kind", "text", "done", "name", "arguments", "output", "status", "duration_ms", "note", "html",
                 "stream", "earlier", "call_id")

    def __init__(self, kind: str, **fields: Any) -> None:
        self.kind, self.text, self.done = kind, "", False
        self.name = self.arguments = self.note = self.call_id = ""
        self.output: str | None = None
        self.status: ToolStatus | None = None
        self.duration_ms: int | None = None
        self.html: str | None = None  # the live view's cached render; None when it must be rendered again
        self.stream: Any = None  # a text block's MarkdownStream, made by the live view
        self.earlier: str | None = None  # a text block: the turn's text shown by the text blocks before it
        for key, value in fields.items():
            setattr(self, key, value)

    @property
    def settled(self) -> bool:
        """Finished: it will not change any more."""
        return self.done and (self.kind != "tool" or self.status is not None)


class ViewState:
    """The blocks and totals of one run; ``apply`` takes each event as it comes."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.tools: dict[str, Block] = {}
        self.status = ""
        self.prompt_tokens = self.completion_tokens = 0
        self.cost_usd: float | None = None
        self.steps = 0  # model calls: one usage report each
        self.model: str | None = None  # the model that answered, from the usage reports

    def apply(self, event: Any) -> None:
        handler = getattr(self, f"_on_{getattr(event, 'type', '')}", None)
        if handler is not None:  # an event type this state does not know is ignored
            handler(event)

    # -- text and thinking ----------------------------------------------------------

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

    def _open_block(self, kind: str) -> Block:
        """The last block if it is an unfinished ``kind`` block, else a new one."""
        if self.blocks and self.blocks[-1].kind == kind and not self.blocks[-1].done:
            return self.blocks[-1]
        return self.append(Block(kind))

    def append(self, block: Block) -> Block:
        """Add ``block``; the block before it is finished (thinking stops when the answer starts)."""
        if self.blocks and not self.blocks[-1].done and self.blocks[-1].kind != "tool":
            self.blocks[-1].done, self.blocks[-1].html = True, None
        self.blocks.append(block)
        return block

    # -- tools ----------------------------------------------------------------------

    def tool(self, call_id: str, name: str = "", arguments: str = "") -> Block:
        block = self.tools.get(call_id)
        if block is None:
            block = Block("tool", name=name, arguments=arguments, call_id=call_id, done=True)
            self.tools[call_id] = self.append(block)
        block.html = None
        return block

    def _on_tool_call_start(self, event: Any) -> None:
        block = self.tool(event.tool_call_id, event.name, event.arguments)
        block.arguments = event.arguments
        self.status = f"Running {event.name}…"

    def _on_tool_call_complete(self, event: Any) -> None:
        block = self.tool(event.tool_call_id, event.name)
        block.output, block.duration_ms, block.note = event.output, event.duration_ms, ""
        block.status = tool_status(event)
        self.status = f"Waiting for {self.model}…" if self.model else "Waiting for the model…"

    def _on_tool_heartbeat(self, event: Any) -> None:
        block = self.tool(event.tool_call_id, event.name)
        block.note = f"running… {event.elapsed_secs:.0f} s"
        self.status = f"Running {event.name}… {event.elapsed_secs:.0f} s"

    # An approval_request only says the call needs approval; it may well be allowed already
    # (--allow, auto_approve). The view says "waiting for your approval" only while it asks.

    # -- the rest -------------------------------------------------------------------

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
        cost = getattr(event, "cost_usd", None)
        if cost is not None:
            self.cost_usd = (self.cost_usd or 0.0) + cost
        self.model = event.model or self.model

    def _on_done(self, event: Any) -> None:
        self.status = ""

    def _on_error(self, event: Any) -> None:
        # Said once elsewhere: an error that ends the run is the cell's error output, and a cut-off
        # answer carries its own note in the text. While the run goes on, the status line shows it.
        self.status = event.message

    def end(self, *, error: str | None = None) -> None:
        """The run is over: every block is finished. ``error`` (the cell's error output says it)
        is not shown here."""
        for block in self.blocks:
            if block.kind == "tool" and block.status is None:
                if block.note == "denied":  # the user said no; the call's result never came
                    block.status, block.html = "denied", None
                else:
                    block.note, block.html = "did not finish", None
            elif not block.done:
                block.done, block.html = True, None
        self.status = ""

    def answer(self) -> str:
        return "\n\n".join(b.text for b in self.blocks if b.kind == "text" and b.text.strip())

    def tokens(self) -> tuple[int, int]:
        return self.prompt_tokens, self.completion_tokens


def tool_status(event: Any) -> ToolStatus:
    """The event's own status; from a loop that does not say it, ``success`` and the words a
    refused call gets ("The user did not approve this `x` call ...")."""
    status = getattr(event, "status", None)
    if status is not None:
        return status
    if event.success:
        return "succeeded"
    return "denied" if event.output.lstrip().startswith(_REFUSED) else "failed"


_REFUSED = ("The user did not approve", "Error: The user did not approve")
