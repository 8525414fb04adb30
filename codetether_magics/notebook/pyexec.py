"""Run model-written Python in the user's namespace, the way a cell would, and report back.

Statements run in order; a final expression is evaluated and its ``repr`` returned, like a
cell's ``Out``. ``await`` works at top level. stdout and stderr are captured, not shown in
the cell; an exception becomes a short traceback for the model, never a crash of the turn.
A kernel interrupt raises KeyboardInterrupt out of ``run_code`` (the caller cancels the turn).
What the code prints is kept only up to ``OUTPUT_LIMIT`` characters from the start and
``OUTPUT_TAIL`` from the end (the rest is counted), so code printing in a loop until it is
interrupted costs the kernel a few kilobytes, not all it printed.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import io
import itertools
import linecache
import signal
import threading
import traceback
from dataclasses import dataclass
from typing import Any, Iterator

__all__ = ["ExecutionReport", "run_code"]

OUTPUT_LIMIT = 16_000  # characters of stdout / repr handed back to the model
OUTPUT_TAIL = 2_000  # of those, characters kept from the end of a long stdout
_HEAD_CHARS = OUTPUT_LIMIT - OUTPUT_TAIL - 100  # room for the note saying how much was cut
_FILENAME_PREFIX = "<codetether-python-"
_run_numbers = itertools.count(1)
_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


@dataclass
class ExecutionReport:
    stdout: str = ""
    value_repr: str | None = None
    error: str | None = None

    @property
    def success(self) -> bool:
        return self.error is None

    def render(self) -> str:
        parts = []
        if self.stdout:
            parts.append("stdout:\n" + _clip(self.stdout))
        if self.value_repr is not None:
            parts.append("value:\n" + _clip(self.value_repr))
        if self.error:
            parts.append("error:\n" + _clip(self.error))
        text = "\n".join(parts) if parts else "(no output)"
        return text.encode("utf-8", errors="backslashreplace").decode("utf-8")  # lone surrogates: shown, not fatal


async def run_code(code: str, namespace: dict[str, Any]) -> ExecutionReport:
    report = ExecutionReport()
    buffer = _BoundedOutput()
    filename = _remember_source(code)
    try:
        body, last = _split_last_expression(code, filename)
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            await _run(body, "exec", namespace, filename)
            if last is not None:
                value = await _run(last, "eval", namespace, filename)
                if value is not None:
                    namespace["_"] = value
                    report.value_repr = _safe_repr(value)
    except SyntaxError as exc:
        report.error = "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
    except Exception as exc:  # the model sees its own error and can fix the code
        report.error = _user_traceback(exc)
    report.stdout = buffer.getvalue()
    return report


class _BoundedOutput(io.TextIOBase):
    """A write-only text stream keeping its first and last characters, within ``OUTPUT_LIMIT`` in all."""

    def __init__(self) -> None:
        super().__init__()
        self._head: list[str] = []
        self._head_size = 0
        self._tail = ""
        self._total = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        written = len(text)
        self._total += written
        room = _HEAD_CHARS - self._head_size
        if room > 0:
            self._head.append(text[:room])
            self._head_size += min(room, len(text))
            text = text[room:]
        if text:
            self._tail = (self._tail + text)[-OUTPUT_TAIL:]
        return written

    def getvalue(self) -> str:
        head = "".join(self._head)
        cut = self._total - len(head) - len(self._tail)
        middle = f"\n... [{cut} more characters cut; {self._total} in all] ...\n" if cut else ""
        return head + middle + self._tail


def _remember_source(code: str) -> str:
    """A unique file name whose lines tracebacks can show, as IPython does for cells."""
    filename = f"{_FILENAME_PREFIX}{next(_run_numbers)}>"
    linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
    return filename


def _split_last_expression(code: str, filename: str) -> tuple[ast.Module, ast.Expression | None]:
    tree = ast.parse(code, filename, "exec")
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
        return tree, last
    return tree, None


async def _run(tree: ast.AST, mode: str, namespace: dict[str, Any], filename: str) -> Any:
    compiled = compile(tree, filename, mode, flags=_FLAGS, dont_inherit=True)
    with _interruptible():
        result = eval(compiled, namespace)  # noqa: S307 - running the model's code is this tool's job
    if inspect.iscoroutine(result) and compiled.co_flags & inspect.CO_COROUTINE:
        result = await result
    return result


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """Let a kernel interrupt raise KeyboardInterrupt inside the model's (blocking) code.

    ipykernel's own SIGINT handler only schedules a cancel on the event loop, and this
    code blocks that loop: without this, ``time.sleep(60)`` could not be interrupted.
    Only around synchronous execution, never while the loop runs other tasks.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _user_traceback(exc: BaseException) -> str:
    """The traceback from the first frame of the model's code on (our frames are noise)."""
    frames = traceback.extract_tb(exc.__traceback__)
    first = next((i for i, f in enumerate(frames) if f.filename.startswith(_FILENAME_PREFIX)), 0)
    lines = traceback.format_list(frames[first:]) if frames else []
    lines += traceback.format_exception_only(type(exc), exc)
    return ("Traceback (most recent call last):\n" + "".join(lines)).rstrip()


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:  # a broken __repr__ must not lose the rest of the report
        return f"<{type(value).__name__} object; repr failed: {exc!r}>"


def _clip(text: str) -> str:
    if len(text) <= OUTPUT_LIMIT:
        return text
    return text[:OUTPUT_LIMIT] + f"\n... [{len(text) - OUTPUT_LIMIT} more characters cut]"
