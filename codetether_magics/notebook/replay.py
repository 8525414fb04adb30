"""Replay: answer a ``%%codetether`` turn from the transcript beside the notebook, offline.

The recorded turn for a prompt is the user message with that text (the k-th one for the
k-th run of the same prompt in a kernel) and every message after it up to the next user
message. Replaying runs the normal agent loop on an in-memory copy of the session cut
just before that user message, with a registry whose only provider streams the recorded
assistant messages back. So the view streams as it did live, tools run again (later cells
see the variables the ``python`` tool made), and the final text is the recorded one.
Nothing is saved and no HTTP client is ever created.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any, AsyncIterator, Iterable

from ..errors import ReplayError
from ..messages import Message, TextPart, ThinkingPart, ToolCallPart, ToolResultPart, Usage
from ..providers.base import (
    Finish,
    ModelRequest,
    ProviderEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
)
from ..session.session import Session, SessionResult

__all__ = [
    "RecordedTurn",
    "ReplayProvider",
    "ReplayRegistry",
    "find_recorded_turn",
    "is_refusal",
    "recorded_prompt_count",
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
    yield Finish("tool_calls" if tool_index else "stop")


class ReplayProvider:
    """A ``Provider`` whose n-th ``stream`` call yields the n-th recorded assistant message.

    Every call is a step of the recorded turn: ``replay_turn`` runs the loop without its
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


# -- replaying one turn ---------------------------------------------------------

_HOW_TO_RECORD = (
    "To record it, configure a model provider (for example set OPENAI_API_KEY) and run the "
    "cell with `%%codetether --live`; the answer is saved in the transcript beside the notebook."
)


def _preview(prompt: str) -> str:
    first = _normalise(prompt).splitlines()[0] if _normalise(prompt) else ""
    return repr(first if len(first) <= 60 else first[:57] + "...")


def _missing_turn_error(session: Session, prompt: str, occurrence: int) -> ReplayError:
    recorded = recorded_prompt_count(session, prompt)
    where = f"the transcript of {session.metadata.notebook}" if session.metadata.notebook else (
        f"session {session.id}")
    if recorded == 0:
        missing = f"{where} has no recorded answer for the cell {_preview(prompt)}"
    else:
        missing = (f"{where} has {recorded} recorded answer(s) for the cell {_preview(prompt)} and this "
                   f"kernel has already run that prompt {occurrence} time(s) (restart the kernel to "
                   "replay from the start)")
    return ReplayError(f"Replay: {missing}. {_HOW_TO_RECORD}")


class _ReplaySession(Session):
    """The in-memory copy a replay runs on: it can never be written to disk."""

    async def save(self, *args: Any, **kwargs: Any) -> None:
        return None


def _session_before(session: Session, turn: RecordedTurn) -> _ReplaySession:
    fields = {name: getattr(session, name) for name in Session.model_fields}
    fields.update(
        messages=list(session.messages[: turn.index]),
        tool_uses=[],
        usage=Usage(),
        metadata=session.metadata.model_copy(deep=True),
    )
    return _ReplaySession.model_construct(**fields)


def _recorded_approver(turn: RecordedTurn):
    refused = {call_id for call_id, text in turn.tool_results().items() if is_refusal(text)}

    async def approve(request: Any) -> bool:
        return request.tool_call_id not in refused

    return approve


# How a refused call reads in a transcript: the loop's words when the approver says no,
# and the notebook's words when a tool was not allowed and nobody could be asked.
_REFUSAL = re.compile(
    r"^(Error: )?(The user did not approve this `[^`]+` call|tool '[^']+' needs approval)"
)


def is_refusal(tool_result: str) -> bool:
    """Whether a recorded tool result says the call was refused rather than run."""
    return bool(_REFUSAL.match(tool_result.lstrip()))


async def replay_turn(
    session: Session,
    prompt: str,
    images: list[Any],
    events: Any,
    *,
    occurrence: int = 0,
    tools: list[Any] | None = None,
    approver: Any = None,
    max_steps: int | None = None,
) -> SessionResult:
    """Answer ``prompt`` from the recorded turn, streaming its events, with no network call.

    ``session`` is not changed and nothing is saved. Tools run again; a call is approved
    exactly when it was approved in the recording (``approver`` is not consulted: the
    recording decides). Raises ``ReplayError`` when the transcript has no such turn.
    """
    from ..agent.loop import run_prompt  # lazy: the loop pulls in the providers

    turn = find_recorded_turn(session, prompt, occurrence)
    if turn is None:
        raise _missing_turn_error(session, prompt, occurrence)
    model = session.metadata.model or REPLAY_MODEL
    provider = ReplayProvider(model.partition("/")[0], turn, prompt)
    result = await run_prompt(
        _session_before(session, turn),
        turn.user.text,
        images,
        events,
        ReplayRegistry(provider, model),
        model=model,
        tools=tools,
        approver=_recorded_approver(turn),
        max_steps=max_steps if max_steps is not None else session.max_steps,
        save=False,
        title_model_call=False,
        context_budget=False,  # nothing goes over a network: no window to fit, no summary call to make
    )
    return SessionResult(text=result.text, session_id=session.id)
