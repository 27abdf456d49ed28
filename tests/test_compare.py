"""The comparator's metrics on values whose answers are known."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

from parity.compare import metrics, ordered_bits


def f32(*v):
    return np.array(v, dtype=np.float32)


def test_identical_arrays_have_zero_error():
    a = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    m = metrics(a, a.copy(), "float32", 0.0, 0.0)
    assert (m.max_abs, m.max_rel, m.max_ulp, m.mismatches, m.min_atol) == (0, 0, 0, 0, 0)


def test_one_ulp_apart():
    one = np.float32(1.0)
    nxt = np.nextafter(one, np.float32(2))
    m = metrics(f32(one), f32(nxt), "float32", 0.0, 0.0)
    assert m.max_ulp == 1
    assert m.max_abs == pytest.approx(2.0**-23)
    assert m.mismatches == 1


def test_ulps_across_zero_and_signed_zeros():
    tiny = np.float32(np.finfo(np.float32).smallest_subnormal)
    assert metrics(f32(-0.0), f32(0.0), "float32", 0, 0).max_ulp == 0
    assert metrics(f32(-tiny), f32(tiny), "float32", 0, 0).max_ulp == 2
    assert np.diff(ordered_bits(f32(-1.0, -tiny, 0.0, tiny, 1.0), "float32")).min() > 0


def test_ulp_of_float64_reference_is_counted_in_the_run_dtype():
    # 1 + 2**-30 rounds to 1.0 in float32: 0 ulps, though the values differ
    m = metrics(f32(1.0), np.array([1 + 2.0**-30]), "float32", 0.0, 0.0)
    assert m.max_ulp == 0 and m.max_abs == pytest.approx(2.0**-30)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_ulp_in_other_dtypes(dtype):
    dt = np.dtype(ml_dtypes.bfloat16) if dtype == "bfloat16" else np.dtype(dtype)
    uint = {2: np.uint16, 8: np.uint64}[dt.itemsize]
    one = np.array([1.0, -1.0], dtype=dt)
    two_up = (one.view(uint) + uint(2)).view(dt)  # two steps away from zero
    assert metrics(one, two_up, dtype, 0, 0).max_ulp == 2


def test_relative_error_is_symmetric_and_zero_for_two_zeros():
    m1 = metrics(f32(1.0, 0.0), f32(1.5, 0.0), "float32", 0, 0)
    m2 = metrics(f32(1.5, 0.0), f32(1.0, 0.0), "float32", 0, 0)
    assert m1.max_rel == m2.max_rel == pytest.approx(0.5 / 1.5)


def test_tolerance_rule_and_min_atol():
    a = f32(1.0, 100.0, -3.0)
    b = f32(1.0 + 2e-5, 100.0 + 1e-4, -3.0)
    # allowed: atol + rtol * max(|a|, |b|); element 0 exceeds rtol*1 by ~1.87e-5, element 1 is within
    m = metrics(a, b, "float32", 1e-5, 1.3e-6)
    assert m.mismatches == 1
    assert m.worst_index == (1,)  # the largest |a - b| (1e-4), though it is within tolerance
    d0 = float(b[0]) - 1.0  # float32(1 + 2e-5) - 1
    assert m.min_atol == pytest.approx(d0 - 1.3e-6 * float(b[0]), rel=1e-9)
    assert metrics(a, b, "float32", m.min_atol * 1.001, 1.3e-6).mismatches == 0


def test_nan_and_inf_positions():
    nan, inf = math.nan, math.inf
    same = metrics(f32(nan, inf, -inf, 1), f32(nan, inf, -inf, 1), "float32", 0, 0)
    assert (same.mismatches, same.nonfinite_mismatches, same.max_abs) == (0, 0, 0)
    diff = metrics(f32(nan, inf, 1, 1), f32(1, -inf, inf, nan), "float32", 1.0, 1.0)
    assert diff.mismatches == 4 and diff.nonfinite_mismatches == 4
    assert diff.max_abs == math.inf and diff.max_ulp == math.inf


def test_worst_index_is_multidimensional():
    a = np.zeros((2, 3, 4), np.float32)
    b = a.copy()
    b[1, 2, 3] = 0.5
    b[0, 1, 1] = 0.25
    m = metrics(a, b, "float32", 0, 0)
    assert m.worst_index == (1, 2, 3) and m.worst_b == 0.5 and m.mismatches == 2


def test_empty_arrays():
    m = metrics(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32), "float32", 0, 0)
    assert m.n == 0 and m.mismatches == 0


def test_ulps_count_only_where_the_tolerance_is_relative():
    """Near zero atol governs, and ulps are noise: -1e-8 and 1e-8 are ~2e9 float32 ulps apart."""
    a = np.array([2.0, -1e-8, 0.5], np.float32)
    b = np.array([np.nextafter(np.float32(2.0), np.float32(3.0)), 1e-8, 0.5], np.float32)
    exact = metrics(a, b, "float32", 0, 0)  # atol 0: every element counts
    assert exact.max_ulp > 1e9
    tol = metrics(a, b, "float32", 1e-6, 1e-6)  # relative from |x| >= 1: only the first element
    assert tol.max_ulp == 1 and tol.mismatches == 0
    small = metrics(a[1:], b[1:], "float32", 1e-6, 1e-6)
    assert small.max_ulp is None and small.max_abs == pytest.approx(2e-8)
    assert metrics(a, b, "float32", 1e-6, 0).max_ulp is None  # rtol 0: absolute everywhere
    with np.errstate(invalid="ignore"):
        nan = metrics(np.array([np.nan, 0.1], np.float32), np.array([1.0, 0.1], np.float32), "float32", 1e-6, 1e-6)
    assert nan.max_ulp == math.inf  # a NaN where the other side has a number always counts


def _same(m1, m2) -> bool:
    """Two Metrics with the same numbers, bit for bit (NaN equal to NaN)."""
    import dataclasses

    def key(m):
        return [(repr(v) if isinstance(v, float) else v) for v in dataclasses.astuple(m)[:-1]]

    return key(m1) == key(m2)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
def test_metrics_of_many_pairs_at_once_are_metrics_of_each(dtype):
    """metrics_many stacks same-sized comparisons into one pass: every number is the one
    metrics gives for that pair alone (sums, maxima, ulps, worst element), including the pairs
    it leaves to metrics (NaN/Inf, opposite signs, a size of its own)."""
    from parity.metrics import metrics_many

    rng = np.random.default_rng(7)
    np_dt = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    jobs = []
    for trial in range(60):
        shape = [(2, 5, 6, 6), (2, 4, 6, 6), (3, 7), (50_000,)][trial % 4]
        ref = rng.standard_normal(shape) * 10.0 ** rng.integers(-8, 4)
        a = (ref * (1 + rng.standard_normal(shape) * 2.0 ** -20)).astype(np_dt)
        b = ref if trial % 3 else (ref + 1e-7).astype(np_dt)
        if trial % 7 == 0:
            a.reshape(-1)[3] = np.nan if trial % 2 else np.inf
        if trial % 11 == 0:
            a.reshape(-1)[1], b.reshape(-1)[1] = 1e-12, -1e-12  # opposite signs, below the atol/rtol threshold
        if trial % 13 == 0:
            a.reshape(-1)[2], b.reshape(-1)[2] = 1.0, -1.0  # opposite signs where ulps count
        if trial % 5 == 0:
            a.reshape(-1)[:4] = 0
            b.reshape(-1)[:4] = 0
        bound = None if trial % 2 else np.abs(ref) * 2.0 ** -22 + (trial % 4 == 1) * 0.0
        atol, rtol = [(1e-5, 1e-5), (0.0, 1e-5), (1e-5, 0.0), (1e-5, 1e-5)][trial % 4 if trial % 6 else 0]
        jobs.append((a, b, atol, rtol, bound))
    got = metrics_many(jobs, dtype)
    for (a, b, atol, rtol, bound), m in zip(jobs, got):
        assert _same(m, metrics(a, b, dtype, atol, rtol, bound)), (a.shape, atol, rtol, bound is None)


def test_each_threads_working_arrays_carry_nothing_from_one_comparison_to_the_next():
    """The chunk pass writes its temporaries into working arrays each thread makes once and
    reuses (metrics._Scratch): a comparison gives the numbers it gives in a fresh thread
    whatever came before it on that thread (another dtype, a longer or shorter last chunk, a
    float64 reference, NaN, counted elements of opposite signs), and threads comparing at once
    do not share them."""
    import concurrent.futures
    import threading

    from parity import metrics as metrics_module
    from parity import parallel

    rng = np.random.default_rng(11)
    n = metrics_module.CHUNK
    jobs = []
    for trial, size in enumerate([3 * n + 17, 5, n, 2 * n - 1, 1000, n + 1] * 2):
        dtype = ["float32", "float16", "bfloat16", "float64"][trial % 4]
        np_dt = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
        ref = rng.standard_normal(size) * 10.0 ** rng.integers(-3, 3)
        a = (ref * (1 + rng.standard_normal(size) * 2.0 ** -18)).astype(np_dt)
        b = ref if trial % 2 else (ref * (1 + rng.standard_normal(size) * 2.0 ** -19)).astype(np_dt)
        if trial % 3 == 1:
            a[2], b[2] = 1.0, -1.0  # opposite signs where ulps count
        if trial % 5 == 2:
            a[1] = np.nan
        jobs.append((a, b, dtype, *[(1e-5, 1e-5), (0.0, 1e-5), (1e-6, 1.3e-6)][trial % 3],
                     None if trial % 2 else np.abs(ref) * 2.0 ** -21))

    def alone(job):  # in a thread of its own, its chunks in a pool of its own: arrays nothing else wrote
        out = []
        shared = parallel._POOL
        parallel._POOL = concurrent.futures.ThreadPoolExecutor(max_workers=2)
        try:
            t = threading.Thread(target=lambda: out.append(metrics(*job)))
            t.start()
            t.join()
        finally:
            parallel._POOL.shutdown()
            parallel._POOL = shared
        return out[0]

    with np.errstate(invalid="ignore"):
        expected = [alone(job) for job in jobs]
        in_turn = [metrics(*job) for job in jobs]
        at_once: dict[int, list] = {}

        def compare_all(k):
            at_once[k] = [metrics(*job) for job in (jobs[k:] + jobs[:k])]

        threads = [threading.Thread(target=compare_all, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for j, m in enumerate(in_turn):
        assert _same(m, expected[j]), j
    for k, got in at_once.items():
        for j, m in enumerate(got):
            assert _same(m, expected[(j + k) % len(jobs)]), (k, j)


def test_metrics_pickle_with_every_field():
    """Metrics pickles as its values (its __reduce__ names them): every field comes back,
    so a field added to the class and not to __reduce__ fails here."""
    import dataclasses
    import pickle

    from parity.metrics import Metrics

    names = [f.name for f in dataclasses.fields(Metrics)]
    m = Metrics(**{name: (f"value {i}", i) for i, name in enumerate(names)})
    back = pickle.loads(pickle.dumps(m, protocol=pickle.HIGHEST_PROTOCOL))
    assert [getattr(back, n) for n in names] == [getattr(m, n) for n in names]
