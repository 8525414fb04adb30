"""The cell's one static record: a ``text/markdown`` + ``text/plain`` bundle left when a run ends.

Collapsible ``<details>`` for the thinking and for each tool call (its name, its arguments as
what they are, whether it succeeded, was denied or failed), the answer's paragraphs where
they came, then one footer line: the model, this turn's tokens, the cost when known.

A pure function of the run's ``ViewState``: no ids, clocks or durations, and no tool output
(a replay runs the tools again), so a replay of the turn gives the same bytes and
``pytest --nbval`` passes on every run. It renders without a kernel (nbconvert, GitHub) and
in either theme: ``<details>`` needs no script and no colour is set. Every piece the model
wrote goes through ``safe_markdown``; our own HTML around it is escaped.
"""

from __future__ import annotations

import functools
from html import escape
from typing import Any, Mapping

from .arguments import Shown, fence, show_arguments
from .markdown import fence_closed
from .safe import safe_markdown, visible_controls
from .state import Block, ViewState

__all__ = ["EMPTY_ANSWER", "format_cost", "format_tokens", "record_bundle", "text_bundle"]

EMPTY_ANSWER = "(no answer)"


def format_tokens(prompt: int, completion: int) -> str:
    return f"{prompt + completion:,} tokens ({prompt:,} in, {completion:,} out)"


def format_cost(cost_usd: float) -> str:
    """Dollars with the digits that matter: $1.25, $0.0142, $0.00047, $0.000003."""
    if cost_usd >= 1:
        return f"${cost_usd:.2f}"
    if cost_usd >= 0.01:
        return f"${cost_usd:.4f}"
    digits = f"{cost_usd:.6f}".rstrip("0").rstrip(".")
    return f"${digits}" if digits != "0" or cost_usd == 0 else "< $0.000001"


def footer_items(state: ViewState) -> list[str]:
    """What the footer says: only what happened (no model when none was called, no zero counts)."""
    items = []
    if state.model:
        items.append(state.model)
    prompt, completion = state.tokens()
    if prompt or completion:
        items.append(format_tokens(prompt, completion))
    if state.cost_usd:  # a price was known and something was spent (a free or unreported call: no "$0")
        items.append(format_cost(state.cost_usd))
    return items


def record_bundle(state: ViewState, arguments: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """The record of a finished run, or None when nothing happened at all.

    ``arguments`` maps a tool call id to its full arguments (events carry them capped at
    4 KiB); the transcript has them, and a replay reads the same transcript.
    """
    arguments = arguments or {}
    markdown: list[str] = []
    plain: list[str] = []
    for block in state.blocks:
        _add_block(block, arguments, markdown, plain)
    if not any(b.kind == "text" and b.text.strip() for b in state.blocks) and (state.model or markdown):
        markdown.append(f"*{EMPTY_ANSWER}*")
        plain.append(EMPTY_ANSWER)
    footer = footer_items(state)
    if footer:
        markdown.append("<sub>" + " · ".join(escape(visible_controls(item)) for item in footer) + "</sub>")
        plain.append(" · ".join(footer))
    if not markdown:
        return None
    return {"text/markdown": "\n\n".join(markdown), "text/plain": "\n\n".join(plain)}


def text_bundle(text: str) -> dict[str, str]:
    """The record of a run that only answered ``text`` (no tools, no usage report)."""
    from ...events import TextCompleteEvent

    state = ViewState()
    state.apply(TextCompleteEvent(text=text))
    return record_bundle(state) or {"text/markdown": f"*{EMPTY_ANSWER}*", "text/plain": EMPTY_ANSWER}


def _add_block(block: Block, arguments: Mapping[str, str], markdown: list[str], plain: list[str]) -> None:
    if block.kind == "text" and block.text.strip():
        markdown.append(_markdown_piece(block.text.strip()))
        plain.append(visible_controls(block.text.strip()))
    elif block.kind == "thinking" and block.text.strip():
        markdown.append(_details("Thinking", _markdown_piece(block.text.strip())))
        plain.append("[thinking]")
    elif block.kind == "tool":
        status = block.status or "did not finish"
        summary = f"<code>{escape(visible_controls(block.name))}</code> · {status}"
        shown = show_arguments(block.name, arguments.get(block.call_id, block.arguments))
        markdown.append(_details(summary, "\n\n".join(_shown_markdown(piece) for piece in shown)))
        plain.append(f"[{visible_controls(block.name)}: {status}]")


def _details(summary: str, body: str) -> str:
    # Blank lines around the body: GitHub and JupyterLab parse Markdown inside <details> only then.
    inner = f"\n{body}\n\n" if body.strip() else "\n"
    return f"<details>\n<summary>{summary}</summary>\n{inner}</details>"


def _shown_markdown(piece: Shown) -> str:
    code = fence(visible_controls(piece.body), piece.language)
    if piece.label is None:
        return code
    if not piece.label_is_path:  # our own words
        return f"*{piece.label}*\n\n{code}"
    return f"`{_code_span_text(visible_controls(piece.label))}`\n\n{code}"


def _code_span_text(text: str) -> str:
    """``text`` for inside single backticks: its own backticks and newlines would end the span."""
    return text.replace("`", "'").replace("\n", " ")


def _markdown_piece(text: str) -> str:
    """Model Markdown made safe, with any code fence it left open closed: an open fence
    would swallow the rest of the record (the tool calls after it, the footer)."""
    safe = safe_markdown(text)
    if "```" not in safe and "~~~" not in safe:
        return safe
    tokens = _parser().parse(safe)
    if tokens and tokens[-1].type == "fence" and not fence_closed(tokens[-1], safe.split("\n")):
        safe += "\n" + tokens[-1].markup
    return safe


@functools.lru_cache(maxsize=1)
def _parser() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False})
