"""What the notebook did since the agent's previous turn, as text for the next request.

The text lists the user's cells run since then (number, source, text output, error with
its last frames, a one-line placeholder per image) and the variables that appeared or
changed. It is capped at ``CodeTether.context_cells_tokens``: the newest cells are kept,
the oldest dropped first, with a note saying how many. It rides in the request only; the
transcript never stores it, and replay does not need it.

``NotebookContext.for_turn()`` builds the text and returns a ``TurnContext`` whose
``commit()`` moves the "since" mark: call it when the turn went through, so a failed turn's
context is offered again next time.
"""

from __future__ import annotations

import re
import types
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .cell_log import CellLog, CellRecord
from .namespace import visible_variables
from .redact import redact

__all__ = ["FOOTER", "HEADER", "CellRender", "NotebookContext", "TurnContext", "estimate_tokens", "render_cell"]

CELL_SOURCE_CHARS = 1_500  # per cell in the context: the `cells` tool shows more
CELL_OUTPUT_CHARS = 1_200
MAX_VARIABLES = 30
VARIABLE_LINE_CHARS = 160  # a DataFrame's 50 columns would fill the budget on their own
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")  # terminal colours: noise to a model
HEADER = (
    "[Notebook context, from the kernel: what the user ran since your previous turn. Cells are "
    "numbered as the `cells` tool numbers them.]"
)
FOOTER = "[End of the notebook context.]"


def estimate_tokens(text: str) -> int:
    """Tokens without a tokenizer download: the context budget's own estimate, so both count alike."""
    from ..agent.context.tokens import estimate_text  # the agent's modules load on the first run

    return estimate_text(text)


@dataclass(frozen=True)
class CellRender:
    """How much of a cell to show."""

    source_chars: int = CELL_SOURCE_CHARS
    output_chars: int = CELL_OUTPUT_CHARS


BRIEF_CELL = CellRender(source_chars=300, output_chars=200)


def render_cell(cell: CellRecord, limits: CellRender = CellRender()) -> str:
    """One cell as Markdown: its source, text output, error and image placeholders."""
    if cell.is_agent:
        return f"Cell {cell.number}: a %%codetether cell (this conversation)."
    source = cell.source if len(cell.source) <= limits.source_chars else (
        cell.source[: limits.source_chars] + f"\n# [... {len(cell.source) - limits.source_chars:,} characters "
        "left out: the `cells` tool shows the whole cell]")
    lines = [f"Cell {cell.number}:", _fence(source, "python")]
    output = _ANSI.sub("", cell.output.text(limits.output_chars)) if cell.output else ""
    if output.strip():
        lines += ["Output:", _fence(output)]
    if cell.error is not None:
        lines += [f"Error: {cell.error.summary.splitlines()[-1]}", _fence(cell.error.traceback)]
    if cell.images:
        what = "an image" if cell.images == 1 else f"{cell.images} images"
        lines.append(f"[Cell {cell.number} displayed {what}: cell_image {{\"cell\": {cell.number}}} shows it to you.]")
    return "\n".join(lines)


def _fence(text: str, language: str = "") -> str:
    fence = "```"
    while fence in text:  # a fence longer than any run of backticks inside
        fence += "`"
    return f"{fence}{language}\n{text.rstrip()}\n{fence}"


@dataclass
class TurnContext:
    text: str
    commit: Callable[[], None]


class NotebookContext:
    """Builds each live turn's context from a ``CellLog`` and the user namespace."""

    def __init__(self, log: CellLog, shell: Any) -> None:
        self.log = log
        self.shell = shell
        self._seen_seq = 0  # cells up to this seq were offered to a turn that went through
        self._seen_vars = _fingerprint(self._namespace())  # the namespace when the extension loaded

    def for_turn(self, max_tokens: int) -> TurnContext:
        cells = [c for c in self.log.finished_cells() if c.seq > self._seen_seq and not c.is_agent]
        namespace = self._namespace()
        # The variables take at most half the budget, so the cells always have room.
        variables = _variables_text(namespace, self._seen_vars, _fingerprint(namespace), max_tokens * 2)
        text = build_context(cells, variables, max_tokens) if max_tokens > 0 else ""
        last_seq = self.log.cells[-1].seq if self.log.cells else self._seen_seq

        def commit() -> None:
            self._seen_seq = max(self._seen_seq, last_seq)
            self._seen_vars = _fingerprint(self._namespace())  # what the agent's own python calls did is not news

        return TurnContext(redact(text), commit)

    def _namespace(self) -> dict[str, Any]:
        return visible_variables(self.shell.user_ns, getattr(self.shell, "user_ns_hidden", {}))


def build_context(cells: list[CellRecord], variables: str, max_tokens: int) -> str:
    """The context text within ``max_tokens``: newest cells first in, oldest dropped first."""
    if not cells and not variables:
        return ""
    budget = max_tokens - estimate_tokens(HEADER + FOOTER) - estimate_tokens(variables) - 40  # 40: the drop note
    kept: list[str] = []
    for cell in reversed(cells):
        rendered = render_cell(cell)
        cost = estimate_tokens(rendered) + 1
        if cost > budget:
            break
        kept.append(rendered)
        budget -= cost
    if not kept and cells:  # the newest cell alone is too big: show less of it rather than nothing
        rendered = render_cell(cells[-1], BRIEF_CELL)
        if estimate_tokens(rendered) < budget:
            kept.append(rendered)
    kept.reverse()
    parts = [HEADER]
    dropped = len(cells) - len(kept)
    if dropped:
        parts.append(f"[{dropped} earlier cell{'s' if dropped > 1 else ''} left out to stay within "
                     f"{max_tokens:,} tokens; the `cells` tool shows {'them' if dropped > 1 else 'it'}.]")
    parts += kept
    if variables:
        parts.append(variables)
    parts.append(FOOTER)  # where the kernel's part ends and the user's words begin
    return "\n\n".join(parts)


# -- variables --------------------------------------------------------------------


def _fingerprint(namespace: Mapping[str, Any]) -> dict[str, tuple[int, type]]:
    """Which object each name holds: rebinding or a new type is a change (in-place edits are not seen)."""
    return {name: (id(value), type(value)) for name, value in namespace.items() if not _imported(value)}


def _imported(value: Any) -> bool:
    """A function or class imported from a library (``from x import f``): not the user's data."""
    if not isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)):
        return False
    return getattr(value, "__module__", None) != "__main__"


def _variables_text(namespace: Mapping[str, Any], before: Mapping[str, Any], now: Mapping[str, Any],
                    max_chars: int) -> str:
    """New, changed and deleted names, one short line each, in at most about ``max_chars``."""
    new = [name for name in now if name not in before]
    changed = [name for name in now if name in before and before[name] != now[name]]
    removed = [name for name in before if name not in now]
    if not (new or changed or removed):
        return ""
    from .kernel_tools import describe_value

    lines = ["Variables since your previous turn (the `variables` tool tells more):"]
    used = len(lines[0])
    names = new + changed
    for index, name in enumerate(names[:MAX_VARIABLES]):
        line = f"- {'new' if name in new else 'changed'}: {describe_value(name, namespace[name])}"
        line = _cut(line, VARIABLE_LINE_CHARS)
        if used + len(line) > max_chars:
            break
        lines.append(line)
        used += len(line) + 1
    if len(lines) - 1 < len(names):
        lines.append(f"- ... and {len(names) - (len(lines) - 1)} more")
    if removed:
        lines.append(_cut("- deleted: " + ", ".join(removed[:MAX_VARIABLES]), VARIABLE_LINE_CHARS))
    return "\n".join(lines)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
