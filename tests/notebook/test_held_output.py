"""HeldOutput: what a run prints is written once, after the view is cleared, and the streams come back."""

from __future__ import annotations

import io
import sys

from codetether_magics.notebook.view.held_output import HeldOutput


def test_held_text_is_written_once_on_release_and_the_streams_come_back(monkeypatch):
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    held = HeldOutput()
    held.start()
    print("notice: the transcript moved")
    print("a warning", file=sys.stderr)
    assert out.getvalue() == err.getvalue() == ""  # nothing shows before the clear
    held.release()
    held.release()  # every way out of a run may call it
    assert sys.stdout is out and sys.stderr is err
    assert out.getvalue() == "notice: the transcript moved\n" and err.getvalue() == "a warning\n"


def test_a_stream_swapped_by_someone_else_meanwhile_is_left_alone(monkeypatch):
    out, other = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    held = HeldOutput()
    held.start()
    sys.stdout = other  # e.g. an extension unloaded and restored its own wrapper
    held.release()
    assert sys.stdout is other
