"""Regenerate the damaged .npy files of the malformed-case corpus (run from this directory:
``../../../../.venv/bin/python make_damaged.py``). Each file is under 1 KB; each is refused by
``parity.npyio.check`` before anything reads its data. The headers are written by hand (the
.npy format: magic, version, little-endian header length, a Python-literal dict padded with
spaces to a multiple of 64 bytes and ended by a newline), so that no NumPy version's own
header checks stand in the way.

truncated.npy       a (1, 3, 2, 2) float32 header with 10 of its 12 values (40 of 48 bytes)
negative-shape.npy  a header whose shape is (1, 3, -2, 2)
version-9.npy       a valid file whose format version byte says 9.0
gib-header.npy      a header declaring (1, 1, 16384, 16384) float32: 2**28 elements, 1 GiB, and no data
unhashable-header.npy  a header that parses as a literal but not as a dict ({[1]: 2}: an unhashable key)
nine-dims.npy       a valid (1, 3, 1, 1, 1, 1, 1, 1, 1) float32 array: 9 dimensions
scalar.npy          a valid 0-dimensional float32 array
"""

import numpy as np

MAGIC = b"\x93NUMPY"


def header(text: str, version: tuple[int, int] = (1, 0)) -> bytes:
    width = 2 if version[0] == 1 else 4
    raw = text.encode("latin1")
    pad = (-(len(MAGIC) + 2 + width + len(raw) + 1)) % 64
    raw += b" " * pad + b"\n"
    return MAGIC + bytes(version) + len(raw).to_bytes(width, "little") + raw


def array_header(shape: tuple, descr: str = "<f4") -> bytes:
    return header(f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape!r}, }}")


def write(name: str, data: bytes) -> None:
    assert len(data) < 1024, name
    with open(name, "wb") as f:
        f.write(data)


values = np.arange(12, dtype="<f4").tobytes()
write("truncated.npy", array_header((1, 3, 2, 2)) + values[:40])
write("negative-shape.npy", array_header((1, 3, -2, 2)) + values)
good = array_header((1, 3, 2, 2)) + values
write("version-9.npy", good[:6] + bytes((9, 0)) + good[8:])
write("gib-header.npy", array_header((1, 1, 16384, 16384)))
write("unhashable-header.npy", header("{[1]: 2}") + values)
write("nine-dims.npy", array_header((1, 3, 1, 1, 1, 1, 1, 1, 1)) + np.ones(3, "<f4").tobytes())
write("scalar.npy", array_header(()) + np.ones((), "<f4").tobytes())
