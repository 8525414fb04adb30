"""Scripted model turns: what the loopback model server answers, one turn per request.

A ``Turn`` is a list of steps streamed in order (text, thinking, tool calls, usage) or
a fault (an HTTP error, a dropped connection, malformed SSE, a hang). Every step is a
small dataclass with a ``type`` tag and converts to and from a plain dict, so a whole
script can be written as JSON::

    [{"steps": [{"type": "text", "text": "Hello there"}]},
     {"steps": [{"type": "tool_call", "name": "read", "arguments": {"path": "a.py"}}],
      "expect": {"tools": ["read"]}},
     {"http_error": {"status": 429, "message": "slow down", "retry_after": 1}},
     "A bare string is a text turn"]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Mapping, Union

__all__ = [
    "DropStep",
    "ErrorEventStep",
    "Expectation",
    "HangStep",
    "HttpError",
    "MalformedStep",
    "Step",
    "TextStep",
    "ThinkingStep",
    "ToolCallStep",
    "Turn",
    "UsageStep",
]


@dataclass(frozen=True)
class TextStep:
    """Answer text, streamed word by word."""

    text: str
    type: ClassVar[str] = "text"


@dataclass(frozen=True)
class ThinkingStep:
    """Reasoning text (Anthropic ``thinking`` block, OpenAI-compatible ``reasoning_content``)."""

    text: str
    signature: str | None = None
    type: ClassVar[str] = "thinking"


@dataclass(frozen=True)
class ToolCallStep:
    """A tool call; its JSON arguments are streamed in several fragments."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str | None = None  # generated ("call_N" / "toolu_N") when not given
    type: ClassVar[str] = "tool_call"


@dataclass(frozen=True)
class UsageStep:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    type: ClassVar[str] = "usage"


@dataclass(frozen=True)
class DropStep:
    """Close the connection here, in the middle of the chunked response body."""

    type: ClassVar[str] = "drop"


@dataclass(frozen=True)
class MalformedStep:
    """Send a line that is not valid SSE JSON."""

    raw: str = "data: {this is not json"
    type: ClassVar[str] = "malformed"


@dataclass(frozen=True)
class HangStep:
    """Send nothing for ``seconds`` (None: until the server stops).

    As the first step it hangs before the response headers (a read timeout with no
    response); after other steps it hangs mid-stream.
    """

    seconds: float | None = None
    type: ClassVar[str] = "hang"


@dataclass(frozen=True)
class ErrorEventStep:
    """An error reported inside the stream (Anthropic ``error`` event, OpenAI ``data: {"error": ...}``)."""

    message: str = "Overloaded"
    error_type: str = "overloaded_error"
    type: ClassVar[str] = "error_event"


Step = Union[TextStep, ThinkingStep, ToolCallStep, UsageStep, DropStep, MalformedStep, HangStep, ErrorEventStep]
_STEP_TYPES: dict[str, type] = {
    cls.type: cls
    for cls in (TextStep, ThinkingStep, ToolCallStep, UsageStep, DropStep, MalformedStep, HangStep, ErrorEventStep)
}


@dataclass(frozen=True)
class HttpError:
    """Answer the request with an error status instead of a stream."""

    status: int
    message: str = "scripted error"
    retry_after: float | None = None  # sent as the Retry-After header
    body: str | None = None  # raw body instead of the protocol's JSON error


@dataclass(frozen=True)
class Expectation:
    """Checks on the request a turn answers; failures land in ``server.errors``.

    ``tool_result``: some tool result in the request contains this text.
    ``image``: a user message carries an image in the protocol's own format.
    ``user_text``: the last user message's text contains this.
    ``tools``: these tool names are offered in the request.
    ``model``: the request's ``model`` field.
    ``system``: the system prompt contains this.
    """

    tool_result: str | None = None
    image: bool | None = None
    user_text: str | None = None
    tools: tuple[str, ...] | None = None
    model: str | None = None
    system: str | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


@dataclass
class Turn:
    """One scripted answer. Build with the class methods or from JSON with ``Turn.from_dict``."""

    steps: list[Step] = field(default_factory=list)
    http_error: HttpError | None = None
    expect: Expectation = field(default_factory=Expectation)
    chunk_delay: float | None = None  # seconds between chunks; None: the server's default
    finish_reason: str | None = None  # "length" etc.; default "stop" or "tool_calls"
    drop_after_chunks: int | None = None  # cut the connection after this many SSE chunks

    def __post_init__(self) -> None:
        self.steps = [step_from_dict(s) if isinstance(s, Mapping) else s for s in self.steps]
        if isinstance(self.expect, Mapping):
            self.expect = _expectation(self.expect)
        if isinstance(self.http_error, Mapping):
            self.http_error = HttpError(**self.http_error)

    # -- builders --------------------------------------------------------------

    @classmethod
    def text(cls, text: str, *, thinking: str | None = None, usage: tuple[int, int] | None = None,
             **options: Any) -> "Turn":
        steps: list[Step] = [ThinkingStep(thinking)] if thinking else []
        steps.append(TextStep(text))
        return cls(_with_usage(steps, usage), **_turn_options(options))

    @classmethod
    def tool_call(cls, name: str, arguments: Mapping[str, Any] | None = None, *, id: str | None = None,
                  text: str | None = None, usage: tuple[int, int] | None = None, **options: Any) -> "Turn":
        steps: list[Step] = [TextStep(text)] if text else []
        steps.append(ToolCallStep(name, dict(arguments or {}), id))
        return cls(_with_usage(steps, usage), **_turn_options(options))

    @classmethod
    def error(cls, status: int, message: str = "scripted error", *, retry_after: float | None = None,
              body: str | None = None, **options: Any) -> "Turn":
        return cls(http_error=HttpError(status, message, retry_after, body), **_turn_options(options))

    @classmethod
    def dropped(cls, text: str = "", *, after_chunks: int | None = None, **options: Any) -> "Turn":
        """Stream ``text`` then cut the connection mid-body (or after ``after_chunks`` SSE chunks)."""
        if after_chunks is not None:
            return cls([TextStep(text)], drop_after_chunks=after_chunks, **_turn_options(options))
        return cls([TextStep(text), DropStep()] if text else [DropStep()], **_turn_options(options))

    @classmethod
    def malformed(cls, text: str = "", raw: str = MalformedStep.raw, **options: Any) -> "Turn":
        return cls([TextStep(text), MalformedStep(raw)] if text else [MalformedStep(raw)], **_turn_options(options))

    @classmethod
    def hang(cls, seconds: float | None = None, *, text: str = "", **options: Any) -> "Turn":
        steps: list[Step] = [TextStep(text), HangStep(seconds)] if text else [HangStep(seconds)]
        return cls(steps, **_turn_options(options))

    # -- JSON --------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Any) -> "Turn":
        """A turn from its JSON form: a dict, a list of step dicts, or a bare string (a text turn)."""
        if isinstance(data, str):
            return cls.text(data)
        if isinstance(data, list):
            return cls(list(data))
        if not isinstance(data, Mapping):
            raise ValueError(f"A scripted turn must be a dict, a list of steps or a string, not {data!r}")
        allowed = {"steps", "http_error", "expect", "chunk_delay", "finish_reason", "drop_after_chunks"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"Unknown keys in scripted turn: {sorted(unknown)}; allowed: {', '.join(sorted(allowed))}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"steps": [step_to_dict(s) for s in self.steps]}
        if self.http_error is not None:
            out["http_error"] = asdict(self.http_error)
        if not self.expect.is_empty():
            out["expect"] = {k: v for k, v in asdict(self.expect).items() if v is not None}
        if self.chunk_delay is not None:
            out["chunk_delay"] = self.chunk_delay
        if self.finish_reason is not None:
            out["finish_reason"] = self.finish_reason
        if self.drop_after_chunks is not None:
            out["drop_after_chunks"] = self.drop_after_chunks
        return out


def step_from_dict(data: Mapping[str, Any]) -> Step:
    kind = data.get("type")
    cls = _STEP_TYPES.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(f"Unknown scripted step type {kind!r}; known: {', '.join(sorted(_STEP_TYPES))}")
    try:
        return cls(**{k: v for k, v in data.items() if k != "type"})
    except TypeError as exc:
        raise ValueError(f"Bad {kind!r} step {dict(data)!r}: {exc}") from None


def step_to_dict(step: Step) -> dict[str, Any]:
    return {"type": step.type, **asdict(step)}


def _expectation(data: Mapping[str, Any]) -> Expectation:
    values = dict(data)
    if values.get("tools") is not None:
        values["tools"] = tuple(values["tools"])
    try:
        return Expectation(**values)
    except TypeError as exc:
        raise ValueError(f"Bad expect {values!r}: {exc}") from None


def _with_usage(steps: list[Step], usage: tuple[int, int] | None) -> list[Step]:
    return [*steps, UsageStep(*usage)] if usage else steps


def _turn_options(options: dict[str, Any]) -> dict[str, Any]:
    """Split ``expect_*`` keywords into an Expectation; pass the rest to Turn."""
    expect = {k[len("expect_"):]: options.pop(k) for k in list(options) if k.startswith("expect_")}
    if expect:
        options["expect"] = _expectation(expect)
    return options
