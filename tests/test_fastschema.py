"""parity.fastschema gives jsonschema's answer or none: never a yes where jsonschema says no.

Checked against jsonschema itself on parity's real schemas (a case file's top level, an
input, a known entry, every op's params and native calls, a store's manifest), with
instances hypothesis builds from JSON-like values, and with the shipped case files.
"""

from __future__ import annotations

import glob
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from parity import cases, fastschema, ops, store

ROOT = Path(__file__).resolve().parent.parent


def _schemas():
    out = {"top": (cases._TOP_SCHEMA(), cases._Validator), "input": (cases._INPUT_SCHEMA, cases._Validator),
           "known": (cases._KNOWN_SCHEMA, cases._Validator),
           "manifest": (store.MANIFEST_SCHEMA, Draft202012Validator)}
    for name in ops.names():
        op = ops.get(name)
        out[f"{name}.params"] = (op.params_schema, cases._Validator)
        for fw, schema in op.native_schemas.items():
            out[f"{name}.native.{fw}"] = (schema, cases._Validator)
    return out


SCHEMAS = _schemas()


def _types(validator_cls):
    return cases._FAST_TYPES if validator_cls is cases._Validator else fastschema.JSON_TYPES


def _agrees(schema, validator_cls, instance) -> bool | None:
    fast = fastschema.valid(schema, instance, _types(validator_cls))
    slow = validator_cls(schema).is_valid(instance)
    assert fast is None or fast == slow, f"fastschema says {fast}, jsonschema {slow}, for {instance!r}"
    return fast


# JSON-like values with the traps: bool vs int, huge integers, non-finite floats, non-string keys
_SCALARS = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True)
            | st.sampled_from(["torch", "tensorflow", "mindspore", "jax", "onnxruntime", "cpu", "float32", "x", "",
                               "normal", "lrn", "size", "y", "random", "a" * 300]))
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from(["name", "op", "params", "inputs", "shape", "dtype", "seed", "size", "alpha", "beta", "k",
                     "eps", "frameworks", "known", "reason", "between", "max_abs", "when", "x", "values"])
    | st.integers(0, 3), inner, max_size=5), max_leaves=12)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instance=_VALUES)
def test_fastschema_never_contradicts_jsonschema(name, instance):
    schema, validator_cls = SCHEMAS[name]
    _agrees(schema, validator_cls, instance)


def test_shipped_case_files_take_the_fast_path():
    """The usual documents get an answer (True) without jsonschema: the fast path is used."""
    files = sorted(glob.glob(str(ROOT / "cases" / "**" / "*.yaml"), recursive=True))
    answers = [_agrees(cases._TOP_SCHEMA(), cases._Validator, yaml.safe_load(Path(f).read_text())) for f in files]
    assert len(files) > 50 and answers == [True] * len(files)


@pytest.mark.parametrize("instance, expected", [
    ({"size": True, "alpha": 1e-4, "beta": 0.75, "k": 1.0}, False),  # a bool is not a number
    ({"size": 5, "alpha": float("inf"), "beta": 0.75, "k": 1.0}, False),  # nor is inf, for a case file
    ({"size": 10**400, "alpha": 1e-4, "beta": 0.75, "k": 1.0}, False),  # nor an integer beyond float64
    ({"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 1.0}, True),
])
def test_the_traps_of_numbers(instance, expected):
    schema, validator_cls = SCHEMAS["lrn.params"]
    assert _agrees(schema, validator_cls, instance) is expected


def test_what_it_does_not_implement_is_left_to_jsonschema():
    assert fastschema.valid({"type": "string", "format": "email"}, "x") is None
    assert fastschema.valid({"enum": [[1, 2]]}, [1, 2]) is None
    assert fastschema.valid({"uniqueItems": True}, [1, True]) is None
    assert fastschema.valid({"const": 1}, True) is False
    assert fastschema.valid({"enum": [1.0]}, 1) is True


def test_a_schema_that_holds_itself():
    """Each schema is compiled once into its check; one that holds itself (built in code) meets
    its own check while it is compiled, and checks values of any depth."""
    tree = {"type": "array", "maxItems": 2}
    tree["items"] = tree
    assert fastschema.valid(tree, [[[], []], []]) is True
    assert fastschema.valid(tree, [[[1]]]) is False
    assert fastschema.valid(tree, [[[], [], []]]) is False
