"""The limits of the case schema that the malformed-case corpus does not show by itself: what
stays allowed at the edges (non-finite values, 8 dimensions, printable names), and .npy inputs
checked again when they are read."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import write_case

from parity import npyio, yamlio
from parity.cases import load_case, name_problem
from parity.errors import CaseError, CaseErrors
from parity.inputs import InputSpec, npy_header


def test_non_finite_values_stay_allowed(tmp_path):
    path = write_case(tmp_path, "nonfinite", """
        op: lrn
        params: {size: 3}
        inputs: {x: {values: [[[[1, -2.5, .inf, -.inf, .nan, 1.0e308]]]], dtype: float64}}
    """)
    x = load_case(path).inputs["x"].materialize()
    assert x.shape == (1, 1, 1, 6)
    assert x[0, 0, 0, :2].tolist() == [1.0, -2.5] and math.isinf(x[0, 0, 0, 2]) and x[0, 0, 0, 3] < 0
    assert math.isnan(x[0, 0, 0, 4]) and x[0, 0, 0, 5] == 1e308


def test_values_of_8_dimensions_load_and_9_do_not(tmp_path):
    nested = lambda depth: "[" * depth + "1.0, 2.0, 3.0" + "]" * depth
    ok = write_case(tmp_path, "eight", f"""
        op: layer_norm
        params: {{normalized_shape: [3]}}
        inputs: {{x: {{values: {nested(8)}, dtype: float32}}}}
    """)
    assert load_case(ok).inputs["x"].shape == (1,) * 7 + (3,)
    bad = write_case(tmp_path, "nine", f"""
        op: layer_norm
        params: {{normalized_shape: [3]}}
        inputs: {{x: {{values: {nested(9)}, dtype: float32}}}}
    """)
    with pytest.raises(CaseErrors) as info:
        load_case(bad)
    assert [str(e) for e in info.value.errors] == [
        f"{bad}:3: inputs.x.values: is nested 9 lists deep; values have at most 8 dimensions"]


@pytest.mark.parametrize("name", ["lrn/even size", "lrn/café", "layer_norm/x[float16]", "a" * 200, "日本語"])
def test_printable_names_are_allowed(name):
    assert name_problem(name) is None


@pytest.mark.parametrize("name", ["", " ", "a\u00a0b", "\u200b", "a\u2028b", "a\u2029b", "a\x85b", "a\tb",
                                  "\ue000", "a\u202eb", "x ", "a" * 201, "\ud800"])
def test_unprintable_names_are_refused(name):
    assert name_problem(name)


def test_seed_and_dimension_limits_are_inclusive(tmp_path):
    path = write_case(tmp_path, "edge", f"""
        op: lrn
        params: {{size: 2147483647}}
        inputs: {{x: {{shape: [1, 3, 1, 1, 1, 1, 1, 1], dtype: float32, seed: {2**63 - 1}}}}}
        grad: {{seed: {2**63 - 1}}}
        timeout: 86400
    """)
    case = load_case(path)
    assert case.inputs["x"].seed == 2**63 - 1 and case.grad == {"seed": 2**63 - 1} and case.timeout == 86400
    assert case.inputs["x"].materialize().shape == (1, 3, 1, 1, 1, 1, 1, 1)


def test_yaml_numbers_python_cannot_keep_are_remembered():
    doc = yamlio.load("x.yaml", "a: 1e400\nb: [.inf, -1.0e999, 2.5]\nc: " + "9" * 5000 + "\n")
    assert doc.overflow == {("a",): "1e400", ("b", 1): "-1.0e999"}
    assert isinstance(doc.data["c"], int) and repr(doc.data["c"]) == "a 5000-digit integer"


def _good_npy(path, shape=(1, 3, 2, 2)):
    np.save(path, np.arange(math.prod(shape), dtype=np.float32).reshape(shape), allow_pickle=False)
    return path


def test_npy_header_goes_through_npyio(tmp_path):
    good = _good_npy(tmp_path / "x.npy")
    assert npy_header(good) == ((1, 3, 2, 2), np.dtype(np.float32))
    good.write_bytes(good.read_bytes()[:-4])
    with pytest.raises(npyio.NpyError, match="truncated"):
        npy_header(good)


def test_materialize_checks_the_file_again(tmp_path):
    path = _good_npy(tmp_path / "x.npy")
    spec = InputSpec("x", "file", (1, 3, 2, 2), "float32", file=path)
    assert spec.materialize().shape == (1, 3, 2, 2)
    path.write_bytes(path.read_bytes()[:-4])  # damaged after the case was loaded
    with pytest.raises(npyio.NpyError, match=f"{path}: truncated"):
        spec.materialize()
    _good_npy(path, (1, 3, 4))  # replaced by another array
    with pytest.raises(npyio.NpyError, match=r"holds shape \[1, 3, 4\], not the \[1, 3, 2, 2\]"):
        spec.materialize()


def test_a_header_np_load_would_refuse_is_refused_when_the_case_loads(tmp_path):
    # np.load refuses headers over 10000 bytes (max_header_size); validation must not accept one
    text = ("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 1, 1), }" + " " * 20000 + "\n").encode()
    (tmp_path / "x.npy").write_bytes(b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text
                                     + np.ones(3, "<f4").tobytes())
    path = write_case(tmp_path, "case", """
        op: lrn
        params: {size: 3}
        inputs: {x: {file: x.npy}}
    """)
    with pytest.raises(CaseErrors) as info:
        load_case(path)
    assert [str(e) for e in info.value.errors] == [
        f"{path}:3: inputs.x.file: not a readable .npy file: header of {len(text)} bytes (at most 10000)"]


def _same(a, b) -> bool:
    """Equal values of the same types, floats' NaN included, keys in the same order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return [(type(k), k) for k in a] == [(type(k), k) for k in b] and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def _pyyaml(text: str):
    loader = yamlio._Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


#: documents for the plain path (maps, lists, strings, numbers, booleans, nulls) and for the
#: others, which PyYAML's constructor makes (merge keys, timestamps, binary, sets, other keys)
_DOCS = [
    "a: 1\nb: [1, 2.5, -3e-4, .inf, -.Inf, .nan, 0x1f, 0o17, 1_000, 1:30, 190:20:30.15]\n",
    "t: [yes, no, on, off, true, False, ~, null, '', 'yes', \"1e3\", 1e3, 1.0E+3]\n",
    "base: &b {x: [1, 2], y: {z: s}}\nagain: *b\nlist: &l [a, *b]\nmore: [*l, *l]\n",
    "d: &d {k: 1}\nm:\n  <<: *d\n  j: 2\n",
    "when: 2024-01-01\nstamp: 2001-12-14t21:59:43.10-05:00\n",
    "blob: !!binary aGVsbG8=\nset: !!set {a, b}\nomap: !!omap [a: 1, b: 2]\npairs: !!pairs [a: 1]\n",
    "1: one\n2.5: two\ntrue: three\n~: four\n2024-01-01: five\n",
    "s: !!str 12\ni: !!int '7'\nf: !!float '2'\nn: !!null ''\nb: !!bool 'yes'\n",
    "big: " + "9" * 5000 + "\nhuge: 1e400\n",
    "- [[[], {}], [{a: [b, {c: d}]}]]\n- |\n  text\n  lines\n- >\n  folded\n",
    "'<<': quoted merge key\nplain: value\n",
    "",
    "just a string\n",
]


@pytest.mark.parametrize("text", _DOCS)
def test_the_plain_path_makes_what_pyyaml_makes(text):
    """yamlio.load builds a plain document itself (_construct) and hands any other to
    PyYAML's constructor: the values, their types and their keys' order are PyYAML's either
    way, and an aliased map or list stays one object."""
    data = yamlio.load("x.yaml", text).data
    assert _same(data, _pyyaml(text))
    if "again: *b" in text:
        assert data["again"] is data["base"] and data["list"][1] is data["base"] and data["more"][0] is data["list"]


def test_every_shipped_case_file_loads_as_pyyaml_loads_it():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    files = sorted([*root.glob("cases/**/*.yaml"), *root.glob("gpu-cases/**/*.yaml"), *root.glob("tests/data/**/*.yaml")])
    assert len(files) > 100
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
            data = yamlio.load(f, text).data
        except (UnicodeDecodeError, CaseError):  # the damaged-case corpus: refused either way
            continue
        assert _same(data, _pyyaml(text)), f


def test_a_plain_document_does_not_go_through_pyyamls_constructor(monkeypatch):
    made = []
    monkeypatch.setattr(yamlio._Loader, "construct_document", lambda self, node: made.append(node) or {})
    plain = [d for d in _DOCS if not any(m in d for m in ("<<", "!!", "2024", "2001", "~: four", "'<<'"))]
    assert len(plain) >= 6
    for text in plain:
        yamlio.load("x.yaml", text)
    assert made == []
    yamlio.load("x.yaml", "when: 2024-01-01\n")  # a timestamp: PyYAML's constructor makes it
    assert len(made) == 1


@pytest.mark.parametrize("where,text", [
    ("description", 'description: "a \\ud800 surrogate"\n'),
    ("description", 'description: "a \\U0000DFFF surrogate"\n'),
    ("params.note", 'params: {"k\\udc00": 1}\n'),
])
def test_a_lone_surrogate_from_an_escape_is_refused(tmp_path, where, text):
    """Only an escape makes a lone surrogate (UTF-8 has none, YAML's reader refuses the raw
    character), so a file without a backslash is not searched for one; a file with such an
    escape is refused (by libyaml's parser itself, or by cases._surrogate_errors)."""
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nop: lrn\ninputs: {x: {shape: [1, 2, 1, 1], seed: 0}}\n" + text, encoding="utf-8")
    with pytest.raises((CaseError, CaseErrors)) as info:
        load_case(path)
    assert "lone surrogate" in str(info.value) or "invalid Unicode character escape" in str(info.value)
    assert yamlio.load("x.yaml", 'a: "\\u00e9"\n').no_surrogates is False
    assert yamlio.load("x.yaml", "a: [1, 'two']\n").no_surrogates is True


def test_a_lone_surrogate_in_a_case_built_in_code_is_refused():
    import parity

    with pytest.raises(CaseErrors, match="lone surrogate"):
        parity.case("lrn", inputs={"x": {"shape": [1, 2, 1, 1], "seed": 0}}, params={"size": 3}, description="a \ud800 b")
