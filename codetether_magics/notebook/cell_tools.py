"""Tools that let the agent look at the notebook's cells and propose a new one.

- ``cells`` (read-only): the cells run in this kernel, by number.
- ``cell_image`` (read-only): a cell's PNG/JPEG output, handed to the model as an image.
- ``insert_cell``: a new cell below the running one, NOT run (IPython's ``set_next_input``
  payload with ``replace: false``). It changes no file and runs nothing, so it asks no
  approval; one per cell run, because a frontend keeps only one ``set_next_input`` per execution.

Cell numbers are the execution counts (``In[N]``) when the shell keeps history. Under nbclient
and nbval cells run with ``store_history=False``: the execution count stays 1 and ``In`` is
empty, so there cells are numbered in run order, from 1 for the cell that loaded the extension.
"""

from __future__ import annotations

from typing import Any

from ..agent.tools.base import Tool, ToolResult
from ..errors import ToolError
from .cell_log import CellLog, CellRecord
from .context import CellRender, render_cell
from .images import ImageCapture

__all__ = ["DEFAULT_CELLS", "cell_tools"]

DEFAULT_CELLS = 20  # cells shown when no range is given
TOOL_CELL = CellRender(source_chars=1_800, output_chars=1_200)  # one cell fits a tool result (4 KiB)
RESULT_BYTES = 3_800  # under the loop's cap on a tool result, with room for the note
NUMBERING = (
    "Cells are numbered by execution count (In[N]); where the kernel keeps no history (nbclient, "
    "nbval) by run order from the cell that loaded the extension."
)
MARKDOWN_NOTE = (
    "Frontends create only code cells from a kernel's set_next_input, so the Markdown was inserted as a "
    "code cell starting with %%markdown: running it renders the Markdown (or the user can switch the "
    "cell to Markdown and delete that first line)."
)


def cell_tools(log: CellLog, capture: ImageCapture, shell: Any) -> list[Tool]:
    """The three tools for one cell run (``insert_cell`` counts its calls per run)."""
    return [cells_tool(log), cell_image_tool(capture), insert_cell_tool(shell)]


# -- cells ----------------------------------------------------------------------------


def cells_tool(log: CellLog) -> Tool:
    async def handler(arguments: dict[str, Any]) -> str:
        start, end = _bound(arguments, "start"), _bound(arguments, "end")
        if start is not None and end is not None and start > end:
            raise ToolError(f"cells: start ({start}) is after end ({end}); give start <= end.")
        recorded = log.finished_cells()
        if not recorded:
            return "No cells have run in this kernel since the extension was loaded."
        chosen = _select(recorded, start, end)
        if not chosen:
            raise ToolError(f"cells: no executed cell in {_range(start, end)}. Cells run so far: "
                            f"{_listing(recorded)}. {NUMBERING}")
        newest_first = start is None and end is None
        shown = _fit(chosen, newest_first=newest_first)
        note, rest = "", None
        if newest_first and len(shown) < len(recorded):
            rest = f"earlier cells: pass end={shown[0].number - 1}"
        elif not newest_first and len(shown) < len(chosen):
            rest = f"the rest: pass start={chosen[len(shown)].number}"
        if rest:
            note = (f"(Cells {shown[0].number} to {shown[-1].number}, {len(shown)} of the {len(recorded)} run; "
                    f"for {rest}.)\n\n")
        return note + "\n\n".join(render_cell(cell, TOOL_CELL) for cell in shown)

    return Tool(
        name="cells",
        description=(
            "Show the notebook cells run in this kernel: source, text output, errors with traceback, "
            "and which cells displayed images (fetch those with cell_image). Without start/end: the "
            f"last {DEFAULT_CELLS} cells. {NUMBERING}"
        ),
        parameters={
            "type": "object",
            "properties": {
                "start": {"type": "integer", "description": "first cell number to show"},
                "end": {"type": "integer", "description": "last cell number to show (inclusive)"},
            },
        },
        handler=handler,
        read_only=True,
    )


def _bound(arguments: dict[str, Any], key: str) -> int | None:
    value = arguments.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ToolError(f"cells: {key!r} must be a whole cell number such as 3, not {value!r}.")
    return value


def _select(recorded: list[CellRecord], start: int | None, end: int | None) -> list[CellRecord]:
    if start is None and end is None:
        return recorded[-DEFAULT_CELLS:]
    return [c for c in recorded if (start is None or c.number >= start) and (end is None or c.number <= end)]


def _fit(cells: list[CellRecord], *, newest_first: bool) -> list[CellRecord]:
    """As many of ``cells`` as fit in one tool result: the newest (no range given) or the first ones."""
    order = list(reversed(cells)) if newest_first else list(cells)
    kept, used = [], 0
    for cell in order:
        size = len(render_cell(cell, TOOL_CELL).encode()) + 2
        if kept and used + size > RESULT_BYTES:
            break
        kept.append(cell)
        used += size
    return sorted(kept, key=lambda cell: cell.seq)


def _range(start: int | None, end: int | None) -> str:
    return f"cells {'…' if start is None else start} to {'…' if end is None else end}"


def _listing(recorded: list[CellRecord]) -> str:
    numbers = [c.number for c in recorded]
    shown = ", ".join(map(str, numbers[-30:]))
    return ("..., " if len(numbers) > 30 else "") + shown


# -- cell_image -----------------------------------------------------------------------


def cell_image_tool(capture: ImageCapture) -> Tool:
    async def handler(arguments: dict[str, Any]) -> ToolResult:
        from ..messages import ImageAttachment

        number = _image_cell(arguments.get("cell"), capture)
        images = capture.images_of(number)
        if not images:
            shown = ", ".join(map(str, capture.cells_with_images())) or "none yet"
            raise ToolError(f"cell_image: cell {number} displayed no PNG or JPEG image (cells with images: "
                            f"{shown}). Call cells to see what each cell output.")
        too_big = [image for image in images if image.data_url is None]
        if too_big:
            raise ToolError(
                f"cell_image: the image of cell {number} is {too_big[0].size:,} bytes, over the limit of "
                f"{capture.max_bytes:,} bytes, so it cannot be sent. Ask the user to show it smaller (lower dpi "
                "or figure size), or describe it from the data with the python tool.")
        kinds = ", ".join(f"{image.mime} ({image.size:,} bytes)" for image in images)
        what = "image" if len(images) == 1 else f"{len(images)} images"
        return ToolResult(f"The {what} of cell {number} follow{'s' if len(images) == 1 else ''}: {kinds}.",
                          images=[ImageAttachment(data_url=i.data_url, mime_type=i.mime) for i in images])

    return Tool(
        name="cell_image",
        description=(
            "Look at the image (plot, figure, picture) a notebook cell displayed: you receive it as an "
            f"image. 'cell' is a cell number or \"last\" for the newest image. {NUMBERING}"
        ),
        parameters={
            "type": "object",
            "properties": {"cell": {"anyOf": [{"type": "integer"}, {"type": "string", "enum": ["last"]}],
                                    "description": 'a cell number, or "last"'}},
            "required": ["cell"],
        },
        handler=handler,
        read_only=True,
    )


def _image_cell(value: Any, capture: ImageCapture) -> int:
    if value == "last":
        shown = capture.cells_with_images()
        if not shown:
            raise ToolError("cell_image: no cell has displayed a PNG or JPEG image since the extension was loaded.")
        return shown[-1]
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ToolError(f'cell_image: "cell" must be a cell number or "last", not {value!r}.')
    return value


# -- insert_cell ----------------------------------------------------------------------


def insert_cell_tool(shell: Any) -> Tool:
    inserted: list[str] = []  # this cell run's insertion, if any

    async def handler(arguments: dict[str, Any]) -> str:
        source, kind = arguments.get("source"), arguments.get("cell_type", "code")
        if not isinstance(source, str) or not source.strip():
            raise ToolError("insert_cell: 'source' must be the non-empty text of the new cell.")
        if kind not in ("code", "markdown"):
            raise ToolError(f'insert_cell: cell_type must be "code" or "markdown", not {kind!r}.')
        if inserted:
            raise ToolError(
                "insert_cell: a cell was already inserted during this run, and the notebook takes only one "
                "new cell per run. Do not call it again: put everything in that one cell next time, or show "
                "the extra code in your answer.")
        text = f"%%markdown\n{source}" if kind == "markdown" else source
        shell.set_next_input(text, replace=False)
        inserted.append(text)
        lines = text.count("\n") + 1
        answer = f"Inserted a new {kind} cell ({lines} line{'s' if lines > 1 else ''}) below the running cell. "
        answer += "It has not run: the user reviews it and runs it."
        return answer + (f" {MARKDOWN_NOTE}" if kind == "markdown" else "")

    return Tool(
        name="insert_cell",
        description=(
            "Propose code (or Markdown) as a new notebook cell below the current one. It is NOT run: the "
            "user reviews and runs it. At most one per run, so put the whole fix in one cell."
        ),
        parameters={
            "type": "object",
            "properties": {
                "source": {"type": "string", "description": "the new cell's text"},
                "cell_type": {"type": "string", "enum": ["code", "markdown"], "description": "default code"},
            },
            "required": ["source"],
        },
        handler=handler,
        read_only=True,  # nothing runs and nothing changes until the user runs the cell: no approval
    )
