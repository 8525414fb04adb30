"""Model output is untrusted: make its Markdown safe in ANY renderer, as source text.

The cell's record is ``text/markdown`` that JupyterLab (a trusted output is not sanitised),
nbconvert and GitHub render with their own parsers, so escaping the HTML we render is not
enough: the Markdown source itself must hold nothing a renderer would turn into a request or
a script. ``safe_markdown`` rewrites it, keeping everything else byte for byte:

- raw HTML shows as text (the ``<`` of a tag, comment or declaration becomes ``&lt;``
  outside code);
- a link whose destination does not start with ``http://``, ``https://`` or ``mailto:`` (as
  written: an entity or backslash spelling of ``javascript:`` does not pass) loses its
  opening ``[`` to an escape, so it shows as the text the model wrote; a reference
  definition with such a destination likewise;
- an image is loaded only from a ``data:image/...`` URL; any other ``![`` becomes ``\\![``,
  which renders as "!" and a plain link (or text) instead of an ``<img>``;
- an autolink ``<scheme:...>`` other than http(s)/mailto is escaped like a tag;
- ANSI escapes, other control characters and Unicode bidi controls are shown as visible
  escapes (``\\x1b``, ``\\u202e``), so text cannot hide or reorder what it says.

Every decision is a whitelist on the written source, so it does not depend on one parser's
reading; the result is then checked by parsing it (links, images, HTML) and escaped whole
if anything is left.
"""

from __future__ import annotations

import functools
import re

__all__ = ["is_safe_image", "is_safe_link", "safe_markdown", "visible_controls"]

_LINK_SCHEMES = ("http://", "https://", "mailto:")
_IMAGE_DATA = re.compile(r"data:image/(png|jpeg|gif|webp);", re.IGNORECASE)

# C0 controls but tab and newline, DEL, C1 controls, bidi embeddings/overrides/isolates and
# marks, zero-width characters that hide text, line and paragraph separators (a browser breaks
# the line there, Python does not: a comment would seem to end), the soft hyphen and the Mongolian
# vowel separator (invisible), Hangul fillers (blank yet valid in a Python name: `os.system(<U+3164>)`),
# the combining grapheme joiner and tag characters (invisible text smuggled inside a string).
_CONTROLS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\xad\u034f\u061c\u115f\u1160\u180e\u200b-\u200f\u2028\u2029"
    "\u202a-\u202e\u2060-\u2069\u3164\ufeff\uffa0\U000e0000-\U000e007f]"
)


def _escape_control(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code > 0xFFFF:
        return f"\\U{code:08x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible_controls(text: str) -> str:
    """``text`` with ANSI and other control characters and bidi controls written as escapes."""
    text = text.replace("\r\n", "\n")
    return _CONTROLS.sub(_escape_control, text)


def is_safe_link(destination: str) -> bool:
    return destination.strip().lower().startswith(_LINK_SCHEMES)


def is_safe_image(destination: str) -> bool:
    return bool(_IMAGE_DATA.match(destination.strip()))


def safe_markdown(text: str) -> str:
    """Markdown that renders what ``text`` says, with no request, script or hidden text in it."""
    text = visible_controls(text)
    if not any(char in text for char in "<[!"):  # nothing that could open HTML, a link or an image
        return text
    code_lines = _code_block_lines(text)
    lines = text.split("\n")
    out: list[str] = []
    segment: list[str] = []
    for number, line in enumerate(lines):
        if number in code_lines:
            out.extend(_flush(segment))
            out.append(line)
        else:
            segment.append(line)
    out.extend(_flush(segment))
    result = "\n".join(out)
    return result if not _unsafe_left(result) else _escape_everything(text)


def _flush(segment: list[str]) -> list[str]:
    if not segment:
        return []
    cleaned = _Scanner("\n".join(segment)).run()
    segment.clear()
    return cleaned.split("\n")


# -- the source scanner -----------------------------------------------------------------

_DEFINITION = re.compile(r"[ ]{0,3}\[")
# What a renderer may take for raw HTML: a tag (open or close), a comment, a declaration or a
# processing instruction. ``a < b`` and ``$x<y$`` are left alone (math keeps its ``<``).
_HTML_START = re.compile(r"</?[A-Za-z][^<>]*>|<[!?]")
_AUTOLINK = re.compile(r"<(https?://|mailto:)[^\s<>]*>", re.IGNORECASE)
_EMAIL_AUTOLINK = re.compile(r"<[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*>")


class _Scanner:
    """One pass over text outside code blocks: code spans are copied, the rest rewritten."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.out: list[str] = []
        self.i = 0

    def run(self) -> str:
        text, n = self.text, len(self.text)
        while self.i < n:
            char = text[self.i]
            if char == "\\" and self.i + 1 < n:  # an escape pair stays as written
                self._copy(2)
            elif char == "`":
                self._code_span()
            elif char == "<":
                self._angle()
            elif char == "!" and text.startswith("![", self.i):
                self._image()
            elif char == "[":
                self._bracket()
            else:
                self._copy(1)
        return "".join(self.out)

    def _copy(self, count: int) -> None:
        self.out.append(self.text[self.i:self.i + count])
        self.i += count

    def _code_span(self) -> None:
        text = self.text
        run = len(text[self.i:]) - len(text[self.i:].lstrip("`"))
        close = _closing_backticks(text, self.i + run, run)
        self._copy(run if close < 0 else close + run - self.i)

    def _angle(self) -> None:
        match = _AUTOLINK.match(self.text, self.i) or _EMAIL_AUTOLINK.match(self.text, self.i)
        if match:
            self._copy(match.end() - self.i)
        elif _HTML_START.match(self.text, self.i):
            self.out.append("&lt;")
            self.i += 1
        else:
            self._copy(1)

    def _image(self) -> None:
        destination = _inline_destination(self.text, self.i + 1)
        if destination is not None and is_safe_image(destination):
            self._copy(2)  # a data: image loads nothing from anywhere
        else:
            self.out.append("\\!")
            self.i += 1

    def _bracket(self) -> None:
        destination = _inline_destination(self.text, self.i)
        if destination is None:
            destination = _definition_destination(self.text, self.i)
        if destination is not None and not is_safe_link(destination):
            self.out.append("\\[")  # no link can open here: the model's text shows as written
            self.i += 1
        else:
            self._copy(1)


def _closing_backticks(text: str, start: int, run: int) -> int:
    """Index of the next backtick run of exactly ``run`` characters, or -1."""
    i = text.find("`", start)
    while i >= 0:
        j = i
        while j < len(text) and text[j] == "`":
            j += 1
        if j - i == run:
            return i
        i = text.find("`", j)
    return -1


def _matching_bracket(text: str, start: int) -> int:
    """Index of the ``]`` closing the ``[`` at ``start`` (escapes and nesting), or -1."""
    depth, i, n = 0, start, len(text)
    while i < n:
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _inline_destination(text: str, start: int) -> str | None:
    """For ``[...](dest ...)`` at ``start``: ``dest`` as written; else ``None`` (a reference
    ``[text][label]`` is checked at its definition, where the destination stands)."""
    close = _matching_bracket(text, start)
    if close < 0:
        return None
    if not text.startswith("(", close + 1):
        return None
    rest = text[close + 2:].lstrip(" \t\n")
    if rest.startswith("<"):
        end = rest.find(">")
        return rest[1:end] if end >= 0 else rest[1:]
    match = re.match(r"[^\s)]*", rest)
    return match.group() if match else ""


def _definition_destination(text: str, start: int) -> str | None:
    line_start = text.rfind("\n", 0, start) + 1
    if not _DEFINITION.fullmatch(text[line_start:start + 1]):
        return None
    close = _matching_bracket(text, start)
    if close < 0 or not text.startswith(":", close + 1):
        return None
    rest = text[close + 2:].lstrip(" \t").lstrip("\n").lstrip(" \t")
    return rest[1:rest.find(">")] if rest.startswith("<") else re.match(r"\S*", rest).group()


# -- the check afterwards ------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _permissive_parser():
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    md.validateLink = lambda url: True  # see every link a looser renderer would make
    return md


def _code_block_lines(text: str) -> set[int]:
    lines: set[int] = set()
    if not ("```" in text or "~~~" in text or "\n    " in text or "\t" in text or text.startswith("    ")):
        return lines  # no fence and no indented line: no code block (and no parse of a long text)
    for token in _permissive_parser().parse(text):
        if token.type in ("fence", "code_block") and token.map:
            lines.update(range(*token.map))
    return lines


def _unsafe_left(markdown: str) -> bool:
    for token in _permissive_parser().parse(markdown):
        if token.type == "html_block":
            return True
        for child in token.children or ():
            if child.type == "html_inline":
                return True
            if child.type == "link_open" and not is_safe_link(str(child.attrGet("href") or "")):
                return True
            if child.type == "image" and not is_safe_image(str(child.attrGet("src") or "")):
                return True
    return False


def _escape_everything(text: str) -> str:
    """The last resort: every character that could open HTML, a link or an image, escaped."""
    return re.sub(r"([<\[\]!\\`])", lambda m: "&lt;" if m.group() == "<" else "\\" + m.group(), text)
