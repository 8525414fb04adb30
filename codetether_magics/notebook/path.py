"""Where is the notebook, and where does its transcript live (beside it, so it travels with it)?

The kernel is not told which notebook it serves, so we look, in this order, at:
``__session__`` (JupyterLab / Notebook 7, in the user namespace), ``JPY_SESSION_NAME``
(the same, in the environment), ``__vsc_ipynb_file__`` (VS Code), then ``%codetether bind``
or ``CODETETHER_NOTEBOOK``. nbclient, ``jupyter execute`` and nbval set none of these but
start the kernel in the notebook's folder, so the fallback is the only notebook in the
working directory, else a fixed name there: both deterministic.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..session.paths import notebook_session_path

__all__ = [
    "FALLBACK_NOTEBOOK_NAME",
    "NotebookLocation",
    "find_notebook",
    "transcript_path",
]

FALLBACK_NOTEBOOK_NAME = "notebook.ipynb"
@dataclass(frozen=True)
class NotebookLocation:
    path: Path  # absolute
    source: str  # where it came from, shown by `%codetether status`

    @property
    def transcript(self) -> Path:
        return transcript_path(self.path)


def transcript_path(notebook: Path) -> Path:
    """``analysis.ipynb`` -> ``analysis.codetether.json`` in the same folder (storage owns the rule)."""
    return notebook_session_path(notebook)


def find_notebook(
    user_ns: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    *,
    bound: str | os.PathLike[str] | None = None,
    cwd: Path | None = None,
) -> NotebookLocation:
    """The notebook this kernel serves, by the order in the module docstring."""
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    # (value, where it came from, set by a frontend?)
    candidates = (
        (user_ns.get("__session__"), "__session__", True),
        (environ.get("JPY_SESSION_NAME"), "JPY_SESSION_NAME", True),
        (user_ns.get("__vsc_ipynb_file__"), "__vsc_ipynb_file__", True),
        (bound, "%codetether bind", False),
        (environ.get("CODETETHER_NOTEBOOK"), "CODETETHER_NOTEBOOK", False),
    )
    for value, source, from_frontend in candidates:
        if _usable(value, notebook_only=from_frontend):
            return NotebookLocation(_absolute(Path(os.fspath(value).strip()).expanduser(), cwd), source)
    return _fallback(cwd)


def _usable(value: object, *, notebook_only: bool) -> bool:
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value).strip():
        return False
    # A JupyterLab console sets JPY_SESSION_NAME / __session__ to a name that is no notebook.
    return not notebook_only or os.fspath(value).strip().endswith(".ipynb")


def _absolute(path: Path, cwd: Path) -> Path:
    return path if path.is_absolute() else (cwd / path).resolve()


def _fallback(cwd: Path) -> NotebookLocation:
    notebooks = sorted(cwd.glob("*.ipynb"))
    if len(notebooks) == 1:
        return NotebookLocation(notebooks[0].resolve(), "the only notebook in the working directory")
    return NotebookLocation((cwd / FALLBACK_NOTEBOOK_NAME).resolve(), "default name in the working directory")
