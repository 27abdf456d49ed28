""".npy files are input: read the header first, check it, then read exactly what it declares.

A case's ``file:`` input and every array of a results store (a file, or a record of its
pack of arrays: ``check_at``, ``load_at``, ``append``) go through here. ``check``
reads the magic and header only (no data, never a pickle) and refuses what parity cannot
use or should not trust: an unknown format version, an object or structured dtype, a
negative or non-integer shape, more elements than ``max_elements``, and a file shorter (or
longer) than its header declares. ``load`` checks, then reads the data with
``allow_pickle=False``. Every refusal is an ``NpyError`` whose message says what is wrong,
for a one-line error naming the file.
"""

from __future__ import annotations

import ast
import contextlib
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from parity import fsutil

#: the dtype kinds an array may have: bool, integers, floats (bfloat16 is stored as uint16)
KINDS = "biuf"
#: at most this many elements (the limit of a case's inputs, parity.inputs.MAX_ELEMENTS)
MAX_ELEMENTS = 1 << 28
#: np.load's own limit (its max_header_size default): a longer header passes no check here that load
#: would then refuse
_MAX_HEADER = 10000


class NpyError(ValueError):
    """A .npy file parity refuses to read."""


@dataclass(frozen=True)
class Header:
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    offset: int  # where the data starts

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


def check(path: Path, max_elements: int = MAX_ELEMENTS) -> Header:
    """The header of ``path``, checked against the file (see the module docstring)."""
    with _unreadable(), open(Path(path), "rb") as f:
        return _checked(f, max_elements)


@contextlib.contextmanager
def _unreadable():
    """An OSError inside is an NpyError that says why the file could not be read."""
    try:
        yield
    except OSError as exc:
        raise NpyError(f"unreadable: {exc.strerror or exc}") from None


def _checked(f, max_elements: int, size_on_disk: int | None = None) -> Header:
    """The header of the open file ``f`` (read up to the data), checked against its size (the
    file's, or ``size_on_disk`` for bytes in memory)."""
    magic = f.read(8)
    if len(magic) < 8 or magic[:6] != b"\x93NUMPY":
        raise NpyError("not a .npy file (no NumPy magic string)")
    major, minor = magic[6], magic[7]
    if (major, minor) not in ((1, 0), (2, 0), (3, 0)):
        raise NpyError(f"unknown .npy format version {major}.{minor} (known: 1.0, 2.0, 3.0)")
    width = 2 if major == 1 else 4
    raw = f.read(width)
    if len(raw) < width:
        raise NpyError("truncated header")
    length = int.from_bytes(raw, "little")
    if length > _MAX_HEADER:
        raise NpyError(f"header of {length} bytes (at most {_MAX_HEADER})")
    text = f.read(length)
    if len(text) < length:
        raise NpyError("truncated header")
    if size_on_disk is None:
        size_on_disk = os.fstat(f.fileno()).st_size
    header = _parse(text.decode("utf-8" if major == 3 else "latin1", errors="replace"), 8 + width + length,
                    max_elements)
    expected = header.offset + header.size * header.dtype.itemsize
    if size_on_disk < expected:
        raise NpyError(f"truncated: the header declares {header.size} elements of {header.dtype.name} "
                       f"({expected - header.offset} bytes), the file holds {size_on_disk - header.offset}")
    if size_on_disk > expected:
        raise NpyError(f"{size_on_disk - expected} bytes after the data the header declares")
    return header


#: headers already read (a store's arrays repeat a few shapes and dtypes): text -> (shape, dtype, fortran)
_PARSED: dict[str, tuple] = {}


def _parse(text: str, offset: int, max_elements: int) -> Header:
    fields = _PARSED.get(text)
    if fields is None:
        fields = _literal(text)
        if len(_PARSED) >= 1024:
            _PARSED.clear()
        _PARSED[text] = fields
    shape, dt, fortran = fields
    size = math.prod(shape)
    if size > max_elements:
        raise NpyError(f"shape {list(shape)} has {size} elements, more than the limit of {max_elements}")
    return Header(shape, dt, fortran, offset)


def _literal(text: str) -> tuple:
    """(shape, dtype, fortran_order) of a header's text, each checked."""
    try:
        d = ast.literal_eval(text.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):  # TypeError: {[1]: 2}
        raise NpyError("header is not a Python literal") from None
    if not isinstance(d, dict) or set(d) != {"descr", "fortran_order", "shape"}:
        raise NpyError("header must be a dict of descr, fortran_order and shape")
    shape, descr, fortran = d["shape"], d["descr"], d["fortran_order"]
    if not isinstance(shape, tuple) or not all(type(n) is int for n in shape):
        raise NpyError(f"shape {shape!r} is not a tuple of integers")
    if any(n < 0 for n in shape):
        raise NpyError(f"negative dimension in shape {list(shape)}")
    if len(shape) > 32:
        raise NpyError(f"{len(shape)} dimensions (at most 32)")
    if not isinstance(fortran, bool):
        raise NpyError("fortran_order is not True or False")
    if not isinstance(descr, str):
        raise NpyError("structured dtypes are not supported: expected a plain numeric dtype")
    try:
        dt = np.dtype(descr)
    except (TypeError, ValueError):
        raise NpyError(f"unknown dtype {descr!r}") from None
    if dt.kind not in KINDS or dt.hasobject or dt.fields is not None or dt.subdtype is not None:
        raise NpyError(f"dtype {dt} is not supported: expected booleans, integers or floats")
    return tuple(shape), dt, fortran


def check_at(path: Path, offset: int, size: int, max_elements: int = MAX_ELEMENTS) -> Header:
    """The header of the .npy record of ``size`` bytes at ``offset`` in ``path`` (a results
    store's pack of arrays), checked as ``check`` checks a file of that size."""
    with Packs() as packs:
        return packs.check(path, offset, size, max_elements)


def load(path: Path, max_elements: int = MAX_ELEMENTS) -> np.ndarray:
    """The array of ``path``, after the checks of ``check``, read in the same pass into an array
    of the declared shape and dtype (never unpickled: the dtype is plain)."""
    return load_at(path, 0, None, max_elements)


def load_at(path: Path, offset: int, size: int | None, max_elements: int = MAX_ELEMENTS) -> np.ndarray:
    """The array of the .npy record of ``size`` bytes at ``offset`` in ``path`` (None: the whole
    file is one), checked as ``load`` checks a file."""
    with Packs() as packs:
        return packs.load(path, offset, size, max_elements)


#: the most bytes a record's magic, header length and header take (np.load's limit)
_MAX_HEAD = 12 + _MAX_HEADER


class Packs:
    """Files of .npy records (a results store's packs), each opened once however many of its
    records are read (``check``, ``load``, ``read``: positioned reads of the open file), until
    ``close`` or the end of a ``with``. A file is read as it is when each record is read."""

    def __init__(self):
        self._fds: dict[str, int] = {}

    def __enter__(self) -> "Packs":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        fds, self._fds = self._fds, {}
        for fd in fds.values():
            os.close(fd)

    def _fd(self, path) -> int:
        key = os.fspath(path)
        fd = self._fds.get(key)
        if fd is None:
            with _unreadable():
                fd = self._fds[key] = os.open(key, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        return fd

    def read(self, path, offset: int, size: int) -> bytes:
        """The ``size`` bytes at ``offset`` (fewer where the file ends before them)."""
        fd = self._fd(path)
        with _unreadable():
            return os.pread(fd, size, offset)

    def _head(self, path, offset: int, size: int | None, max_elements: int) -> Header:
        """The record's header checked, and the bytes read with it."""
        if size is None:  # the whole file is the record
            fd = self._fd(path)
            with _unreadable():
                size = os.fstat(fd).st_size - offset
        head = self.read(path, offset, min(size, _MAX_HEAD))
        return _checked(io.BytesIO(head), max_elements, size), head

    def check(self, path, offset: int, size: int, max_elements: int = MAX_ELEMENTS) -> Header:
        """The header of the record of ``size`` bytes at ``offset``, checked as ``check``
        checks a file of that size."""
        return self._head(path, offset, size, max_elements)[0]

    def load(self, path, offset: int, size: int | None, max_elements: int = MAX_ELEMENTS) -> np.ndarray:
        """The array of the record of ``size`` bytes at ``offset`` (None: to the end of the
        file), checked as ``load`` checks a file, read into an array of its declared shape and
        dtype (never unpickled)."""
        h, head = self._head(path, offset, size, max_elements)
        arr = np.empty(h.shape, h.dtype, order="F" if h.fortran_order else "C")
        out = memoryview(arr.reshape(-1, order="A")).cast("B")
        got = head[h.offset:h.offset + arr.nbytes]  # a small record came whole with its header
        out[:len(got)] = got
        at, fd = len(got), self._fd(path)
        while at < arr.nbytes:
            with _unreadable():
                n = os.preadv(fd, [out[at:]], offset + h.offset + at)
            if n <= 0:
                raise NpyError("truncated while reading")
            at += n
        return arr


#: .npy headers already made, by (dtype, shape): text numpy's own writer gave for such an array
_MADE: dict[tuple, bytes] = {}


def _header(arr: np.ndarray) -> bytes | None:
    """The .npy header np.save gives ``arr`` (made once per dtype and shape, by numpy's own
    header writer), for a C-ordered array of a plain dtype; None for another array."""
    if not arr.flags.c_contiguous or arr.dtype.hasobject:
        return None
    key = (arr.dtype.str, arr.shape)
    head = _MADE.get(key)
    if head is None:
        buf = io.BytesIO()
        try:  # np.save writes format 1.0 whenever its header fits (and a plain dtype's always does)
            np.lib.format.write_array_header_1_0(buf, np.lib.format.header_data_from_array_1_0(arr))
        except ValueError:  # a header too long for 1.0: numpy's writer chooses
            return None
        head = buf.getvalue()
        if len(_MADE) >= 1024:
            _MADE.clear()
        _MADE[key] = head
    return head


def _write(f, arr: np.ndarray) -> None:
    """The .npy bytes of ``arr`` into ``f``, as ``np.save`` writes them (allow_pickle=False),
    with _header's headers and no copy of the data."""
    arr = np.asarray(arr)
    head = _header(arr)
    if head is None:
        np.lib.format.write_array(f, arr, allow_pickle=False)
        return
    f.write(head)
    if arr.nbytes:
        f.write(memoryview(arr.reshape(-1)).cast("B"))


def append(fd: int, arr: np.ndarray) -> int:
    """Write the .npy bytes of ``arr`` (as ``np.save`` writes them) at the file position of
    the raw file descriptor ``fd``, with no copy of the data; the number of bytes written."""
    return sum(fsutil.write_all(fd, part) for part in parts(arr))


def parts(arr: np.ndarray) -> list:
    """The .npy bytes of ``arr`` (as ``np.save`` writes them) as buffers to write in turn: its
    header and its data (a view of ``arr``, not a copy)."""
    arr = np.asarray(arr)
    head = _header(arr)
    if head is None:
        return [to_bytes(arr)]
    return [head, memoryview(arr.reshape(-1)).cast("B")] if arr.nbytes else [head]


def to_bytes(arr: np.ndarray) -> bytes:
    """The .npy bytes of ``arr``, as ``np.save`` writes them (allow_pickle=False)."""
    buf = io.BytesIO()
    _write(buf, arr)
    return buf.getvalue()


def from_bytes(data: bytes, max_elements: int = MAX_ELEMENTS) -> np.ndarray:
    """The array of .npy bytes, checked as ``check`` checks a file (a writable copy)."""
    h = _checked(io.BytesIO(data), max_elements, len(data))
    arr = np.frombuffer(data, h.dtype, h.size, h.offset).reshape(h.shape, order="F" if h.fortran_order else "C")
    return arr.copy(order="K")
