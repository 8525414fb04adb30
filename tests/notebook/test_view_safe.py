"""Hostile model Markdown, made safe as source: checked through two real renderers.

markdown-it (with raw HTML on and every link accepted, as a loose renderer would) and
nbconvert's mistune renderer (what nbconvert HTML uses; it passes ``javascript:`` links and raw
HTML through as they are) render the sanitised source; the HTML must hold no tag that runs
or loads anything, no link but http(s)/mailto, no image but a data: URL, no hidden control.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt
from nbconvert.filters.markdown_mistune import markdown2html_mistune

from codetether_magics.notebook.view.markdown import markdown_to_html
from codetether_magics.notebook.view.safe import safe_markdown, visible_controls

HOSTILE = [
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](java&#x09;script:alert(1))",
    "[x](\\javascript:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[x](vbscript:msgbox(1))",
    "[x](file:///etc/passwd)",
    "[x]( <javascript:alert(1)> )",
    "<javascript:alert(1)>",
    "<vbscript:msgbox(1)>",
    "<img src=http://127.0.0.1:9/leak?d=secret>",
    '<img src="http://127.0.0.1:9/leak?d=secret">',
    "<img src=x onerror=alert(1)>",
    "<svg/onload=alert(1)>",
    "<a href='javascript:alert(1)'>click</a>",
    "<!-- hidden --> <?php x ?> <!DOCTYPE html>",
    "![x](http://127.0.0.1:9/leak?d=secret)",
    "![x](https://example.org/a.png \"title\")",
    "![x](<http://127.0.0.1:9/a b.png>)",
    "![x][r]\n\n[r]: http://127.0.0.1:9/leak",
    "![r]\n\n[r]: http://127.0.0.1:9/leak",
    "[x][r]\n\n[r]: javascript:alert(1)",
    "[r]\n\n[r]:\n  javascript:alert(1)",
    "> [r]: javascript:alert(1)\n\n[t][r]",
    "- item\n\n  [r]: data:text/html,x\n\n[y][r]",
    "[![inner](http://127.0.0.1:9/i.png)](https://example.org)",
    "![a](data:image/svg+xml;base64,PHN2Zz4=)",
    "\\\\![x](http://127.0.0.1:9/leak)",
    "`a` ![x](http://127.0.0.1:9/leak) `b`",
    "``<b>`` <b>bold</b>",
    "` open\n\n<img src=x onerror=1>\n\nclose `",
    "para `x\n# heading <img src=x onerror=1> `y",
    "<a href=\"`\">`</a>",
    "&lt;b&gt; &#60;img src=x onerror=1&#62;",
    "| a | b |\n|---|---|\n| <img src=http://127.0.0.1:9/t> | [x](javascript:1) |",
    "red \x1b[31mDANGER\x1b[0m text",
    "rm -rf \u202e/ emoh\u202c and \u2066isolate\u2069 and zero\u200bwidth",
    "line\rover",
]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def handle_comment(self, data):  # hides text from the reader
        self.tags.append(("<!--", {}))

    def handle_pi(self, data):
        self.tags.append(("<?", {}))

    def handle_decl(self, decl):
        self.tags.append(("<!", {}))


_ALLOWED = {"p", "a", "code", "pre", "em", "strong", "ul", "ol", "li", "blockquote", "table", "thead", "tbody",
            "tr", "th", "td", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "br", "del", "s", "span", "div", "img"}


def assert_inert(html: str) -> None:
    parsed = _Tags()
    parsed.feed(html)
    for tag, attrs in parsed.tags:
        assert tag in _ALLOWED, (tag, html)
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        if tag == "a" and attrs.get("class") == "anchor-link":  # nbconvert's own heading anchors
            assert str(attrs.get("href", "")).startswith("#"), attrs
        elif tag == "a":
            assert str(attrs.get("href", "")).lower().startswith(("http://", "https://", "mailto:")), attrs
        if tag == "img":
            assert str(attrs.get("src", "")).startswith(("data:image/png", "data:image/jpeg", "data:image/gif",
                                                         "data:image/webp")), attrs
    text = "".join(parsed.text)
    assert not any(c in text for c in "\x1b\r\u202e\u202c\u2066\u2069\u200b"), repr(text)


_LOOSE = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
_LOOSE.validateLink = lambda url: True


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_markdown_is_inert_in_every_renderer(text):
    safe = safe_markdown(text)
    assert_inert(_LOOSE.render(safe))
    assert_inert(markdown2html_mistune(safe))
    assert_inert(markdown_to_html(text))  # the live view


@pytest.mark.parametrize("text", HOSTILE)
def test_the_unsafe_source_really_is_unsafe_somewhere(text):
    """The corpus is hostile: each entry, unsanitised, fails the check in some renderer (a
    browser's HTML parser reading it as it stands included), so the test above proves something."""
    failures = 0
    for render in (_LOOSE.render, markdown2html_mistune, lambda raw: raw):
        try:
            assert_inert(render(text))
        except AssertionError:
            failures += 1
    harmless = {"![a](data:image/svg+xml;base64,PHN2Zz4=)", "&lt;b&gt; &#60;img src=x onerror=1&#62;",
                "[x]( <javascript:alert(1)> )", "line\rover"}
    assert failures or text in harmless, text


def test_good_markdown_is_kept_as_written():
    for text in [
        "x < y and a<b, $a<b$ and $$\\sum_i x_i$$",
        "Use `<div>` and see <https://example.org> or <me@example.org>",
        "[docs](https://example.org/a_(b)) and [mail](mailto:a@example.org)",
        "![plot](data:image/png;base64,iVBORw0KGgo=)",
        "```html\n<script>kept()</script>\n![x](http://h)\n```",
        "    <b>indented code</b>",
        "| a | b |\n|---|---|\n| 1 | 2 |",
        "**bold** _it_ ~~gone~~\n\n- one\n- two",
    ]:
        assert safe_markdown(text) == text, text


def test_a_remote_image_becomes_a_plain_link_that_loads_nothing():
    safe = safe_markdown("See ![the plot](https://example.org/p.png).")
    assert safe == "See \\![the plot](https://example.org/p.png)."
    html = markdown2html_mistune(safe)
    assert "<img" not in html and '<a href="https://example.org/p.png">the plot</a>' in html


def test_a_dropped_link_shows_its_text_as_written():
    html = _LOOSE.render(safe_markdown("Click [here](javascript:alert(1)) now"))
    assert "<a" not in html and "[here](javascript:alert(1))" in html


def test_controls_are_shown_as_escapes():
    assert visible_controls("a\x1b[31mb\u202ec\r\nd\te") == "a\\x1b[31mb\\u202ec\nd\te"
    assert safe_markdown("\x1b[2J") == "\\x1b[2J"
