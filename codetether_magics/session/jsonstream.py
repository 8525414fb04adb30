"""A small streaming splitter for one JSON document: values come out as raw bytes.

It walks the top-level object key by key and the elements of an array one at a time,
so a caller can keep only the parts it wants (the last N messages, or the header
before ``messages``) and memory stays bounded by the largest single element plus one
read chunk. It only finds where values start and end (strings, escapes, nesting);
``orjson`` parses the pieces that are kept.
"""

from __future__ import annotations

import re
from typing import BinaryIO, Iterator

import orjson

__all__ = ["JsonStream", "JsonStreamError"]

_STRUCTURE = re.compile(rb'[\[\]{}"]')
_SCALAR_END = re.compile(rb"[,\]}\s]")
_SPACE = b" \t\r\n"
_QUOTE, _BACKSLASH = 0x22, 0x5C
_OPEN, _CLOSE = frozenset(b"[{"), frozenset(b"]}")
_MAX_CHUNK = 1 << 20


class JsonStreamError(ValueError):
    """The document is cut short or is not the JSON shape the caller expected."""


class JsonStream:
    def __init__(self, stream: BinaryIO, first_chunk: int = 8192) -> None:
        self._stream = stream
        self._buf = bytearray()
        self._pos = 0  # everything before this index has been consumed
        self._chunk = first_chunk
        self._eof = False
        self.bytes_read = 0

    # -- buffer -----------------------------------------------------------------

    def _read_more(self) -> bool:
        """Append the next chunk of the file to the buffer; False at the end of the file."""
        data = b"" if self._eof else self._stream.read(self._chunk)
        self._chunk = min(self._chunk * 2, _MAX_CHUNK)
        if not data:
            self._eof = True
            return False
        self.bytes_read += len(data)
        self._buf += data
        return True

    def _fill(self) -> None:
        if not self._read_more():
            raise JsonStreamError("the file ends in the middle of a value (truncated?)")

    def _compact(self) -> None:
        # Only between values: indexes inside a value being scanned stay valid.
        if self._pos >= 65536:
            del self._buf[: self._pos]
            self._pos = 0

    def _peek(self) -> int:
        """The next non-space byte (not consumed)."""
        while True:
            buf, pos = self._buf, self._pos
            while pos < len(buf) and buf[pos] in _SPACE:
                pos += 1
            self._pos = pos
            if pos < len(buf):
                return buf[pos]
            self._fill()

    def _expect(self, byte: int) -> None:
        found = self._peek()
        if found != byte:
            raise JsonStreamError(f"expected {chr(byte)!r} at byte {self._offset()}, found {chr(found)!r}")
        self._pos += 1

    def _offset(self) -> int:
        return self.bytes_read - (len(self._buf) - self._pos)

    def at_end(self) -> bool:
        """True when only whitespace is left."""
        try:
            self._peek()
        except JsonStreamError:
            return True
        return False

    # -- scanning one value -------------------------------------------------------

    def _string_end(self, start: int) -> int:
        """Index just past the string whose opening quote is at ``start``."""
        buf, i = self._buf, start + 1
        while True:
            j = buf.find(b'"', i)
            if j < 0:
                i = len(buf)
                self._fill()
                continue
            k = j - 1
            while buf[k] == _BACKSLASH:
                k -= 1
            if (j - 1 - k) % 2 == 0:  # an even run of backslashes: the quote is real
                return j + 1
            i = j + 1

    def _container_end(self, start: int) -> int:
        buf, i, depth = self._buf, start, 0
        while True:
            match = _STRUCTURE.search(buf, i)
            if match is None:
                i = len(buf)
                self._fill()
                continue
            at = match.start()
            byte = buf[at]
            if byte == _QUOTE:
                i = self._string_end(at)
                continue
            i = at + 1
            depth += 1 if byte in _OPEN else -1
            if depth == 0:
                return i

    def _scalar_end(self, start: int) -> int:
        """Index just past a number, ``true``, ``false`` or ``null`` (ends at a delimiter or EOF)."""
        while True:
            match = _SCALAR_END.search(self._buf, start)
            if match is not None:
                return match.start()
            if not self._read_more():
                return len(self._buf)

    def read_value(self) -> bytes:
        """The raw bytes of the next value, consumed."""
        self._compact()
        first = self._peek()
        start = self._pos
        if first == _QUOTE:
            end = self._string_end(start)
        elif first in _OPEN:
            end = self._container_end(start)
        elif first in _CLOSE or first in b",:":
            raise JsonStreamError(f"expected a value at byte {self._offset()}, found {chr(first)!r}")
        else:
            end = self._scalar_end(start)
        self._pos = end
        return bytes(self._buf[start:end])

    # -- walking containers -----------------------------------------------------

    def _closes(self, bracket: str) -> bool:
        """Consume the ',' or the closing ``bracket`` after an item; True when it was the bracket."""
        following = self._peek()
        self._pos += 1
        if following == ord(bracket):
            return True
        if following != ord(","):
            raise JsonStreamError(f"expected ',' or {bracket!r} at byte {self._offset() - 1}")
        return False

    def iter_array(self) -> Iterator[bytes]:
        """Each element of the array that starts here, as raw bytes."""
        if self._peek() != ord("["):
            raise JsonStreamError(f"expected an array at byte {self._offset()}")
        self._pos += 1
        if self._peek() == ord("]"):
            self._pos += 1
            return
        while True:
            yield self.read_value()
            if self._closes("]"):
                return

    def skip_array(self) -> int:
        """Consume the array that starts here; return how many elements it had."""
        return sum(1 for _ in self.iter_array())

    def iter_object_keys(self) -> Iterator[str]:
        """Each key of the object that starts here; the caller consumes each value."""
        self._expect(ord("{"))
        if self._peek() == ord("}"):
            self._pos += 1
            return
        while True:
            if self._peek() != _QUOTE:
                raise JsonStreamError(f"expected a key at byte {self._offset()}")
            key = orjson.loads(self.read_value())
            self._expect(ord(":"))
            yield key
            if self._closes("}"):
                return
