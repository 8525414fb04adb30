"""Per-kernel state of the magics: which notebook, which session, how often each prompt ran.

The notebook's conversation lives in ``<stem>.codetether.json`` beside the notebook and is
loaded from there on first use, so a restarted kernel continues it; a large one (tens of MB)
is continued from its tail under a new id, the full file kept beside it (``session.resume``). ``--new`` (or
``%codetether new``) first copies the current conversation into the data dir under its
id, where ``%codetether list`` / ``resume ID`` and ``Session.load(id)`` find it, then
starts a fresh one in the notebook's file.

No write here is forced. The notebook's file is replaced only in the version this kernel
read; when another kernel (or anything else) changed it meanwhile, nothing is replaced,
this kernel forgets its stale copy and says how to go on. A transcript copied along with
its notebook gets an id of its own before anything is archived, so two copies never share
one archive file, and an archive replaces an older copy of the same conversation only.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from ..errors import SessionConflictError
from .path import NotebookLocation, find_notebook, transcript_path
from .renames import follow_rename

__all__ = ["NotebookState"]


class NotebookState:
    def __init__(self, magics: Any) -> None:
        self.magics = magics
        self.shell = magics.shell
        self.bound: str | None = None  # from %codetether bind
        self.session: Any = None  # the notebook's current Session, once loaded
        self._location: NotebookLocation | None = None  # where self.session was loaded from
        self._runs: Counter[tuple[str, str]] = Counter()  # (session id, prompt) -> runs this kernel

    # -- where ------------------------------------------------------------------

    def location(self) -> NotebookLocation:
        return find_notebook(self.shell.user_ns, os.environ, bound=self.bound)

    def bind(self, notebook: str) -> NotebookLocation:
        """Bind to another notebook path; its transcript is loaded on next use."""
        self.bound = notebook
        self.forget()
        return self.location()

    def forget(self) -> None:
        """Drop the loaded session: the next use reads the notebook's file again."""
        self.session = None
        self._location = None

    # -- which session ----------------------------------------------------------

    async def current(self) -> Any:
        """The notebook's session: loaded from beside the notebook, else a new one."""
        location = self.location()
        if self.session is None or self._location != location:
            self.session = await _load_or_new(location)
            self._location = location
        return self.session

    async def start_new(self) -> tuple[Any, str | None]:
        """Archive the current conversation (returns the id it is kept under) and start an empty one."""
        old = await self.current()
        await self._own(old)
        archived = await _archive(old) if old.messages else None
        await self._adopt(await _new_for(self.location(), model=old.metadata.model), replacing=old)
        return self.session, archived

    async def resume(self, session_id: str) -> Any:
        """Continue the saved session ``session_id`` in this notebook (the current one is archived)."""
        from ..session.session import Session

        current = await self.current()
        if current.id == session_id:
            return current
        resumed = (await Session.resume(session_id)).session  # a large one: its tail, forked
        await self._own(current)
        if current.messages:
            await _archive(current)
        await self._adopt(resumed, replacing=current)
        return resumed

    async def _adopt(self, session: Any, *, replacing: Any) -> None:
        """Make ``session`` the notebook's conversation, replacing ``replacing`` in the file beside
        the notebook (archived by the caller), but only in the version of it this kernel read."""
        location = self.location()
        session.metadata.notebook = location.path.name
        try:
            await session.save(location.transcript, replaces=replacing)
        except SessionConflictError:
            self.forget()
            raise SessionConflictError(
                f"{location.transcript.name} was changed by another kernel or program since this kernel "
                "read it, so it was not replaced and nothing was lost. Run the same command again: this "
                "kernel reads the file first."
            ) from None
        self.session, self._location = session, location

    async def for_cell(self, options: Any) -> Any:
        """The session a ``%%codetether`` cell talks to, after ``--new`` / ``--session``."""
        if options.new:
            session, _ = await self.start_new()
            return session
        if options.session:
            return await self.resume(options.session)
        return await self.current()

    async def before_live_run(self, session: Any) -> None:
        """Make sure the loop's saves go to the file beside the notebook, not the data dir,
        and that the session's directory exists here (a notebook moves between machines)."""
        await self._own(session)
        session.metadata.directory = self.tool_root(session)
        transcript = self.location().transcript
        if session.path is None or Path(session.path).absolute() != transcript.absolute():
            if not session.bind_path(transcript):  # nothing there yet: the turn's first save writes it
                await session.save(transcript)

    async def keep_after_conflict(self, session: Any) -> SessionConflictError:
        """A live run could not save: the notebook's file changed under it (another kernel).

        Nothing on disk is replaced. This kernel's copy, the turn that could not be saved
        included, is kept in the data dir under a new id, and the stale copy is forgotten so
        the next cell reads the file again. Returns the error that says both ways on.
        """
        transcript = self.location().transcript.name
        kept = session.model_copy(deep=True)
        _give_new_id(kept)
        await kept.save_archive(_data_dir_path(kept.id))
        self.forget()
        return SessionConflictError(
            f"{transcript} was changed by another kernel or program while this cell ran, so this kernel "
            f"did not overwrite it. This kernel's copy of the conversation, this turn included, is kept as "
            f"session {kept.id}: `%codetether resume {kept.id}` continues it here. Or run the cell again to "
            "continue the conversation as the file holds it now."
        )

    async def _own(self, session: Any) -> None:
        """Before anything is saved or archived: a transcript copied from another notebook (same
        id in two files) becomes a conversation of its own, with a new id, in this notebook."""
        location = self.location()
        recorded = session.metadata.notebook
        if recorded and recorded != location.path.name and _is_copy(session, location, recorded):
            _give_new_id(session)
        session.metadata.notebook = location.path.name

    def tool_root(self, session: Any) -> str:
        """Where file tools work: the notebook's folder (else the cwd), whatever the transcript says."""
        from ..agent.tools.paths import tool_root

        return str(tool_root(self.location().path.parent))

    # -- replay bookkeeping -----------------------------------------------------

    def occurrence(self, session: Any, prompt: str) -> int:
        """How many times this prompt already ran against this session in this kernel."""
        return self._runs[(session.id, prompt.strip())]

    def count_run(self, session: Any, prompt: str) -> None:
        self._runs[(session.id, prompt.strip())] += 1


async def _load_or_new(location: NotebookLocation) -> Any:
    from ..session.session import Session

    if not (location.transcript.exists() or await follow_rename(location)):
        return await _new_for(location)
    loaded = await Session.resume_path(location.transcript)
    if loaded.dropped == 0:
        return loaded.session
    # A large transcript was resumed as its tail, under a new id: the full file keeps its own id
    # under another name in the same folder (renamed, never re-encoded), and the fork takes the
    # notebook's file.
    await _move_aside(location.transcript)
    await loaded.session.save(location.transcript)
    return loaded.session


async def _move_aside(transcript: Path) -> None:
    from ..session.header import read_header
    from ..session.resume import move_aside

    await asyncio.to_thread(lambda: move_aside(transcript, read_header(transcript).id))


async def _new_for(location: NotebookLocation, model: str | None = None) -> Any:
    from ..session.session import Session

    folder = location.path.parent
    session = await Session.new(folder if folder.is_dir() else None)
    session.metadata.notebook = location.path.name
    session.metadata.model = model
    return session


def _data_dir_path(session_id: str) -> Path:
    from ..session.paths import session_path

    return session_path(session_id)


async def _archive(session: Any) -> str:
    """Keep a copy under the data dir, where ``Session.load(id)`` and ``list`` find it; returns its id.

    When ``sessions/<id>.json`` already holds turns this copy lacks (the same id continued
    elsewhere), the copy is kept under a new id instead of replacing them.
    """
    try:
        await session.save_archive(_data_dir_path(session.id))
        return session.id
    except SessionConflictError:
        copy = session.model_copy(deep=True)
        _give_new_id(copy)
        await copy.save_archive(_data_dir_path(copy.id))
        return copy.id


def _give_new_id(session: Any) -> None:
    session.id = str(uuid.uuid4())
    if session.metadata.provenance is not None:
        session.metadata.provenance.session_id = session.id


def _is_copy(session: Any, location: NotebookLocation, recorded: str) -> bool:
    """Whether another file still holds this session's id: the transcript of the notebook it
    names, the file the index knows for its id, or its archive in the data dir (the original
    notebook archived it first). A rename leaves no such file."""
    from ..session import index
    from ..session.header import try_read_header

    candidates = {transcript_path(location.path.parent / Path(recorded).name), _data_dir_path(session.id)}
    known = index.lookup_path(session.id)
    if known is not None:
        candidates.add(known)
    mine = location.transcript.absolute()
    for path in candidates:
        if Path(path).absolute() == mine:
            continue
        header = try_read_header(Path(path))
        if header is not None and header.id == session.id:
            return True
    return False
