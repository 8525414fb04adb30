"""HTML for the live view, rendered in the kernel so the widget is a plain ``ipywidgets.HTML``.

The widget sets its value as innerHTML without sanitising it, so everything the model or a
tool produced is escaped here: Markdown goes through markdown-it-py with ``html`` disabled
(raw HTML in an answer shows as text, ``javascript:`` links are refused), and every other
string goes through ``html.escape``. Thinking and tool calls are ``<details>`` blocks, which
collapse without any JavaScript.
"""

from __future__ import annotations

import functools
import json
from html import escape

__all__ = [
    "MarkdownStream",
    "escape_markdown_html",
    "final_bundle",
    "format_duration",
    "format_tokens",
    "markdown_to_html",
    "pretty_arguments",
    "render_approval",
    "render_error",
    "render_footer",
    "render_status",
    "render_text",
    "render_thinking",
    "render_tool",
    "wrap_view",
]

_BOX = "font-size:0.95em;line-height:1.45"
_MUTED = "color:var(--jp-ui-font-color2,#666)"
_DETAILS = "margin:0.3em 0;padding:0.2em 0.5em;border-left:3px solid var(--jp-border-color1,#ccc)"
_PRE = (
    "white-space:pre-wrap;word-break:break-word;max-height:20em;overflow:auto;margin:0.2em 0;"
    "padding:0.3em;background:var(--jp-layout-color2,#f5f5f5)"
)


@functools.lru_cache(maxsize=1)
def _markdown():
    from markdown_it import MarkdownIt  # imported on first render, not when the extension loads

    # "commonmark" + html=False: raw HTML becomes text; tables and ~~strike~~ as on GitHub.
    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def markdown_to_html(text: str) -> str:
    """Markdown to HTML with raw HTML escaped (``<script>`` shows as ``&lt;script&gt;``)."""
    return _markdown().render(text)


def render_text(text: str, stream: "MarkdownStream | None" = None) -> str:
    html = stream.render(text) if stream is not None else markdown_to_html(text)
    return f'<div class="ct-text">{html}</div>'


_LISTS = ("bullet_list_open", "ordered_list_open")


class MarkdownStream:
    """Renders a growing Markdown text, each finished top-level block only once.

    Rendering the whole answer on every flush is quadratic over a long answer (markdown-it
    takes ~0.7 ms per KB). Text is only ever appended, so a top-level block followed by a
    blank line and another block can no longer change - unless it is a list, which a later
    item could still join. Those blocks are rendered once and kept; each flush parses only
    the rest. (A reference-style link defined after its use shows once the block is done:
    the caller renders a finished block in full.)
    """

    def __init__(self) -> None:
        self._frozen_source = ""
        self._frozen_html = ""

    def render(self, text: str) -> str:
        if not text.startswith(self._frozen_source):  # not a continuation: start again
            self._frozen_source, self._frozen_html = "", ""
        tail = text[len(self._frozen_source):]
        md, env = _markdown(), {}
        tokens = md.parse(tail, env)
        cut = _last_safe_cut(tokens, tail)
        if cut is not None:
            index, offset = cut
            self._frozen_html += md.renderer.render(tokens[:index], md.options, env)
            self._frozen_source += tail[:offset]
            tokens = tokens[index:]
        return self._frozen_html + md.renderer.render(tokens, md.options, env)


def _last_safe_cut(tokens: list, tail: str) -> tuple[int, int] | None:
    """(token index, source offset) of the last top-level block that may start a new tail."""
    lines = tail.split("\n")
    tops = [(i, t) for i, t in enumerate(tokens) if t.level == 0 and t.nesting >= 0 and t.map]
    best = None
    for (_, before), (index, token) in zip(tops, tops[1:]):
        line = token.map[0]
        if line > 0 and not lines[line - 1].strip() and before.type not in _LISTS:
            best = (index, line)
    if best is None:
        return None
    index, line = best
    return index, sum(len(lines[i]) + 1 for i in range(line))


def render_thinking(text: str, *, done: bool) -> str:
    """Open while the model thinks (it is the news), closed once it is done."""
    label = "Thinking" if done else "Thinking…"
    body = f'<pre style="{_PRE}">{escape(text)}</pre>' if text else ""
    return (
        f'<details class="ct-thinking" style="{_DETAILS}"{"" if done else " open"}>'
        f'<summary style="{_MUTED}">{label}</summary>{body}</details>'
    )


def pretty_arguments(arguments: str) -> str:
    """Indent JSON arguments for reading; anything else is shown as it came."""
    try:
        return json.dumps(json.loads(arguments), indent=2, ensure_ascii=False)
    except (ValueError, TypeError):
        return arguments


def format_duration(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def render_tool(
    *,
    name: str,
    arguments: str,
    output: str | None,
    success: bool | None,
    duration_ms: int | None,
    note: str = "",
) -> str:
    """One tool call: name, state and duration in the summary; arguments and result inside.

    Open while it runs, so the arguments of what is running show; closed once it is done.
    """
    running = success is None and note != "did not finish"
    if success is None:
        state = note or "running…"
        mark = '<span style="color:var(--jp-warn-color1,#b26b00)">⋯</span>'
    else:  # text marks, not emoji: they show in every font
        state = "ok" if success else "failed"
        mark = ('<span style="color:var(--jp-success-color1,#2e7d32)">✓</span>' if success
                else '<span style="color:var(--jp-error-color1,#c00)">✗</span>')
        if duration_ms is not None:
            state += f" · {format_duration(duration_ms)}"
    parts = [
        f'<details class="ct-tool" style="{_DETAILS}"{" open" if running else ""}>',
        f"<summary>{mark} <code>{escape(name)}</code> "
        f'<span style="{_MUTED}">{escape(state)}</span></summary>',
        f'<div style="{_MUTED}">Arguments</div><pre style="{_PRE}">'
        f"{escape(pretty_arguments(arguments))}</pre>",
    ]
    if output is not None:
        parts.append(f'<div style="{_MUTED}">Result</div><pre style="{_PRE}">{escape(output)}</pre>')
    parts.append("</details>")
    return "".join(parts)


def render_error(message: str) -> str:
    return (
        '<div class="ct-error" style="color:var(--jp-error-color1,#c00);margin:0.3em 0">'
        f"<strong>Error:</strong> {escape(message)}</div>"
    )


def render_status(text: str) -> str:
    return f'<div class="ct-status" style="{_MUTED};font-style:italic">{escape(text)}</div>'


def render_approval(name: str, arguments: str) -> str:
    return (
        '<div class="ct-approval" style="margin:0.3em 0"><strong>Approve this tool call?</strong> '
        f"<code>{escape(name)}</code><pre style=\"{_PRE}\">{escape(pretty_arguments(arguments))}</pre></div>"
    )


def format_tokens(prompt: int, completion: int, total: int | None = None) -> str:
    total = total or prompt + completion
    return f"{total:,} tokens ({prompt:,} in, {completion:,} out)"


def render_footer(items: list[str]) -> str:
    text = " · ".join(escape(item) for item in items if item)
    return (
        '<div class="ct-footer" style="margin-top:0.4em;padding-top:0.2em;'
        f'border-top:1px solid var(--jp-border-color2,#e0e0e0);{_MUTED};font-size:0.85em">{text}</div>'
    )


def wrap_view(inner: str) -> str:
    return f'<div class="codetether-view" style="{_BOX}">{inner}</div>'


# -- the final output: Markdown with raw HTML made inert --------------------------------


def final_bundle(text: str, *, error: str | None = None) -> dict[str, str]:
    """The cell's final output: a pure function of its arguments (no ids, clocks, durations).

    ``text/markdown`` is the answer with raw HTML made inert; ``text/plain`` is the answer as
    written. An error is appended as a quoted line in both.
    """
    answer = text.strip()
    markdown, plain = [], []
    if answer:
        markdown.append(escape_markdown_html(answer))
        plain.append(answer)
    if error:
        markdown.append(_quote_error(error))
        plain.append(f"Error: {error}")
    if not markdown:
        markdown, plain = ["*(no answer)*"], ["(no answer)"]
    return {"text/markdown": "\n\n".join(markdown), "text/plain": "\n\n".join(plain)}


def _quote_error(message: str) -> str:
    # Backslash-escape ASCII punctuation so the message renders literally, never as Markdown/HTML.
    literal = "".join(f"\\{c}" if c.isascii() and not c.isalnum() and c not in " \n" else c for c in message)
    lines = literal.splitlines() or [""]
    return "\n".join([f"> **Error:** {lines[0]}", *(f"> {line}" for line in lines[1:])])


@functools.lru_cache(maxsize=1)
def _markdown_with_html():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True})


def _has_raw_html(text: str) -> tuple[bool, set[int]]:
    """Whether CommonMark would pass raw HTML through, and the lines inside code blocks."""
    found, code_lines = False, set()
    for token in _markdown_with_html().parse(text):
        if token.type in ("fence", "code_block") and token.map:
            code_lines.update(range(*token.map))
        elif token.type == "html_block" or any(c.type == "html_inline" for c in token.children or ()):
            found = True
    return found, code_lines


def _escape_outside_code_spans(segment: str) -> str:
    """Replace ``<`` by ``&lt;`` except inside `code spans` (CommonMark backtick pairing)."""
    out, i, n = [], 0, len(segment)
    while i < n:
        char = segment[i]
        if char == "\\" and i + 1 < n:  # a backslash escape: keep both characters as they are
            out.append(segment[i : i + 2])
            i += 2
        elif char == "`":
            run = len(segment[i:]) - len(segment[i:].lstrip("`"))
            close = _closing_backticks(segment, i + run, run)
            end = i + run if close < 0 else close + run
            out.append(segment[i:end])
            i = end
        else:
            out.append("&lt;" if char == "<" else char)
            i += 1
    return "".join(out)


def _closing_backticks(segment: str, start: int, run: int) -> int:
    """Index of the next backtick run of exactly ``run`` characters, or -1."""
    i = segment.find("`", start)
    while i >= 0:
        j = i
        while j < len(segment) and segment[j] == "`":
            j += 1
        if j - i == run:
            return i
        i = segment.find("`", j)
    return -1


def escape_markdown_html(text: str) -> str:
    """Markdown whose raw HTML shows as text in any CommonMark renderer; code is left alone.

    Jupyter renders a trusted ``text/markdown`` output without sanitising it, so an answer
    holding ``<img onerror=...>`` would run script. The result is checked by parsing it
    again; if anything still parses as HTML, every ``<`` is escaped.
    """
    found, code_lines = _has_raw_html(text)
    if not found:
        return text
    lines = text.split("\n")
    out, segment = [], []
    for number, line in enumerate(lines):
        if number in code_lines or not line.strip():
            out.extend(_escape_outside_code_spans("\n".join(segment)).split("\n") if segment else [])
            segment = []
            out.append(line)
        else:
            segment.append(line)
    if segment:
        out.extend(_escape_outside_code_spans("\n".join(segment)).split("\n"))
    escaped = "\n".join(out)
    return escaped if not _has_raw_html(escaped)[0] else text.replace("<", "&lt;")
