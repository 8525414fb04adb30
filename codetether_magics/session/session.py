"""``Session``: one conversation, its transcript and where it is stored.

Storage lives in ``storage.py`` (the only module that writes session files), titles in
``titles.py`` and the bus in ``bus.py``. The ``prompt*`` methods go through one door
(``codetether_magics._prompt_door``) that the package root connects to the agent loop: this
package imports nothing of the agent, the providers or the notebook (docs/design.md,
"The prompt door").

Files::

    s = await Session.new()                    # not on disk until saved
    await s.save()                             # <data dir>/sessions/<id>.json
    nb = await Session.new()
    await nb.save(path="analysis.codetether.json")   # binds nb to that file
    again = await Session.load_path("analysis.codetether.json")
    same = await Session.load(nb.id)           # found through the workspace index
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from pydantic import Field, PrivateAttr, field_serializer

from .. import _prompt_door
from ..messages import ImageAttachment, Message, Record, ToolUse, Usage
from . import listing, resume, storage
from .bus import DEFAULT_KINDS, AgentBus
from .files import DiskStamp, not_found
from .metadata import ClaimProvenance, Config, ExecutionProvenance, SessionMetadata
from .paths import session_path, sessions_dir, validate_id
from .subcall import ModelResolver, apply_config, resolve_subcall_provider
from .times import format_time, utc_now
from .titles import title_from_messages

__all__ = ["DEFAULT_MAX_STEPS", "Session", "SessionResult", "list_sessions", "list_sessions_for_directory"]

DEFAULT_MAX_STEPS = 50


@dataclass(frozen=True)
class SessionResult:
    text: str
    session_id: str


class Session(Record):
    # Field order is the on-disk key order: metadata before messages, so a listing reads a header and
    # stops (docs/design.md, "The session file").
    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    title: str | None = None
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)
    metadata: SessionMetadata = Field(default_factory=SessionMetadata)
    agent: str = "build"
    messages: list[Message] = Field(default_factory=list)
    tool_uses: list[ToolUse] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)

    # Runtime-only state, never written.
    _max_steps: int | None = PrivateAttr(default=None)
    _bus: Any = PrivateAttr(default=None)
    # The provider resolved for metadata.rlm.subcall_model (``subcall``): it holds credentials.
    _subcall_provider: Any = PrivateAttr(default=None)
    _subcall_model_name: str | None = PrivateAttr(default=None)
    # The file this object was loaded from or saved to, and the version of it we know.
    _path: Path | None = PrivateAttr(default=None)
    _disk_stamp: DiskStamp | None = PrivateAttr(default=None)

    @field_serializer("created_at", "updated_at")
    def _times(self, value: datetime) -> str:
        return format_time(value)

    # -- runtime settings -------------------------------------------------------

    @property
    def max_steps(self) -> int | None:
        return self._max_steps

    @max_steps.setter
    def max_steps(self, value: int | None) -> None:
        self._max_steps = value

    @property
    def bus(self) -> Any:
        return self._bus

    @property
    def path(self) -> Path | None:
        """The file this session was loaded from or last saved to (None before that)."""
        return self._path

    # -- creating, loading and saving ---------------------------------------------

    @classmethod
    async def new(cls, directory: str | os.PathLike[str] | None = None) -> "Session":
        """A fresh session: UUID4 id, agent "build", ``metadata.directory`` = ``directory`` or cwd."""
        session = cls()
        session.metadata.directory = os.path.abspath(directory if directory is not None else os.getcwd())
        session.metadata.provenance = ExecutionProvenance.for_session(session.id, session.agent)
        return session

    @classmethod
    async def load(cls, session_id: str) -> "Session":
        """Load ``<data dir>/sessions/<id>.json`` or the notebook file the index knows for ``id``.

        Raises InvalidSessionIdError, SessionNotFoundError, SessionTooLargeError (over 512 MiB),
        SessionCorruptError or SessionIdMismatchError; the file is never modified.
        """
        validate_id(session_id)
        return await asyncio.to_thread(
            lambda: storage.load_file(storage.resolve_path(session_id), session_id, model=cls)
        )

    @classmethod
    async def load_path(cls, path: str | os.PathLike[str]) -> "Session":
        """Load the session file at ``path`` (e.g. a notebook's ``analysis.codetether.json``).

        The session stays bound to ``path``: ``save()`` writes back there.
        """
        return await asyncio.to_thread(lambda: storage.load_file(Path(path).absolute(), None, model=cls))

    async def save(self, path: str | os.PathLike[str] | None = None, *, replaces: "Session | None" = None) -> bool:
        """Write the session atomically (off the event loop); return False when nothing changed.

        ``path``: write there and bind the session to it (default: the bound file, else
        ``<data dir>/sessions/<id>.json``). Raises SessionConflictError when the file changed
        on disk since this object loaded or saved it (or exists and was never loaded by it):
        no save overwrites turns it has not read. ``replaces``: another session object loaded
        from ``path`` whose version of the file this one may replace (a new conversation in
        a notebook's file); the same check applies to that version.
        """
        explicit = Path(path).absolute() if path is not None else None
        return await asyncio.to_thread(lambda: storage.save_file(self, storage.save_target(self, explicit), replaces))

    async def save_archive(self, path: str | os.PathLike[str]) -> None:
        """Write a copy of this session to ``path`` without binding it there.

        A file already at ``path`` is replaced only when all it holds is also in this session
        (an older copy of this conversation); else SessionConflictError, and nothing is written.
        """
        target = Path(path).absolute()
        await asyncio.to_thread(storage.archive_file, self, target)

    async def check_save(self) -> None:
        """Raise the ``SessionConflictError`` that ``save()`` (to the bound file) would, without writing."""
        await asyncio.to_thread(lambda: storage.check_save(self, storage.save_target(self, None)))

    def bind_path(self, path: str | os.PathLike[str]) -> bool:
        """Make ``path`` the file the next ``save()`` writes, without writing now, when no file is there
        yet; False (nothing changed) when one is: then save there explicitly, which checks it.

        A notebook's first cell binds its new session this way, so the first write of the turn is the
        user message's save beside the model request, not one more before it.
        """
        target = Path(path).absolute()
        if target.exists():
            return False
        storage.bind(self, target, None)
        return True

    @classmethod
    async def delete(cls, session_id: str) -> Path:
        """Delete the session file of ``session_id`` (checked to hold that id); return its path."""
        validate_id(session_id)
        return await asyncio.to_thread(storage.delete_file, session_id)

    @classmethod
    async def last_for_directory(cls, workspace: str | os.PathLike[str] | None = None) -> "Session":
        """The most recently updated session of ``workspace`` (None: of any directory)."""
        summary = await _latest_summary(workspace)
        return await asyncio.to_thread(lambda: storage.load_file(summary.path, summary.id, model=cls))

    @classmethod
    async def last(cls) -> "Session":
        return await cls.last_for_directory(None)

    @classmethod
    async def last_for_directory_tail(
        cls, workspace: str | os.PathLike[str] | None, window: int
    ) -> "storage.TailLoad":
        """Like ``last_for_directory`` keeping only the last ``window`` messages and tool uses.

        Memory is bounded by the window while parsing. When anything was dropped the session
        is forked (new id, title "<title> (continued)", not bound to the original file), so
        saving the truncated copy never overwrites the full transcript.
        """
        if not isinstance(window, int) or isinstance(window, bool) or window < 0:
            raise ValueError(f"window must be a whole number of messages (0 or more), not {window!r}")
        summary = await _latest_summary(workspace)
        loaded = await asyncio.to_thread(
            lambda: storage.tail_load_file(summary.path, window, summary.id, model=cls)
        )
        if loaded.dropped > 0:
            loaded.session._fork()
        return loaded

    @classmethod
    async def resume(cls, session_id: str) -> "storage.TailLoad":
        """Load ``session_id`` to continue it: whole when small, else only its tail, forked.

        A file of tens of MB or more is not decoded whole (``session.resume``): its last messages
        are kept (``dropped`` counts the rest) and the copy gets a new id and the title
        "<title> (continued)", so saving it never overwrites the full transcript.
        """
        validate_id(session_id)
        return await cls._resume_at(lambda: storage.resolve_path(session_id), session_id)

    @classmethod
    async def resume_path(cls, path: str | os.PathLike[str]) -> "storage.TailLoad":
        """``resume`` for the session file at ``path`` (a notebook's), bound to it when kept whole."""
        target = Path(path).absolute()
        return await cls._resume_at(lambda: target, None)

    @classmethod
    async def _resume_at(cls, where: Callable[[], Path], session_id: str | None) -> "storage.TailLoad":
        loaded = await asyncio.to_thread(lambda: resume.resume_file(where(), session_id, model=cls))
        if loaded.dropped > 0:
            loaded.session._fork()
        return loaded

    def _fork(self) -> None:
        self.id = str(uuid.uuid4())
        if self.title:
            self.title = f"{self.title} (continued)"
        if self.metadata.provenance is not None:
            self.metadata.provenance.session_id = self.id
        storage.bind(self, session_path(self.id), None)

    # -- titles ---------------------------------------------------------------------

    async def generate_title(self) -> None:
        """Set the title from the first user message with text, unless there is one already."""
        if self.title is None:
            self.title = title_from_messages(self.messages)

    async def regenerate_title(self) -> None:
        """Set the title from the first user message even when one is set."""
        title = title_from_messages(self.messages)
        if title is not None:
            self.title = title

    def set_title(self, title: str) -> None:
        self.title = title
        self.updated_at = utc_now()

    def clear_title(self) -> None:
        self.title = None
        self.updated_at = utc_now()

    async def on_context_change(self, regenerate_title: bool) -> None:
        self.updated_at = utc_now()
        if regenerate_title:
            await self.regenerate_title()

    # -- identity, provenance, configuration ---------------------------------------

    def set_agent_name(self, agent_name: str) -> None:
        self.agent = agent_name
        if self.metadata.provenance is not None:
            self.metadata.provenance.set_agent_name(agent_name)

    def attach_worker_task_provenance(self, worker_id: str, task_id: str) -> None:
        if self.metadata.provenance is not None:
            self.metadata.provenance.apply_worker_task(worker_id, task_id)

    def attach_claim_provenance(self, claim: ClaimProvenance) -> None:
        if self.metadata.provenance is not None:
            self.metadata.provenance.apply_claim(claim)

    def apply_config(self, config: Config, registry: ModelResolver | None = None) -> None:
        """Copy ``config.rlm`` into ``metadata.rlm`` (idempotent); see ``subcall``."""
        apply_config(self, config, registry)

    def resolve_subcall_provider(self, registry: ModelResolver) -> Any:
        """Resolve ``metadata.rlm.subcall_model``; a failure is logged and gives None."""
        return resolve_subcall_provider(self, registry)

    # -- transcript and bus ---------------------------------------------------------

    def add_message(self, message: Message, *, publish: bool = True) -> None:
        """Append ``message`` and bump ``updated_at``.

        With a bus, user and assistant messages are published on
        ``agent.{agent}.user`` / ``agent.{agent}.assistant`` (``publish=False`` skips that).
        """
        self.messages.append(message)
        self.updated_at = utc_now()
        if publish and self._bus is not None and message.role in ("user", "assistant"):
            self.publish(message.role, _message_payload(self, message))

    def with_bus(self, bus: AgentBus) -> "Session":
        self._bus = bus
        return self

    def publish(self, kind: str, message: dict[str, Any], correlation_id: str | None = None) -> Any:
        """Publish on ``agent.{agent}.{kind}`` (no-op without a bus); returns the envelope."""
        if self._bus is None:
            return None
        payload = dict(message)
        if kind in DEFAULT_KINDS:
            payload.setdefault("kind", DEFAULT_KINDS[kind])
        payload.setdefault("agent_id", self.agent)
        return self._bus.publish(f"agent.{self.agent}.{kind}", payload, self.agent, correlation_id)

    # -- the agent loop ---------------------------------------------------------

    async def prompt(self, message: str) -> SessionResult:
        return await self.prompt_with_events(message, None, None)

    async def prompt_with_events(
        self,
        message: str,
        events: Any,
        registry: Any = None,
        **options: Any,
    ) -> SessionResult:
        return await self.prompt_with_events_and_images(message, [], events, registry, **options)

    async def prompt_with_events_and_images(
        self,
        message: str,
        images: list[ImageAttachment],
        events: "Any | Callable[[Any], Any]",
        registry: Any = None,
        **options: Any,
    ) -> SessionResult:
        """Run one user turn: ``events`` is an ``asyncio.Queue`` or a callable taking each event.

        ``registry`` is a ``ProviderRegistry`` (None: loaded from Vault and the environment).
        ``options`` go to the loop (``agent.loop.run_prompt``): ``model``, ``tools``, ``approver``,
        ``max_steps``. The loop is reached through the prompt door (see the module docstring).
        """
        return await _prompt_door.run_turn(self, message, images, events, registry, **options)


async def list_sessions(*, count_messages: bool = True) -> list["storage.SessionSummary"]:
    """Every readable session (data dir and notebook files the index knows), newest first.

    ``count_messages=False`` leaves ``message_count`` None and reads only each file's header
    instead of walking every transcript.
    """
    return await asyncio.to_thread(listing.list_summaries, None, count_messages)


async def list_sessions_for_directory(
    workspace: str | os.PathLike[str] | None = None, *, count_messages: bool = True
) -> list["storage.SessionSummary"]:
    """The sessions whose ``metadata.directory`` is ``workspace`` (default: cwd), newest first."""
    directory = workspace if workspace is not None else os.getcwd()
    return await asyncio.to_thread(listing.list_summaries, directory, count_messages)


def _message_payload(session: Session, message: Message) -> dict[str, Any]:
    if message.role == "user":
        return {"text": message.text, "workspace": session.metadata.directory or "",
                "session_id": session.id}
    parts = [{"type": "text", "text": message.text}] if message.text else []
    return {"from": session.agent, "to": "user", "parts": parts}


async def _latest_summary(workspace: str | os.PathLike[str] | None) -> "storage.SessionSummary":
    summary = await asyncio.to_thread(listing.latest_summary, workspace)
    if summary is None:
        where = f"directory {os.fspath(workspace)}" if workspace is not None else "any directory"
        raise not_found(sessions_dir(), f"for {where}")
    return summary
