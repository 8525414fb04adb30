"""Replay: answer a ``%%codetether`` turn from the transcript beside the notebook, offline.

The recorded turn for a prompt is the user message with that text (the k-th one for the
k-th run of the same prompt in a kernel) and every message after it up to the next user
message. A replay is a provider, not a second road: ``replay_road`` gives the cell the
same call a live run makes (``Session.prompt_with_events_and_images``), on an in-memory
copy of the session cut just before that user message, with a registry whose only
provider streams the recorded assistant messages back. So the view streams as it did
live, tools run again (later cells see the variables the ``python`` tool made), and the
final text is the recorded one. Nothing is saved and no HTTP client is ever created.

Trust: a transcript can come from anyone (a notebook shared with its
``.codetether.json``), so what the recording approved never counts. A recorded call that
changes things runs only when the live rules allow it now (``--allow``, ``auto_approve``,
the Approve button); a call refused now makes the cell fail afterwards with a message
saying how to allow it. A call the recording shows as denied (its ``status``) stays denied.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, AsyncIterator, Iterable

from ..agent.tools.base import ApprovalRequest, Approver
from ..errors import ReplayError, ToolError
from ..messages import Message, TextPart, ThinkingPart, ToolCallPart, ToolResultPart, ToolStatus, ToolUse, Usage
from ..providers.base import (
    Finish,
    ModelRequest,
    ProviderEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
)
from ..session.session import Session, SessionResult
from .road import TurnRoad
from .turn_usage import recorded_model, recorded_usage

__all__ = [
    "RecordedTurn",
    "ReplayApproval",
    "ReplayProvider",
    "ReplayRegistry",
    "find_recorded_turn",
    "recorded_prompt_count",
    "recorded_statuses",
    "replay_road",
    "replay_turn",
]

REPLAY_MODEL = "replay/recorded"  # used only when the transcript never named a model
_WORDS_PER_CHUNK = 3  # text is streamed in small pieces so the live view still streams


def _normalise(text: str) -> str:
    return text.strip()


@dataclass(frozen=True)
class RecordedTurn:
    """One recorded user turn: where its user message is and what followed it."""

    index: int  # position of the user message in ``session.messages``
    user: Message
    replies: tuple[Message, ...]  # assistant and tool messages up to the next user message

    @property
    def assistant_messages(self) -> list[Message]:
        return [m for m in self.replies if m.role == "assistant"]

    def tool_results(self) -> dict[str, str]:
        """Recorded tool results by tool call id."""
        return {
            part.tool_call_id: part.content
            for message in self.replies
            for part in message.content
            if isinstance(part, ToolResultPart)
        }


def _user_turn_indexes(messages: list[Message], prompt: str) -> list[int]:
    wanted = _normalise(prompt)
    return [
        i for i, m in enumerate(messages) if m.role == "user" and _normalise(m.text) == wanted
    ]


def recorded_prompt_count(session: Session, prompt: str) -> int:
    """How many recorded turns the transcript holds for ``prompt``."""
    return len(_user_turn_indexes(session.messages, prompt))


def find_recorded_turn(session: Session, prompt: str, occurrence: int = 0) -> RecordedTurn | None:
    """The ``occurrence``-th (0-based) recorded turn whose user text is ``prompt``, or None."""
    if occurrence < 0:
        raise ValueError(f"occurrence must be 0 or more, got {occurrence}")
    indexes = _user_turn_indexes(session.messages, prompt)
    if occurrence >= len(indexes):
        return None
    start = indexes[occurrence]
    end = start + 1
    while end < len(session.messages) and session.messages[end].role != "user":
        end += 1
    return RecordedTurn(start, session.messages[start], tuple(session.messages[start + 1 : end]))


# -- the provider that streams recorded messages --------------------------------


def _text_chunks(text: str) -> Iterable[str]:
    words = re.findall(r"\s*\S+\s*|\s+", text)
    for i in range(0, len(words), _WORDS_PER_CHUNK):
        yield "".join(words[i : i + _WORDS_PER_CHUNK])


def _deltas(message: Message) -> Iterable[ProviderEvent]:
    """The deltas that rebuild ``message`` through the loop's accumulator."""
    tool_index = 0
    for part in message.content:
        if isinstance(part, ThinkingPart):
            yield ThinkingDelta(text=part.text, signature=part.signature)
        elif isinstance(part, TextPart):
            yield from (TextDelta(chunk) for chunk in _text_chunks(part.text))
        elif isinstance(part, ToolCallPart):
            yield ToolCallDelta(tool_index, id=part.id, name=part.name, arguments=part.arguments)
            tool_index += 1
    usage = recorded_usage(message)  # the step's tokens as recorded, for the record's footer
    if usage is not None:
        yield usage
    yield Finish("tool_calls" if tool_index else "stop")


class ReplayProvider:
    """A ``Provider`` whose n-th ``stream`` call yields the n-th recorded assistant message.

    Every call is a step of the recorded turn: ``replay_road`` runs the loop without its
    title call (``title_model_call=False``), which is no part of the recording.
    """

    def __init__(self, name: str, turn: RecordedTurn, prompt: str) -> None:
        self.name = name
        self._answers = turn.assistant_messages
        self._prompt = prompt
        self.calls = 0

    async def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        if self.calls >= len(self._answers):
            raise ReplayError(
                f"The recorded turn for {_preview(self._prompt)} has {len(self._answers)} model "
                f"answer(s) but the replay asked for one more: the recording was interrupted or "
                f"made with a lower --max-steps. Run the cell with the options it was recorded "
                f"with, or record it again. {_HOW_TO_RECORD}"
            )
        message = self._answers[self.calls]
        self.calls += 1
        for delta in _deltas(message):
            yield delta
            await asyncio.sleep(0)  # let the view render between chunks, as it does live


class ReplayRegistry:
    """The registry a replay runs with: one ``ReplayProvider``, no HTTP client, no credentials."""

    def __init__(self, provider: ReplayProvider, model: str) -> None:
        self._provider = provider
        self._model = model  # "provider/model" as recorded

    def default_model(self) -> str:
        return self._model

    def get(self, name: str) -> ReplayProvider:
        return self._provider

    def resolve_model(self, model: str | None = None) -> tuple[ReplayProvider, str]:
        _, _, local = (model or self._model).partition("/")
        return self._provider, local or self._model

    def names(self) -> list[str]:
        return [self._provider.name]


# -- what the recording says about each tool call ---------------------------------


def recorded_statuses(session: Session, turn: RecordedTurn) -> dict[str, ToolStatus | None]:
    """How each tool call of ``turn`` ended when it was recorded, by call id (None: unknown).

    The ``status`` of the call's ``ToolUse`` record; files written before statuses existed
    have none, and such a call is treated like any other: it must be approved now. When a
    provider reused a call id in several turns, the k-th result with that id pairs with
    the k-th record with that id (both are appended together, in order).
    """
    records: dict[str, list[ToolUse]] = defaultdict(list)
    for use in session.tool_uses:
        records[use.id].append(use)
    earlier: Counter[str] = Counter(
        part.tool_call_id
        for message in session.messages[: turn.index]
        for part in message.content
        if isinstance(part, ToolResultPart)
    )
    statuses: dict[str, ToolStatus | None] = {}
    for call_id in turn.tool_results():
        matching, k = records.get(call_id, []), earlier[call_id]
        statuses[call_id] = matching[k].status_of if k < len(matching) else None
    return statuses


class ReplayApproval:
    """The approver of a replay: the live rules of now decide, never the recording.

    ``live`` is the approver a live run of this cell would use (``--allow``, ``auto_approve``,
    the Approve button); None refuses everything. A call the recording shows as denied is
    refused without asking. ``refused`` collects the tools refused now, so the cell can fail
    afterwards and say how to allow them.
    """

    def __init__(self, live: Approver | None, recorded: dict[str, ToolStatus | None]) -> None:
        self._live = live
        self._denied = {call_id for call_id, status in recorded.items() if status == "denied"}
        self.refused: list[str] = []

    async def __call__(self, request: ApprovalRequest) -> bool:
        if request.tool_call_id in self._denied:
            raise ToolError("it was refused when this turn was recorded, so the replay does not run it")
        if self._live is None:
            self._refuse(request.name)
            return False
        try:
            approved = self._live(request)
            if inspect.isawaitable(approved):
                approved = await approved
        except ToolError:
            self._refuse(request.name)
            raise
        if approved is not True:
            self._refuse(request.name)
        return approved is True

    def _refuse(self, name: str) -> None:
        if name not in self.refused:
            self.refused.append(name)

    def check(self) -> None:
        """Raise ``ReplayError`` saying how to allow the recorded calls that were refused now."""
        if not self.refused:
            return
        names = ", ".join(f"`{name}`" for name in self.refused)
        raise ReplayError(
            f"Replay did not run the recorded {names} call(s) of this cell: a transcript can come from "
            "anyone, so a recorded call that changes things runs only when you allow it now. To run "
            f"them, re-run the cell with `--allow {','.join(self.refused)}` (or set "
            "`%config CodeTether.auto_approve = True`, or click Approve in JupyterLab, Notebook 7 or VS Code)."
        )


# -- replaying one turn ---------------------------------------------------------

_HOW_TO_RECORD = (
    "To record it, configure a model provider (for example `%env OPENAI_API_KEY=sk-...` in the "
    "notebook, or OPENAI_API_KEY set before starting Jupyter) and run the cell with "
    "`%%codetether --live`; the answer is saved in the transcript beside the notebook."
)


def _preview(prompt: str) -> str:
    first = _normalise(prompt).splitlines()[0] if _normalise(prompt) else ""
    return repr(first if len(first) <= 60 else first[:57] + "...")


def _missing_turn_error(session: Session, prompt: str, occurrence: int,
                        provider_configured: bool | None) -> ReplayError:
    recorded = recorded_prompt_count(session, prompt)
    where = f"the transcript of {session.metadata.notebook}" if session.metadata.notebook else (
        f"session {session.id}")
    if recorded == 0:
        missing = f"{where} has no recorded answer for the cell {_preview(prompt)}"
    else:
        missing = (f"{where} has {recorded} recorded answer(s) for the cell {_preview(prompt)} and this "
                   f"kernel has already run that prompt {occurrence} time(s) (restart the kernel to "
                   "replay from the start)")
    if provider_configured is False:
        missing += ", and no model provider is configured to answer it live"
    return ReplayError(f"Replay: {missing}. {_HOW_TO_RECORD}")


class _ReplaySession(Session):
    """The in-memory copy a replay runs on: it can never be written to disk."""

    async def save(self, *args: Any, **kwargs: Any) -> bool:
        return False


def _session_before(session: Session, turn: RecordedTurn) -> _ReplaySession:
    fields = {name: getattr(session, name) for name in Session.model_fields}
    fields.update(
        messages=list(session.messages[: turn.index]),
        tool_uses=[],
        usage=Usage(),
        metadata=session.metadata.model_copy(deep=True),
    )
    copy = _ReplaySession.model_construct(**fields)
    copy.max_steps = session.max_steps
    return copy


def replay_road(
    session: Session,
    prompt: str,
    approver: Approver | None,
    *,
    occurrence: int = 0,
    provider_configured: bool | None = None,
) -> TurnRoad:
    """The road a replayed cell takes: the recorded turn as a provider, the live approver.

    ``approver`` is the one a live run of the cell would use. ``provider_configured``
    (None: not known) only shapes the error when the transcript has no such turn.
    Raises ``ReplayError`` then; ``session`` is never changed.
    """
    turn = find_recorded_turn(session, prompt, occurrence)
    if turn is None:
        raise _missing_turn_error(session, prompt, occurrence, provider_configured)
    model = recorded_model(turn.assistant_messages) or session.metadata.model or REPLAY_MODEL
    provider = ReplayProvider(model.partition("/")[0], turn, prompt)
    approval = ReplayApproval(approver, recorded_statuses(session, turn))
    return TurnRoad(
        session=_session_before(session, turn),
        registry=ReplayRegistry(provider, model),
        model=model,
        approver=approval,
        save=False,
        title_model_call=False,
        after=approval.check,
        options={"context_budget": False},  # nothing goes over a network: no window to fit, no summary call
    )


async def replay_turn(
    session: Session,
    prompt: str,
    images: list[Any],
    events: Any,
    *,
    occurrence: int = 0,
    tools: list[Any] | None = None,
    approver: Approver | None = None,
    max_steps: int | None = None,
) -> SessionResult:
    """Answer ``prompt`` from the recorded turn, streaming its events, with no network call.

    ``session`` is not changed and nothing is saved. Tools run again; one that changes
    things runs only when ``approver`` (the live rules) approves it now: with None, none
    does, and ``ReplayError`` says which were refused once the turn has been replayed.
    """
    road = replay_road(session, prompt, approver, occurrence=occurrence)
    result = await road.run(prompt, images, events, tools=tools, max_steps=max_steps)
    return SessionResult(text=result.text, session_id=session.id)
