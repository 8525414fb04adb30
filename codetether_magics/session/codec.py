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
import time
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import orjson
from pydantic import TypeAdapter, ValidationError

from ..errors import SessionCorruptError, SessionIdMismatchError
from .stored import StoredSession

__all__ = [
    "corrupt_error", "decode_session", "encode_session", "encode_session_parts", "paused_gc", "session_from_dict",
]


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


# Transcript lists are encoded this many items at a time (~1.3 MB, ~1 ms, at 5 KB a message).
_BATCH = 256
_STREAMED = frozenset({"messages", "tool_uses"})


def encode_session(session: "StoredSession") -> bytes:
    """The file's bytes: exactly ``orjson.dumps(session.model_dump())``."""
    return b"".join(encode_session_parts(session))


def encode_session_parts(session: "StoredSession") -> list[bytes | memoryview]:
    """The file's bytes in pieces (joined, ``encode_session``), built a batch of items at a time.

    One ``model_dump`` + ``orjson.dumps`` of a large transcript is two long calls into native
    code that hold the GIL throughout (tens of ms at 30 MB), so a save in a worker thread would
    stall the event loop, and the streamed answer with it. Between batches of ``_BATCH`` items
    the GIL is handed to a waiting thread at once (``time.sleep(0)``) rather than after the
    interpreter's 5 ms switch interval, so the loop waits at most one batch (~1 ms). The
    pieces are written as they are (``files.write_atomic``): joining them would be one more
    transcript-sized copy holding the GIL.
    """
    with paused_gc():
        head = session.model_dump(exclude=set(_STREAMED))
        parts: list[bytes | memoryview] = [b"{"]
        for key in _key_order(session, head):
            parts.append(orjson.dumps(key) + b":")
            if key in _STREAMED:
                parts += _encode_list(_adapter(type(session), key), getattr(session, key))
            else:
                parts.append(orjson.dumps(head[key]))
            parts.append(b",")
        parts[-1] = b"}"
        return parts


def _key_order(session: "StoredSession", head: dict[str, Any]) -> list[str]:
    """``model_dump``'s order: the declared fields, then the unknown keys kept from the file."""
    declared = [name for name in type(session).model_fields if name in head or name in _STREAMED]
    return declared + [name for name in head if name not in type(session).model_fields]


@lru_cache(maxsize=None)
def _adapter(model: type, field: str) -> TypeAdapter[Any]:
    """Serialises items as the field does (its declared item type, not each object's own class)."""
    return TypeAdapter(model.model_fields[field].annotation)


def _encode_list(adapter: TypeAdapter[Any], items: list[Any]) -> list[bytes | memoryview]:
    parts: list[bytes | memoryview] = [b"["]
    for start in range(0, len(items), _BATCH):
        if start:
            parts.append(b",")
        batch = orjson.dumps(adapter.dump_python(items[start:start + _BATCH]))
        parts.append(memoryview(batch)[1:-1])  # without its brackets, and without copying it
        time.sleep(0)  # let a thread waiting for the GIL (the event loop) run now, not in 5 ms
    parts.append(b"]")
    return parts


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


def session_from_dict(data: Any, path: Path | str, model: "type[StoredSession]") -> "StoredSession":
    """Validate a parsed file as ``model`` (``Session`` or a subclass, passed in by the caller)."""
    if not isinstance(data, dict):
        raise corrupt_error(path, f"expected a JSON object, found {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise corrupt_error(path, _first_validation_problem(exc)) from None


def decode_session(
    data: bytes, path: Path | str, expected_id: str | None = None, *, model: "type[StoredSession]"
) -> "StoredSession":
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
