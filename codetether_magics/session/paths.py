"""Where session files live (docs/design.md, "Where sessions live") and which ids are acceptable.

Every public storage function validates an id with :func:`validate_id` before it
builds a path from it, so ``../x`` or ``a/b`` never reach the file system.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import InvalidSessionIdError

__all__ = [
    "DATA_DIR_ENV",
    "NOTEBOOK_SESSION_SUFFIX",
    "data_dir",
    "notebook_session_path",
    "session_path",
    "sessions_dir",
    "validate_id",
]

DATA_DIR_ENV = "CODETETHER_DATA_DIR"
DATA_DIR_NAME = ".codetether-agent"
NOTEBOOK_SESSION_SUFFIX = ".codetether.json"
_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def validate_id(session_id: object) -> str:
    """Return ``session_id`` if it is 1-128 characters of ``[A-Za-z0-9_-]``, else raise."""
    if isinstance(session_id, str) and _ID.fullmatch(session_id):
        return session_id
    shown = repr(session_id) if not isinstance(session_id, str) else repr(session_id[:40])
    raise InvalidSessionIdError(
        f"Invalid session id {shown}: an id is 1 to 128 characters of letters, digits, "
        "'_' and '-'. Use an id printed by `%codetether list`."
    )


def _git_root(start: Path) -> Path | None:
    home = Path.home().resolve()
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            # A repository at / or at $HOME is someone's dotfiles, not a project.
            return None if folder in (Path(folder.anchor), home) else folder
    return None


def data_dir(cwd: str | os.PathLike[str] | None = None) -> Path:
    """``$CODETETHER_DATA_DIR``, else ``<git root>/.codetether-agent``, else ``<cwd>/.codetether-agent``."""
    configured = os.environ.get(DATA_DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser().absolute()
    here = Path(cwd if cwd is not None else os.getcwd()).resolve()
    root = _git_root(here)
    return (root or here) / DATA_DIR_NAME


def sessions_dir() -> Path:
    return data_dir() / "sessions"


def session_path(session_id: str) -> Path:
    """The data-dir file of ``session_id`` (validated first)."""
    return sessions_dir() / f"{validate_id(session_id)}.json"


def notebook_session_path(notebook: str | os.PathLike[str]) -> Path:
    """``analysis.ipynb`` -> ``analysis.codetether.json`` in the same folder."""
    path = Path(notebook)
    stem = path.name[: -len(".ipynb")] if path.name.endswith(".ipynb") else path.name
    return path.with_name(stem + NOTEBOOK_SESSION_SUFFIX)
