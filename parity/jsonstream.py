"""A large JSON object read in pieces: the elements of its big arrays one at a time.

A results store's manifest lists every case and every run (20 MB for 10,000 small cases,
77 MB of Python objects once ``json.loads`` has read it). ``read_object`` reads such a
document a chunk at a time and gives the elements of the arrays it is asked to stream to a
callback, each with the byte range it came from (so that a reader can come back for it:
``element``), and returns the other members whole. Every value is still decoded by the
stdlib's C decoder (``json.JSONDecoder.raw_decode``); only the top-level object and the
streamed arrays' commas are read here. The memory is that of the largest element, not the
document's. Malformed text raises ``Unreadable`` with the byte where it was found.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import zlib
from collections.abc import Callable
from typing import BinaryIO

CHUNK = 1 << 20
_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
_NUMBER = frozenset("0123456789.eE+-")


class Unreadable(ValueError):
    """Not JSON, or not the document expected (its message says what and at which byte)."""


class _Text:
    """The part of the file being read, as text, with the byte offset of any position in it."""

    def __init__(self, f: BinaryIO):
        self.f = f
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.buf, self.pos, self.eof = "", 0, False
        self.start = 0  # where the value value() read last began
        self.base = 0  # the byte offset of buf[0]
        self._ascii = True  # buf is ASCII: a position is its byte offset from base
        self._mark = (0, 0)  # (position, byte offset from base) met last, for a buffer that is not ASCII

    def more(self) -> None:
        """Read on: at least CHUNK bytes, or as many as the buffer holds already (so a long
        element is read again only a few times)."""
        if self.eof:
            return
        data = self.f.read(max(CHUNK, len(self.buf) - self.pos))
        try:
            text = self.decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise Unreadable(f"not UTF-8 text ({exc.reason}) near byte {self.byte(len(self.buf))}") from None
        if not data:
            self.eof = True
        if self.pos > CHUNK:  # let go of what was read
            self.base = self.byte(self.pos)
            self.buf, self.pos, self._mark = self.buf[self.pos:], 0, (0, 0)
            self._ascii = self.buf.isascii()
        self.buf += text
        self._ascii = self._ascii and text.isascii()

    def byte(self, p: int) -> int:
        """The byte offset in the file of position ``p`` of the buffer."""
        if self._ascii:
            return self.base + p
        at, b = self._mark if self._mark[0] <= p else (0, 0)
        b += len(self.buf[at:p].encode("utf-8", "surrogatepass"))
        self._mark = (p, b)
        return self.base + b

    def skip_ws(self) -> str:
        """The next character after white space ('' at the end of the file)."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf) or self.eof:
                return self.buf[self.pos:self.pos + 1]
            self.more()

    def expect(self, chars: str, what: str) -> str:
        c = self.skip_ws()
        if not c or c not in chars:
            found = repr(c) if c else "the end of the file"
            raise Unreadable(f"expected {what}, found {found} at byte {self.byte(self.pos)}")
        self.pos += 1
        return c

    def value(self):
        """The next JSON value, whole; the reader is left after it."""
        self.skip_ws()
        while True:
            try:
                v, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if not self.eof:
                    self.more()  # perhaps only cut short by the buffer's end
                    continue
                raise Unreadable(f"{exc.msg} at byte {self.byte(exc.pos)}") from None
            except RecursionError:
                raise Unreadable(f"nested too deeply at byte {self.byte(self.pos)}") from None
            if not self.eof and type(v) in (int, float) and (end == len(self.buf) or self.buf[end] in _NUMBER):
                self.more()  # a number cut short by the buffer's end (1.5 read as 1.): read on
                continue
            self.start, self.pos = self.pos, end  # (more() may have moved the buffer)
            return v


def read_object(f: BinaryIO, streamed: dict[str, Callable[[int, object, int, int, int], None]]) -> tuple[dict, dict]:
    """Read the JSON object in binary file ``f``: for each member named in ``streamed`` whose
    value is an array, call ``streamed[name](index, element, start, end, crc)`` with each
    element, its byte range in the file and the CRC-32 of those bytes, in order. Returns the other members (and a streamed name
    whose value is not an array, as it is), and how many elements each streamed array had.
    A member given twice is refused."""
    t = _Text(f)
    t.expect("{", "a JSON object")
    out: dict = {}
    counts: dict[str, int] = {}
    seen: set[str] = set()
    if t.skip_ws() == "}":
        t.pos += 1
    else:
        while True:
            if t.skip_ws() != '"':
                raise Unreadable(f"expected a member name at byte {t.byte(t.pos)}")
            key = t.value()
            if key in seen:
                raise Unreadable(f"member {key[:80]!r} is given twice (at byte {t.byte(t.pos)})")
            seen.add(key)
            t.expect(":", "':'")
            if key in streamed and t.skip_ws() == "[":
                t.pos += 1
                counts[key] = _elements(t, streamed[key])
            else:
                out[key] = t.value()
            if t.expect(",}", "',' or '}'") == "}":
                break
    if t.skip_ws():
        raise Unreadable(f"more text after the object at byte {t.byte(t.pos)}")
    return out, counts


def _elements(t: _Text, call) -> int:
    i = 0
    if t.skip_ws() == "]":
        t.pos += 1
        return 0
    while True:
        v = t.value()
        call(i, v, t.byte(t.start), t.byte(t.pos), zlib.crc32(t.buf[t.start:t.pos].encode("utf-8", "surrogatepass")))
        i += 1
        if t.expect(",]", "',' or ']'") == "]":
            return i


def element(f: BinaryIO, start: int, end: int, crc: int):
    """The element ``read_object`` found at bytes ``start``..``end`` of ``f`` (whose CRC-32
    was ``crc``), read again (with pread: a forked process may share ``f``)."""
    data = os.pread(f.fileno(), end - start, start)
    if zlib.crc32(data) != crc:
        raise Unreadable(f"bytes {start}..{end} changed since they were read")
    return json.loads(data)
