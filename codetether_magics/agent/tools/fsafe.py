"""File-system steps that never block, never follow a path out of the root and never loop.

- ``file_kind`` names what a path is (file, directory, FIFO, socket, device, symlink loop)
  from ``stat`` alone: nothing is opened, so a FIFO cannot block and a tape device cannot rewind.
- ``open_regular`` opens a regular file only. ``O_NONBLOCK`` makes opening a FIFO return at
  once instead of waiting for a writer (the read that waited for ever held a worker thread
  for good), ``O_NOFOLLOW`` refuses a symlink swapped in after the path was checked, and
  ``fstat`` after the open refuses anything that is not a regular file by then (no race).
- ``walk_files`` lists the regular files under a folder: it never enters a symlinked
  folder (so no symlink loop and no way out), skips a link whose target lies outside the
  root or cannot be resolved (a loop), and skips unreadable folders instead of failing.

Standard library only, with no imports from this package: the grep worker process loads
this file by path (see ``grep_worker``).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Callable, Iterator

__all__ = ["RefusedFile", "SKIPPED_DIRS", "file_kind", "is_inside", "open_regular", "printable", "walk_files"]

SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".ipynb_checkpoints", "node_modules", ".venv"})
_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


class RefusedFile(Exception):
    """A path the file tools will not open; the message says what it is."""


def printable(name: str) -> str:
    """A file name as UTF-8 text: bytes that are not UTF-8 (which ``os`` keeps as surrogates, and
    which no answer to the model can carry) shown as ``\\xff`` escapes."""
    return os.fsencode(name).decode("utf-8", errors="backslashreplace")


def is_inside(path: Path, root: Path) -> bool:
    """True when the already-resolved ``path`` is ``root`` or below it."""
    return path == root or root in path.parents


def _kind_of_mode(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def file_kind(path: Path | str) -> str:
    """'file', 'directory', 'missing', 'a symlink loop' or what else it is ('a FIFO (named pipe)', ...)."""
    try:
        return _kind_of_mode(os.stat(path).st_mode)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return "a symlink loop" if exc.errno == errno.ELOOP else f"unreadable ({exc.strerror})"


def open_regular(path: Path | str, shown: str, *, write: bool = False) -> int:
    """A file descriptor of the regular file ``path`` (created when ``write``), or ``RefusedFile``."""
    kind = file_kind(path)
    if kind not in ("file", "missing") or (kind == "missing" and not write):
        raise RefusedFile(f"{shown} is {kind}" if kind != "missing" else f"No such file: {shown}")
    flags = os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
    flags |= (os.O_WRONLY | os.O_CREAT) if write else os.O_RDONLY
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:  # ELOOP: a symlink swapped in; ENXIO: a FIFO without a reader
        raise RefusedFile(f"{shown} could not be opened safely ({exc.strerror})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise RefusedFile(f"{shown} is {_kind_of_mode(mode)}")
    return fd


def _linked_file(entry: os.DirEntry, root: Path) -> bool:
    """A symlink counts when it resolves inside ``root`` to a regular file."""
    try:
        real = Path(entry.path).resolve(strict=True)
        return is_inside(real, root) and stat.S_ISREG(os.stat(real).st_mode)
    except (OSError, RuntimeError):  # a loop or a dangling link: skipped, not fatal
        return False


def walk_files(base: Path, root: Path, checkpoint: Callable[[], None] = lambda: None) -> Iterator[Path]:
    """Every regular file under ``base`` (sorted, depth first) that is inside ``root``.

    ``base`` and ``root`` are resolved. No symlinked folder is entered, so every folder of a
    yielded path is real and ``path.relative_to(root)`` names it. ``checkpoint`` runs once per
    folder and file, so a caller can stop a long walk.
    """
    stack = [base]
    while stack:
        folder = stack.pop()
        checkpoint()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError:  # unreadable or vanished: skipped
            continue
        subfolders = []
        for entry in entries:
            checkpoint()
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in SKIPPED_DIRS:
                        subfolders.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False) or (entry.is_symlink() and _linked_file(entry, root)):
                    yield Path(entry.path)
            except OSError:
                continue
        stack.extend(reversed(subfolders))
