"""Session <-> bytes, in the one layout of a session file (compact JSON, fixed key order).

The key order puts metadata before the transcript so a header can be read alone
(docs/design.md, "The session file").

Encoding is ``model_dump`` + ``orjson.dumps``: the model's field order is the key order
and unknown keys (``extra="allow"``) are written back after the known ones. Decoding maps
every way a file can be broken (empty, cut short, not UTF-8, not JSON, wrong types) to a
:class:`SessionCorruptError` that names the file and leaves it alone.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import orjson
from pydantic import ValidationError

from ..errors import SessionCorruptError, SessionIdMismatchError

if TYPE_CHECKING:  # pragma: no cover
    from .session import Session  # a type only: the class to build is passed in

__all__ = ["corrupt_error", "decode_session", "encode_session", "paused_gc", "session_from_dict"]


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic GC while building or parsing a transcript.

    Both create hundreds of thousands of acyclic objects, each batch of which would
    otherwise trigger a collection that walks the whole (large) heap: measured at
    10,000 messages this halves the time of ``model_dump`` and ``model_validate``.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def encode_session(session: "Session") -> bytes:
    with paused_gc():
        return orjson.dumps(session.model_dump())


def corrupt_error(path: Path | str, detail: str) -> SessionCorruptError:
    return SessionCorruptError(
        f"Session file {path} is not a valid session ({detail}). It was left untouched: "
        "move it aside or restore it from a backup, then start a new session "
        "(`%codetether new`)."
    )


def _first_validation_problem(exc: ValidationError) -> str:
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "top level"
    return f"{where}: {first['msg']}"


def session_from_dict(data: Any, path: Path | str, model: "type[Session]") -> "Session":
    """Validate a parsed file as ``model`` (``Session`` or a subclass, passed in by the caller)."""
    if not isinstance(data, dict):
        raise corrupt_error(path, f"expected a JSON object, found {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise corrupt_error(path, _first_validation_problem(exc)) from None


def decode_session(
    data: bytes, path: Path | str, expected_id: str | None = None, *, model: "type[Session]"
) -> "Session":
    """Parse a whole session file; ``expected_id`` must match the id inside it."""
    if not data.strip():
        raise corrupt_error(path, "the file is empty")
    with paused_gc():
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise corrupt_error(path, f"not JSON: {exc}") from None
        session = session_from_dict(parsed, path, model)
    check_id(session.id, expected_id, path)
    return session


def check_id(found: str, expected: str | None, path: Path | str) -> None:
    if expected is not None and found != expected:
        raise SessionIdMismatchError(
            f"Session file {path} holds session {found!r}, not {expected!r}: the file was "
            f"renamed or copied. Load it by its own id ({found!r}) or rename the file to "
            f"{found}.json."
        )
