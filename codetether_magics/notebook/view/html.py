"""HTML for the live view, rendered in the kernel so the widget is a plain ``ipywidgets.HTMLMath``.

The widget sets its value as innerHTML without sanitising it, so everything the model or a
tool produced is escaped here (Markdown through ``markdown.markdown_to_html``, every other
string through ``html.escape`` after ``visible_controls``). The view uses JupyterLab's own
rendered-Markdown classes, so text, tables and code look as the record's Markdown will, in
the light and the dark theme; thinking and tool calls are ``<details>``, which need no script.
"""

from __future__ import annotations

from html import escape

from .arguments import Shown, show_arguments
from .markdown import highlight_code, markdown_to_html
from .safe import visible_controls
from .state import Block

__all__ = [
    "CODE_CSS",
    "format_duration",
    "render_block",
    "render_footer",
    "render_status",
    "wrap_view",
]

_MUTED = "color:var(--jp-ui-font-color2,#666)"
_DETAILS = "margin:0.3em 0"  # plain, as a <details> of the record renders
_PRE = "white-space:pre-wrap;word-break:break-word;max-height:20em;overflow:auto;margin:0.2em 0"

# Pygments token classes coloured with the variables JupyterLab's editor theme sets, so the
# live view's code looks like the highlighted code of a Markdown output, in either theme.
_TOKEN_COLOURS = {
    "k kc kd kn kp kr kt ow": "keyword", "s s1 s2 sa sb sc sd se sh si sr ss sx dl": "string",
    "m mb mf mh mi mo il": "number", "c c1 ch cm cp cpf cs": "comment", "nb bp": "builtin",
    "nf fm nc nn": "def", "o": "operator", "nd": "meta", "na": "attribute", "nt": "tag",
    "gh gu": "header", "gi": "string", "gd": "error", "err": "error",
}
CODE_CSS = "<style>" + "".join(
    ",".join(f".codetether-view .ct-code .{cls}" for cls in classes.split())
    + f"{{color:var(--jp-mirror-editor-{colour}-color)}}"
    for classes, colour in _TOKEN_COLOURS.items()
) + (
    ".codetether-view .ct-code .c,.codetether-view .ct-code .c1{font-style:italic}"
    ".codetether-view .ct-code .k,.codetether-view .ct-code .kn,.codetether-view .ct-code .kd,"
    ".codetether-view .ct-code .ow{font-weight:bold}"
    # What JupyterLab gives a Markdown output (the record) and not the widget: code blocks
    # inset, tables flush left.
    ".codetether-view .ct-text>pre{margin:1.5em 2em}"
    ".codetether-view table{margin-left:0;margin-right:0}"
    "</style>"
)


def _text(value: str) -> str:
    return escape(visible_controls(value))


def format_duration(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def render_block(block: Block, text_html: str | None = None) -> str:
    """One block; the Markdown of a text or thinking block may come rendered (``text_html``,
    streamed by the caller)."""
    if block.kind == "text":
        return f'<div class="ct-text">{text_html or ""}</div>'
    if block.kind == "thinking":
        return _render_thinking(block, text_html)
    if block.kind == "tool":
        return _render_tool(block)
    raise ValueError(f"no such block kind: {block.kind!r}")


def _render_thinking(block: Block, body: str | None = None) -> str:
    """Open while the model thinks (it is the news), closed once it is done."""
    label = "Thinking" if block.done else "Thinking…"
    if body is None:
        body = markdown_to_html(block.text) if block.text else ""
    return (
        f'<details class="ct-thinking" style="{_DETAILS}"{"" if block.done else " open"}>'
        f'<summary style="{_MUTED}">{label}</summary>{body}</details>'
    )


_MARKS = {  # text marks, not emoji: they show in every font
    "succeeded": ("✓", "--jp-success-color1,#2e7d32"),
    "failed": ("✗", "--jp-error-color1,#c00"),
    "denied": ("⊘", "--jp-warn-color1,#b26b00"),
    None: ("⋯", "--jp-warn-color1,#b26b00"),
}
ASKING = "waiting for your approval"


def _render_tool(block: Block) -> str:
    """Name, state and duration in the summary; arguments as code and the result inside.

    Open while it runs or asks, so what runs shows; closed once it is done. While it asks, the
    question stands in the summary and the arguments below it, once.
    """
    state = block.status or block.note or "running…"
    if block.status is not None and block.duration_ms is not None and block.status != "denied":
        state += f" · {format_duration(block.duration_ms)}"
    symbol, colour = _MARKS[block.status]
    is_open = block.status is None and block.note != "did not finish"
    asking = block.note == ASKING
    title = f"Approve this <code>{_text(block.name)}</code> call?" if asking else f"<code>{_text(block.name)}</code>"
    parts = [
        f'<details class="ct-tool{" ct-approval" if asking else ""}" style="{_DETAILS}"{" open" if is_open else ""}>',
        f'<summary><span style="color:var({colour})">{symbol}</span> {title} '
        f'<span style="{_MUTED}">{escape(state)}</span></summary>',
        *(_render_shown(piece) for piece in show_arguments(block.name, block.arguments)),
    ]
    if block.output is not None and block.status != "denied":
        parts.append(f'<div style="{_MUTED}">Result</div><pre style="{_PRE}">{_text(block.output)}</pre>')
    parts.append("</details>")
    return "".join(parts)


def _render_shown(piece: Shown) -> str:
    label = ""
    if piece.label is not None:
        label = f"<div><code>{_text(piece.label)}</code></div>" if piece.label_is_path else \
            f"<div><em>{_text(piece.label)}</em></div>"
    code = highlight_code(visible_controls(piece.body), piece.language or "text")
    return f'{label}<pre class="ct-code" style="{_PRE}"><code>{code}</code></pre>'


def render_status(text: str) -> str:
    return f'<div class="ct-status" style="{_MUTED};font-style:italic">{escape(text)}</div>'


def render_footer(items: list[str]) -> str:
    text = " · ".join(_text(item) for item in items if item)
    return f'<div class="ct-footer" style="{_MUTED}"><sub>{text}</sub></div>'


def wrap_view(inner: str) -> str:
    # JupyterLab's rendered-Markdown classes: the same fonts, tables and code as the record.
    return f'<div class="codetether-view jp-RenderedHTMLCommon jp-RenderedMarkdown">{inner}</div>'
