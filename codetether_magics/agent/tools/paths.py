"""Keep every built-in file tool inside one root folder, and say which folder that is.

``tool_root`` is the one rule for the root: the notebook's folder, else the working
directory, and never a directory read from a transcript. A transcript beside a notebook
may come from someone else; its ``metadata.directory`` (``/``, ``~``, ``..``) widening
the tools would hand the whole disk to a replayed or live tool call.

``confine`` resolves a path from the model (symlinks followed) and refuses it unless it
lands inside the resolved root: ``../`` escapes, absolute paths elsewhere, ``~``, symlinks
pointing out and symlink loops all get a ``ToolError`` the model can read and act on.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...errors import ToolError
from .fsafe import is_inside, printable

__all__ = ["confine", "display_path", "is_inside", "tool_root"]


def tool_root(folder: Path | str | None = None) -> Path:
    """The folder the built-in tools work in: ``folder`` (the notebook's) when it is a directory, else the cwd."""
    if folder is not None and Path(folder).is_dir():
        return Path(folder).resolve()
    return Path(os.getcwd()).resolve()


def confine(root: Path, raw: object, *, what: str = "path") -> Path:
    """Resolve ``raw`` (relative to ``root`` or absolute) and refuse it unless it stays inside ``root``."""
    if not isinstance(raw, str) or not raw.strip():
        raise ToolError(f"'{what}' must be a non-empty string (a path relative to {root}).")
    if "\x00" in raw:
        raise ToolError(f"'{what}' contains a NUL byte; give a plain file path.")
    real_root = root.resolve()
    candidate = Path(raw).expanduser()
    if not candidate.is_absolute():
        candidate = real_root / candidate
    try:
        resolved = candidate.resolve()  # follows symlinks, so a link out of the root is caught here
    except RuntimeError:  # Python 3.11 reports a symlink loop this way
        raise ToolError(f"'{raw}' is a symlink loop; give a path to a real file.") from None
    except OSError as exc:
        raise ToolError(f"'{raw}' cannot be resolved ({exc.strerror}); give a plain path inside {real_root}.") from None
    if not is_inside(resolved, real_root):
        raise ToolError(
            f"'{raw}' is outside the session directory {real_root}; "
            "only paths inside it can be used (symlinks pointing out of it are refused too)."
        )
    return resolved


def display_path(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form ("." for the root itself)."""
    rel = path.relative_to(root.resolve())
    return printable(rel.as_posix() or ".")
