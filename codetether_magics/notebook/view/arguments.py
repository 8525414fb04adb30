"""A tool call's arguments as what they are: code as code, a written file as its path and content.

The live view, the approval prompt and the cell's record all show a call through
``show_arguments``, so what the user approves reads the same as what the record keeps.
Control characters are made visible by the callers (``safe.visible_controls``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

__all__ = ["Shown", "fence", "language_for_path", "show_arguments"]


@dataclass(frozen=True)
class Shown:
    """One piece of a call's arguments: an optional label (a path), then a block of text."""

    label: str | None
    language: str  # a code fence's info string: "python", "bash", "json", "" for plain text
    body: str
    label_is_path: bool = True  # a path shows as code; other labels ("new code cell below") as words


_EXTENSIONS = {
    ".py": "python", ".sh": "bash", ".bash": "bash", ".json": "json", ".md": "markdown", ".toml": "toml",
    ".yaml": "yaml", ".yml": "yaml", ".js": "javascript", ".ts": "typescript", ".html": "html", ".css": "css",
    ".sql": "sql", ".r": "r", ".c": "c", ".h": "c", ".cpp": "cpp", ".rs": "rust", ".go": "go", ".ipynb": "json",
    ".csv": "", ".txt": "",
}


def language_for_path(path: str) -> str:
    return _EXTENSIONS.get(PurePosixPath(path).suffix.lower(), "")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def show_arguments(name: str, arguments: str | dict[str, Any]) -> list[Shown]:
    """The pieces to show for ``name`` called with ``arguments`` (a JSON string or a dict)."""
    if isinstance(arguments, str):
        try:
            # strict=False: a raw control character in a string is shown (made visible), not refused
            parsed = json.loads(arguments, strict=False) if arguments.strip() else {}
        except ValueError:  # cut at the event cap, or not JSON at all: show it as it came
            return [Shown(None, "", arguments)]
    else:
        parsed = arguments
    if not isinstance(parsed, dict):
        return [Shown(None, "json", json.dumps(parsed, indent=2, ensure_ascii=False))]
    special = _special(name, parsed)
    if special is not None:
        return special
    if not parsed:
        return []
    return [Shown(None, "json", json.dumps(parsed, indent=2, ensure_ascii=False))]


def _special(name: str, args: dict[str, Any]) -> list[Shown] | None:
    keys = set(args)
    code_key = {"python": "code", "bash": "command"}.get(name)
    if code_key in keys:  # the code as code; any other argument (a timeout, say) as JSON after it
        rest = {key: value for key, value in args.items() if key != code_key}
        pieces = [Shown(None, name, _text(args[code_key]))]
        if rest:
            pieces.append(Shown(None, "json", json.dumps(rest, indent=2, ensure_ascii=False)))
        return pieces
    if name == "write" and keys == {"path", "content"}:
        path = _text(args["path"])
        return [Shown(path, language_for_path(path), _text(args["content"]))]
    if name == "edit" and {"path", "old_string", "new_string"} <= keys <= {"path", "old_string", "new_string",
                                                                          "replace_all"}:
        diff = [*("- " + line for line in _text(args["old_string"]).split("\n")),
                *("+ " + line for line in _text(args["new_string"]).split("\n"))]
        label = _text(args["path"]) + (" (every occurrence)" if args.get("replace_all") else "")
        return [Shown(label, "diff", "\n".join(diff))]
    if name == "insert_cell" and "source" in keys and keys <= {"source", "cell_type"}:
        kind = args.get("cell_type") or "code"
        language = "markdown" if kind == "markdown" else "python"
        return [Shown(f"new {kind} cell below", language, _text(args["source"]), label_is_path=False)]
    return None


def fence(body: str, language: str = "") -> str:
    """A fenced code block that no run of backticks inside ``body`` can close."""
    longest = run = 0
    for char in body:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    ticks = "`" * max(3, longest + 1)
    newline = "" if body.endswith("\n") else "\n"
    return f"{ticks}{language}\n{body}{newline}{ticks}"
