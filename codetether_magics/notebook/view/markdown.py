"""Untrusted Markdown to HTML for the live view, looking as the cell's record will.

The text goes through ``safe_markdown`` first (the very source the record holds), then
markdown-it with raw HTML off. Math stays as ``$...$`` / ``$$...$$`` text for the
``HTMLMath`` widget to typeset (a ``$`` that is not math is written ``\\$``, which MathJax
shows as a dollar), code fences are highlighted with Pygments (classes coloured by
JupyterLab's editor theme variables, see ``html.CODE_CSS``), and tables get the same
styles as a Markdown output because the view uses JupyterLab's rendered-Markdown classes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from html import escape
from typing import Any

from .safe import safe_markdown

__all__ = ["MarkdownStream", "highlight_code", "markdown_to_html"]


@functools.lru_cache(maxsize=1)
def _markdown() -> Any:
    # Imported on first render, not when the extension loads.
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    md = MarkdownIt("commonmark", {"html": False, "highlight": _highlight}).enable(["table", "strikethrough"])
    md.use(dollarmath_plugin, allow_space=False, double_inline=True, renderer=_math)
    md.add_render_rule("text", _text)
    return md


def _math(content: str, options: dict[str, Any]) -> str:
    delimiter = "$$" if options.get("display_mode") else "$"
    return escape(f"{delimiter}{content}{delimiter}")


def _text(self: Any, tokens: list, index: int, options: Any, env: Any) -> str:
    return escape(tokens[index].content).replace("$", "\\$")


def highlight_code(code: str, language: str) -> str:
    """``code`` as Pygments spans (HTML-escaped); plain escaped text for an unknown language."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        lexer = get_lexer_by_name(language.strip() or "text")
    except ClassNotFound:
        return escape(code)
    return highlight(code, lexer, HtmlFormatter(nowrap=True))


def _highlight(code: str, language: str, attrs: str) -> str:
    return f'<pre class="ct-code"><code>{highlight_code(code, language)}</code></pre>'


def markdown_to_html(text: str) -> str:
    """Untrusted Markdown as HTML: no raw HTML, no unsafe link, no remote image."""
    return _markdown().render(safe_markdown(text))


_LISTS = ("bullet_list_open", "ordered_list_open")
FORCED_CUT = 4 * 1024  # characters: an open block longer than this is cut at a line (lists parse at ~5 ms/KB)


class MarkdownStream:
    """Renders a growing Markdown text so that one flush costs what changed, not the whole answer.

    Rendering the whole answer on every flush is quadratic over a long answer (markdown-it
    takes ~0.7 ms per KB). Text is only ever appended, so a top-level block followed by a
    blank line and another block can no longer change - unless it is a list, which a later
    item could still join. Those blocks are rendered once and kept as ``pieces``; each flush
    parses only the rest. One block can be long (a 1 MB paragraph, list, code block or
    table): past ``FORCED_CUT`` it is cut at a line boundary (a list between items, a table
    between rows, a paragraph at a line or space), and the rest goes on as a block of the same
    kind (a code block reopens its fence, a table repeats its header, which is not shown
    again). Only the live view sees those seams; the record is the Markdown itself.
    Sanitising keeps every line where it was, so a cut found in the safe text is a cut in the
    raw text at the same line.
    """

    def __init__(self) -> None:
        self.pieces: list[str] = []  # frozen HTML, in order
        self._frozen_source = ""  # the raw text the pieces show
        self._prefix = ""  # what the open rest needs in front of it to stay the same kind of block
        self._hide_header = False  # the prefix is a table header the pieces already show

    def render(self, text: str) -> str:
        """The whole text as HTML (frozen pieces and the open rest)."""
        rest = self.update(text)
        return "".join(self.pieces) + rest

    def update(self, text: str) -> str:
        """Freeze what can no longer change into ``pieces``; return the open rest as HTML."""
        if not text.startswith(self._frozen_source):  # not a continuation: start again
            self.__init__()
        source = self._prefix + text[len(self._frozen_source):]
        tokens = _parse(source)
        cut = _last_safe_cut(tokens, source)
        if cut is not None:
            index, offset = cut
            self._freeze(tokens[:index], source, offset, "", hide_header=False)
            source = source[offset:]
            tokens = _parse(source)
        elif len(source) - len(self._prefix) > FORCED_CUT:
            forced = _forced_cut(tokens, source)
            if forced is not None and forced.offset > len(self._prefix):
                head = _parse(source[:forced.offset] + forced.closing)
                self._freeze(head, source, forced.offset, forced.prefix, hide_header=forced.hide_header)
                source = forced.prefix + source[forced.offset:]
                tokens = _parse(source)
        return _render(self._shown(tokens))

    def _freeze(self, tokens: list, source: str, offset: int, prefix: str, *, hide_header: bool) -> None:
        self.pieces.append(_render(self._shown(tokens)))
        self._frozen_source += source[len(self._prefix):offset]
        self._prefix, self._hide_header = prefix, hide_header

    def _shown(self, tokens: list) -> list:
        """``tokens`` without the repeated header of a continued table (its first block)."""
        if not (self._hide_header and tokens and tokens[0].type == "table_open"):
            return tokens
        types = [token.type for token in tokens]
        if "thead_open" not in types or "thead_close" not in types:
            return tokens
        return tokens[:types.index("thead_open")] + tokens[types.index("thead_close") + 1:]


def _parse(source: str) -> list:
    return _markdown().parse(safe_markdown(source), {})


def _render(tokens: list) -> str:
    md = _markdown()
    return md.renderer.render(tokens, md.options, {})


@dataclass(frozen=True)
class _ForcedCut:
    offset: int  # where the frozen part ends, in the source
    closing: str  # added to the frozen part to close its block (a code fence)
    prefix: str  # put before the rest so it goes on as the same kind of block
    hide_header: bool = False


def _forced_cut(tokens: list, source: str) -> _ForcedCut | None:
    """Where to cut the last, long block at a line: the last line (maybe still growing) stays open."""
    tops = [t for t in tokens if t.level == 0 and t.nesting >= 0 and t.map]
    if not tops:
        return None
    last, lines = tops[-1], source.split("\n")
    start, final = last.map[0], len(lines) - 1

    def at(line: int) -> int:
        return sum(len(lines[i]) + 1 for i in range(line))

    if last.type == "fence" and final > start + 1 and not fence_closed(last, lines):
        return _ForcedCut(at(final), last.markup + "\n", lines[start] + "\n")
    if last.type == "table_open" and final > start + 2:
        return _ForcedCut(at(final), "", lines[start] + "\n" + lines[start + 1] + "\n", hide_header=True)
    if last.type in _LISTS:
        items = [t.map[0] for t in tokens[tokens.index(last):] if t.type == "list_item_open" and t.level == 1]
        return _ForcedCut(at(items[-1]), "", "") if items and items[-1] > start else None
    if last.type in ("paragraph_open", "blockquote_open", "code_block") and final > start:
        return _ForcedCut(at(final), "", "")
    if last.type == "paragraph_open":  # one long line: cut after its last space
        space = source.rfind(" ", at(start), len(source) - 1)
        return _ForcedCut(space + 1, "", "") if space > at(start) else None
    return None


def fence_closed(fence: Any, lines: list[str]) -> bool:
    """Whether the code ``fence`` token (parsed from ``lines``) ends with its closing marker."""
    last = lines[fence.map[1] - 1].strip()
    return fence.map[1] - fence.map[0] >= 2 and len(last) >= len(fence.markup) and set(last) == {fence.markup[0]}


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
