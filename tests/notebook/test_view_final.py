"""final_bundle: the cell's one deterministic output, with raw HTML made inert."""

from __future__ import annotations

from markdown_it import MarkdownIt

from codetether_magics.notebook.render import escape_markdown_html, markdown_to_html
from codetether_magics.notebook.view import final_bundle

_COMMONMARK_WITH_HTML = MarkdownIt("commonmark", {"html": True})


def raw_html_tokens(markdown: str) -> list[str]:
    found = []
    for token in _COMMONMARK_WITH_HTML.parse(markdown):
        if token.type == "html_block":
            found.append(token.content)
        found.extend(c.content for c in token.children or () if c.type == "html_inline")
    return found


def test_bundle_is_markdown_and_plain_text_of_the_answer():
    bundle = final_bundle("The residuals fan out because **variance grows** with x.\n")
    assert bundle == {
        "text/markdown": "The residuals fan out because **variance grows** with x.",
        "text/plain": "The residuals fan out because **variance grows** with x.",
    }


def test_bundle_is_a_pure_function_of_its_arguments():
    a = final_bundle("Same answer", error="Stopped")
    b = final_bundle("Same answer", error="Stopped")
    assert a == b
    assert final_bundle("Other answer") != a


def test_error_is_appended_literally():
    bundle = final_bundle("partial answer", error="HTTP 500: *boom* <b>x</b>\nsecond line")
    assert bundle["text/plain"] == "partial answer\n\nError: HTTP 500: *boom* <b>x</b>\nsecond line"
    markdown = bundle["text/markdown"]
    assert markdown.startswith("partial answer\n\n> **Error:** ")
    html = markdown_to_html(markdown)
    assert "*boom* &lt;b&gt;x&lt;/b&gt;" in html  # neither emphasis nor a tag
    assert "second line" in html
    assert raw_html_tokens(markdown) == []


def test_empty_answer_says_so():
    assert final_bundle("  ") == {"text/markdown": "*(no answer)*", "text/plain": "(no answer)"}
    assert final_bundle("", error="Interrupted")["text/plain"] == "Error: Interrupted"


def test_raw_html_in_the_answer_is_inert_but_code_is_kept():
    answer = (
        "Here: <img src=x onerror=alert(1)> and `<b>inline code</b>`\n\n"
        "<div onclick='x()'>\nblock\n</div>\n\n"
        "```html\n<script>kept()</script>\n```\n"
    )
    bundle = final_bundle(answer)
    markdown = bundle["text/markdown"]
    assert raw_html_tokens(answer)  # the input really holds HTML
    assert raw_html_tokens(markdown) == []
    assert "`<b>inline code</b>`" in markdown
    assert "```html\n<script>kept()</script>\n```" in markdown
    assert bundle["text/plain"] == answer.strip()  # plain text stays as the model wrote it
    html = markdown_to_html(markdown)
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_answers_without_html_are_unchanged():
    for text in ["x < y and a<b", "Use `<div>` and 3 < 4; see <https://example.org>", "```\n<p>\n```"]:
        assert escape_markdown_html(text) == text


def test_tricky_backticks_cannot_smuggle_html():
    for text in [
        "` open\n\n<img src=x onerror=1>\n\nclose `",
        "para `x\n# heading <img src=x onerror=1> `y",
        "\\`<b>not code</b>\\`",
        "``a ` <i>b</i> ``",
        "<a href=\"`\">`</a>",
    ]:
        assert raw_html_tokens(escape_markdown_html(text)) == [], text
