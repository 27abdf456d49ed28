"""Metrics: how far apart two arrays are, knowing nothing of cases or verdicts.

For two arrays a and b (a framework's output and the float64 reference, two
frameworks' outputs, or an output and a golden value) ``metrics`` computes, in
float64 and vectorized:

* ``max_abs``, ``mean_abs``: of |a - b| over the elements;
* ``max_rel``: of |a - b| / max(|a|, |b|) (symmetric; 0 where both are 0);
* ``max_ulp``: the distance in units in the last place of the *run dtype*, after
  rounding both sides to it (float64 references are rounded once), over the elements where
  the tolerance is relative: max(|a|, |b|) >= atol / rtol. Below that magnitude atol governs
  and a distance in ulps is noise (a value near zero is billions of ulps from its negative);
  None when no element is that large. With atol 0 every element counts;
* ``mismatches``: elements with |a - b| > atol + rtol * max(|a|, |b|), or where
  NaN/Inf positions disagree (NaN matches NaN, Inf matches the same Inf);
* ``min_atol``: the smallest atol that would pass at the case's rtol;
* ``bound_ratio``: max |a - b| over the op's per-element rounding bound, when one is given;
* the worst element's index and values, and on request the drill-down data.

The verdicts built on these numbers live in parity.compare (rows) and
parity.declarations (what a case declares).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field, fields

import numpy as np

from parity import parallel
from parity.inputs import DTYPES

#: machine epsilon (the gap between 1 and the next float) per dtype
EPSILON = {"float16": 2.0**-10, "bfloat16": 2.0**-7, "float32": 2.0**-23, "float64": 2.0**-52}

_INT_OF = {2: np.int16, 4: np.int32, 8: np.int64}


@dataclass(frozen=True, slots=True)
class Metrics:
    n: int
    max_abs: float
    max_rel: float
    mean_abs: float
    max_ulp: float | None
    mismatches: int
    nonfinite_mismatches: int
    min_atol: float
    worst_index: tuple
    worst_a: float
    worst_b: float
    bound_ratio: float | None = None  # max |a - b| / rounding bound (<= 1: rounding explains it)
    details: dict = field(default_factory=dict, compare=False)  # histogram, worst elements, per channel

    @property
    def mismatch_fraction(self) -> float:
        return self.mismatches / self.n if self.n else 0.0

    def __reduce__(self):
        # pickled as its values, made again by __init__: a frozen dataclass with slots pickles
        # through dataclasses' __getstate__/__setstate__, which look up its fields each time
        # (a judged case goes to parity run's report writer pickled: six of these in a small one)
        return Metrics, tuple(getattr(self, name) for name in _METRICS_FIELDS)


#: Metrics' fields in order, looked up once (its __reduce__)
_METRICS_FIELDS = tuple(f.name for f in fields(Metrics))


def ordered_bits(x: np.ndarray, dtype: str) -> np.ndarray:
    """Map floats of ``dtype`` to integers whose order and spacing are the floats' ulps
    (-0.0 and +0.0 both map to 0). The integers have the dtype's width."""
    dt = DTYPES[dtype]
    with np.errstate(over="ignore"):  # a float64 reference beyond the dtype's range rounds to inf
        ints = np.asarray(x).astype(dt, copy=False).view(_INT_OF[dt.itemsize])
    lowest = np.iinfo(ints.dtype).min
    return np.where(ints < 0, lowest - ints, ints)


def ulp_distance(a: np.ndarray, b: np.ndarray, dtype: str) -> np.ndarray:
    """|ordered(a) - ordered(b)| as float64, exact up to 2**53 ulps (int64 arithmetic)."""
    oa = ordered_bits(a, dtype).astype(np.int64)
    ob = ordered_bits(b, dtype).astype(np.int64)
    same_sign = (oa >= 0) == (ob >= 0)
    # same sign: the int64 difference cannot overflow; opposite signs: the distance is
    # |oa| + |ob|, summed in float64 (exact while it matters, i.e. for small distances)
    return np.where(same_sign, np.abs(oa - ob).astype(np.float64),
                    np.abs(oa).astype(np.float64) + np.abs(ob).astype(np.float64))


def ulp_threshold(atol: float, rtol: float) -> float:
    """The magnitude below which the tolerance is absolute (atol > rtol * |x|): ULP distances
    are counted only at or above it (0: everywhere, with atol 0; inf: nowhere, with rtol 0)."""
    if atol <= 0:
        return 0.0
    return atol / rtol if rtol > 0 else math.inf


def _max_ulp(a: np.ndarray, b: np.ndarray, dtype: str, sel: np.ndarray | None = None) -> float | None:
    """max ulp distance of two finite chunks, over the elements ``sel`` selects (all without
    it; None when it selects none). Where the signs agree the distance is the difference of
    the raw bit patterns; the (rare) elements of opposite signs take the exact path."""
    with np.errstate(over="ignore"):  # a float64 reference beyond the dtype's range rounds to inf
        return _max_ulp_quiet(a, b, dtype, sel)


def _max_ulp_quiet(a, b, dtype: str, sel) -> float | None:
    """_max_ulp, for a caller that has set NumPy's error state (overflow ignored)."""
    if sel is not None:
        if not sel.any():
            return None
        if not sel.all():
            a, b = a[sel], b[sel]
    dt = DTYPES[dtype]
    if dt.itemsize == 8:
        return float(ulp_distance(a, b, dtype).max())
    ints = _INT_OF[dt.itemsize]
    ia = a.astype(dt, copy=False).view(ints)
    ib = b.astype(dt, copy=False).view(ints)
    opposite = np.bitwise_xor(ia, ib) < 0
    if not opposite.any():  # the usual case: bit patterns of one sign, whose difference fits their width
        diff = np.subtract(ia, ib)
        return float(max(int(diff.max()), -int(diff.min())))
    diff = np.subtract(ia, ib, dtype=np.int64)
    best = float(max(diff.max(), -diff.min()))
    if opposite.any():
        same_max = np.abs(diff[~opposite]).max(initial=0)
        best = max(float(same_max), float(ulp_distance(a[opposite], b[opposite], dtype).max()))
    return best


#: elements per chunk: float64 temporaries of 2 MiB stay in cache, memory stays bounded
CHUNK = 1 << 15  # 32 Ki elements: each float64 temporary (256 KiB) stays in a core's L2 cache


@dataclass
class _Part:
    """Metrics of one chunk, combined by metrics()."""

    max_abs: float
    argmax: int
    sum_abs: float
    max_rel: float
    max_ulp: float | None
    mismatches: int
    nonfinite: int
    max_excess: float
    ratio: float | None
    exponents: np.ndarray | None  # with detail: counts of |a - b| by float64 exponent field (2047: inf/NaN)


def _exponent_counts(diff: np.ndarray) -> np.ndarray:
    """Counts of |a - b| per binary order of magnitude, from the float64 exponent bits."""
    return np.bincount((diff.view(np.uint64) >> np.uint64(52)).astype(np.intp), minlength=2048)


class _Scratch:
    """One thread's working arrays for _chunk, CHUNK elements each, made once and reused by every
    chunk that thread compares. A chunk's float64 temporaries are 256 KiB each, above glibc's
    mmap threshold and its heap-trim threshold: made and freed chunk by chunk, they were given
    back to the kernel and faulted in again page by page (990,000 minor page faults, 4-5x the
    time of the arithmetic, in some processes and not others, as the heap happened to lie)."""

    def __init__(self):
        self.a, self.b, self.diff, self.scale, self.work = (np.empty(CHUNK) for _ in range(5))
        self.sel, self.flags = np.empty(CHUNK, bool), np.empty(CHUNK, bool)
        self._typed: dict = {}

    def typed(self, dtype, k: int) -> np.ndarray:
        """Working array ``k`` (0, 1, ...) of ``dtype``, made on first use."""
        key = (np.dtype(dtype), k)
        arr = self._typed.get(key)
        if arr is None:
            arr = self._typed[key] = np.empty(CHUNK, key[0])
        return arr


_LOCAL = threading.local()


def _scratch() -> _Scratch:
    s = getattr(_LOCAL, "scratch", None)
    if s is None:
        s = _LOCAL.scratch = _Scratch()
    return s


def _into(x: np.ndarray, buf: np.ndarray) -> np.ndarray:
    """``x.astype(buf.dtype, copy=False)``, written into ``buf`` (as long as x) where it converts."""
    if x.dtype == buf.dtype:
        return x
    out = buf[:x.size]
    np.copyto(out, x, casting="unsafe")  # the conversion astype makes (float64 rounds to nearest)
    return out


def _max_ulp_chunk(a, b, dtype: str, sel, s: _Scratch) -> float | None:
    """_max_ulp_quiet of one chunk, the same number, in ``s``'s working arrays: without the
    copies of the selected elements and the temporaries of the usual case (one sign)."""
    if sel is not None:
        if not sel.any():
            return None
        if sel.all():
            sel = None
    dt = DTYPES[dtype]
    if dt.itemsize == 8:
        return _max_ulp_quiet(a, b, dtype, sel)
    ints = _INT_OF[dt.itemsize]
    m = a.size
    ia = _into(a, s.typed(dt, 0)).view(ints)
    ib = _into(b, s.typed(dt, 1)).view(ints)
    x = np.bitwise_xor(ia, ib, out=s.typed(ints, 0)[:m])
    opposite = np.less(x, 0, out=s.flags[:m])
    if sel is not None:
        np.logical_and(opposite, sel, out=opposite)
    if opposite.any():  # rare: counted elements of opposite signs take the exact path
        return _max_ulp_quiet(a, b, dtype, sel)
    diff = np.subtract(ia, ib, out=x)  # of one sign where it counts: it fits their width
    if sel is None:
        return float(max(int(diff.max()), -int(diff.min())))
    np.abs(diff, out=diff)  # where it does not count it may wrap: it is zeroed next
    np.multiply(diff, sel, out=diff, casting="unsafe")
    return float(diff.max())


def _chunk(a, b, bound, dtype, atol, rtol, detail: bool = False) -> _Part:
    # one error state for the whole chunk (each errstate costs about a microsecond, a small
    # chunk's arithmetic a few): the sum of huge finite differences may overflow (the general
    # path handles it), a float64 reference beyond the dtype's range rounds to inf, 0/0 (both
    # sides zero) is NaN and ignored by fmax, d/0 is inf. Every temporary is one of this
    # thread's working arrays (_Scratch).
    s = _scratch()
    m = a.size
    with np.errstate(all="ignore"):
        a64 = _into(a, s.a)
        b64 = _into(b, s.b)
        diff = np.subtract(a64, b64, out=s.diff[:m])
        np.abs(diff, out=diff)
        total = float(diff.sum())  # not finite iff some difference is NaN/Inf (or the sum overflows)
        if not math.isfinite(total) or (bound is not None and not math.isfinite(float(bound.sum()))):
            return _chunk_general(a64, b64, bound, dtype, atol, rtol, detail)
        scale = np.abs(a64, out=s.scale[:m])
        np.maximum(scale, np.abs(b64, out=s.work[:m]), out=scale)
        threshold = ulp_threshold(atol, rtol)
        ulp = _max_ulp_chunk(a, b, dtype, None if threshold == 0 else np.greater_equal(scale, threshold, out=s.sel[:m]),
                             s)
        work = np.multiply(scale, rtol, out=s.work[:m])
        np.subtract(diff, work, out=work)  # excess over the relative part: > atol is a mismatch
        max_excess = float(work.max())
        mismatches = int(np.count_nonzero(np.greater(work, atol, out=s.flags[:m]))) if max_excess > atol else 0
        np.divide(diff, scale, out=work)  # 0/0 (both zero) is NaN and ignored by fmax
        max_rel = float(np.fmax.reduce(work))
        ratio = None
        if bound is not None:
            np.divide(diff, bound, out=work)  # d/0 = inf: a difference where rounding allows none
            ratio = float(np.fmax.reduce(work))
    worst = int(diff.argmax())
    if ratio is not None and math.isnan(ratio):  # every difference 0 where the bound is 0
        ratio = 0.0
    return _Part(float(diff[worst]), worst, total, 0.0 if math.isnan(max_rel) else max_rel, ulp,
                 mismatches, 0, max_excess, ratio, _exponent_counts(diff) if detail else None)


@np.errstate(over="ignore")
def _chunk_general(a64, b64, bound, dtype, atol, rtol, detail: bool = False) -> _Part:
    """The same partial metrics for chunks with NaN/Inf (or a NaN bound)."""
    finite = np.isfinite(a64) & np.isfinite(b64)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(a64 - b64)
        scale = np.maximum(np.abs(a64), np.abs(b64))
    same = (np.isnan(a64) & np.isnan(b64)) | (a64 == b64)
    bad = ~finite & ~same
    diff[~finite] = 0.0
    diff[bad] = np.inf
    diff[np.isnan(diff)] = np.inf  # finite values whose float64 difference overflowed
    scale[~finite] = 0.0
    excess = diff - rtol * scale
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.divide(diff, scale, out=np.zeros_like(diff), where=scale > 0)
    rel[(scale == 0) & (diff > 0)] = np.inf
    ulp = ulp_distance(np.where(finite, a64, 0), np.where(finite, b64, 0), dtype)
    ulp[bad] = np.inf
    threshold = ulp_threshold(atol, rtol)
    counted = bad | (scale >= threshold) if threshold > 0 else None  # scale is 0 where a side is not finite
    ratio = None
    if bound is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.divide(diff, bound, out=np.zeros_like(diff), where=bound > 0)
        r[~(bound > 0) & (diff > 0)] = np.inf
        ratio = float(r.max())
    worst = int(np.argmax(diff))
    max_ulp = float(ulp.max()) if counted is None else (float(ulp[counted].max()) if counted.any() else None)
    return _Part(float(diff[worst]), worst, float(diff.sum()), float(rel.max()), max_ulp,
                 int(np.count_nonzero(excess > atol)), int(bad.sum()), float(excess.max()), ratio,
                 _exponent_counts(diff) if detail else None)


def histogram(exponents: np.ndarray) -> list[dict]:
    """[{lo, hi, count}] for the non-empty binary orders of magnitude of |a - b| (lo = 0 for
    exact agreement and differences below 2**-1022; hi = inf for Inf/NaN mismatches)."""
    out = []
    for e in np.flatnonzero(exponents):
        e = int(e)
        lo = 0.0 if e == 0 else (math.inf if e == 2047 else math.ldexp(1.0, e - 1023))
        hi = math.ldexp(1.0, -1022) if e == 0 else (math.inf if e == 2047 else math.ldexp(1.0, e - 1022))
        out.append({"lo": lo, "hi": hi, "count": int(exponents[e])})
    return out


def _details(a, b, parts: list[_Part], chunks: list[slice], shape, mismatches: int, top: int = 10) -> dict:
    """Drill-down data: the worst elements and, when some mismatch, the error per channel."""
    maxima = sorted((p.max_abs for p in parts), reverse=True)
    # the top elements are all >= the top-th largest chunk maximum: only those chunks, and in
    # them only the elements at or above it, are candidates
    threshold = maxima[top - 1] if len(maxima) >= top else 0.0
    cand_idx, cand_val = [], []
    order = sorted(range(len(parts)), key=lambda i: parts[i].max_abs, reverse=True)
    for rank, i in enumerate(order):
        part, sl = parts[i], chunks[i]
        if part.max_abs < threshold:
            break
        if len(cand_val) >= top and rank < len(order) and sorted(cand_val)[-top] >= part.max_abs:
            break  # ties: enough candidates at least as large as anything left
        with np.errstate(invalid="ignore", over="ignore"):
            d = np.abs(a[sl].astype(np.float64) - b[sl].astype(np.float64))
        d[np.isnan(d)] = np.inf
        idx = np.flatnonzero(d >= threshold)
        if idx.size > 4 * top:
            idx = idx[np.argpartition(d[idx], idx.size - top)[idx.size - top:]]
        cand_idx += (idx + sl.start).tolist()
        cand_val += d[idx].tolist()
    best = sorted(zip(cand_val, cand_idx), reverse=True)[:top]
    worst = [{"index": [int(i) for i in np.unravel_index(j, shape)] if shape else [], "a": float(a[j]),
              "b": float(b[j]), "abs": v} for v, j in best]
    per_channel = None
    if mismatches and len(shape) >= 2 and shape[1] <= 4096:
        with np.errstate(invalid="ignore", over="ignore"):
            d = np.abs(a.astype(np.float64) - b.astype(np.float64)).reshape(shape[0], shape[1], -1)
        d[np.isnan(d)] = np.inf
        per_channel = d.max(axis=(0, 2)).tolist()
    return {"worst": worst, "per_channel_max_abs": per_channel}


def metrics_many(jobs, dtype: str) -> list[Metrics]:
    """``metrics(a, b, dtype, atol, rtol, bound)`` of each job ``(a, b, atol, rtol, bound)``: the
    same numbers, bit for bit. The jobs of one size (up to CHUNK elements), tolerance and kind of
    bound are computed together, one NumPy call over a stacked array for each step instead of
    one per pair: a small case's comparisons (three frameworks, each against the reference and
    each other) cost the NumPy calls of one. A job whose differences are not all finite, or
    whose values take the rare paths (opposite signs among the counted elements, float64 ulps),
    is computed alone. No drill-down data (``detail``): call ``metrics`` for those."""
    out: list[Metrics | None] = [None] * len(jobs)
    groups: dict[tuple, list[int]] = {}
    for j, (a, b, atol, rtol, bound) in enumerate(jobs):
        n = int(np.size(a))
        if 1 < n <= CHUNK and np.shape(a) == np.shape(b) and (bound is None or np.shape(bound) == np.shape(a)):
            groups.setdefault((n, atol, rtol, bound is None), []).append(j)
    for (n, atol, rtol, no_bound), idx in groups.items():
        if len(idx) > 1:
            for j, m in zip(idx, _stacked([jobs[j] for j in idx], n, dtype, atol, rtol, no_bound)):
                out[j] = m
    return [m if m is not None else metrics(a, b, dtype, atol, rtol, bound)
            for m, (a, b, atol, rtol, bound) in zip(out, jobs)]


def _stacked(jobs, n: int, dtype: str, atol: float, rtol: float, no_bound: bool) -> list[Metrics | None]:
    """The fast path of _chunk for k jobs of n elements at once; None for a job it leaves to
    ``metrics`` (not finite, or a rare ulp path)."""
    k = len(jobs)
    A = np.empty((k, n))
    B = np.empty((k, n))
    for j, (a, b, *_) in enumerate(jobs):
        A[j] = np.asarray(a).reshape(-1)  # to float64, as _chunk's astype
        B[j] = np.asarray(b).reshape(-1)
    bound = None
    if not no_bound:
        bound = np.empty((k, n))
        for j, job in enumerate(jobs):
            bound[j] = np.asarray(job[4], np.float64).reshape(-1)
    with np.errstate(all="ignore"):
        diff = np.subtract(A, B)
        np.abs(diff, out=diff)
        total = diff.sum(axis=1)  # each row as diff.sum() of that row alone (the same pairwise sum)
        good = np.isfinite(total)
        if bound is not None:
            good &= np.isfinite(bound.sum(axis=1))
        scale = np.abs(A)
        np.maximum(scale, np.abs(B), out=scale)
        threshold = ulp_threshold(atol, rtol)
        sel = None if threshold == 0 else scale >= threshold
        dt = DTYPES[dtype]
        ulps: list = [None] * k
        slow = np.zeros(k, bool)
        if dt.itemsize == 8:
            slow[:] = True
        else:
            ia = A.astype(dt).view(_INT_OF[dt.itemsize])  # float32 etc. are exact in float64: as astype(dt)
            ib = B.astype(dt).view(_INT_OF[dt.itemsize])
            opposite = np.bitwise_xor(ia, ib) < 0
            if sel is not None:
                opposite &= sel
            slow = opposite.any(axis=1)
            d = np.abs(np.subtract(ia, ib))  # of one sign where it counts: it fits their width
            if sel is not None:
                d = np.where(sel, d, -1)
            best = d.max(axis=1)
            ulps = [None if v < 0 else float(v) for v in best.tolist()]
        work = np.multiply(scale, rtol)
        np.subtract(diff, work, out=work)
        max_excess = work.max(axis=1)
        mismatches = np.count_nonzero(work > atol, axis=1)
        np.divide(diff, scale, out=work)
        max_rel = np.fmax.reduce(work, axis=1)
        ratio = None
        if bound is not None:
            np.divide(diff, bound, out=work)
            ratio = np.fmax.reduce(work, axis=1)
    worst = diff.argmax(axis=1)
    rows = np.arange(k)
    # each row's figures as Python numbers, in one conversion per figure (not six per row)
    worst_l, good_l, slow_l = worst.tolist(), good.tolist(), slow.tolist()
    max_abs_l, worst_a_l, worst_b_l = (x[rows, worst].tolist() for x in (diff, A, B))
    total_l, mismatches_l, excess_l, rel_l = total.tolist(), mismatches.tolist(), max_excess.tolist(), max_rel.tolist()
    ratio_l = [None] * k if ratio is None else ratio.tolist()
    shapes = [np.shape(job[0]) for job in jobs]
    index_of = {}
    if len(set(shapes)) == 1 and shapes[0]:  # the usual case: one shape, unravelled at once
        index_of = dict(enumerate(zip(*(i.tolist() for i in np.unravel_index(worst, shapes[0])))))
    out: list[Metrics | None] = []
    for j, (a, b, *_) in enumerate(jobs):
        if not good_l[j]:
            out.append(None)
            continue
        ulp = ulps[j]
        if slow_l[j]:
            with np.errstate(over="ignore"):
                ulp = _max_ulp_quiet(np.asarray(a).reshape(-1), np.asarray(b).reshape(-1), dtype,
                                     None if sel is None else sel[j])
        rel, r, shape = rel_l[j], ratio_l[j], shapes[j]
        if r is not None and math.isnan(r):
            r = 0.0
        where = index_of.get(j)
        if where is None:
            where = tuple(int(i) for i in np.unravel_index(worst_l[j], shape)) if shape else ()
        out.append(Metrics(
            n=n, max_abs=max_abs_l[j], max_rel=0.0 if math.isnan(rel) else rel, mean_abs=total_l[j] / n,
            max_ulp=ulp, mismatches=mismatches_l[j], nonfinite_mismatches=0, min_atol=max(excess_l[j], 0.0),
            worst_index=where, worst_a=worst_a_l[j], worst_b=worst_b_l[j], bound_ratio=r))
    return out


def metrics(a: np.ndarray, b: np.ndarray, dtype: str, atol: float, rtol: float,
            bound: np.ndarray | None = None, detail: bool = False) -> Metrics:
    """Compare two arrays of the same shape. See the module docstring. ``bound``: the
    per-element rounding bound of the op (ops/_norm.py), for ``bound_ratio``; ``detail``:
    also the drill-down data (histogram, worst elements, error per channel).

    Vectorized in chunks of CHUNK elements, spread over a thread pool (NumPy releases the
    GIL): memory stays a few chunks per thread beyond the inputs, whatever their size."""
    shape = np.shape(a)
    a = np.asarray(a).reshape(-1)
    b = np.asarray(b).reshape(-1)
    n = a.size
    if n == 0:
        return Metrics(0, 0.0, 0.0, 0.0, 0.0, 0, 0, 0.0, (), math.nan, math.nan)
    if bound is not None:
        bound = np.asarray(bound, np.float64)
        bound = (bound if bound.shape == shape else np.broadcast_to(bound, shape)).reshape(-1)
    chunks = parallel.spans(n, CHUNK)
    parts = parallel.run(lambda sl: _chunk(a[sl], b[sl], None if bound is None else bound[sl], dtype, atol, rtol,
                                           detail), chunks)  # one chunk runs here, without the pool
    k = max(range(len(parts)), key=lambda i: parts[i].max_abs)
    worst = chunks[k].start + parts[k].argmax
    ratios = [p.ratio for p in parts if p.ratio is not None]
    mismatches = sum(p.mismatches for p in parts)
    details = {}
    if detail:
        details = {"histogram": histogram(sum(p.exponents for p in parts)),
                   **_details(a, b, parts, chunks, shape, mismatches)}
    return Metrics(
        n=n,
        max_abs=parts[k].max_abs,
        max_rel=max(p.max_rel for p in parts),
        mean_abs=math.fsum(p.sum_abs for p in parts) / n,
        max_ulp=max((p.max_ulp for p in parts if p.max_ulp is not None), default=None),
        mismatches=mismatches,
        nonfinite_mismatches=sum(p.nonfinite for p in parts),
        min_atol=max(max(p.max_excess for p in parts), 0.0),
        worst_index=tuple(int(i) for i in np.unravel_index(worst, shape)) if shape else (),
        worst_a=float(a[worst]),
        worst_b=float(b[worst]),
        bound_ratio=max(ratios) if ratios else None,
        details=details,
    )
