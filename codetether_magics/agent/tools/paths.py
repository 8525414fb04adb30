"""Keep every built-in file tool inside the session's directory.

A path from the model is resolved (symlinks followed) and must land inside the
resolved root: ``../`` escapes, absolute paths elsewhere and symlinks that point out
of the root are all refused with a ``ToolError`` the model can read and act on.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import ToolError

__all__ = ["confine", "display_path", "is_inside"]


def is_inside(path: Path, root: Path) -> bool:
    """True when the already-resolved ``path`` is ``root`` or below it."""
    return path == root or root in path.parents


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
    resolved = candidate.resolve()  # follows symlinks, so a link out of the root is caught here
    if not is_inside(resolved, real_root):
        raise ToolError(
            f"'{raw}' is outside the session directory {real_root}; "
            "only paths inside it can be used (symlinks pointing out of it are refused too)."
        )
    return resolved


def display_path(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form ("." for the root itself)."""
    rel = path.relative_to(root.resolve())
    return rel.as_posix() or "."
