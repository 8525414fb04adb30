"""Per-kernel state of the magics: which notebook, which session, how often each prompt ran.

The notebook's conversation lives in ``<stem>.codetether.json`` beside the notebook and is
loaded from there on first use, so a restarted kernel continues it. ``--new`` (or
``%codetether new``) first copies the current conversation into the data dir under its
id, where ``%codetether list`` / ``resume ID`` and ``Session.load(id)`` find it, then
starts a fresh one in the notebook's file.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

from .path import NotebookLocation, find_notebook

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
        self.session = None
        self._location = None
        return self.location()

    # -- which session ----------------------------------------------------------

    async def current(self) -> Any:
        """The notebook's session: loaded from beside the notebook, else a new one."""
        location = self.location()
        if self.session is None or self._location != location:
            self.session = await _load_or_new(location)
            self._location = location
        return self.session

    async def start_new(self) -> tuple[Any, str | None]:
        """Archive the current conversation (returns its id) and start an empty one."""
        old = await self.current()
        archived = None
        if old.messages:
            await _archive(old)
            archived = old.id
        await self._adopt(await _new_for(self.location(), model=old.metadata.model))
        return self.session, archived

    async def resume(self, session_id: str) -> Any:
        """Continue the saved session ``session_id`` in this notebook (the current one is archived)."""
        from ..session.session import Session

        current = await self.current()
        if current.id == session_id:
            return current
        resumed = await Session.load(session_id)
        if current.messages:
            await _archive(current)
        await self._adopt(resumed)
        return resumed

    async def _adopt(self, session: Any) -> None:
        """Make ``session`` the notebook's conversation and write it beside the notebook,
        replacing the conversation that file held (the caller archived it first)."""
        location = self.location()
        session.metadata.notebook = location.path.name
        self.session, self._location = session, location
        await session.save(location.transcript, force=True)

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
        session.metadata.directory = self.tool_root(session)
        transcript = self.location().transcript
        if session.path is None or Path(session.path).absolute() != transcript.absolute():
            await session.save(transcript)

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

    if location.transcript.exists():
        return await Session.load_path(location.transcript)
    return await _new_for(location)


async def _new_for(location: NotebookLocation, model: str | None = None) -> Any:
    from ..session.session import Session

    folder = location.path.parent
    session = await Session.new(folder if folder.is_dir() else None)
    session.metadata.notebook = location.path.name
    session.metadata.model = model
    return session


async def _archive(session: Any) -> None:
    """Keep a copy under the data dir, where ``Session.load(id)`` and ``list`` find it."""
    from ..session.paths import session_path

    await session.model_copy(deep=True).save(session_path(session.id), force=True)
