"""The vocabulary every layer shares: message parts, ``Message``, ``ToolUse``, ``Usage``, images.

These are pure values. Storage (``session/``) writes them to session files, providers
(``providers/``) turn them into and out of wire formats, the agent and the notebook read them;
none of those is imported here. The JSON shape is the session file's (docs/design.md, "The
session file"): parts are tagged by ``type``, and every model keeps unknown keys
(``extra="allow"``) so a file written by a newer version survives a load and save by this one.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "FilePart",
    "ImageAttachment",
    "ImagePart",
    "Message",
    "Part",
    "Record",
    "Role",
    "TOOL_STATUSES",
    "TextPart",
    "ThinkingPart",
    "ToolCallPart",
    "ToolResultPart",
    "ToolStatus",
    "ToolUse",
    "Usage",
]


class Record(BaseModel):
    """A pydantic model that keeps the keys it does not know (a newer writer's fields)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, validate_assignment=False)


# -- message parts: one tag, ``type`` ------------------------------------------


class TextPart(Record):
    type: Literal["text"] = "text"
    text: str


class ImagePart(Record):
    type: Literal["image"] = "image"
    url: str  # a data: URL
    mime_type: str | None = None


class FilePart(Record):
    type: Literal["file"] = "file"
    path: str
    mime_type: str | None = None


class ToolCallPart(Record):
    type: Literal["tool_call"] = "tool_call"
    id: str
    name: str
    arguments: str  # a JSON string, exactly as the model produced it


class ToolResultPart(Record):
    type: Literal["tool_result"] = "tool_result"
    tool_call_id: str
    content: str


class ThinkingPart(Record):
    type: Literal["thinking"] = "thinking"
    text: str
    signature: str | None = None


Part = Annotated[
    Union[TextPart, ImagePart, FilePart, ToolCallPart, ToolResultPart, ThinkingPart],
    Field(discriminator="type"),
]

Role = Literal["system", "developer", "user", "assistant", "tool"]


class Message(Record):
    role: Role
    content: list[Part] = Field(default_factory=list)

    @property
    def text(self) -> str:
        """The concatenated text parts (what a reader of the transcript sees)."""
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    @property
    def tool_calls(self) -> list[ToolCallPart]:
        return [p for p in self.content if isinstance(p, ToolCallPart)]

    @classmethod
    def user(cls, text: str) -> "Message":
        return cls(role="user", content=[TextPart(text=text)])

    @classmethod
    def assistant(cls, text: str) -> "Message":
        return cls(role="assistant", content=[TextPart(text=text)])


# -- audit records ------------------------------------------------------------


# How a tool call ended: it ran and worked, it ran and failed, or it was refused and never ran.
ToolStatus = Literal["succeeded", "failed", "denied"]
TOOL_STATUSES: tuple[str, ...] = ("succeeded", "failed", "denied")


class ToolUse(Record):
    """The audit record of one tool call.

    ``status`` (a ``ToolStatus``) is written as an extra key after the five fixed ones, only
    when known: files written before it existed lack it, and their records stay as they were.
    Read it with ``status_of``; a missing or unrecognised value reads as None (unknown).
    """

    id: str
    name: str
    input: Any = None  # the parsed arguments (a JSON value)
    output: str = ""
    success: bool = True

    @property
    def status_of(self) -> ToolStatus | None:
        value = (self.model_extra or {}).get("status")
        return value if value in TOOL_STATUSES else None  # type: ignore[return-value]


class Usage(Record):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def add(self, other: "Usage") -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.total_tokens += other.total_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_write_tokens += other.cache_write_tokens


class ImageAttachment(Record):
    """An image sent with a user message: a base64 ``data:`` URL and its MIME type."""

    data_url: str
    mime_type: str | None = None

    def resolved_mime_type(self) -> str:
        if self.mime_type:
            return self.mime_type
        head = self.data_url.split(",", 1)[0]  # data:image/png;base64
        return head[5:].split(";", 1)[0] if head.startswith("data:") else "image/png"
