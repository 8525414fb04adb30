"""The live view: throttling, what it shows, escaping, display bundle, approval buttons."""

from __future__ import annotations

import asyncio
import html
import json
import re
import threading

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from codetether_magics.agent.tools.base import ApprovalRequest
from codetether_magics.events import (
    ApprovalRequestEvent,
    DoneEvent,
    ErrorEvent,
    StreamRetryEvent,
    TextChunkEvent,
    TextCompleteEvent,
    ThinkingCompleteEvent,
    ThinkingEvent,
    ToolCallCompleteEvent,
    ToolCallStartEvent,
    ToolHeartbeatEvent,
    UsageReportEvent,
)
from codetether_magics.notebook.view import WIDGET_MIME, LiveView


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def count_value_changes(view: LiveView) -> list[str]:
    seen: list[str] = []
    view.live.observe(lambda change: seen.append(change["new"]), names="value")
    return seen


def test_first_event_updates_the_widget_at_once():
    view = LiveView(clock=FakeClock())
    seen = count_value_changes(view)
    view.on_event(TextChunkEvent(text="Hel"))
    assert len(seen) == 1 and view.updates == 1
    assert "Hel" in view.shown_html()


def test_burst_without_a_loop_is_coalesced_to_twenty_per_second():
    clock = FakeClock()
    view = LiveView(clock=clock)
    seen = count_value_changes(view)
    text = ""
    for i in range(1000):  # 1000 tokens over one simulated second
        text += f"w{i} "
        view.on_event(TextChunkEvent(text=text))
        clock.now += 0.001
    assert 18 <= len(seen) <= 21, len(seen)
    view.finish()
    assert len(seen) <= 22
    assert "w999" in view.shown_html()  # finish always flushes the last state


async def test_burst_on_a_running_loop_gets_a_leading_and_a_trailing_update():
    view = LiveView(min_interval=0.05)
    flushed = asyncio.Event()
    seen = count_value_changes(view)
    view.live.observe(lambda change: flushed.set(), names="value")
    text = ""
    for i in range(1000):
        text += f"t{i} "
        view.on_event(TextChunkEvent(text=text))
    assert len(seen) == 1  # the leading edge; the rest waits for the trailing flush
    assert "t999" not in view.shown_html()
    flushed.clear()
    await asyncio.wait_for(flushed.wait(), timeout=2)
    assert len(seen) == 2
    assert "t999" in view.shown_html()  # the trailing flush carried the latest text, without finish()


async def test_events_from_a_worker_thread_loop_flush_on_that_loop():
    view = LiveView(min_interval=0.02)
    done = threading.Event()

    async def stream():
        trailing = asyncio.Event()
        view.live.observe(lambda change: trailing.set(), names="value")
        for i in range(200):
            view.on_event(TextChunkEvent(text="x" * i + "END"))
        trailing.clear()  # set by the leading update; now wait for the trailing one
        await asyncio.wait_for(trailing.wait(), timeout=2)
        done.set()

    thread = threading.Thread(target=lambda: asyncio.run(stream()))
    thread.start()
    thread.join(timeout=5)
    assert done.is_set()
    assert view.updates == 2
    assert "x" * 199 + "END" in view.shown_html()


def test_raw_html_from_the_model_and_tools_is_escaped():
    view = LiveView(clock=FakeClock())
    view.on_event(TextChunkEvent(text="Look: <script>alert(1)</script> and [x](javascript:alert(1))"))
    view.on_event(ToolCallStartEvent(tool_call_id="c1", name="<b>py</b>",
                                     arguments='{"code": "<img src=x onerror=1>"}'))
    view.on_event(ToolCallCompleteEvent(tool_call_id="c1", name="<b>py</b>", output="<iframe>", success=True,
                                        duration_ms=5))
    view.finish()
    value = view.shown_html()
    for raw in ("<script", "<img", "<iframe", "<b>py", 'href="javascript'):
        assert raw not in value
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in value
    assert "&lt;iframe&gt;" in value


def test_markdown_is_rendered():
    view = LiveView(clock=FakeClock())
    view.on_event(TextCompleteEvent(text="# Title\n\n**bold** and `code`\n\n| a | b |\n|---|---|\n| 1 | 2 |"))
    value = view.shown_html()
    assert "<h1>Title</h1>" in value and "<strong>bold</strong>" in value and "<code>code</code>" in value
    assert "<table>" in value


def test_thinking_and_tool_calls_are_collapsible_parts_in_order():
    clock = FakeClock()
    view = LiveView(clock=clock)
    view.set_status("Waiting for openai/gpt-4o…")
    assert "Waiting for openai/gpt-4o…" in view.shown_html()
    events = [
        ThinkingEvent(text="Let me think"),
        ThinkingCompleteEvent(text="Let me think about residuals"),
        TextChunkEvent(text="I will run code."),
        ToolCallStartEvent(tool_call_id="c1", name="python", arguments='{"code": "x = 1"}'),
        ToolHeartbeatEvent(tool_call_id="c1", name="python", elapsed_secs=3.2),
        ToolCallCompleteEvent(tool_call_id="c1", name="python", output="done", success=True, duration_ms=1500),
        ToolCallStartEvent(tool_call_id="c2", name="read_file", arguments='{"path": "missing"}'),
        ToolCallCompleteEvent(tool_call_id="c2", name="read_file", output="no such file", success=False, duration_ms=7),
        TextChunkEvent(text="The answer is 42."),
        UsageReportEvent(prompt_tokens=1200, completion_tokens=34, duration_ms=900, model="openai/gpt-4o"),
        DoneEvent(),
    ]
    for event in events:
        clock.now += 1  # every event past the throttle window
        view.on_event(event)
    value = view.shown_html()
    order = [value.index(s) for s in ("Let me think about residuals", "I will run code.", "python",
                                      "read_file", "The answer is 42.")]
    assert order == sorted(order)
    assert value.count("<details") == 3  # thinking + two tool calls
    assert '<span class="n">x</span> <span class="o">=</span> <span class="mi">1</span>' in value  # code, highlighted
    assert "&quot;code&quot;" not in value  # not as JSON
    assert "succeeded · 1.5 s" in value and "failed · 7 ms" in value
    assert "done" in value and "no such file" in value
    assert "Thinking…" not in value  # thinking finished when the answer began
    view.finish()
    value = view.shown_html()
    assert "Waiting for" not in value  # the status line is gone at the end
    assert "openai/gpt-4o · 1,234 tokens (1,200 in, 34 out) · 1 step" in value


def test_cumulative_text_over_steps_is_not_repeated():
    clock = FakeClock()
    view = LiveView(clock=clock)
    for event in [
        TextCompleteEvent(text="First."),
        ToolCallStartEvent(tool_call_id="c1", name="python", arguments="{}"),
        ToolCallCompleteEvent(tool_call_id="c1", name="python", output="", success=True, duration_ms=1),
        TextChunkEvent(text="First. Second."),  # whole turn so far
        TextCompleteEvent(text="First. Second."),
        ToolCallStartEvent(tool_call_id="c2", name="python", arguments="{}"),
        ToolCallCompleteEvent(tool_call_id="c2", name="python", output="", success=True, duration_ms=1),
        TextChunkEvent(text="First. Second. Thi"),
        TextChunkEvent(text="First. Second. Third."),
    ]:
        clock.now += 1
        view.on_event(event)
    shown = view.shown_html()
    assert [shown.count(word) for word in ("First.", "Second.", "Third.")] == [1, 1, 1]
    assert shown.index("First.") < shown.index("Second.") < shown.index("Third.")


def test_status_line_for_tools_retries_and_errors():
    clock = FakeClock()
    view = LiveView(clock=clock)
    view.on_event(ToolCallStartEvent(tool_call_id="c1", name="python", arguments="{}"))
    assert "Running python…" in view.shown_html()
    clock.now += 1
    view.on_event(StreamRetryEvent(attempt=1, max_restarts=3, reason="HTTP 503"))
    assert "Retrying (1/3): HTTP 503" in view.shown_html()
    clock.now += 1
    view.on_event(ApprovalRequestEvent(tool_call_id="c1", name="python", arguments="{}"))
    # The request alone (the call may be allowed with --allow) is no question to the user.
    assert "approval" not in view.shown_html() and "running…" in view.shown_html()
    clock.now += 1
    view.on_event(ErrorEvent(message="model <unreachable>"))
    assert "model &lt;unreachable&gt;" in view.shown_html()


def test_the_error_that_ended_the_run_is_not_repeated_in_the_view():
    view = LiveView(clock=FakeClock())
    view.on_event(TextChunkEvent(text="partial"))
    view.on_event(ErrorEvent(message="cut off mid-stream"))  # a note the run survives
    view.on_event(ErrorEvent(message="HTTP 500: boom"))
    view.finish(error="HTTP 500: boom")  # the cell's error output says this one
    value = view.shown_html()
    assert "partial" in value and "cut off mid-stream" not in value  # the status line went at the end
    assert "boom" not in value and "Error" not in value


def test_show_displays_the_widget_alone_so_nbval_skips_it():
    InteractiveShell.instance()  # display() needs a shell to publish through (one per process)
    bundles, view_ids = [], []
    for _ in range(2):
        view = LiveView()
        view_ids.append(view.widget.model_id)
        with capture_output(display=True) as captured:
            view.show()
        assert len(captured.outputs) == 1
        bundles.append(captured.outputs[0].data)
        view.close()
    first, second = bundles
    assert set(first) == set(second) == {WIDGET_MIME}  # no text/plain for nbval to compare
    assert first[WIDGET_MIME]["model_id"] != second[WIDGET_MIME]["model_id"]  # two real widgets
    assert first[WIDGET_MIME]["model_id"] == view_ids[0]


def test_close_leaves_no_widget_alive():
    import ipywidgets

    before = set(ipywidgets.widgets.widget._instances)
    view = LiveView(clock=FakeClock())
    view.on_event(ThinkingCompleteEvent(text="plan"))
    view.on_event(ToolCallStartEvent(tool_call_id="c1", name="python", arguments='{"code": "1"}'))
    view.on_event(ToolCallCompleteEvent(tool_call_id="c1", name="python", output="1", success=True, duration_ms=1))
    view.on_event(TextChunkEvent(text="done"))
    view.finish()
    assert len(set(ipywidgets.widgets.widget._instances) - before) >= 5
    view.close()
    assert set(ipywidgets.widgets.widget._instances) - before == set()


async def test_approval_buttons_approve_and_deny():
    view = LiveView(clock=FakeClock())
    view.on_event(ToolCallStartEvent(tool_call_id="c1", name="write_file", arguments='{"path": "a.py"}'))
    for expected in (True, False):
        task = asyncio.create_task(view.ask_approval(
            ApprovalRequest(tool_call_id="c1", name="write_file", arguments={"path": "a.py"})))
        await asyncio.sleep(0)  # let the task show its buttons
        approve, deny = view.buttons.children
        shown = view.shown_html()
        assert "Approve this <code>write_file</code> call?" in shown and "a.py" in shown
        assert shown.count("a.py") == 1  # the arguments once, in the call's own part
        (approve if expected else deny).click()
        assert await asyncio.wait_for(task, timeout=2) is expected
        assert view.buttons.children == ()
    view.finish()
    assert "Approve this" not in view.shown_html()
    assert "denied" in view.shown_html()


async def test_approval_click_from_another_thread_and_cancellation():
    view = LiveView()
    request = ApprovalRequest(tool_call_id="c9", name="shell", arguments={"cmd": "ls"})
    task = asyncio.create_task(view.ask_approval(request))
    await asyncio.sleep(0)
    approve, _ = view.buttons.children
    clicker = threading.Thread(target=approve.click)  # a comm message handled off the loop's thread
    clicker.start()
    assert await asyncio.wait_for(task, timeout=2) is True
    clicker.join()

    task = asyncio.create_task(view.ask_approval(request))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert view.buttons.children == ()


def test_first_event_is_not_held_back_by_the_status_line():
    clock = FakeClock()
    view = LiveView(clock=clock)
    view.set_status("Waiting for openai/gpt-4o…")  # an update just now
    clock.now += 0.001
    view.on_event(TextChunkEvent(text="First words"))
    assert "First words" in view.shown_html()  # shown at once, not after the throttle window
    clock.now += 0.001
    view.on_event(TextChunkEvent(text="First words and more"))
    assert "and more" not in view.shown_html()  # later events are throttled again


def test_finish_after_an_interrupt_marks_unfinished_tools():
    view = LiveView(clock=FakeClock())
    view.on_event(TextChunkEvent(text="Running a long job. See [the docs][d].\n\n[d]: https://example.org"))
    view.on_event(ToolCallStartEvent(tool_call_id="c1", name="bash", arguments='{"cmd": "sleep 100"}'))
    view.finish()
    value = view.shown_html()
    assert "did not finish" in value and "running…" not in value
    assert '<a href="https://example.org">the docs</a>' in value  # the finished text is rendered in full


def test_finished_parts_get_their_own_widget_that_is_never_redrawn():
    clock = FakeClock()
    view = LiveView(clock=clock)
    view.on_event(ThinkingEvent(text="Which tool?"))
    assert "<details class=\"ct-thinking\"" in view.live.value and " open>" in view.live.value  # open while live
    clock.now += 1
    view.on_event(ToolCallStartEvent(tool_call_id="c1", name="python", arguments='{"code": "2 * 21"}'))
    assert len(view.parts) == 1 and "Which tool?" in view.parts[0].value  # thinking settled
    assert " open>" not in view.parts[0].value  # and collapsed
    assert "python" in view.live.value and " open>" in view.live.value  # the running tool shows its arguments
    clock.now += 1
    view.on_event(ToolCallCompleteEvent(tool_call_id="c1", name="python", output="42", success=True, duration_ms=9))
    assert len(view.parts) == 2 and "42" in view.parts[1].value
    assert view.widget.children == (view.style, *view.parts, view.live, view.buttons)
    tool_part = view.parts[1]
    redraws = []
    tool_part.observe(lambda change: redraws.append(change), names="value")
    text = ""
    for i in range(50):
        clock.now += 1
        text += f"w{i} "
        view.on_event(TextChunkEvent(text=text))
    assert "w49" in view.live.value and "ct-tool" not in view.live.value  # updates resend only the growing part
    view.finish()
    assert redraws == []  # a <details> the user opened stays open while the answer streams
    assert "w49" in view.parts[-1].value and "ct-footer" in view.live.value  # at the end only the footer is live


def test_a_settled_part_that_changes_is_redrawn():
    clock = FakeClock()
    view = LiveView(clock=clock)
    view.on_event(ToolCallStartEvent(tool_call_id="c1", name="python", arguments="{}"))
    view.on_event(ToolCallCompleteEvent(tool_call_id="c1", name="python", output="first", success=True, duration_ms=1))
    clock.now += 1
    view.on_event(ToolCallCompleteEvent(tool_call_id="c1", name="python", output="second", success=True, duration_ms=1))
    assert len(view.parts) == 1 and "second" in view.parts[0].value and "first" not in view.shown_html()


def test_an_empty_thinking_event_is_only_a_status():
    clock = FakeClock()
    view = LiveView(clock=clock)
    view.set_status("Waiting for the model…")
    clock.now += 0.001
    view.on_event(ThinkingEvent())  # the loop's "model at work" signal, inside the throttle window
    assert "Thinking…" not in view.shown_html()
    clock.now += 0.001
    view.on_event(TextChunkEvent(text="Hello"))  # 2 ms after the last update, and still shown at once
    assert "Hello" in view.shown_html() and "Writing…" in view.shown_html()
    assert "ct-thinking" not in view.shown_html()  # no empty Thinking part


def test_footer_leaves_out_unknown_token_counts():
    view = LiveView(clock=FakeClock())
    view.on_event(UsageReportEvent(prompt_tokens=0, completion_tokens=0, duration_ms=5, model="ollama/llama3"))
    view.finish()
    assert "ollama/llama3 · 1 step · " in view.shown_html() and "tokens" not in view.shown_html()


def test_footer_names_no_model_when_none_was_called():
    view = LiveView(clock=FakeClock())
    view.on_event(TextCompleteEvent(text="from nowhere"))
    view.finish()
    footer = view.live.value.split("<sub>")[1].split("</sub>")[0]
    assert "step" not in footer and "/" not in footer and "tokens" not in footer  # only the time it took


def test_a_tool_call_is_shown_at_once_even_inside_the_throttle_window():
    # The tool may block the event loop next (model-written code), so no timer could flush it later.
    clock = FakeClock()
    view = LiveView(clock=clock)
    view.on_event(TextChunkEvent(text="Let me run that."))
    updates = view.updates
    clock.now += 0.001  # well inside the 50 ms window
    view.on_event(ToolCallStartEvent(tool_call_id="c1", name="python", arguments='{"code": "1+1"}'))
    assert view.updates == updates + 1
    assert "python" in view.shown_html()


def test_footer_adds_up_the_usage_reports_when_the_caller_gives_no_totals():
    view = LiveView(clock=FakeClock())
    for prompt, completion in ((100, 7), (130, 12)):
        view.on_event(UsageReportEvent(prompt_tokens=prompt, completion_tokens=completion, duration_ms=5,
                                       model="openai/gpt-4o"))
    view.finish()  # the model, too, comes from the reports
    assert "openai/gpt-4o · 249 tokens (230 in, 19 out) · 2 steps · " in view.shown_html()


async def test_the_approval_prompt_shows_controls_as_escapes_and_the_code_once():
    # What the user approves is what runs: an ANSI "erase line" or a right-to-left override
    # cannot hide or reorder part of the code in the prompt.
    view = LiveView(clock=FakeClock())
    code = "print('safe')\x1b[2K\rimport os; os.remove('x')  # \u202egnp.tac"
    view.on_event(ToolCallStartEvent(tool_call_id="c1", name="python", arguments=json.dumps({"code": code})))
    task = asyncio.create_task(view.ask_approval(
        ApprovalRequest(tool_call_id="c1", name="python", arguments={"code": code})))
    await asyncio.sleep(0)
    shown = view.shown_html()
    assert "\x1b" not in shown and "\u202e" not in shown and "\r" not in shown
    text = html.unescape(re.sub(r"<[^>]+>", "", shown))
    assert "print('safe')\\x1b[2K\\x0dimport os; os.remove('x')  # \\u202egnp.tac" in text
    assert text.count("remove") == 1 and "Approve this <code>python</code> call?" in shown
    view.buttons.children[1].click()
    assert await asyncio.wait_for(task, timeout=2) is False


@pytest.mark.parametrize("hidden", ["\u2028", "\u2029", "\xad", "\u180e", "\u3164", "\u115f", "\uffa0", "\u034f",
                                    "\U000e0041", "\u2066", "\u200b", "\x85"])
async def test_the_approval_prompt_shows_invisible_characters_as_escapes(hidden):
    # A Hangul filler is a valid, blank Python name; a line separator breaks the line in a browser
    # but not in Python; tag characters carry invisible text: none may hide in what is approved.
    code = f"cmd{hidden} = 'rm -rf ~'  # tidy\nimport os; os.system(cmd{hidden})"
    view = LiveView(clock=FakeClock())
    view.on_event(ToolCallStartEvent(tool_call_id="c1", name="python", arguments=json.dumps({"code": code})))
    task = asyncio.create_task(view.ask_approval(
        ApprovalRequest(tool_call_id="c1", name="python", arguments={"code": code})))
    await asyncio.sleep(0)
    shown = view.shown_html()
    text = html.unescape(re.sub(r"<[^>]+>", "", shown))
    escape = f"\\U{ord(hidden):08x}" if ord(hidden) > 0xFFFF else (
        f"\\x{ord(hidden):02x}" if ord(hidden) < 0x100 else f"\\u{ord(hidden):04x}")
    assert hidden not in html.unescape(shown) and text.count(escape) == 2
    view.buttons.children[1].click()
    assert await asyncio.wait_for(task, timeout=2) is False


def test_long_streamed_thinking_is_not_parsed_again_on_every_flush():
    clock = FakeClock()
    view = LiveView(clock=clock)
    text = ""
    for i in range(400):
        clock.now += 1
        text += f"Step {i}: consider *this*.\n\n"
        view.on_event(ThinkingEvent(text=text))
    block = view.state.blocks[0]
    assert len(text) - len(block.stream._frozen_source) < 100  # only the last paragraph is open
    assert "Step 399" in view.shown_html() and "<em>this</em>" in view.shown_html()


async def test_the_approval_prompt_shows_all_of_long_code_not_the_capped_event_arguments():
    from codetether_magics.caps import ARGUMENTS_CAP, cap_text

    view = LiveView(clock=FakeClock())
    code = "".join(f"value_{i} = {i}\n" for i in range(600)) + "import shutil; shutil.rmtree('/data')\n"
    assert len(code) > ARGUMENTS_CAP
    capped = cap_text(json.dumps({"code": code}), ARGUMENTS_CAP)  # what tool_call_start carries
    view.on_event(ToolCallStartEvent(tool_call_id="c1", name="python", arguments=capped))
    task = asyncio.create_task(view.ask_approval(
        ApprovalRequest(tool_call_id="c1", name="python", arguments={"code": code})))
    await asyncio.sleep(0)
    text = html.unescape(re.sub(r"<[^>]+>", "", view.shown_html()))
    assert "shutil.rmtree('/data')" in text and "truncated" not in text
    view.buttons.children[1].click()
    assert await asyncio.wait_for(task, timeout=2) is False


@pytest.mark.parametrize("streamed", [True, False], ids=["streamed", "at-once"])
def test_a_long_answer_shows_whole_whether_it_streamed_or_came_at_once(streamed):
    lines = [f"- item {i}" for i in range(5000)]  # ~50 KB: past the exact re-render limit
    text = "\n".join(lines)
    clock = FakeClock()
    view = LiveView(clock=clock)
    if streamed:
        for end in range(1000, len(text), 1000):
            clock.now += 1
            view.on_event(TextChunkEvent(text=text[:end]))
    clock.now += 1
    view.on_event(TextCompleteEvent(text=text))
    view.finish()
    shown = view.shown_html()
    assert shown.count("<li>") == 5000 and "item 0<" in shown and "item 4999<" in shown
    assert len(view.parts) > 1  # in pieces, each its own widget
