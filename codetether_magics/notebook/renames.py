"""A notebook renamed in the frontend keeps its conversation.

JupyterLab tells a kernel its notebook's path when the kernel starts, so after a rename (a
new notebook is often renamed on its first save) and a restart the kernel looks for
``<new name>.codetether.json`` and finds nothing: the conversation is still in
``<old name>.codetether.json``. When this notebook has no transcript, a transcript in the
same folder whose notebook file is gone and whose recorded prompts this notebook's
``%%codetether`` cells hold is moved to this notebook's name, with a one-line notice.
Nothing is overwritten: a file already there wins, and two equally good candidates move
neither (no guessing).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

from .path import NotebookLocation, transcript_path
from .cell_rewrite import NBVAL_LINE, strip_nbval_lines

__all__ = ["follow_rename", "notebook_prompts"]

log = logging.getLogger(__name__)
_MAGIC = "%%codetether"


async def follow_rename(location: NotebookLocation) -> bool:
    """Move a renamed notebook's transcript to ``location.transcript``; True when it did."""
    moved = await asyncio.to_thread(_follow, location)
    if moved is not None:
        print(f"CodeTether: this notebook was renamed from {moved}; its conversation follows it to "
              f"{location.transcript.name}.")
    return moved is not None


def notebook_prompts(notebook: Path) -> set[str]:
    """The prompts of the ``%%codetether`` cells of a saved notebook (empty when it is unreadable)."""
    try:
        cells = json.loads(notebook.read_bytes()).get("cells", [])
    except (OSError, ValueError, AttributeError):
        return set()
    prompts = set()
    for cell in cells if isinstance(cells, list) else []:
        prompt = _prompt_of(cell)
        if prompt:
            prompts.add(prompt)
    return prompts


def _prompt_of(cell: Any) -> str | None:
    """The prompt of a ``%%codetether`` code cell as the magic sends it (stripped), else None."""
    if not isinstance(cell, dict) or cell.get("cell_type") != "code":
        return None
    source = cell.get("source", "")
    source = "".join(source) if isinstance(source, list) else source
    lines = source.splitlines(keepends=True) if isinstance(source, str) else []
    for index, line in enumerate(lines):
        if not line.strip() or NBVAL_LINE.match(line):
            continue
        first = line.strip()
        if first != _MAGIC and not first.startswith(_MAGIC + " "):
            return None
        return strip_nbval_lines("".join(lines[index + 1 :])).strip() or None
    return None


def _follow(location: NotebookLocation) -> str | None:
    """The old notebook's name after moving its transcript, or None when nothing moved."""
    if location.transcript.exists() or not location.path.is_file():
        return None
    orphans = _orphans(location)  # first: reading headers is cheaper than reading the notebook
    prompts = notebook_prompts(location.path) if orphans else set()
    if not prompts:
        return None
    scored = sorted(((len(_recorded_prompts(path) & prompts), path, old) for path, old in orphans), reverse=True)
    if not scored or scored[0][0] == 0 or (len(scored) > 1 and scored[1][0] == scored[0][0]):
        return None
    _, source, old_name = scored[0]
    return old_name if _move(source, location.transcript) else None


def _orphans(location: NotebookLocation) -> list[tuple[Path, str]]:
    """Transcripts in the notebook's folder whose own notebook file is gone."""
    from ..session.header import try_read_header

    found = []
    for path in sorted(location.path.parent.glob("*.codetether.json")):
        header = try_read_header(path)
        if header is None or not header.notebook:
            continue
        old = location.path.parent / Path(header.notebook).name
        if not old.exists() and transcript_path(old) == path:
            found.append((path, old.name))
    return found


def _recorded_prompts(path: Path) -> set[str]:
    from ..errors import CodeTetherError
    from ..session.session import Session
    from ..session.storage import load_file

    try:
        session = load_file(path, model=Session)
    except CodeTetherError:
        return set()
    return {m.text.strip() for m in session.messages if m.role == "user" and m.text.strip()}


def _move(source: Path, target: Path) -> bool:
    """Rename ``source`` to ``target`` unless ``target`` exists (checked under the folder's lock)."""
    from ..session import index
    from ..session.files import file_lock
    from ..session.header import try_read_header

    with file_lock(target):
        if target.exists() or not source.exists():
            return False
        os.rename(source, target)
    header = try_read_header(target)
    if header is not None:  # so that Session.load(id) finds it at its new place
        index.record_location(header.id, target.absolute())
    log.info("moved %s to %s after a notebook rename", source, target)
    return True
