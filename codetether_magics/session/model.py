"""The wire-neutral transcript model: messages, their parts, tool uses, usage, metadata.

This module owns the JSON shape of a session file (SPEC section 3). Every model keeps
unknown keys (``extra="allow"``) so a file written by a newer version survives a load
and save by this one. Providers convert these parts to and from their wire formats in
their own modules; nothing here knows about any provider.
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime, timezone
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_serializer

__all__ = [
    "ClaimProvenance",
    "Config",
    "ExecutionProvenance",
    "FilePart",
    "ImageAttachment",
    "ImagePart",
    "Message",
    "Part",
    "ProvenanceIdentity",
    "Role",
    "RlmConfig",
    "SessionMetadata",
    "TextPart",
    "ThinkingPart",
    "ToolCallPart",
    "ToolResultPart",
    "ToolUse",
    "Usage",
    "format_time",
    "utc_now",
]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with a trailing ``Z``, as every time in a session file is written."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, validate_assignment=False)


# -- message parts: one tag, ``type`` ------------------------------------------


class TextPart(_Model):
    type: Literal["text"] = "text"
    text: str


class ImagePart(_Model):
    type: Literal["image"] = "image"
    url: str  # a data: URL
    mime_type: str | None = None


class FilePart(_Model):
    type: Literal["file"] = "file"
    path: str
    mime_type: str | None = None


class ToolCallPart(_Model):
    type: Literal["tool_call"] = "tool_call"
    id: str
    name: str
    arguments: str  # a JSON string, exactly as the model produced it


class ToolResultPart(_Model):
    type: Literal["tool_result"] = "tool_result"
    tool_call_id: str
    content: str


class ThinkingPart(_Model):
    type: Literal["thinking"] = "thinking"
    text: str
    signature: str | None = None


Part = Annotated[
    Union[TextPart, ImagePart, FilePart, ToolCallPart, ToolResultPart, ThinkingPart],
    Field(discriminator="type"),
]

Role = Literal["system", "developer", "user", "assistant", "tool"]


class Message(_Model):
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


class ToolUse(_Model):
    id: str
    name: str
    input: Any = None  # the parsed arguments (a JSON value)
    output: str = ""
    success: bool = True


class Usage(_Model):
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


# -- metadata -----------------------------------------------------------------


class RlmConfig(_Model):
    mode: Literal["auto", "off", "always"] = "auto"
    threshold: float = 0.35
    max_iterations: int = 15
    max_subcalls: int = 50
    root_model: str | None = None
    subcall_model: str | None = None


class ProvenanceIdentity(_Model):
    agent_name: str = "build"
    origin: str = "local_cli"  # "local_cli" | "worker" | ...
    worker_id: str | None = None
    tenant_id: str | None = None
    agent_identity_id: str | None = None


def _new_provenance_id() -> str:
    return "ctprov_" + secrets.token_hex(16)


def _env(name: str) -> str | None:
    return os.environ.get(name) or None


class ClaimProvenance(_Model):
    """What a worker records when it claims a task (``attach_claim_provenance``)."""

    worker_id: str
    task_id: str
    run_id: str | None = None
    attempt_id: str | None = None
    tenant_id: str | None = None
    agent_identity_id: str | None = None
    claim_id: str | None = None
    claimed_at: datetime | None = None


class ExecutionProvenance(_Model):
    provenance_id: str = Field(default_factory=_new_provenance_id)
    session_id: str | None = None
    task_id: str | None = None
    run_id: str | None = None
    attempt_id: str | None = None
    issued_at: datetime = Field(default_factory=utc_now)
    identity: ProvenanceIdentity = Field(default_factory=ProvenanceIdentity)
    # Set by attach_claim_provenance when a worker claims a task.
    claim_id: str | None = None
    claimed_at: datetime | None = None
    claimed_by: str | None = None

    @field_serializer("issued_at", "claimed_at")
    def _times(self, value: datetime | None) -> str | None:
        return None if value is None else format_time(value)

    @classmethod
    def for_session(cls, session_id: str, agent_name: str = "build") -> "ExecutionProvenance":
        """A fresh record for a new session; ids a worker runtime exports are picked up."""
        worker_id = _env("CODETETHER_WORKER_ID")
        return cls(
            session_id=session_id,
            task_id=_env("CODETETHER_TASK_ID"),
            run_id=_env("CODETETHER_RUN_ID"),
            attempt_id=_env("CODETETHER_ATTEMPT_ID"),
            identity=ProvenanceIdentity(
                agent_name=agent_name,
                origin="worker" if worker_id else "local_cli",
                worker_id=worker_id,
                tenant_id=_env("CODETETHER_TENANT_ID"),
                agent_identity_id=_env("CODETETHER_AGENT_IDENTITY_ID"),
            ),
        )

    def set_agent_name(self, agent_name: str) -> None:
        self.identity.agent_name = agent_name

    def apply_worker_task(self, worker_id: str, task_id: str) -> None:
        self.identity.origin = "worker"
        self.identity.worker_id = worker_id
        self.task_id = task_id

    def apply_claim(self, claim: ClaimProvenance) -> None:
        """Record a claim; fields the claim leaves empty keep their current value."""
        self.apply_worker_task(claim.worker_id, claim.task_id)
        self.run_id = claim.run_id or self.run_id
        self.attempt_id = claim.attempt_id or self.attempt_id
        self.identity.tenant_id = claim.tenant_id or self.identity.tenant_id
        self.identity.agent_identity_id = claim.agent_identity_id or self.identity.agent_identity_id
        self.claim_id = claim.claim_id or self.claim_id
        self.claimed_at = claim.claimed_at or utc_now()
        self.claimed_by = claim.worker_id


class SessionMetadata(_Model):
    directory: str | None = None
    model: str | None = None  # "provider/model"
    notebook: str | None = None  # notebook file name, when bound to one
    provenance: ExecutionProvenance | None = None
    auto_apply_edits: bool = False
    allow_network: bool = False
    shared: bool = False
    rlm: RlmConfig = Field(default_factory=RlmConfig)


class Config(_Model):
    """The parts of the agent configuration a Session reads (``apply_config``)."""

    rlm: RlmConfig = Field(default_factory=RlmConfig)


class ImageAttachment(_Model):
    """An image sent with a user message: a base64 ``data:`` URL and its MIME type."""

    data_url: str
    mime_type: str | None = None

    def resolved_mime_type(self) -> str:
        if self.mime_type:
            return self.mime_type
        head = self.data_url.split(",", 1)[0]  # data:image/png;base64
        return head[5:].split(";", 1)[0] if head.startswith("data:") else "image/png"
