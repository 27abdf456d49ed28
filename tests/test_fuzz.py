"""Hypothesis fuzzing of the loader and the comparator: no uncaught exception, ever."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from parity.cases import load_case
from parity.compare import metrics
from parity.errors import CaseError, CaseErrors

FIELDS = ["name", "op", "description", "source", "params", "native", "inputs", "frameworks", "devices",
          "tolerance", "expected", "known", "spelling", "timeout", "x", "size", "alpha", "shape", "dtype",
          "values", "file", "init", "seed", "between", "framework", "reason", "max_abs", "error", "when",
          "torch", "tensorflow", "mindspore", "all", "reference", "atol", "rtol", "lrn", "float32"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(FIELDS), st.text(max_size=20))
documents = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=5),
                               st.dictionaries(st.sampled_from(FIELDS), children, max_size=6)),
    max_leaves=40,
)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def load_text(text: str):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "case.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            return load_case(path)
        except (CaseError, CaseErrors) as exc:
            assert str(exc)  # a message, never an empty error
            return None


@SETTINGS
@given(documents)
def test_random_yaml_documents(doc):
    load_text(yaml.safe_dump(doc, allow_unicode=True))


@SETTINGS
@given(st.dictionaries(st.sampled_from(FIELDS), documents, max_size=8).map(
    lambda d: {"op": "lrn", "params": {"size": 3}, "inputs": {"x": {"shape": [1, 3, 2, 2], "dtype": "float32"}},
               **d}))
def test_random_fields_on_a_valid_case(doc):
    load_text(yaml.safe_dump(doc, allow_unicode=True))


@SETTINGS
@given(st.text(max_size=300))
def test_random_text(text):
    load_text(text.encode("utf-8", "replace").decode("utf-8"))


float_dtypes = st.sampled_from([np.float16, np.float32, np.float64])
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)


@SETTINGS
@given(float_dtypes, shapes, st.data())
def test_metrics_on_arbitrary_floats(dtype, shape, data):
    elems = st.floats(width=np.dtype(dtype).itemsize * 8, allow_nan=True, allow_infinity=True,
                      allow_subnormal=True)
    a = data.draw(hnp.arrays(dtype, shape, elements=elems))
    b = data.draw(hnp.arrays(dtype, shape, elements=elems))
    atol = data.draw(st.floats(0, 1))
    rtol = data.draw(st.floats(0, 1))
    name = np.dtype(dtype).name
    m = metrics(a, b, name, atol, rtol)
    assert 0 <= m.mismatches <= m.n == a.size
    assert m.nonfinite_mismatches <= m.mismatches
    assert m.max_abs >= 0 and (m.max_ulp is None or m.max_ulp >= 0) and m.min_atol >= 0
    if m.max_ulp is None:  # no finite element is where the tolerance is relative
        fin = np.isfinite(a) & np.isfinite(b)
        big = np.maximum(np.abs(a.astype(float)), np.abs(b.astype(float)))[fin]
        assert atol > 0 and (rtol == 0 or not np.any(big >= atol / rtol))
    same = metrics(a, a, name, 0.0, 0.0)
    assert same.mismatches == 0 and same.max_ulp == 0
    if m.mismatches == 0 and a.size:
        assert m.max_abs <= atol + rtol * max(np.nanmax(np.abs(np.where(np.isfinite(a), a, 0)).astype(float)),
                                              np.nanmax(np.abs(np.where(np.isfinite(b), b, 0)).astype(float))) \
            or math.isclose(m.max_abs, 0)
