"""Text printed into the cell while it runs, held back until the live view is cleared.

The run ends with ``clear_output``, which nbclient and JupyterLab apply to every output of
the cell, so a line printed before (a notice that the notebook's transcript moved, a hint
about an image) would vanish with the widget; nbval ignores ``clear_output``, so writing it
twice would not do either. Held and written once after the clear, it shows once everywhere,
above the record.
"""

from __future__ import annotations

import io
import sys
from typing import TextIO

__all__ = ["HeldOutput"]


class HeldOutput:
    """``start`` swaps sys.stdout and sys.stderr for buffers; ``release`` puts the streams back
    and writes what was held to them (idempotent, so every way out of a run may call it)."""

    def __init__(self) -> None:
        self._saved: tuple[TextIO, TextIO] | None = None
        self._buffers: tuple[io.StringIO, io.StringIO] | None = None

    def start(self) -> None:
        if self._saved is None:
            self._saved = (sys.stdout, sys.stderr)
            self._buffers = (io.StringIO(), io.StringIO())
            sys.stdout, sys.stderr = self._buffers

    def release(self) -> None:
        if self._saved is None or self._buffers is None:
            return
        (stdout, stderr), (held_out, held_err) = self._saved, self._buffers
        self._saved = self._buffers = None
        if sys.stdout is held_out:  # something else swapped the streams since: leave its choice alone
            sys.stdout = stdout
        if sys.stderr is held_err:
            sys.stderr = stderr
        for stream, held in ((stdout, held_out), (stderr, held_err)):
            if held.getvalue():
                stream.write(held.getvalue())
                stream.flush()
