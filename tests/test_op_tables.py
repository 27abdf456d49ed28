"""Each op's per-framework part is one table (``Op.backends``): lookups, derived views, the
derived reference, a framework added by one entry, and the per-op fuzz strategies."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parity import frameworks, fuzz, ops
from parity.cases import load_case
from parity.errors import InputError
from parity.ops._testing import Fault
from parity.ops.base import Backend, NoExactMapping, Op, Spelling, UnknownFramework
from parity.ops.lrn import LRN, LRNForm

ROOT = Path(__file__).resolve().parent.parent
SIX = ["lrn", "instance_norm", "group_norm", "batch_norm", "layer_norm", "rms_norm"]
ALL_OPS = [ops.get(name) for name in SIX] + [Fault()]

#: a small case per op: (params, {input: shape})
SMALL = {
    "lrn": ({"size": 3, "alpha": 3e-4}, {"x": (2, 5, 3, 3)}),
    "instance_norm": ({"affine": True}, {"x": (2, 3, 4), "weight": (3,), "bias": (3,)}),
    "group_norm": ({"num_groups": 2}, {"x": (2, 4, 3), "weight": (4,), "bias": (4,)}),
    "batch_norm": ({}, {"x": (3, 2, 4), "weight": (2,), "bias": (2,), "running_mean": (2,), "running_var": (2,)}),
    "layer_norm": ({"normalized_shape": [4]}, {"x": (2, 3, 4), "weight": (4,), "bias": (4,)}),
    "rms_norm": ({"normalized_shape": [4]}, {"x": (2, 3, 4), "weight": (4,)}),
    "fault": ({}, {"x": (2, 3)}),
}
#: what each op's table has, in order (LRN keeps ONNX's convention as data)
HAS = {name: "torch, tensorflow, mindspore, onnxruntime, jax" for name in SMALL}
HAS["lrn"] = "torch, tensorflow, mindspore, onnxruntime, jax, onnx"
#: (op, framework) pairs with no exact spelling of SMALL's form: flax's and ONNX's BatchNorm update
#: running_var with the biased batch variance, torch's training form the unbiased one
NO_EXACT = {("batch_norm", "onnxruntime"), ("batch_norm", "jax")}


def ids(op):
    return op.name


def small(op):
    params, shapes = SMALL[op.name]
    return params, shapes


def arrays(shapes, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    out = {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}
    if "running_var" in out:
        out["running_var"] = np.abs(out["running_var"]) + np.float32(0.5)
    return out


# --- unknown frameworks ------------------------------------------------------------------

@pytest.mark.parametrize("op", ALL_OPS, ids=ids)
def test_an_unknown_framework_is_a_clear_error_everywhere(op):
    params, shapes = small(op)
    form = op.form(params, shapes)
    message = f"{op.name} has no paddle backend; it has: {HAS[op.name]}"
    lookups = {
        "form_from_native": lambda: op.form_from_native("paddle", {}, shapes),
        "native_from_form": lambda: op.native_from_form("paddle", form, shapes),
        "backend": lambda: op.backend("paddle"),
        "backends[]": lambda: op.backends["paddle"],
        "spellings[]": lambda: op.spellings["paddle"],
        "native_schemas[]": lambda: op.native_schemas["paddle"],
        "grad_spellings[]": lambda: op.grad_spellings["paddle"],
    }
    for what, lookup in lookups.items():
        with pytest.raises(UnknownFramework) as err:
            lookup()
        assert str(err.value) == message, what
        assert isinstance(err.value, KeyError), what  # callers that catch KeyError still do
    assert "paddle" not in op.spellings and op.grad_spellings.get("paddle") is None and "paddle" not in op.frameworks()


def test_a_data_only_convention_has_a_form_and_nothing_to_run():
    lrn = ops.get("lrn")
    onnx = lrn.form_from_native("onnx", {"size": 5})
    assert onnx == lrn.form_from_native("torch", {"size": 5})
    assert "onnx" in lrn.native_schemas and "onnx" not in lrn.spellings and "onnx" not in lrn.frameworks()
    for lookup in (lambda: lrn.spellings["onnx"], lambda: lrn.grad_spellings["onnx"],
                   lambda: lrn.native_from_form("onnx", onnx)):
        with pytest.raises(UnknownFramework, match="lrn's onnx backend .*data only"):
            lookup()


def test_the_tables_are_read_only():
    lrn = ops.get("lrn")
    with pytest.raises(AttributeError, match="derived from the op's backends"):
        lrn.spellings = {}
    with pytest.raises(TypeError):
        lrn.backends["jax"] = lrn.backends["torch"]
    with pytest.raises(TypeError):
        lrn.spellings["jax"] = ()


# --- the tables ---------------------------------------------------------------------------

@pytest.mark.parametrize("op", ALL_OPS, ids=ids)
def test_every_backend_is_a_framework_parity_runs_or_a_convention_kept_as_data(op):
    runnable = [fw for fw, b in op.backends.items() if b.spellings]
    data_only = [fw for fw, b in op.backends.items() if not b.spellings]
    assert set(runnable) <= set(frameworks.NAMES), runnable
    assert set(data_only) <= set(op.conventions), data_only  # documented as a convention
    assert set(op.backends) <= set(frameworks.NAMES) | set(data_only)
    assert runnable == [fw for fw in frameworks.NAMES if fw in runnable]  # in parity's order


@pytest.mark.parametrize("op", ALL_OPS, ids=ids)
def test_the_views_are_what_the_table_says(op):
    table = op.backends
    assert dict(op.native_schemas) == {fw: b.schema for fw, b in table.items()}
    assert dict(op.spellings) == {fw: b.spellings for fw, b in table.items() if b.spellings}
    assert dict(op.grad_spellings) == {fw: b.grad for fw, b in table.items() if b.grad is not None}
    assert op.frameworks() == tuple(fw for fw, b in table.items() if b.spellings)
    assert list(op.spellings) == list(op.frameworks())
    for fw, b in table.items():
        assert all(s.framework == fw for s in b.spellings + ((b.grad,) if b.grad else ())), fw
        assert callable(b.to_form) and (b.from_form is None or callable(b.from_form))
        for s in b.spellings:
            assert op.spelling(fw, s.name) is s


@pytest.mark.parametrize("op", ALL_OPS, ids=ids)
def test_the_mappings_dispatch_through_the_table(op):
    """No op has its own form_from_native/native_from_form (framework if/elif chains): the base
    class looks the framework up in the table, and each entry's functions give the answer: the
    native params each framework gets for the case map back to the case's form."""
    assert type(op).form_from_native is Op.form_from_native
    assert type(op).native_from_form is Op.native_from_form
    params, shapes = small(op)
    form = op.form(params, shapes)
    for fw in op.frameworks():
        b = op.backends[fw]
        try:
            native = op.native_from_form(fw, form, shapes)
        except NoExactMapping:
            assert (op.name, fw) in NO_EXACT, (op.name, fw)
            continue
        assert native == b.from_form(form, shapes)
        assert op.form_from_native(fw, native, shapes) == b.to_form(op.with_defaults(b.schema, native), shapes,
                                                                     None, "float32")
        if op.name != "fault":  # one of its spellings computes the case's form (as runner plans it)
            assert form in [op.form_from_native(fw, native, shapes, s.name) for s in op.spellings[fw]], fw


# --- the reference hook -------------------------------------------------------------------

@pytest.mark.parametrize("op", ALL_OPS, ids=ids)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_reference_and_rounding_bound_derive_from_reference_and_bound(op, dtype):
    params, shapes = small(op)
    form = op.form(params, shapes)
    given = arrays(shapes, np.dtype(dtype))
    x64 = {k: v.astype(np.float64) for k, v in given.items()}
    outputs, bounds = op.reference_and_bound(given, form, dtype)
    reference = op.reference(x64, form)
    assert set(reference) == set(outputs) == set(op.outputs)
    for k in outputs:
        assert reference[k].dtype == np.float64
        assert np.array_equal(reference[k], outputs[k], equal_nan=True), k
    bound = op.rounding_bound(x64, form, dtype)
    if op.name == "fault":
        assert bounds == {} and bound is None
    else:
        assert set(bound) == set(bounds) == set(op.outputs)
        for k in bounds:
            assert np.array_equal(bound[k], bounds[k], equal_nan=True) and (bounds[k] > 0).any(), k
    assert op.reference_and_bound(given, form, None)[1] == {}


# --- a fourth framework: one table entry --------------------------------------------------

def _fake_run(fw, inputs, p):
    return {"y": np.asarray(inputs["x"])}


def test_a_fourth_framework_is_one_table_entry():
    torch = LRN.backends["torch"]

    class LRNWithFake(LRN):
        backends = {**LRN.backends,
                    "fakefw": Backend(torch.schema, torch.to_form, torch.from_form,
                                      spellings=(Spelling("fakefw", "fake.lrn", _fake_run),),
                                      grad=Spelling("fakefw", "fake.lrn", _fake_run))}

    op = LRNWithFake()
    assert op.frameworks() == ("torch", "tensorflow", "mindspore", "onnxruntime", "jax", "fakefw")
    shapes = {"x": (2, 5, 3, 3)}
    form = op.form_from_native("fakefw", {"size": 3, "alpha": 3e-4}, shapes)
    assert form == LRNForm(window=(1, 1), alpha=1e-4, beta=0.75, bias=1.0)
    assert form == op.form_from_native("tensorflow", {"depth_radius": 1, "alpha": 1e-4, "beta": 0.75}, shapes)
    assert op.native_from_form("fakefw", form, shapes) == {"size": 3, "alpha": 3e-4, "beta": 0.75, "k": 1.0}
    assert op.native_for("fakefw", {"size": 3, "alpha": 3e-4}, shapes) == {"size": 3, "alpha": 3e-4, "beta": 0.75,
                                                                           "k": 1.0}
    with pytest.raises(NoExactMapping, match="no size gives"):
        op.native_from_form("fakefw", LRNForm(window=(0, 2), alpha=1e-4, beta=0.75, bias=1.0), shapes)
    assert op.spelling("fakefw", "fake.lrn").run is _fake_run
    assert op.native_schemas["fakefw"] is torch.schema and op.grad_spellings["fakefw"].name == "fake.lrn"
    with pytest.raises(UnknownFramework, match=re.escape("lrn has no paddle backend; it has: torch, tensorflow, "
                                                         "mindspore, onnxruntime, jax, onnx, fakefw")):
        op.form_from_native("paddle", {}, shapes)
    # nothing else changed: the registered op does not have it
    assert "fakefw" not in ops.get("lrn").frameworks() and "fakefw" not in LRN.backends


# --- fuzz strategies ------------------------------------------------------------------------

def test_fuzzable_lists_the_ops_with_a_strategy_in_registry_order(monkeypatch):
    assert ops.fuzzable() == SIX
    assert not hasattr(fuzz, "SHAPES_AND_PARAMS")
    monkeypatch.setenv(ops.TEST_OPS_ENV, "1")  # registers the fault op, which has no strategy
    assert "fault" in ops.registry() and ops.fuzzable() == SIX
    with pytest.raises(InputError, match="no generator for op 'fault'; it knows: lrn, instance_norm"):
        fuzz.examples("fault", fuzz.DTYPES, True)


def test_importing_the_ops_does_not_import_hypothesis():
    code = ("import sys; import parity.ops, parity.ops._testing; "
            "assert 'hypothesis' not in sys.modules, 'hypothesis imported'; "
            "assert parity.ops.fuzzable()")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("name", SIX)
def test_each_strategy_draws_valid_cases(name, tmp_path_factory):
    op = ops.get(name)
    seen = set()

    @settings(max_examples=25, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def check(data):
        shape, params, weights = data.draw(st.composite(lambda draw: op.fuzz(draw))())
        assert isinstance(shape, tuple) and all(isinstance(n, int) and n > 0 for n in shape)
        assert set(weights) <= set(op.optional_inputs)
        ex = data.draw(fuzz.examples(name, fuzz.DTYPES, True))
        case = load_case(fuzz.write_case(ex, tmp_path_factory.mktemp("ex"), "ex", f"fuzz/{name}"))
        assert case.op is op and case.params == ex.params and case.shapes["x"] == ex.shape
        assert set(case.inputs) == {"x", *ex.weights}
        case.form()  # the canonical form of the drawn params exists
        seen.add(ex.shape)

    check()
    assert len(seen) > 1  # it draws, not a constant


def test_a_forms_fields_are_made_once_and_not_carried_in_its_pickle():
    """Form.fields is remembered on the (frozen) form: a suite asks the same few forms thousands
    of times. The answer is the same each time and a caller's edit of it changes nothing; a
    pickled form carries none of it, and equality and hashing are the fields' alone."""
    import pickle

    for case in (load_case(ROOT / "cases" / "lrn" / "even-size.yaml"),
                 load_case(ROOT / "cases" / "batch_norm" / "large-mean.yaml")):
        form = case.form()
        first = form.fields()
        assert "_fields" in form.__dict__ and first and all(len(f) == 3 for f in first)
        first.append(("x", "y", "z"))
        assert form.fields() == first[:-1] and form.describe() == ", ".join(f"{l} {v}" for _, l, v in first[:-1])
        again = pickle.loads(pickle.dumps(form))
        assert "_fields" not in again.__dict__ and again == form and hash(again) == hash(form)
        assert again.fields() == form.fields() and not form.diff(again)
        other = type(form)(**{f.name: getattr(form, f.name) for f in dataclasses.fields(form)})
        assert other == form and "_fields" not in other.__dict__
