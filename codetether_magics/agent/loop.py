"""The agent loop behind ``Session.prompt``, ``prompt_with_events`` and ``prompt_with_events_and_images``.

One turn: the user message (with its images) joins the transcript; then steps until the
model answers without tool calls or ``max_steps`` is reached. A step is one streamed
model call plus the tool calls it asked for. Events (docs/design.md, "Events"), in order, per step:

    thinking                           a step starts (then thinking{text} while reasoning streams)
    thinking_complete                  when reasoning was streamed
    text_chunk*                        the whole answer text of the turn so far (cumulative)
    text_complete                      the same text at the end of the step
    usage_report                       tokens, duration and "provider/model" of this call
    tool_call_start, [approval_request], tool_heartbeat*, tool_call_complete   per tool call
and ``done`` last. Text that arrives beside tool calls is the step's preamble (the model
saying what it is about to do): it is streamed and completed before the tool events, and it
stays part of the turn's text, so ``SessionResult.text`` is every step's text joined by blank lines.

The title: on a session's first turn the heuristic title is set at once; after the last
step, when ``title_model_call`` is true, ONE more short model request (same provider and
model, no tools) asks for a better title, falling back to the heuristic on any failure.
A scripted test server therefore sees that title request LAST in the first turn; pass
``title_model_call=False`` to skip it.

The request of each step is derived from the transcript by the context budget (``context``):
within 90% of the model's window, earlier turns compacted into a summary past it, old images as
placeholders. A context-length error from the provider re-derives it keeping the last 6, then 3,
then 1 messages (plus the summary), one call each, before the error reaches the caller; events
``compaction_started``, ``compaction_completed`` and ``context_truncated`` say what happened.

Saves: the user message beside the first model call (the first text never waits for it), then
once per step, tool calls included, and after the title call (``save=False``: none, e.g. replay). A
cancelled turn keeps what streamed (never-run tool calls get an 'interrupted' result), saves, re-raises.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Sequence

from ..errors import CodeTetherError, ContextLengthError, SessionConflictError
from ..events import (
    EventSink,
    DoneEvent,
    ErrorEvent,
    TextChunkEvent,
    TextCompleteEvent,
    ThinkingEvent,
    UsageReportEvent,
)
from ..messages import ImageAttachment, ImagePart, Message, TextPart
from ..providers.base import ModelRequest, Provider
from ..providers.pool import pooled_connections
from ..session.session import DEFAULT_MAX_STEPS, Session, SessionResult
from ..session.subcall import resolve_subcall_provider
from .context import RETRY_KEEP, Derived, RequestBudget, context_window
from .context.derive import attach_extra
from .save_beside import call_beside_save
from .model_call import StepStream, StreamOutcome
from .cost_guard import CostGuard
from .prompts import default_system_prompt
from .title import model_title
from .tool_calls import ToolRunner
from .tools import builtin_tools
from .tools.base import Approver, Tool
from .tools.paths import tool_root

__all__ = ["DEFAULT_MAX_STEPS", "HEARTBEAT_INTERVAL", "request_messages", "run_prompt"]

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 10.0  # seconds between tool_heartbeat events
INTERRUPTED_NOTE = "[interrupted by the user]"
# A "length" finish: the answer stopped because the model reached its output token limit, not because
# it was done. Without a note the cut reads like a complete answer.
LENGTH_NOTE = ("[answer cut off: the model hit its output token limit before finishing; "
               "prompt again to continue (e.g. \"continue\")]")


async def run_prompt(
    session: Session,
    message: str,
    images: list[ImageAttachment],
    events: Any,
    registry: Any = None,
    *,
    model: str | None = None,
    tools: list[Tool] | None = None,
    approver: Approver | None = None,
    max_steps: int | None = None,
    system: str | None = None,
    retry_delays: Sequence[float] = (1.0, 2.0, 4.0),
    save: bool = True,
    title_model_call: bool = True,
    heartbeat_interval: float = HEARTBEAT_INTERVAL,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    context_tokens: int | None = None,
    notebook_context: str | Callable[[], str] | None = None,
    context_budget: bool = True,
    thinking_budget: int | None = None,
    budget_usd: float | None = None,
) -> SessionResult:
    """Run one user turn of ``session`` and return its text; see the module docstring for the events.

    ``events``: None, an ``asyncio.Queue`` or a callable taking one event (sync or async).
    ``registry`` None loads ``ProviderRegistry.from_vault()``. The model is ``model``, else
    ``session.metadata.model``, else the registry's default; the chosen "provider/model" is
    stored in ``session.metadata.model``. ``tools`` None means the built-in tools confined to
    the working directory (never ``session.metadata.directory``: a transcript may come from someone
    else). ``sleep`` is how retries wait (injectable).
    ``context_tokens`` overrides the model's context window (else ``CODETETHER_CONTEXT_TOKENS``, else
    the table in ``context.windows``); ``notebook_context`` (text, or a callable giving it once at the
    start of the turn) goes into every request of this turn before the newest user message, counted
    in the budget and never put in the transcript; ``context_budget=False`` sends the whole transcript
    (replay: there is no window to fit, and no summary call that is not in the recording).
    ``thinking_budget``: tokens of extended thinking per call (Anthropic, OpenAI reasoning), None off.
    ``budget_usd``: the turn's cost limit (with ``CODETETHER_COST_LIMIT_USD``, see ``cost_guard``).
    """
    sink = EventSink(events)
    try:
        _check_inputs(message, images)
        limit = _max_steps(max_steps, session)
        if registry is None:
            from ..providers.registry import ProviderRegistry

            registry = await ProviderRegistry.from_vault()
        provider, model_id = _choose_model(session, registry, model)
        directory = str(tool_root())  # the cwd: a transcript's directory never widens the tools
        tool_list = builtin_tools(directory) if tools is None else list(tools)
        _check_tools(tool_list)
        system = system if system is not None else default_system_prompt(directory, tool_list)
        context = _context_text(notebook_context)
        budget = RequestBudget(session, provider, model_id, window=context_window(model_id, context_tokens),
                               system=system, tools=[tool.spec for tool in tool_list], sink=sink,
                               enabled=context_budget, summariser=resolve_subcall_provider(session, registry))
        budget.check_fits(_user_message(message, images), context)  # before anything is sent or saved
        costs = CostGuard(provider.name, budget_usd)
    except CodeTetherError as exc:
        await sink.emit(ErrorEvent(message=str(exc)))
        raise
    turn = _Turn(
        session, sink, provider, model_id, tool_list, approver, system=system,
        max_steps=limit, retry_delays=retry_delays, save_enabled=save, sleep=sleep,
        heartbeat_interval=heartbeat_interval, title_model_call=title_model_call,
        budget=budget, context=context,
        thinking_budget=thinking_budget, costs=costs,
    )
    async with pooled_connections():  # the steps (and the title call) share one connection
        return await turn.run(message, images)


# -- checks and choices -----------------------------------------------------------


def _check_inputs(message: Any, images: Any) -> None:
    if not isinstance(message, str):
        raise TypeError(f"message must be a str, not {type(message).__name__}")
    for image in images or []:
        if not isinstance(image, ImageAttachment):
            raise TypeError(f"images must be ImageAttachment objects, not {type(image).__name__}")
        if not image.data_url.startswith("data:"):
            raise ValueError(
                f"An image must be a base64 data: URL (data:image/png;base64,...), got {image.data_url[:40]!r}"
            )


def _max_steps(value: int | None, session: Session) -> int:
    chosen = value if value is not None else session.max_steps
    chosen = DEFAULT_MAX_STEPS if chosen is None else chosen
    if isinstance(chosen, bool) or not isinstance(chosen, int) or chosen < 1:
        raise ValueError(f"max_steps must be a whole number >= 1 (or None for {DEFAULT_MAX_STEPS}), got {chosen!r}")
    return chosen


def _choose_model(session: Session, registry: Any, model: str | None) -> tuple[Provider, str]:
    chosen = model or session.metadata.model or registry.default_model()
    provider, model_id = registry.resolve_model(chosen)
    session.metadata.model = f"{provider.name}/{model_id}"
    return provider, model_id


def _check_tools(tools: list[Tool]) -> None:
    names = [tool.name for tool in tools]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"Two tools share the name(s) {', '.join(duplicates)}; tool names must be unique.")


def _context_text(notebook_context: str | Callable[[], str] | None) -> str:
    text = notebook_context() if callable(notebook_context) else notebook_context
    if text is not None and not isinstance(text, str):
        raise TypeError(f"notebook_context must give a str, not {type(text).__name__}")
    return text or ""


def request_messages(messages: Sequence[Message], context: str) -> list[Message]:
    """The transcript with ``context`` as a text part at the start of the newest user message: a copy,
    the transcript itself never holds the context (the budget derives requests the same way)."""
    return attach_extra(list(messages), context)


def _user_message(text: str, images: list[ImageAttachment]) -> Message:
    parts: list[Any] = [TextPart(text=text)]
    parts += [ImagePart(url=image.data_url, mime_type=image.resolved_mime_type()) for image in images or []]
    return Message(role="user", content=parts)


def _add_note(message: Message, text: str, note: str) -> str:
    """Append ``note`` to ``message`` as a text part of its own, after a blank line when ``text`` is not empty;
    return ``text`` with the note."""
    tail = ("\n\n" if text else "") + note
    message.content.append(TextPart(text=tail))
    return text + tail


def _cut_note(outcome: StreamOutcome) -> str | None:
    """The note for an answer that did not end on its own: a broken stream or the output token limit."""
    if outcome.cut is not None:
        return f"[answer cut off: {outcome.cut}]"
    if outcome.builder.finish_reason == "length":
        return LENGTH_NOTE
    return None


# -- one turn -----------------------------------------------------------------------


@dataclass
class _Turn:
    session: Session
    sink: EventSink
    provider: Provider
    model_id: str
    tools: list[Tool]
    approver: Approver | None
    system: str
    max_steps: int
    retry_delays: Sequence[float]
    save_enabled: bool
    sleep: Callable[[float], Awaitable[Any]]
    heartbeat_interval: float
    title_model_call: bool
    budget: RequestBudget
    context: str = ""  # the notebook context of this turn: in each request, not in the transcript
    thinking_budget: int | None = None
    costs: CostGuard | None = None
    texts: list[str] = field(default_factory=list)  # each step's text, in order
    stream: StepStream | None = None  # the model call in flight, if any

    def __post_init__(self) -> None:
        self.runner = ToolRunner(self.session, self.sink, self.tools, self.approver,
                                 heartbeat_interval=self.heartbeat_interval)

    async def save(self) -> None:
        if self.save_enabled:
            await self.session.save()

    async def save_keeping_error(self, skip: bool = False) -> None:
        """Save on the way out of a failed or cancelled turn; a save failure is logged so the first error wins."""
        try:
            await self.save() if not skip else None
        except Exception:  # noqa: BLE001 - the error that ended the turn is the one to report
            log.exception("saving session %s after a failed or cancelled turn failed", self.session.id)

    @property
    def label(self) -> str:
        return f"{self.provider.name}/{self.model_id}"

    def turn_text(self) -> str:
        return "\n\n".join(self.texts)

    async def run(self, message: str, images: list[ImageAttachment]) -> SessionResult:
        first_turn = self.session.title is None
        self.session.add_message(_user_message(message, images))
        if first_turn:
            await self.session.generate_title()
        try:
            text = await self.steps()  # the user message is saved beside the first call, then each step
            if first_turn and self.title_model_call and message.strip():
                await self.better_title(message)
                await self.save()
        except asyncio.CancelledError:
            self.keep_partial()
            await self.save_keeping_error()
            raise
        except Exception as exc:
            await self.sink.emit(ErrorEvent(message=str(exc) or type(exc).__name__))
            await self.save_keeping_error(skip=isinstance(exc, SessionConflictError))  # it would conflict again
            raise
        await self.sink.emit(DoneEvent())
        return SessionResult(text=text.strip(), session_id=self.session.id)

    async def steps(self) -> str:
        for step in range(1, self.max_steps + 1):
            await self.sink.emit(ThinkingEvent())
            prefix = self.turn_text() + "\n\n" if self.texts else ""
            outcome = await self.call_model(prefix, save_beside=step == 1)
            self.stream = None
            message = await self.record_step(step, outcome, prefix)
            await self.runner.run_calls(message.tool_calls, step)  # none when the answer was cut
            await self.save()  # once per step, its tool calls included
            if outcome.cut is not None:
                await self.sink.emit(ErrorEvent(
                    message=f"The model's answer was cut off mid-stream ({outcome.cut}); what arrived is kept."))
                return self.turn_text()
            if not message.tool_calls:
                return self.turn_text()
        return await self.step_limit_note()

    async def call_model(self, prefix: str, save_beside: bool = False) -> StreamOutcome:
        """One model call (``save_beside``: with the save of the turn's start); context-length errors: 6, 3, 1."""
        derived = await self.budget.derive(self.session.messages, self.context)
        while True:
            request = self.request(derived)
            if self.costs is not None:
                self.costs.check(request)  # before the call: one that would pass the limit is never sent
            self.stream = StepStream(self.provider, self.sink, retry_delays=self.retry_delays, sleep=self.sleep)
            call = self.stream.run(request, prefix)
            try:
                return await (call_beside_save(call, self.session, self.save_enabled) if save_beside else call)
            except ContextLengthError as exc:
                save_beside = False  # that save is done: the shorter requests go alone
                derived = await self.shorter(derived, exc)

    async def shorter(self, derived: Derived, error: ContextLengthError) -> Derived:
        """The next request of the 6, 3, 1 fallback that leaves out more than ``derived``; else the error."""
        if self.budget.active:
            for keep in RETRY_KEEP:
                candidate = await self.budget.shorter(self.session.messages, self.context, keep, derived)
                if candidate is not None:
                    return candidate
        raise self.budget.final_error(error)

    def request(self, derived: Derived) -> ModelRequest:
        """The step's request: the budget's messages (transcript, summary, extra context), tools, system."""
        return ModelRequest(
            model=self.model_id,
            messages=derived.messages,
            tools=[tool.spec for tool in self.tools],
            system=self.system,
            thinking_budget=self.thinking_budget,
        )

    async def record_step(self, step: int, outcome: StreamOutcome, prefix: str) -> Message:
        """Put the step's message in the transcript, emit its text and usage, publish."""
        builder = outcome.builder
        message = builder.message(without_tool_calls=outcome.cut is not None)
        step_text = builder.text
        note = _cut_note(outcome)
        if note is not None:  # in the transcript too, so a replay of this turn shows it as well
            step_text = _add_note(message, step_text, note)
            await self.sink.emit(TextChunkEvent(text=prefix + step_text))
        if message.content:
            self.session.add_message(message)
        thinking = builder.thinking
        if thinking:
            self.session.publish("thinking", {"thinking": thinking, "step": step})
        if step_text.strip():
            self.texts.append(step_text)
            await self.sink.emit(TextCompleteEvent(text=prefix + step_text))
        await self.report_usage(outcome)
        return message

    async def report_usage(self, outcome: StreamOutcome) -> None:
        usage = outcome.builder.usage
        self.session.usage.add(usage)
        cost = self.costs.add(self.model_id, usage) if self.costs is not None else None
        await self.sink.emit(UsageReportEvent(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            duration_ms=outcome.duration_ms,
            model=self.label,
            cost_usd=cost,
        ))

    async def step_limit_note(self) -> str:
        """The model still wanted tools after ``max_steps``: say so in the turn's text (not in the transcript)."""
        note = (f"[Stopped after {self.max_steps} step{'s' if self.max_steps > 1 else ''} (max_steps) before "
                "a final answer; prompt again to continue, or allow more steps.]")
        self.texts.append(note)
        await self.sink.emit(TextChunkEvent(text=self.turn_text()))
        await self.sink.emit(TextCompleteEvent(text=self.turn_text()))
        return self.turn_text()

    async def better_title(self, first_message: str) -> None:
        title, usage = await model_title(self.provider, self.model_id, first_message)
        self.session.usage.add(usage)
        if title:
            self.session.set_title(title)

    def keep_partial(self) -> None:
        """On cancellation: keep what the model call in flight streamed, without its never-run tool calls."""
        stream, self.stream = self.stream, None
        if stream is None or not stream.builder.has_content():
            return
        message = stream.builder.message(without_tool_calls=True)
        _add_note(message, stream.builder.text, INTERRUPTED_NOTE)
        self.session.add_message(message)
        self.session.usage.add(stream.builder.usage)
