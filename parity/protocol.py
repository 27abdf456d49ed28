"""The parent <-> worker wire format.

A message is a JSON header followed by zero or more arrays in .npy format
(``allow_pickle=False``), each length-prefixed::

    u32 header length | header (UTF-8 JSON) | for each array: u64 length | .npy bytes

The header's ``"arrays"`` lists the array names in order. .npy is stable across
NumPy releases, so a worker may run another Python or NumPy (``--python``).
bfloat16 arrays (ml_dtypes) travel as their uint16 bit patterns.
"""

from __future__ import annotations

import json
import struct

import numpy as np

from parity import npyio

_BF16 = "bfloat16"
#: the request array holding the upstream gradient of a case with ``grad:`` (cases.Case.upstream)
UPSTREAM = "upstream"


class ProtocolError(ValueError):
    """A message that is not what the protocol says (the runner treats it as a dead worker)."""


def _encode(arr: np.ndarray) -> tuple[bytes, str | None]:
    tag = None
    if arr.dtype.name == _BF16:
        arr, tag = arr.view(np.uint16), _BF16
    return npyio.to_bytes(arr), tag


def _decode(data: bytes, tag: str | None) -> np.ndarray:
    try:
        arr = npyio.from_bytes(data)
    except npyio.NpyError as exc:
        raise ProtocolError(f"an array that is not .npy data parity reads: {exc}") from None
    if tag == _BF16:
        import ml_dtypes

        arr = arr.view(ml_dtypes.bfloat16)
    return arr


def pack(header: dict, arrays: dict[str, np.ndarray] | None = None) -> bytes:
    arrays = arrays or {}
    blobs, tags = [], {}
    for name, arr in arrays.items():
        data, tag = _encode(np.asarray(arr))
        blobs.append(data)
        if tag:
            tags[name] = tag
    head = json.dumps({**header, "arrays": list(arrays), "tags": tags}).encode()
    parts = [struct.pack(">I", len(head)), head]
    for data in blobs:
        parts += [struct.pack(">Q", len(data)), data]
    return b"".join(parts)


def write(stream, header: dict, arrays: dict[str, np.ndarray] | None = None) -> None:
    stream.write(pack(header, arrays))
    stream.flush()


def read(read_exact) -> tuple[dict, dict[str, np.ndarray]]:
    """Read one message; ``read_exact(n)`` returns exactly n bytes or raises EOFError."""
    (size,) = struct.unpack(">I", read_exact(4))
    header = json.loads(read_exact(size))
    arrays = {}
    for name in header.pop("arrays", []):
        (n,) = struct.unpack(">Q", read_exact(8))
        arrays[name] = _decode(read_exact(n), header.get("tags", {}).get(name))
    header.pop("tags", None)
    return header, arrays


def stream_reader(stream):
    """read_exact for a blocking binary stream."""

    def read_exact(n: int) -> bytes:
        chunks, left = [], n
        while left:
            chunk = stream.read(left)
            if not chunk:
                raise EOFError("stream closed")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    return read_exact
