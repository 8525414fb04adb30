"""Tools that let the agent work with the live notebook: ``python`` and ``variables``.

``python`` runs code in the user's namespace (so it changes things: the approver decides).
``variables`` only looks: names, types, shapes, a DataFrame's columns and dtypes. It reads
attributes of objects the user already has and never imports pandas or numpy itself.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..agent.tools.base import Tool, ToolResult
from ..errors import ToolError
from .namespace import visible_variables
from .pyexec import run_code

__all__ = ["describe_value", "notebook_tools", "python_tool", "variables_tool", "visible_variables"]

MAX_VARIABLES = 200
MAX_COLUMNS = 50
PREVIEW_CHARS = 120


def notebook_tools(shell: Any) -> list[Tool]:
    return [python_tool(shell.user_ns), variables_tool(shell)]


def python_tool(namespace: dict[str, Any]) -> Tool:
    async def handler(arguments: dict[str, Any]) -> ToolResult:
        code = arguments.get("code")
        if not isinstance(code, str) or not code.strip():
            raise ToolError("python: 'code' must be a non-empty string of Python source")
        try:
            report = await run_code(code, namespace)
        except KeyboardInterrupt:  # a kernel interrupt in the model's code stops the whole turn
            raise asyncio.CancelledError from None
        return ToolResult(report.render(), success=report.success)

    return Tool(
        name="python",
        description=(
            "Run Python code in the user's Jupyter kernel, in the notebook's namespace: variables "
            "the user defined are available and new ones persist. Returns stdout, the repr of the "
            "last expression and any error with its traceback."
        ),
        parameters={
            "type": "object",
            "properties": {"code": {"type": "string", "description": "Python source to run"}},
            "required": ["code"],
        },
        handler=handler,
        read_only=False,
    )


def variables_tool(shell: Any) -> Tool:
    async def handler(arguments: dict[str, Any]) -> str:
        name = arguments.get("name")
        namespace = visible_variables(shell.user_ns, getattr(shell, "user_ns_hidden", {}))
        if name:
            if name not in namespace:
                raise ToolError(f"variables: no variable named {name!r} in the notebook")
            return describe_value(name, namespace[name], detailed=True)
        if not namespace:
            return "(the notebook defines no variables yet)"
        lines = [describe_value(key, value) for key, value in list(namespace.items())[:MAX_VARIABLES]]
        if len(namespace) > MAX_VARIABLES:
            lines.append(f"... and {len(namespace) - MAX_VARIABLES} more")
        return "\n".join(lines)

    return Tool(
        name="variables",
        description=(
            "List the variables defined in the user's notebook with their types and shapes "
            "(a DataFrame's columns and dtypes). Pass 'name' for details of one variable."
        ),
        parameters={
            "type": "object",
            "properties": {"name": {"type": "string", "description": "one variable to describe"}},
        },
        handler=handler,
        read_only=True,
    )


def describe_value(name: str, value: Any, *, detailed: bool = False) -> str:
    kind = type(value)
    qualified = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    text = f"{name}: {qualified}"
    details = _dataframe_details(value) or _shape_details(value) or _length_details(value)
    if details:
        text += f" {details}"
    if detailed or _is_scalar(value):
        text += f" = {_preview(value, PREVIEW_CHARS * (8 if detailed else 1))}"
    return text


def _is_dataframe(value: Any) -> bool:
    kind = type(value)
    # pandas is in sys.modules whenever a DataFrame exists: no import needed to recognise one.
    return kind.__name__ == "DataFrame" and kind.__module__.split(".")[0] == "pandas"


def _dataframe_details(value: Any) -> str | None:
    if not _is_dataframe(value):
        return None
    try:
        columns = [f"{col}: {dtype}" for col, dtype in list(value.dtypes.items())[:MAX_COLUMNS]]
        more = len(value.columns) - len(columns)
        listed = ", ".join(columns) + (f", ... {more} more" if more > 0 else "")
        return f"shape={tuple(value.shape)} columns=[{listed}]"
    except Exception:  # an exotic DataFrame subclass: fall back to the generic description
        return None


def _shape_details(value: Any) -> str | None:
    shape = getattr(value, "shape", None) if not isinstance(value, type) else None
    if not isinstance(shape, tuple):
        return None
    dtype = getattr(value, "dtype", None)
    return f"shape={shape}" + (f" dtype={dtype}" if dtype is not None else "")


def _length_details(value: Any) -> str | None:
    if isinstance(value, (str, bytes, list, tuple, dict, set, frozenset)):
        return f"len={len(value)}"
    return None


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (int, float, complex, bool, str, bytes, type(None)))


def _preview(value: Any, limit: int) -> str:
    try:
        text = repr(value)
    except Exception as exc:
        return f"<repr failed: {exc!r}>"
    return text if len(text) <= limit else text[:limit] + "..."
