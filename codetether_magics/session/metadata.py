"""What a session file says about its session besides the transcript: metadata, provenance, RLM settings.

The key order and defaults are the session file's (docs/design.md, "The session file").
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime
from typing import Literal

from pydantic import Field, field_serializer

from ..messages import Record
from .times import format_time, utc_now

__all__ = [
    "ClaimProvenance",
    "Config",
    "ExecutionProvenance",
    "ProvenanceIdentity",
    "RlmConfig",
    "SessionMetadata",
]


class RlmConfig(Record):
    mode: Literal["auto", "off", "always"] = "auto"
    threshold: float = 0.35
    max_iterations: int = 15
    max_subcalls: int = 50
    root_model: str | None = None
    subcall_model: str | None = None


class ProvenanceIdentity(Record):
    agent_name: str = "build"
    origin: str = "local_cli"  # "local_cli" | "worker" | ...
    worker_id: str | None = None
    tenant_id: str | None = None
    agent_identity_id: str | None = None


def _new_provenance_id() -> str:
    return "ctprov_" + secrets.token_hex(16)


def _env(name: str) -> str | None:
    return os.environ.get(name) or None


class ClaimProvenance(Record):
    """What a worker records when it claims a task (``attach_claim_provenance``)."""

    worker_id: str
    task_id: str
    run_id: str | None = None
    attempt_id: str | None = None
    tenant_id: str | None = None
    agent_identity_id: str | None = None
    claim_id: str | None = None
    claimed_at: datetime | None = None


class ExecutionProvenance(Record):
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


class SessionMetadata(Record):
    directory: str | None = None
    model: str | None = None  # "provider/model"
    notebook: str | None = None  # notebook file name, when bound to one
    provenance: ExecutionProvenance | None = None
    auto_apply_edits: bool = False
    allow_network: bool = False
    shared: bool = False
    rlm: RlmConfig = Field(default_factory=RlmConfig)


class Config(Record):
    """The parts of the agent configuration a Session reads (``apply_config``)."""

    rlm: RlmConfig = Field(default_factory=RlmConfig)
