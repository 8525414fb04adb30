"""The cell's static record, built from a run's events: what it holds, and that it is stable and inert."""

from __future__ import annotations

import json

from nbconvert.filters.markdown_mistune import markdown2html_mistune

from codetether_magics.events import (
    ErrorEvent,
    TextChunkEvent,
    TextCompleteEvent,
    ThinkingCompleteEvent,
    ToolCallCompleteEvent,
    ToolCallStartEvent,
    UsageReportEvent,
)
from codetether_magics.notebook.view import ViewState, record_bundle, text_bundle
from tests.notebook.test_view_safe import assert_inert

CODE = "import numpy as np\nx = np.arange(3)\nprint(x.sum())"


def _state(events) -> ViewState:
    state = ViewState()
    for event in events:
        state.apply(event)
    state.end()
    return state


def _tool(call_id, name, arguments, *, success=True, output="ok", status=None, duration_ms=123):
    return [
        ToolCallStartEvent(tool_call_id=call_id, name=name, arguments=json.dumps(arguments)),
        ToolCallCompleteEvent(tool_call_id=call_id, name=name, output=output, success=success,
                              duration_ms=duration_ms, status=status),
    ]


def _usage(prompt, completion, **extra):
    return UsageReportEvent(prompt_tokens=prompt, completion_tokens=completion, duration_ms=987,
                            model="openai/gpt-4o", **extra)


RUN = [
    ThinkingCompleteEvent(text="The user wants a *sum*."),
    TextCompleteEvent(text="Let me compute it."),
    _usage(100, 20),
    *_tool("call_1", "python", {"code": CODE}, output="3"),
    *_tool("call_2", "bash", {"command": "ls -la | wc -l"}, output="5"),
    *_tool("call_3", "write", {"path": "notes/a.py", "content": "print('hi')\n"}, success=False,
           output="The user did not approve this `write` call, so it was not run."),
    *_tool("call_4", "read", {"path": "missing.txt"}, success=False, output="Error: no such file"),
    TextChunkEvent(text="Let me compute it.\n\nThe sum is **3**: $\\sum_i x_i = 3$."),
    TextCompleteEvent(text="Let me compute it.\n\nThe sum is **3**: $\\sum_i x_i = 3$."),
    _usage(150, 30),
]


def test_the_record_holds_thinking_tool_calls_as_code_the_answer_and_a_footer():
    bundle = record_bundle(_state(RUN))
    markdown = bundle["text/markdown"]
    assert markdown == "\n\n".join([
        "<details>\n<summary>Thinking</summary>\n\nThe user wants a *sum*.\n\n</details>",
        "Let me compute it.",
        f"<details>\n<summary><code>python</code> · succeeded</summary>\n\n```python\n{CODE}\n```\n\n</details>",
        "<details>\n<summary><code>bash</code> · succeeded</summary>\n\n```bash\nls -la | wc -l\n```\n\n</details>",
        "<details>\n<summary><code>write</code> · denied</summary>\n\n`notes/a.py`\n\n```python\nprint('hi')\n```"
        "\n\n</details>",
        "<details>\n<summary><code>read</code> · failed</summary>\n\n```json\n{\n  \"path\": \"missing.txt\"\n}\n```"
        "\n\n</details>",
        "The sum is **3**: $\\sum_i x_i = 3$.",
        "<sub>openai/gpt-4o · 300 tokens (250 in, 50 out)</sub>",
    ])
    assert bundle["text/plain"].split("\n\n") == [
        "[thinking]", "Let me compute it.", "[python: succeeded]", "[bash: succeeded]", "[write: denied]",
        "[read: failed]", "The sum is **3**: $\\sum_i x_i = 3$.", "openai/gpt-4o · 300 tokens (250 in, 50 out)",
    ]


def test_no_ids_clocks_durations_or_tool_output_and_the_same_bytes_every_time():
    first = record_bundle(_state(RUN))
    other_times = [e.model_copy(update={"duration_ms": 5}) if hasattr(e, "duration_ms") else e for e in RUN]
    assert record_bundle(_state(other_times)) == first
    text = json.dumps(first)
    for volatile in ("call_1", "123", "987", "ms", "no such file", "did not approve"):
        assert volatile not in text, volatile


def test_it_renders_without_a_kernel_as_collapsible_parts():
    html = markdown2html_mistune(record_bundle(_state(RUN))["text/markdown"])
    assert html.count("<details>") == 5 and html.count("<summary>") == 5
    assert "<code>python</code> · succeeded" in html
    assert html.count('<div class="highlight">') == 4 and '<span class="nn">numpy</span>' in html  # code, highlighted


def test_the_event_status_wins_and_a_refusal_reads_as_denied():
    state = _state([*_tool("c1", "python", {"code": "1"}, success=False, output="whatever", status="denied"),
                    *_tool("c2", "python", {"code": "2"}, success=False,
                           output="The user did not approve this `python` call, so it was not run. (tool "
                                  "'python' needs approval; re-run the cell with --allow python)"),
                    *_tool("c3", "python", {"code": "3"}, success=False, output="Error: NameError: x")])
    assert [b.status for b in state.blocks] == ["denied", "denied", "failed"]


def test_cost_shows_when_the_usage_reports_carry_it():
    events = [TextCompleteEvent(text="hi"), _usage(10, 5, cost_usd=0.0012), _usage(10, 5, cost_usd=0.0030)]
    footer = record_bundle(_state(events))["text/markdown"].split("\n\n")[-1]
    assert footer == "<sub>openai/gpt-4o · 30 tokens (20 in, 10 out) · $0.0042</sub>"
    free = record_bundle(_state([TextCompleteEvent(text="hi"), _usage(10, 5, cost_usd=0.0)]))
    assert free["text/plain"].endswith("(10 in, 5 out)")  # no "$0" for a free or unpriced call


def test_cost_shows_the_digits_that_matter():
    from codetether_magics.notebook.view.record import format_cost

    assert [format_cost(x) for x in (0.0000033, 0.00047, 0.0142, 1.256)] == \
        ["$0.000003", "$0.00047", "$0.0142", "$1.26"]


def test_the_footer_shows_only_what_happened():
    assert record_bundle(_state([TextCompleteEvent(text="hi")])) == {"text/markdown": "hi", "text/plain": "hi"}
    zero = record_bundle(_state([TextCompleteEvent(text="hi"), _usage(0, 0)]))
    assert zero["text/markdown"] == "hi\n\n<sub>openai/gpt-4o</sub>"
    assert record_bundle(_state([])) is None  # nothing happened: no record at all
    empty = record_bundle(_state([_usage(3, 0)]))
    assert empty["text/plain"] == "(no answer)\n\nopenai/gpt-4o · 3 tokens (3 in, 0 out)"


def test_error_events_are_not_repeated_in_the_record():
    # The error that ends a run is the cell's error output; a cut-off answer says so in its text.
    state = ViewState()
    for event in [TextChunkEvent(text="part\n\n[answer cut off: reset]"), ErrorEvent(message="cut off: reset")]:
        state.apply(event)
    state.end(error="HTTP 500")
    assert record_bundle(state)["text/markdown"] == "part\n\n[answer cut off: reset]"


def test_full_arguments_from_the_transcript_replace_the_capped_event_ones():
    long_code = "x = 1\n" * 2000  # 12 KB: the event carries 4 KiB of it, cut
    capped = json.dumps({"code": long_code})[:4000] + "… [truncated]"
    state = _state([ToolCallStartEvent(tool_call_id="c1", name="python", arguments=capped),
                    ToolCallCompleteEvent(tool_call_id="c1", name="python", output="", success=True, duration_ms=1)])
    markdown = record_bundle(state, {"c1": json.dumps({"code": long_code})})["text/markdown"]
    assert f"```python\n{long_code}```" in markdown


def test_backticks_and_open_fences_cannot_break_out_of_their_part():
    code = "s = '''\n```\n'''\nprint(s)"
    events = [TextCompleteEvent(text="Look:\n\n```python\nnever closed"),
              *_tool("c1", "python", {"code": code}),
              TextChunkEvent(text="Look:\n\n```python\nnever closed\n\nDone."),
              _usage(1, 1)]
    markdown = record_bundle(_state(events))["text/markdown"]
    assert "````python\n" + code + "\n````" in markdown
    html = markdown2html_mistune(markdown)
    assert html.count("<details>") == 1 and "<sub>openai/gpt-4o" in html  # the footer is not swallowed


def test_hostile_parts_are_inert_in_the_record():
    events = [
        ThinkingCompleteEvent(text="<img src=\"http://127.0.0.1:9/t\"> ![x](http://127.0.0.1:9/t)"),
        *_tool("c1", "<img src=x onerror=alert(1)>", {"a": "<script>alert(1)</script>"}),
        *_tool("c2", "python", {"code": "print('\x1b[2J\u202eevil')"}),
        TextChunkEvent(text="[x](javascript:alert(1)) ![y][r]\n\n[r]: http://127.0.0.1:9/r"),
        _usage(1, 1),
    ]
    bundle = record_bundle(_state(events))
    html = markdown2html_mistune(bundle["text/markdown"])
    html = html.replace("<details>", "").replace("</details>", "").replace("<summary>", "")
    html = html.replace("</summary>", "").replace("<sub>", "").replace("</sub>", "")
    assert_inert(html)
    assert "\\x1b[2J\\u202eevil" in bundle["text/markdown"] and "\x1b" not in bundle["text/plain"]


def test_text_bundle_is_the_record_of_an_answer_alone():
    assert text_bundle("The answer is **2** <b>bold?</b>") == {
        "text/markdown": "The answer is **2** &lt;b>bold?&lt;/b>",
        "text/plain": "The answer is **2** <b>bold?</b>",
    }
    assert text_bundle("  ") == {"text/markdown": "*(no answer)*", "text/plain": "(no answer)"}


def test_code_with_other_arguments_still_shows_as_code():
    markdown = record_bundle(_state(_tool("c1", "bash", {"command": "make test", "timeout": 30})))["text/markdown"]
    assert "```bash\nmake test\n```\n\n```json\n{\n  \"timeout\": 30\n}\n```" in markdown
