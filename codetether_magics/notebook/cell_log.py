"""The record of the cells this kernel ran: source, text output, images, error.

``CellLog`` is the listener of ``ImageCapture`` (the same ``pre_run_cell`` / ``post_run_cell``
events and display hooks, so there is one set of hooks) and tees ``sys.stdout`` / ``sys.stderr``
while a cell runs (IPython 9 does the same for its output history). Each cell is keyed by our
own counter (``seq``), because under nbval ``execution_count`` never moves and ``In`` stays
empty; the number shown to the model is the one ``-i N`` uses: the execution count when the
shell keeps history, else the run order counted from the cell that loaded the extension.

Agent cells (``%%codetether``, ``%codetether``) are recorded but flagged: their content is
already in the transcript.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import sys
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CellError", "CellLog", "CellRecord", "TextBuffer"]

log = logging.getLogger(__name__)

KEEP_CELLS = 500  # cells remembered per kernel
TEXT_HEAD = 8_000  # characters of a cell's text output kept from its start...
TEXT_TAIL = 4_000  # ...and from its end
SOURCE_KEEP = 20_000
LAST_FRAMES = 5
_AGENT_CELL = re.compile(r"^\s*(?:#[^\n]*\n\s*)*%%?codetether\b")
_UNSET = object()
_LIBRARY_ROOT = re.compile(r".*[/\\](?:site|dist)-packages[/\\]")


def _quietly(function: Any, *args: Any) -> None:
    try:
        function(*args)
    except Exception:
        log.debug("recording a cell failed", exc_info=True)


class TextBuffer:
    """Text a cell printed: its start and its end, with the size of what was left out."""

    def __init__(self) -> None:
        self.head = ""
        self.tail = ""
        self.dropped = 0

    def append(self, text: str) -> None:
        room = TEXT_HEAD - len(self.head)
        if room > 0:
            self.head += text[:room]
            text = text[room:]
        if text:
            self.tail += text
            if len(self.tail) > 2 * TEXT_TAIL:  # trim in batches: appends stay cheap
                self.dropped += len(self.tail) - TEXT_TAIL
                self.tail = self.tail[-TEXT_TAIL:]

    def __bool__(self) -> bool:
        return bool(self.head)

    def text(self, limit: int) -> str:
        """At most about ``limit`` characters: the start and the end, with a note between."""
        tail = self.tail[-TEXT_TAIL:]
        left_out = self.dropped + len(self.tail) - len(tail)
        whole = len(self.head) + len(tail) + left_out
        if whole <= limit:
            return self.head + tail
        head_part, tail_part = self.head[: limit * 2 // 3], (self.head + tail)[-(limit // 3):]
        return f"{head_part}\n[... {whole - len(head_part) - len(tail_part):,} characters left out ...]\n{tail_part}"


@dataclass(frozen=True)
class CellError:
    kind: str  # the exception's type name
    summary: str  # "KeyError: 'price'" as Python prints its last line(s)
    traceback: str  # the last frames, cells named by number, library paths shortened


@dataclass
class CellRecord:
    seq: int  # our own counter: unique, in run order
    source: str
    number: int = 0  # set when the cell finishes (see the module docstring)
    output: TextBuffer = field(default_factory=TextBuffer)
    images: int = 0  # image outputs displayed or returned
    error: CellError | None = None
    finished: bool = False

    @property
    def is_agent(self) -> bool:
        return bool(_AGENT_CELL.match(self.source))


class CellLog:
    """Cells run since the extension was loaded; set it as ``ImageCapture.listener``."""

    def __init__(self, shell: Any, *, keep: int = KEEP_CELLS) -> None:
        self.shell = shell
        self.cells: deque[CellRecord] = deque(maxlen=keep)
        self._seq = itertools.count(1)
        self._current: CellRecord | None = None
        self._files_before = 0
        self._cell_files: dict[str, int] = {}  # compiled cell file name -> cell number
        self._streams: list[tuple[Any, Any, Any]] = []  # (stream, our write, the write before ours)

    # -- ImageCapture listener: these never raise, the user's cell matters more than our record ----

    def cell_started(self, info: Any) -> None:
        _quietly(self._cell_started, info)

    def displayed(self, bundle: dict, returned: bool) -> None:
        _quietly(self._displayed, bundle, returned)

    def cell_finished(self, number: int, result: Any) -> None:
        _quietly(self._cell_finished, number, result)

    def _cell_started(self, info: Any) -> None:
        source = getattr(info, "raw_cell", "") or ""
        self.untee_streams()  # a cell that never finished (an unload, a crash in a hook)
        self._current = CellRecord(next(self._seq), source[:SOURCE_KEEP])
        self.cells.append(self._current)
        self._files_before = len(self._filename_map())
        self._tee_streams()

    def _displayed(self, bundle: dict, returned: bool) -> None:
        cell = self._current
        if cell is None:
            return
        if any(mime.startswith("image/") for mime in bundle):
            cell.images += 1
        elif "application/vnd.jupyter.widget-view+json" not in bundle and isinstance(bundle.get("text/plain"), str):
            cell.output.append(bundle["text/plain"] + "\n")

    def _cell_finished(self, number: int, result: Any) -> None:
        cell, self._current = self._current, None
        self.untee_streams()
        if cell is None:  # the cell that loaded the extension: it started before we listened
            return
        cell.number = number
        cell.finished = True
        for name in list(self._filename_map())[self._files_before:]:
            self._cell_files[name] = number
        error = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
        if isinstance(error, BaseException):
            cell.error = self._describe_error(error)

    # -- stdout and stderr ------------------------------------------------------

    def _tee_streams(self) -> None:
        """Record what this cell prints: wrap the ``write`` of stdout and stderr until it ends.

        Per cell, because IPython 9 wraps ``write`` the same way around each cell and puts its own
        back afterwards (ipykernel's stream hooks run on its I/O thread, where the cell is unknown).
        """
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name, None)
            if stream is None or not hasattr(stream, "__dict__"):
                continue  # a stream that takes no attributes: its text is not recorded
            before = stream.__dict__.get("write", _UNSET)
            stream.write = self._writer(stream.write)
            self._streams.append((stream, stream.__dict__["write"], before))

    def _writer(self, original: Any) -> Any:
        def write(text: Any, *args: Any, **kwargs: Any) -> Any:
            cell = self._current
            if cell is not None and isinstance(text, str) and not self._shell_is_showing():
                cell.output.append(text)
            return original(text, *args, **kwargs)

        return write

    def _shell_is_showing(self) -> bool:
        """A traceback or a display the shell prints itself: recorded as the error or the display already."""
        shell = self.shell
        return bool(getattr(shell, "showing_traceback", False)
                    or getattr(getattr(shell, "display_pub", None), "is_publishing", False)
                    or getattr(getattr(shell, "displayhook", None), "is_active", False))

    def untee_streams(self) -> None:
        """Put back what ``write`` was before this cell (also on unload in the middle of a cell)."""
        for stream, ours, before in reversed(self._streams):
            if stream.__dict__.get("write") is not ours:
                continue  # someone wrapped it after us: leave theirs in place
            if before is _UNSET:
                del stream.__dict__["write"]
            else:
                stream.write = before
        self._streams.clear()

    # -- questions --------------------------------------------------------------

    def finished_cells(self) -> list[CellRecord]:
        return [cell for cell in self.cells if cell.finished]

    def last_error(self) -> CellRecord | None:
        """The newest user cell (not an agent cell) that raised."""
        return next((c for c in reversed(self.cells) if c.finished and c.error and not c.is_agent), None)

    # -- errors -----------------------------------------------------------------

    def _filename_map(self) -> dict[str, int]:
        compiler = getattr(self.shell, "compile", None)
        files = getattr(compiler, "_filename_map", None)  # IPython's map of cell files to counts
        return files if isinstance(files, dict) else {}

    def _describe_error(self, error: BaseException) -> CellError:
        summary = "".join(traceback.format_exception_only(type(error), error)).strip()
        frames = traceback.extract_tb(error.__traceback__)
        known = self._filename_map()
        while frames and frames[0].filename not in known and len(frames) > 1:
            frames.pop(0)  # IPython's own frames above the cell
        rendered = self._render_frames(list(frames), summary, known)
        cause = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
        if isinstance(cause, BaseException):  # one line: what it was raised while handling
            first = "".join(traceback.format_exception_only(type(cause), cause)).strip().splitlines()[-1]
            rendered = f"(raised while handling {first[:300]})\n{rendered}"
        return CellError(type(error).__name__, summary, rendered)

    def _render_frames(self, frames: list[traceback.FrameSummary], summary: str, known: dict) -> str:
        shown = frames[-LAST_FRAMES:]
        head = "Traceback (most recent call last):" if len(shown) == len(frames) else (
            f"Traceback (the last {len(shown)} of {len(frames)} frames):")
        lines = [head]
        for frame in shown:
            lines.append(f"  {self._where(frame.filename, known)}, line {frame.lineno}, in {frame.name}")
            if frame.line:
                lines.append(f"    {frame.line.strip()}")
        lines.append(summary)
        return "\n".join(lines)

    def _where(self, filename: str, known: dict) -> str:
        if filename in self._cell_files:
            return f"Cell {self._cell_files[filename]}"
        if filename in known:
            return "an earlier cell"
        short = _LIBRARY_ROOT.sub("", filename)
        if short == filename:  # not a library: the last two parts say enough and name no home folder
            short = os.path.join(*filename.replace("\\", "/").split("/")[-2:]) if "/" in filename else filename
        return short
