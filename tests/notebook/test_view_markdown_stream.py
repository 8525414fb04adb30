"""MarkdownStream renders every prefix of a growing answer exactly like a full render."""

from __future__ import annotations

import pytest

from codetether_magics.notebook.render import MarkdownStream, markdown_to_html

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
