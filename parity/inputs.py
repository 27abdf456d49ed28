"""Deterministic input tensors: literal values, seeded random draws, .npy files.

The same spec produces bit-identical arrays on any machine: random draws use
NumPy's PCG64 generator seeded from the case, are drawn in float64 and rounded to
the run dtype once; literal values are parsed as float64 and rounded the same way.
Every result records the SHA-256 of its inputs so a cross-machine difference
would show.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import ml_dtypes
import numpy as np

from parity import npyio

DTYPES: dict[str, np.dtype] = {
    "float16": np.dtype(np.float16),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
}
INITS = ("normal", "uniform", "constant", "arange")
#: refuse inputs above this many elements before allocating anything
MAX_ELEMENTS = 1 << 28
#: at most this many dimensions (values:, shape: and file: alike)
MAX_RANK = 8
#: seeds are 0..MAX_SEED (NumPy's PCG64 takes any non-negative integer; 64 bits keep them exact in JSON
#: readers that use int64 and in every report)
MAX_SEED = 2**63 - 1


def dtype(name: str) -> np.dtype:
    return DTYPES[name]


@dataclass(frozen=True)
class InputSpec:
    """One input of a case. ``kind`` is 'values', 'random', 'file' or 'array' (a NumPy array
    given in code, parity.case)."""

    name: str
    kind: str
    shape: tuple[int, ...]
    dtype: str
    values: object = None
    init: str = "normal"
    seed: int = 0
    args: dict = field(default_factory=dict)  # mean/std, low/high, value, start/step
    file: Path | None = None
    #: the file's path as the case writes it, relative to the case file (``file`` is resolved:
    #: through a symlink it names the target); None when it climbs out through '..'
    file_as_written: Path | None = field(default=None, compare=False)
    #: kind 'array': the array (cast to ``dtype`` when materialized)
    array: np.ndarray | None = field(default=None, compare=False, repr=False)

    def materialize(self, as_dtype: str | None = None) -> np.ndarray:
        """The array, in this spec's dtype (or ``as_dtype`` when sweeping dtypes)."""
        target = DTYPES[as_dtype or self.dtype]
        if self.kind == "array":
            data = np.asarray(self.array)
            if data.dtype != target:
                data = data.astype(np.float64)
        elif self.kind == "values":
            data = np.array(self.values, dtype=np.float64)
        elif self.kind == "file":
            try:
                data = npyio.load(self.file, MAX_ELEMENTS)
            except npyio.NpyError as exc:
                raise npyio.NpyError(f"{self.file}: {exc}") from None
            if tuple(data.shape) != tuple(self.shape):
                raise npyio.NpyError(f"{self.file}: holds shape {list(data.shape)}, not the {list(self.shape)} it "
                                     "held when the case was loaded (the file changed)")
            if data.dtype != target:
                data = data.astype(np.float64)
        else:
            data = _draw(self.init, self.shape, self.seed, self.args)
        return data.astype(target, copy=False)

    def describe(self) -> str:
        shape = "x".join(map(str, self.shape)) or "scalar"
        if self.kind == "array":
            src = "an array given in code"
        elif self.kind == "values":
            src = "literal values"
        elif self.kind == "file":
            src = f"file {self.file.name}"
        else:
            detail = ", ".join(f"{k}={v}" for k, v in self.args.items())
            src = f"{self.init}({detail}) seed {self.seed}" if detail else f"{self.init} seed {self.seed}"
        return f"{shape} {self.dtype}, {src}"


def _draw(init: str, shape: tuple[int, ...], seed: int, args: dict) -> np.ndarray:
    size = int(np.prod(shape, dtype=np.int64))
    if init == "constant":
        return np.full(shape, float(args.get("value", 0.0)), dtype=np.float64)
    if init == "arange":
        start, step = float(args.get("start", 0.0)), float(args.get("step", 1.0))
        return (start + step * np.arange(size, dtype=np.float64)).reshape(shape)
    rng = np.random.Generator(np.random.PCG64(seed))
    if init == "normal":
        out = rng.standard_normal(size, dtype=np.float64)
        out *= float(args.get("std", 1.0))
        out += float(args.get("mean", 0.0))
        return out.reshape(shape)
    if init == "uniform":
        return rng.uniform(float(args.get("low", 0.0)), float(args.get("high", 1.0)), size).reshape(shape)
    raise ValueError(f"unknown init {init!r}")


def digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes: equal digests = identical inputs."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.asarray(arrays[name], order="C")
        h.update(f"{name}|{a.dtype.name}|{a.shape}|".encode())
        h.update(a.view(np.uint8).reshape(-1).data if a.size else b"")
    return h.hexdigest()


def npy_header(path: Path, max_elements: int = MAX_ELEMENTS) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a .npy file, read without loading (or unpickling) it, after
    ``npyio.check``: a damaged, truncated, oversized or non-numeric file raises
    ``npyio.NpyError`` saying what is wrong."""
    header = npyio.check(path, max_elements)
    return header.shape, header.dtype


def summarize(arrays: dict[str, np.ndarray]) -> dict[str, dict]:
    """Shape, dtype and value range of each input, for reports."""
    out = {}
    for name, a in arrays.items():
        a64 = np.asarray(a, dtype=np.float64)
        finite = a64[np.isfinite(a64)]
        out[name] = {
            "shape": list(a.shape),
            "dtype": a.dtype.name,
            "min": float(finite.min()) if finite.size else None,
            "max": float(finite.max()) if finite.size else None,
            "mean": float(finite.mean()) if finite.size else None,
            "std": float(finite.std()) if finite.size else None,
            "nonfinite": int(a64.size - finite.size),
            "sha256": digest({name: a}),
        }
    return out
