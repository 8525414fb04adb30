"""MarkdownStream renders every prefix of a growing answer exactly like a full render."""

from __future__ import annotations

import pytest

from codetether_magics.notebook.view.markdown import FORCED_CUT, MarkdownStream, markdown_to_html

DOCUMENT = """\
# Residuals

The plot *fans out*: variance grows with `x`.
Second line of the paragraph.

Setext heading
--------------

- first item
- second item

  continued in the item

- third item (the list is loose now)

1. one
2. two

10. ten

> a quote
lazy continuation

> another quote

```python
def fit(x):

    return x * 2
```

    indented code

    more indented code

| model | r2 |
|-------|----|
| ols   | 0.8 |

Text with <b>raw html</b> and a [link](https://example.org) ~~gone~~.

***

Final paragraph
"""


def growing_prefixes(text: str):
    """Every prefix, as a streamed answer arrives a character at a time."""
    return [text[:end] for end in range(len(text) + 1)]


@pytest.mark.parametrize("document", [DOCUMENT, DOCUMENT.replace("\n\n", "\n\n\n")])
def test_every_prefix_renders_like_a_full_render(document):
    stream = MarkdownStream()
    for prefix in growing_prefixes(document):
        assert stream.render(prefix) == markdown_to_html(prefix), repr(prefix[-60:])


def test_finished_blocks_are_not_parsed_again():
    stream = MarkdownStream()
    paragraphs = [f"Paragraph {i} with **bold** text." for i in range(200)]
    text = ""
    for paragraph in paragraphs:
        text += paragraph + "\n\n"
        stream.render(text)
    # Only the last block stays open; everything before it was frozen.
    assert len(text) - len(stream._frozen_source) < 80
    assert stream.render(text) == markdown_to_html(text)


def test_a_text_that_is_not_a_continuation_starts_again():
    stream = MarkdownStream()
    stream.render("one\n\ntwo\n\nthree")
    assert stream.render("other\n\ntext") == markdown_to_html("other\n\ntext")


# -- long blocks: cut at a line, so a flush parses a bounded rest -------------------------------

def _shapes(size: int) -> dict[str, str]:
    line = "word " * 15  # 75 characters
    return {
        "paragraph": (line + "\n") * (size // 76),
        "one_line": "word " * (size // 5),
        "list": "".join(f"- item {i} with *emphasis* and `code`\n" for i in range(size // 38)),
        "ordered": "".join(f"{i}. item {i}\n" for i in range(1, size // 14)),
        "code": "```python\n" + "".join(f"x_{i} = {i} * 2  # a comment\n" for i in range(size // 28)),
        "table": "| n | square |\n|---|---|\n" + "".join(f"| {i} | {i * i} |\n" for i in range(size // 16)),
    }


@pytest.mark.parametrize("shape", list(_shapes(1)))
def test_a_long_block_streams_with_a_bounded_open_rest(shape):
    text = _shapes(120 * 1024)[shape]
    stream = MarkdownStream()
    step = 997  # characters per flush
    longest_rest = 0
    for end in range(step, len(text) + step, step):
        stream.update(text[:end])
        longest_rest = max(longest_rest, len(text[:end]) - len(stream._frozen_source))
    assert longest_rest < FORCED_CUT + 2 * step, longest_rest  # never the whole block again
    assert len(stream.pieces) > 5
    html = stream.render(text)
    # Everything is shown, once, in order (the seams are only between blocks of the same kind).
    if shape == "table":
        assert html.count("<th>square</th>") == 1 and html.count("<tr>") == text.count("\n") - 1
    elif shape == "code":
        assert html.count("x_0 =") + html.count('<span class="n">x_0</span>') >= 1
        last = text.rstrip("\n").rsplit("\n", 1)[1].split(" ")[0]
        assert last in html or f'<span class="n">{last}</span>' in html
        assert "```" not in html
    elif shape in ("list", "ordered"):
        assert html.count("<li>") == text.count("\n")
    if shape == "ordered":  # a continued ordered list goes on with its own numbers
        assert '<ol start="' in html
    words = [w for w in text.split() if w.isalnum()][-3:]
    assert all(w in html for w in words)


def test_a_short_text_is_not_cut():
    text = _shapes(4 * 1024)["paragraph"]
    stream = MarkdownStream()
    assert stream.render(text) == markdown_to_html(text) and stream.pieces == []
