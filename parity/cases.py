"""Case files: YAML -> validated ``Case`` objects.

Every problem is reported as ``file:line: field: what was expected, got what``
(``parity.errors.CaseError``); all problems of a tree are collected before
anything runs. The format is documented in README.md ("Case files").
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import pickle
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import numpy as np
from jsonschema import Draft202012Validator

from parity import fastschema, frameworks, inputs, npyio, ops, yamlio
from parity import sides as side_names
from parity.errors import CaseError, CaseErrors, InputError
from parity.inputs import DTYPES, INITS, MAX_ELEMENTS, MAX_RANK, MAX_SEED, InputSpec

STATUSES_DECLARABLE = ("ERROR", "UNSUPPORTED", "CRASH", "TIMEOUT")
#: the reason parity new-case writes for a declaration someone must still explain
PLACEHOLDER = "TODO"
SIDES_EXTRA = ("reference", "expected", "baseline")
EXPECTED_KEYS = ("reference", "all")
GRAD_STREAM = 0x67726164  # "grad": the upstream gradient's own random stream (Case.upstream)
#: a case name: at most this many characters (see name_problem)
MAX_NAME = 200
#: integers anywhere in a case are 64-bit; an operator's integer parameters (LRN size, depth_radius,
#: num_groups, axes) at most 32-bit, as the frameworks take them
INT64 = (-(2**63), 2**63 - 1)
INT32 = (-(2**31), 2**31 - 1)
#: seconds: a case's timeout is at most a day
MAX_TIMEOUT = 86400
FLOAT64_MAX = float(np.finfo(np.float64).max)


# --- the model ---------------------------------------------------------------

@dataclass(frozen=True)
class Expected:
    """Golden outputs for one side (a framework, 'reference' or 'all')."""

    who: str
    output: str
    spec: InputSpec
    atol: float | None
    rtol: float | None
    line: int | None


@dataclass(frozen=True)
class Known:
    """A documented outcome: a gap between two sides, or a framework's error/status."""

    index: int
    reason: str
    line: int | None
    between: tuple[str, str] | None = None
    framework: str | None = None
    output: str | None = None
    max_abs: float | None = None
    error: str | None = None
    status: str | None = None
    when: dict = field(default_factory=dict)
    #: a gap of at most this multiple of the op's rounding bound (host-independent)
    max_bound_ratio: float | None = None
    #: the outcome happens on some hosts and not on others: either is accepted, never FIXED
    host_dependent: bool = False

    def label(self) -> str:
        return f"known[{self.index}]"

    def describe(self) -> str:
        """'gap torch vs * up to 0.002', 'mindspore ERROR ('Unknown Error')'."""
        if self.between:
            bounds = [f"max_abs {self.max_abs:g}" for _ in [0] if self.max_abs is not None] + \
                [f"{self.max_bound_ratio:g}x the rounding bound" for _ in [0] if self.max_bound_ratio is not None]
            text = f"gap {self.between[0]} vs {self.between[1]}" + (f" up to {' and '.join(bounds)}" if bounds else "")
        else:
            text = f"{self.framework} {self.status}" + (f" ({self.error!r})" if self.error else "")
        return text + (f" [{self.output}]" if self.output else "") + (" (host-dependent)" if self.host_dependent else "")


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    op: ops.Op
    params: dict
    inputs: dict[str, InputSpec]
    description: str = ""
    source: str = ""
    native: dict = field(default_factory=dict)
    frameworks: tuple[str, ...] | None = None  # None: every installed one that has the op
    devices: tuple[str, ...] = ("cpu",)
    tolerance: dict = field(default_factory=dict)
    expected: tuple[Expected, ...] = ()
    known: tuple[Known, ...] = ()
    spelling: dict = field(default_factory=dict)  # framework -> the spellings to try, in order
    timeout: float | None = None
    line: int = 1
    dtypes: tuple[str, ...] | None = None  # a dtype sweep, expanded by load_tree into one case per dtype
    grad: dict | None = None  # {"seed": N}: also compare the vector-Jacobian products
    #: a case built in code (from_mapping): the mapping, arrays included, for a store to write down
    document: dict | None = field(default=None, compare=False, repr=False)
    #: the bytes of its case file: as the suite check read them (CaseRef.open), or, where
    #: ``path`` names no file, a copy read from a results store's cases.yamls; a results store
    #: copies these (the case as it was checked and run, without reading its file again)
    text: bytes | None = field(default=None, compare=False, repr=False)
    #: problems that keep this case, and only it, from running (a known: reason still TODO):
    #: parity validate refuses them; parity run reports the case as not run (ERROR) and runs the rest
    blocked: tuple = ()

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: spec.shape for name, spec in self.inputs.items()}

    def form(self):
        """The canonical form of the case's own params."""
        return self.op.form(self.params, self.shapes, self.dtype)

    @property
    def dtype(self) -> str:
        return self.inputs[self.op.inputs[0]].dtype

    @property
    def op_name(self) -> str:
        return self.op.name

    @property
    def elements(self) -> int:
        """The elements of all its inputs."""
        return sum(math.prod(spec.shape) for spec in self.inputs.values())

    def open(self) -> Case:
        """The case itself (as CaseRef.open gives the case a reference names)."""
        return self

    def release(self) -> None:
        """Nothing to let go (CaseRef.release)."""

    def where(self, line: int | None = None) -> str:
        return f"{self.path}:{line or self.line}"

    def grad_inputs(self) -> list[str]:
        """The inputs gradients are taken with respect to (none without ``grad:``)."""
        return self.op.grad_inputs(self.inputs) if self.grad else []

    def outputs(self) -> list[str]:
        """The outputs compared: the op's, then grad_<input> per differentiable input."""
        return list(self.op.outputs) + [f"grad_{k}" for k in self.grad_inputs()]

    def upstream(self) -> np.ndarray:
        """The upstream gradient (the vector of the vector-Jacobian product): standard normal
        values of the first input's shape, in the case's dtype, drawn from PCG64 seeded with
        [GRAD_STREAM, grad.seed], a stream of its own: never equal to an input drawn with the
        same seed."""
        shape = self.inputs[self.op.inputs[0]].shape
        rng = np.random.Generator(np.random.PCG64([GRAD_STREAM, self.grad["seed"]]))
        return rng.standard_normal(int(np.prod(shape, dtype=np.int64))).reshape(shape).astype(inputs.DTYPES[self.dtype])


# --- schema --------------------------------------------------------------------

def _is_number(_checker, inst) -> bool:
    """A finite float64: a float that is not inf or nan, or an integer float64 can hold."""
    if isinstance(inst, bool):
        return False
    if isinstance(inst, int):
        return abs(inst) <= FLOAT64_MAX
    return isinstance(inst, float) and math.isfinite(inst)


def _is_integer(_checker, inst) -> bool:
    """A 64-bit integer (no bool)."""
    return isinstance(inst, int) and not isinstance(inst, bool) and INT64[0] <= inst <= INT64[1]


def _digits(n: int) -> int:
    """Decimal digits of an integer, without converting it to text (Python refuses > 4300 digits)."""
    if isinstance(n, yamlio.LongInt):
        return n.digits
    n = abs(n)
    d = max(1, int(n.bit_length() * math.log10(2)))
    while 10**d <= n:
        d += 1
    while d > 1 and 10 ** (d - 1) > n:
        d -= 1
    return d


def name_problem(name: str) -> str | None:
    """What is wrong with a case name, or None. A name is printable text of at most MAX_NAME
    characters with no leading or trailing whitespace: no control (Cc), format (Cf, such as the
    zero-width space U+200B or the bidi override U+202E), surrogate, private-use or unassigned
    characters, no line or paragraph separators (U+2028, U+2029) and no space other than ' '."""
    if not name.strip():
        return "it is empty or only whitespace"
    if len(name) > MAX_NAME:
        return f"it has {len(name)} characters"
    if name != name.strip():
        return "it has leading or trailing whitespace"
    for i, ch in enumerate(name):
        if not ch.isprintable():
            cat = unicodedata.category(ch)
            what = {"Cc": "a control character", "Cf": "a format character (Cf)", "Cs": "a surrogate",
                    "Co": "a private-use character", "Cn": "an unassigned code point",
                    "Zl": "a line separator", "Zp": "a paragraph separator"}.get(cat, "a space other than ' '")
            label = unicodedata.name(ch, "")
            return f"character {i + 1} is U+{ord(ch):04X}{' ' + label if label else ''}, {what}"
    return None


_NAME_RULE = f"a one-line name of at most {MAX_NAME} characters"
_NAME_DETAIL = ("a name is printable text with no leading or trailing whitespace and no control, format (Cf), "
                "line/paragraph separator or private-use characters")


_Validator = jsonschema.validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine_many({"number": _is_number, "integer": _is_integer}),
)

_STR = {"type": "string"}
_SEED = {"type": "integer", "minimum": 0, "maximum": MAX_SEED,
         "x-expected": f"an integer in 0..2**63-1 ({MAX_SEED})"}
_TEXT = {"type": "string", "minLength": 1, "x-expected": "non-empty text: why this outcome is expected"}
_NONNEG = {"type": "number", "minimum": 0, "x-expected": "a finite number >= 0"}


def _str_or_list(enum=None):
    item = {"type": "string"} if enum is None else {"enum": list(enum)}
    return {"anyOf": [item, {"type": "array", "items": item, "minItems": 1}],
            "x-expected": "a name or a list of names" + (f" from: {', '.join(enum)}" if enum else "")}


def _TOP_SCHEMA() -> dict:
    """The top-level schema, made once per set of ops (the test-only fault op comes and goes
    with PARITY_TEST_OPS)."""
    key = tuple(ops.names())
    if key not in _TOP:
        _TOP[key] = _top_schema()
    return _TOP[key]


_TOP: dict[tuple, dict] = {}


def _top_schema() -> dict:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["op", "inputs"],
        "properties": {
            "name": {"type": "string", "x-expected": _NAME_RULE},
            "op": {"enum": ops.names()},
            "description": _STR,
            "source": _STR,
            "params": {"type": "object"},
            "native": {"type": "object", "propertyNames": {"enum": list(frameworks.NAMES)},
                       "additionalProperties": {"type": "object"}},
            "inputs": {"type": "object", "minProperties": 1, "additionalProperties": {"type": "object"}},
            "frameworks": {"type": "array", "minItems": 1, "uniqueItems": True,
                           "items": {"enum": list(frameworks.NAMES)}},
            "devices": {"type": "array", "minItems": 1, "uniqueItems": True,
                        "items": {"enum": list(frameworks.DEVICES)}},
            "tolerance": {"type": "object", "additionalProperties": False,
                          "properties": {"atol": _NONNEG, "rtol": _NONNEG}},
            "expected": {"type": "object"},
            "known": {"type": "array", "items": {"type": "object"}},
            "spelling": {"type": "object", "propertyNames": {"enum": list(frameworks.NAMES)},
                         "additionalProperties": {"anyOf": [{"type": "string"},
                                                            {"type": "array", "items": {"type": "string"},
                                                             "minItems": 1}],
                                                  "x-expected": "a spelling name or a list of them"}},
            "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_TIMEOUT,
                        "x-expected": "a number of seconds > 0",
                        "x-expected-maximum": f"at most {MAX_TIMEOUT} seconds (one day)"},
            "dtypes": {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"enum": list(DTYPES)},
                       "x-expected": "a list of dtypes to run the case in"},
            "grad": {"anyOf": [{"type": "boolean"}, {"type": "object", "additionalProperties": False,
                                                      "properties": {"seed": _SEED}}],
                     "x-expected": "true, or {seed: N}, N >= 0 an integer (the upstream gradient's seed)"},
        },
    }


_INPUT_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "values": {"type": "array", "x-expected": "a nested list of numbers"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": MAX_ELEMENTS,
                                             "x-expected": "a positive integer",
                                             "x-expected-maximum": f"at most {MAX_ELEMENTS:,} (the element limit)"},
                  "x-expected": "a list of positive integers"},
        "file": {"type": "string", "minLength": 1, "x-expected": "a path to a .npy file"},
        "dtype": {"enum": list(DTYPES)},
        "init": {"enum": list(INITS)},
        "seed": _SEED,
        "mean": {"type": "number"}, "std": {"type": "number", "minimum": 0, "x-expected": "a finite number >= 0"},
        "low": {"type": "number"}, "high": {"type": "number"},
        "value": {"type": "number"},
        "start": {"type": "number"}, "step": {"type": "number"},
        # only in expected:
        "output": {"type": "string"}, "atol": _NONNEG, "rtol": _NONNEG,
    },
}
_INIT_ARGS = {"normal": ("mean", "std"), "uniform": ("low", "high"), "constant": ("value",),
              "arange": ("start", "step")}

_KNOWN_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["reason"],
    "properties": {
        "between": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "string"},
                    "x-expected": "a list of two sides, e.g. [torch, mindspore]"},
        "framework": {"type": "string"},
        "output": {"type": "string"},
        "max_abs": _NONNEG,
        "max_bound_ratio": {"type": "number", "exclusiveMinimum": 0,
                            "x-expected": "a number > 0: the gap's largest multiple of the op's rounding bound"},
        "host_dependent": {"type": "boolean"},
        "error": {"type": "string", "minLength": 1, "x-expected": "a piece of the expected error message"},
        "status": {"enum": list(STATUSES_DECLARABLE)},
        "reason": _TEXT,
        "when": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "device": _str_or_list(frameworks.DEVICES),
                "dtype": _str_or_list(DTYPES),
                "versions": {"type": "object", "propertyNames": {"enum": list(frameworks.NAMES)},
                             "additionalProperties": {"type": "string", "pattern": r"^[0-9][0-9A-Za-z.+-]*$",
                                                      "x-expected": "a version prefix such as 2.10"}},
                "cpu_flags": {"type": "array", "items": {"type": "string", "pattern": r"^[a-z0-9_.]+$"}, "minItems": 1,
                              "x-expected": "a list of CPU flags the host must have (/proc/cpuinfo names: avx512f)"},
                "without_cpu_flags": {"type": "array", "items": {"type": "string", "pattern": r"^[a-z0-9_.]+$"},
                                      "minItems": 1,
                                      "x-expected": "a list of CPU flags the host must not have (avx512f)"},
                "cpu_vendor": _str_or_list(("intel", "amd", "arm", "apple", "hygon", "centaur", "unknown")),
            },
        },
    },
}

_TYPE_NAMES = {"integer": "an integer", "number": "a finite number", "string": "text", "object": "a mapping",
               "array": "a list", "boolean": "true or false", "null": "null"}


def _describe(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and abs(value) >= 10**40:
        return f"a {_digits(value)}-digit integer"
    if isinstance(value, str):
        return f"text {value!r}" if len(value) < 60 else f"text {value[:57]!r}..."
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


_VALIDATORS: dict[int, tuple[dict, object]] = {}


def _validator(schema: dict):
    """One validator per schema object (building one per case was a third of loading a case)."""
    hit = _VALIDATORS.get(id(schema))
    if hit is None or hit[0] is not schema:
        hit = _VALIDATORS[id(schema)] = (schema, _Validator(schema))
    return hit[1]


#: the types of _Validator, for fastschema (finite float64 numbers, 64-bit integers)
_FAST_TYPES = {**fastschema.JSON_TYPES, "number": lambda v: _is_number(None, v), "integer": lambda v: _is_integer(None, v)}


def _schema_errors(doc: yamlio.Document, schema: dict, instance, base: tuple) -> list[CaseError]:
    if doc.checked:  # the same bytes passed this check before (CaseRef.open)
        return []
    if fastschema.valid(schema, instance, _FAST_TYPES) is True:  # the usual case, without jsonschema
        return []
    out = []
    found = list(_validator(schema).iter_errors(instance))
    # a value of the wrong type (an integer beyond 64 bits) is reported once, not again by minimum/maximum
    typed = {tuple(e.absolute_path) for e in found if e.validator == "type"}
    for err in found:
        if err.validator != "type" and tuple(err.absolute_path) in typed:
            continue
        path = base + tuple(err.absolute_path)
        want = err.schema.get("x-expected") if isinstance(err.schema, dict) else None
        v, inst = err.validator, err.instance
        if v == "required":
            for key in err.validator_value:
                if key not in inst:
                    want = err.schema.get("properties", {}).get(key, {}).get("x-expected")
                    out.append(doc.error(path + (key,), "is required" + (f" ({want})" if want else "")))
            continue
        if v == "additionalProperties":
            allowed = sorted(err.schema.get("properties", {}))
            for key in inst:
                if key not in allowed:
                    hint = f"expected one of: {', '.join(allowed)}" if allowed else "no fields allowed here"
                    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
                    mean = f"did you mean {close[0]!r}? " if close else ""
                    out.append(doc.error(path + (key,), f"unknown field; {mean}{hint}", key=True))
            continue
        if v == "propertyNames":
            bad = err.instance
            allowed = err.validator_value.get("enum", [])
            out.append(doc.error(path + (bad,), f"unknown name {bad!r}; expected one of: {', '.join(allowed)}",
                                 key=True))
            continue
        if v == "anyOf" and isinstance(inst, dict):
            # a mapping where a mapping is one of the choices (grad: {seed: N}): say what is wrong inside it
            branches = [b for b in err.validator_value if isinstance(b, dict) and b.get("type") == "object"]
            if len(branches) == 1:
                inner = _schema_errors(doc, branches[0], inst, path)
                if inner:
                    out += inner
                    continue
        got = _got(doc, path, inst)
        if v == "type":
            types = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
            expected = want or " or ".join(_TYPE_NAMES.get(t, t) for t in types)
            msg = f"must be {expected}, got {got}"
            if isinstance(inst, int) and not isinstance(inst, bool):  # an integer out of range
                if "x-expected-maximum" in err.schema:
                    msg = f"must be {expected}, {err.schema['x-expected-maximum']}, got {got}"
                elif "maximum" in err.schema:
                    if str(err.schema["maximum"]) not in expected:
                        msg += f"; at most {err.schema['maximum']}"
                elif "integer" in types:
                    msg += f": integers are 64-bit (-2**63..2**63-1, at most {INT64[1]})"
                else:
                    msg += f": too large for a float64 (at most {FLOAT64_MAX:.17g})"
        elif v == "enum":
            msg = f"must be one of: {', '.join(map(str, err.validator_value))}; got {_describe(inst)}"
        elif v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
            op = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[v]
            want = err.schema.get(f"x-expected-{v}", want)
            msg = f"must be {want or f'{op} {err.validator_value}'}, got {got}"
        elif v == "minItems":
            msg = f"must have at least {err.validator_value} item(s), got {len(inst)}"
        elif v == "maxItems":
            msg = f"must have at most {err.validator_value} item(s), got {len(inst)}"
        elif v == "minProperties":
            msg = f"must have at least {err.validator_value} entry"
        elif v == "uniqueItems":
            msg = "must not repeat items"
        elif v in ("minLength", "maxLength", "pattern", "anyOf"):
            msg = f"must be {want or 'valid'}, got {got}"
        else:
            msg = err.message
        out.append(doc.error(path, msg))
    return out


def _got(doc: yamlio.Document, path: tuple, inst) -> str:
    """What a value is, for "got ...": a float literal beyond float64 (1e400) by its text."""
    if path in doc.overflow:
        return f"{doc.overflow[path]} (beyond float64's range, so it reads as {inst})"
    return _describe(inst)


def _takes_integers(schema) -> bool:
    if isinstance(schema, dict):
        return schema.get("type") == "integer" or any(_takes_integers(v) for v in schema.values())
    if isinstance(schema, list):
        return any(_takes_integers(v) for v in schema)
    return False


def _param_int_errors(doc: yamlio.Document, schema: dict, params: dict, base: tuple) -> list[CaseError]:
    """An operator's integer parameters (and lists of them) must fit 32 bits: the frameworks
    take them as 32-bit integers (TensorFlow's and MindSpore's LRN depth_radius, axes)."""
    out = []
    props = schema.get("properties", {})
    for key, value in params.items():
        if not _takes_integers(props.get(key)):
            continue
        items = [((key,), value)] if not isinstance(value, list) else [((key, i), v) for i, v in enumerate(value)]
        for sub, v in items:
            if isinstance(v, int) and not isinstance(v, bool) and not INT32[0] <= v <= INT32[1]:
                bound = f"at most {INT32[1]} (2**31-1)" if v > 0 else f"at least {INT32[0]} (-2**31)"
                out.append(doc.error(base + sub, f"must be {bound}: the frameworks take integer parameters as "
                                                 f"32-bit integers, got {_describe(v)}"))
    return out


# --- loading -------------------------------------------------------------------

def load_case(file: Path, root: Path | None = None, strict: bool = True, raw: bytes | None = None,
              checked: bool = False) -> Case:
    """Load and validate one case file (or its ``raw`` bytes, read before); raises CaseErrors
    listing every problem. With ``strict=False`` a case whose only problems keep it alone from
    running (``Case.blocked``: a TODO reason) is returned with them, for a run to report it as
    not run. ``checked``: ``raw`` are bytes that passed the schema checks in this process
    before (CaseRef.open compares their digest), which are not made again; the checks that
    look beyond the bytes (the files an input names, the case's name) still are."""
    file = Path(file)
    doc = yamlio.load(file, raw=raw)
    doc.checked = checked and raw is not None
    errors: list[CaseError] = []
    case = _build(doc, root or file.parent, errors)
    if errors:
        raise CaseErrors(errors)
    if strict and case.blocked:
        raise CaseErrors(list(case.blocked))
    return case


#: where a case built in code says it comes from (its ``path``, below the base directory)
IN_CODE = "<parity.case>"


def from_mapping(data: dict, base: Path | None = None) -> Case:
    """A case built in code (``parity.case``) from the mapping a case file would hold, with
    the same validation and errors (they name the field; there is no line). An input may be
    a NumPy array: it is the input as given (its dtype one of parity's, unless the spec says
    ``dtype``). ``file:`` inputs are read relative to ``base`` (default: the working
    directory). Without a name, the case is named after its op and a hash of its contents."""
    import hashlib

    if not isinstance(data, dict):
        raise CaseErrors([CaseError(IN_CODE, None, None, f"a case must be a mapping, got {_describe(data)}")])
    base = Path(base or Path.cwd())
    data = dict(data)
    arrays: dict[str, np.ndarray] = {}
    given = data.get("inputs")
    if isinstance(given, dict):
        data["inputs"] = dict(given)
        for key, spec in given.items():
            if isinstance(spec, dict) and isinstance(spec.get("array"), np.ndarray):
                arr, dtype = spec["array"], spec.get("dtype")
            elif isinstance(spec, np.ndarray):
                arr, dtype = spec, None
            else:
                continue
            arrays[key] = np.array(arr, copy=True)  # the case keeps its own copy
            dtype = dtype or arrays[key].dtype.name
            # validated as a spec of that shape and dtype; the array takes its place below
            data["inputs"][key] = {"shape": list(arr.shape), "dtype": dtype}
    if isinstance(data.get("expected"), dict):  # golden values are small: a list, as in a file
        data["expected"] = {k: {**v, "values": v["values"].tolist()} if isinstance(v, dict) and isinstance(
            v.get("values"), np.ndarray) else v for k, v in data["expected"].items()}
    data = _plain(data)
    if "name" not in data:
        h = hashlib.sha256(repr(sorted((k, repr(v)) for k, v in data.items())).encode())
        for key in sorted(arrays):
            h.update(key.encode() + arrays[key].tobytes())
        data["name"] = f"{data.get('op', 'case')}/{h.hexdigest()[:10]}"
    doc = yamlio.Document.of(data, base / IN_CODE)
    errors: list[CaseError] = []
    case = _build(doc, base, errors)
    if errors:
        raise CaseErrors(errors)
    specs = dict(case.inputs)
    for key, arr in arrays.items():
        spec = specs[key]
        specs[key] = InputSpec(key, "array", tuple(arr.shape), spec.dtype, array=arr)
    document = {**data, "inputs": {**data["inputs"], **{k: {"array": a, "dtype": specs[k].dtype}
                                                         for k, a in arrays.items()}}}
    return dataclasses.replace(case, inputs=specs, document=document)


def _plain(value):
    """Tuples as lists and NumPy scalars as Python numbers, as a YAML file would give them
    (arrays are left alone)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic) and not isinstance(value, np.ndarray):
        return value.item()
    return value


def _build(doc: yamlio.Document, root: Path, errors: list) -> Case | None:
    data = doc.data
    if not isinstance(data, dict):
        errors.append(doc.error((), f"a case file must be a mapping of fields (name, op, params, inputs, ...), "
                                    f"got {_describe(data)}"))
        return None
    errors += _schema_errors(doc, _TOP_SCHEMA(), data, ())
    errors += _surrogate_errors(doc, data)
    if "name" in data and isinstance(data["name"], str) and name_problem(data["name"]):
        errors.append(doc.error(("name",), f"must be {_NAME_RULE}, got {_describe(data['name'])}: "
                                           f"{name_problem(data['name'])}; {_NAME_DETAIL}"))
    elif "name" not in data and name_problem(_default_name(doc.file, root)):
        default = _default_name(doc.file, root)
        errors.append(doc.error(("name",), f"the default name {default!r} (the file's path) is not usable: "
                                           f"{name_problem(default)}; give name: ({_NAME_DETAIL})"))
    if errors:
        return None
    op = ops.get(data["op"])
    params = data.get("params") or {}
    errs = _schema_errors(doc, op.params_schema, params, ("params",))
    errors += errs or _param_int_errors(doc, op.params_schema, params, ("params",))
    native = data.get("native") or {}
    for fw, nat in native.items():
        if fw not in op.spellings:
            errors.append(doc.error(("native", fw), f"{fw} has no spelling of op {op.name}", key=True))
        else:
            errs = _schema_errors(doc, op.native_schemas[fw], nat, ("native", fw))
            errors += errs or _param_int_errors(doc, op.native_schemas[fw], nat, ("native", fw))

    fws = data.get("frameworks")
    for i, fw in enumerate(fws or []):
        if fw not in op.spellings:
            errors.append(doc.error(("frameworks", i), f"{fw} has no spelling of op {op.name}; "
                                                       f"available: {', '.join(op.frameworks())}"))
    for fw, pinned in (data.get("spelling") or {}).items():
        names = [s.name for s in op.spellings.get(fw, ())]
        for i, name in enumerate(pinned if isinstance(pinned, list) else [pinned]):
            if name not in names:
                path = ("spelling", fw) + ((i,) if isinstance(pinned, list) else ())
                errors.append(doc.error(path, f"must be one of: {', '.join(names) or '(none)'}; got {name!r}"))

    # inputs
    specs: dict[str, InputSpec] = {}
    allowed = op.inputs + op.optional_inputs
    for name, raw in data["inputs"].items():
        if name not in allowed:
            errors.append(doc.error(("inputs", name), f"op {op.name} takes no input {name!r}; "
                                                      f"expected: {', '.join(allowed)}", key=True))
            continue
        # in a dtype sweep every input is drawn (or rounded) in each dtype: its own dtype is optional
        sweep = data.get("dtypes")[0] if isinstance(data.get("dtypes"), list) and data.get("dtypes") else None
        spec = _input_spec(doc, ("inputs", name), name, raw, root, errors, default_dtype=sweep)
        if spec is not None:
            specs[name] = spec
    for name in op.inputs:
        if name not in data["inputs"]:
            errors.append(doc.error(("inputs", name), f"is required: op {op.name} needs inputs "
                                                      f"{', '.join(op.inputs)}"))
    if not errors:
        for path, msg in op.check_shapes({k: s.shape for k, s in specs.items()}, params):
            errors.append(doc.error(path, msg))

    # outputs a golden value or a known entry may name
    outputs = list(op.outputs) + ([f"grad_{k}" for k in op.grad_inputs(specs)] if data.get("grad") else [])

    # expected (golden) outputs
    expected = []
    sides = tuple(op.spellings) + EXPECTED_KEYS
    for who, entries in (data.get("expected") or {}).items():
        if who not in sides:
            errors.append(doc.error(("expected", who), f"unknown side; expected one of: {', '.join(sides)}", key=True))
            continue
        items = entries if isinstance(entries, list) else [entries]
        for i, raw in enumerate(items):
            path = ("expected", who) + ((i,) if isinstance(entries, list) else ())
            if not isinstance(raw, dict):
                errors.append(doc.error(path, f"must be a mapping with values: or file:, got {_describe(raw)}"))
                continue
            out_name = raw.get("output", op.outputs[0])
            if out_name not in outputs:
                errors.append(doc.error(path + ("output",), f"op {op.name} has no output {out_name!r}; "
                                                            f"outputs: {', '.join(outputs)}{_GRAD_HINT}"))
                continue
            dflt = specs[op.inputs[0]].dtype if op.inputs[0] in specs else "float64"
            spec = _input_spec(doc, path, out_name, raw, root, errors, expected=True, default_dtype=dflt)
            if spec is not None:
                expected.append(Expected(who, out_name, spec, raw.get("atol"), raw.get("rtol"), doc.line(path)))

    known = []
    blockers = []
    for i, raw in enumerate(data.get("known") or []):
        k = _known(doc, ("known", i), i, raw, op, errors, outputs)
        if k is not None:
            known.append(k)
            if k.reason.strip().upper().startswith(PLACEHOLDER):
                blockers.append(doc.error(("known", i, "reason"), "is still a placeholder (TODO): say why this "
                                                                   "outcome is expected, with its source"))

    if not errors:
        errors += _unused_inputs(doc, op, params, native, specs)
    if errors:
        return None
    tol = data.get("tolerance") or {}
    return Case(
        blocked=tuple(blockers),
        name=str(data.get("name") or _default_name(doc.file, root)),
        path=doc.file,
        op=op,
        params=params,
        inputs=specs,
        description=str(data.get("description", "")),
        source=str(data.get("source", "")),
        native=native,
        frameworks=tuple(fws) if fws else None,
        devices=tuple(data.get("devices") or ("cpu",)),
        tolerance=dict(tol),
        expected=tuple(expected),
        known=tuple(known),
        spelling={fw: tuple(v) if isinstance(v, list) else (v,) for fw, v in (data.get("spelling") or {}).items()},
        timeout=data.get("timeout"),
        line=doc.line(("name",)) if "name" in data else doc.line(()),
        dtypes=tuple(data["dtypes"]) if data.get("dtypes") else None,
        grad=({"seed": 0} if data["grad"] is True else {"seed": data["grad"].get("seed", 0)})
        if data.get("grad") else None,
    )


def _default_name(file: Path, root: Path) -> str:
    try:
        rel = file.resolve().relative_to(root.resolve())
    except ValueError:
        rel = Path(file.name)
    return rel.with_suffix("").as_posix()


def _input_spec(doc, path, name, raw, root: Path, errors, expected=False, default_dtype=None) -> InputSpec | None:
    errs = _schema_errors(doc, _INPUT_SCHEMA, raw, path)
    if not expected:
        errs += [doc.error(path + (k,), "only allowed in expected:", key=True)
                 for k in ("output", "atol", "rtol") if k in raw]
    if errs:
        errors += errs
        return None
    sources = [k for k in ("values", "shape", "file") if k in raw]
    if len(sources) != 1:
        what = "none" if not sources else " and ".join(sources)
        errors.append(doc.error(path, f"give exactly one of values:, shape: (random or constant) or file:; got {what}"))
        return None
    kind = sources[0]
    dtype_name = raw.get("dtype", default_dtype)
    if kind != "shape":
        stray = [k for k in ("init", "seed", *sum(_INIT_ARGS.values(), ())) if k in raw]
        for k in stray:
            errors.append(doc.error(path + (k,), "only allowed with shape: (generated inputs)", key=True))
        if stray:
            return None
    if kind == "values":
        shape = _values_shape(doc, path + ("values",), raw["values"], errors)
        if shape is None:
            return None
        if dtype_name is None:
            errors.append(doc.error(path + ("dtype",), f"is required with values: (one of {', '.join(DTYPES)})"))
            return None
        return InputSpec(name, "values", shape, dtype_name, values=raw["values"])
    if kind == "shape":
        shape = tuple(raw["shape"])
        if not shape:
            errors.append(doc.error(path + ("shape",), "must have at least one dimension"))
            return None
        if len(shape) > MAX_RANK:
            errors.append(doc.error(path + ("shape",), f"has {len(shape)} dimensions; inputs have at most {MAX_RANK}"))
            return None
        size = math.prod(shape)
        if size > MAX_ELEMENTS:
            dt = DTYPES[dtype_name or "float32"]
            errors.append(doc.error(path + ("shape",), f"{list(shape)} has {size:,} elements "
                                    f"({size * dt.itemsize / 2**30:.1f} GiB as {dt.name}); the limit is "
                                    f"{MAX_ELEMENTS:,} elements"))
            return None
        init = raw.get("init", "normal")
        for k in sum(_INIT_ARGS.values(), ()):
            if k in raw and k not in _INIT_ARGS[init]:
                errors.append(doc.error(path + (k,), f"not an argument of init: {init} "
                                        f"(which takes: {', '.join(_INIT_ARGS[init])})", key=True))
                return None
        if init == "uniform" and raw.get("low", 0.0) >= raw.get("high", 1.0):
            errors.append(doc.error(path + ("high",), f"must be greater than low, got low={raw.get('low', 0.0)} "
                                    f"high={raw.get('high', 1.0)}"))
            return None
        if init == "uniform" and not math.isfinite(float(raw.get("high", 1.0)) - float(raw.get("low", 0.0))):
            errors.append(doc.error(path + ("high",), f"high - low must be a finite float64 (NumPy draws "
                                    f"low + (high - low) * u), got low={raw.get('low', 0.0)} high={raw.get('high', 1.0)}"))
            return None
        if dtype_name is None:
            errors.append(doc.error(path + ("dtype",), f"is required (one of {', '.join(DTYPES)})"))
            return None
        args = {k: raw[k] for k in _INIT_ARGS[init] if k in raw}
        return InputSpec(name, "random" if init in ("normal", "uniform") else "generated", shape, dtype_name,
                         init=init, seed=raw.get("seed", 0), args=args)
    # file
    rel = raw["file"]
    base = doc.file.parent
    target = (base / rel).resolve()
    if Path(rel).is_absolute() or not target.is_relative_to(base.resolve()):
        errors.append(doc.error(path + ("file",), f"{rel!r} is outside the case file's directory {base}; "
                                "input files must live beside the case or below it"))
        return None
    if not target.is_file():
        errors.append(doc.error(path + ("file",), f"no such file: {base / rel}"))
        return None
    if target.suffix != ".npy":
        errors.append(doc.error(path + ("file",), f"must be a .npy file, got {rel!r}"))
        return None
    try:
        shape, dt = inputs.npy_header(target)  # npyio.check: header and length checked against each other
    except npyio.NpyError as exc:
        errors.append(doc.error(path + ("file",), _npy_message(str(exc))))
        return None
    if dt.kind not in "fiu" and dt.name not in DTYPES:
        errors.append(doc.error(path + ("file",), f"holds {dt.name} data; expected numbers"))
        return None
    size = math.prod(shape)
    if size == 0:
        errors.append(doc.error(path + ("file",), "holds an empty array"))
        return None
    if not shape:
        errors.append(doc.error(path + ("file",), "holds a 0-dimensional array (a scalar); inputs have at least "
                                                  "one dimension"))
        return None
    if len(shape) > MAX_RANK:
        errors.append(doc.error(path + ("file",), f"holds {len(shape)} dimensions {list(shape)}; inputs have at "
                                                  f"most {MAX_RANK}"))
        return None
    if dtype_name is None:
        dtype_name = dt.name if dt.name in DTYPES else None
        if dtype_name is None:
            errors.append(doc.error(path + ("dtype",), f"is required: the file holds {dt.name}, "
                                                       f"give one of {', '.join(DTYPES)}"))
            return None
    written = Path(os.path.normpath(rel))  # where the case says the file is: a store keeps it there
    return InputSpec(name, "file", tuple(shape), dtype_name, file=target,
                     file_as_written=None if ".." in written.parts else written)


_SURROGATE = yamlio._SURROGATE


def _surrogate_errors(doc: yamlio.Document, data) -> list[CaseError]:
    """Text with a lone surrogate (YAML's "\\ud800" makes one): not a character, and no UTF-8
    report or terminal can hold it, so it is refused wherever it is."""
    if doc.checked or doc.no_surrogates:  # passed before (CaseRef.open), or its text cannot hold one
        return []
    out, stack = [], [((), data)]
    while stack:
        path, v = stack.pop()
        if isinstance(v, str) and _SURROGATE.search(v):
            ch = _SURROGATE.search(v).group()
            out.append(doc.error(path, f"contains U+{ord(ch):04X}, a lone surrogate: not a character (write the "
                                       f"character itself, or a \\U escape of its code point)"))
        elif isinstance(v, dict):
            stack += [(path + (k,), x) for k, x in v.items()]
            out += [doc.error(path + (k,), "a key with a lone surrogate", key=True)
                    for k in v if isinstance(k, str) and _SURROGATE.search(k)]
        elif isinstance(v, list) and len(v) < 10000:
            stack += [(path + (i,), x) for i, x in enumerate(v) if isinstance(x, (str, dict, list))]
    return sorted(out, key=lambda e: e.line or 0)


def _unused_inputs(doc, op, params: dict, native: dict, specs: dict) -> list[CaseError]:
    """An optional input (weight, bias) that no side of the case uses is refused: neither the
    case's own call (the reference, and every framework mapped to it) nor a framework's
    ``native:`` call applies it, so it would be silently ignored everywhere."""
    optional = [k for k in op.optional_inputs if k in specs]
    if not optional:
        return []
    shapes = {k: s.shape for k, s in specs.items()}
    dtype = specs[op.inputs[0]].dtype if op.inputs[0] in specs else "float32"
    forms = []
    try:
        forms.append(op.form(params, shapes, dtype))
        for fw, nat in native.items():
            forms.append(op.form_from_native(fw, op.with_defaults(op.native_schemas[fw], nat), shapes, None, dtype))
    except Exception:  # noqa: BLE001 - a form that cannot be built is reported by the run, not here
        return []
    out = []
    for name in optional:
        if not any(op.uses(f, name) for f in forms):
            out.append(doc.error(("inputs", name), f"no side uses it: {op.unused_input_hint(name, params)}",
                                 key=True))
    return out


def _npy_message(problem: str) -> str:
    """The field message for a .npy file npyio refuses."""
    if problem.startswith("dtype object "):
        return ("holds Python objects (it would need pickle); parity reads .npy files with allow_pickle=False: "
                "save a numeric array")
    m = re.match(r"shape (\[.*\]) has (\d+) elements, more than the limit of (\d+)$", problem)
    if m:
        return f"holds {int(m[2]):,} elements; the limit is {int(m[3]):,} (shape {m[1]})"
    return f"not a readable .npy file: {problem}"


def _values_shape(doc, path: tuple, values, errors) -> tuple[int, ...] | None:
    """The shape of a ``values:`` nested list, or None after adding the first problem to ``errors``
    (with the count of any others): rectangular, at most MAX_RANK deep, every element a number
    (an integer or a float, ``.inf`` and ``.nan`` included; not null, text or a boolean) that a
    float64 holds."""
    shape, v, depth = [], values, 0
    while isinstance(v, list):  # along the first elements: the shape every other element must have
        depth += 1
        shape.append(len(v))
        if not v:
            break
        v = v[0]
    if depth > MAX_RANK:
        errors.append(doc.error(path, f"is nested {depth} lists deep; values have at most {MAX_RANK} dimensions"))
        return None
    if 0 in shape:
        errors.append(doc.error(path, "must not be empty"))
        return None
    problems: list[tuple[tuple, str]] = []
    stack = [(values, ())]
    while stack:
        v, idx = stack.pop()
        d = len(idx)
        if d < len(shape):
            if not isinstance(v, list) or len(v) != shape[d]:
                what = f"a list of {len(v)}" if isinstance(v, list) else _describe(v)
                problems.append((idx, f"the nested lists are not rectangular: must be a list of {shape[d]} like "
                                      + f"{yamlio.field_name(path + (0,) * d)} (values of shape {shape}), got {what}"))
                continue
            stack += [(item, idx + (i,)) for i, item in reversed(list(enumerate(v)))]
        elif isinstance(v, list):
            problems.append((idx, "the nested lists are not rectangular: must be a number like "
                                  + f"{yamlio.field_name(path + (0,) * d)} (values of shape {shape}), got a list"))
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            hint = "; null, text and booleans are not numbers (.inf and .nan are)"
            if isinstance(v, str):
                try:
                    float(v)
                    hint = "; text is not a number: write it without quotes"
                except ValueError:
                    pass
            problems.append((idx, f"must be a number, got {_describe(v)}{hint}"))
        elif isinstance(v, int) and abs(v) > FLOAT64_MAX:
            problems.append((idx, f"must be a number a float64 holds, got {_describe(v)}: too large for a float64 "
                                  + f"(at most {FLOAT64_MAX:.17g})"))
        elif path + idx in doc.overflow:
            problems.append((idx, f"must be a number a float64 holds, got {doc.overflow[path + idx]}: too large for a "
                                  + f"float64 (at most {FLOAT64_MAX:.17g}); write .inf for infinity"))
    if problems:
        idx, msg = problems[0]
        more = f" ({len(problems) - 1} more problem(s) in these values)" if len(problems) > 1 else ""
        errors.append(doc.error(path + idx, msg + more))
        return None
    return tuple(shape)


_GRAD_HINT = " (grad_<input> with grad: true)"


def _known(doc, path, index, raw, op, errors, outputs) -> Known | None:
    errs = _schema_errors(doc, _KNOWN_SCHEMA, raw, path)
    if errs:
        errors += errs
        return None
    before = len(errors)
    sides = tuple(op.spellings) + SIDES_EXTRA
    between, fw = raw.get("between"), raw.get("framework")
    if (between is None) == (fw is None):
        errors.append(doc.error(path, "give exactly one of between: [A, B] (a gap) or framework: X (an error/status)"))
        return None
    if between is not None:
        for i, side in enumerate(between):
            parsed = side_names.parse(side)
            if side not in sides + ("*",) and not (parsed and parsed["fw"] in op.spellings and
                                                   parsed["device"] in (None, *frameworks.DEVICES)):
                errors.append(doc.error(path + ("between", i), f"unknown side {side!r}; expected one of: "
                                                               f"{', '.join(sides)}, or '*' (any other side)"
                                                               f" (a framework may say @device, [variant] and /host)"))
        if between[0] == between[1]:
            errors.append(doc.error(path + ("between",), "must name two different sides"))
        for k in ("error", "status"):
            if k in raw:
                errors.append(doc.error(path + (k,), "only allowed with framework: (a gap has no error)", key=True))
    else:
        if fw not in op.spellings:
            errors.append(doc.error(path + ("framework",), f"must be one of: {', '.join(op.spellings)}; got {fw!r}"))
        for key in ("max_abs", "max_bound_ratio"):
            if key in raw:
                errors.append(doc.error(path + (key,), "only allowed with between: (a gap)", key=True))
        if "error" not in raw and "status" not in raw:
            errors.append(doc.error(path, "a framework entry needs error: (a piece of the message) or status:"))
    if "output" in raw and raw["output"] not in outputs:
        errors.append(doc.error(path + ("output",), f"op {op.name} has no output {raw['output']!r}; "
                                                    f"outputs: {', '.join(outputs)}{_GRAD_HINT}"))
    if len(errors) > before:
        return None
    when = dict(raw.get("when") or {})
    for key in ("device", "dtype", "cpu_vendor"):
        if isinstance(when.get(key), str):
            when[key] = [when[key]]
    return Known(
        index=index, reason=raw["reason"].strip(), line=doc.line(path),
        between=tuple(between) if between else None, framework=fw, output=raw.get("output"),
        max_abs=raw.get("max_abs"), error=raw.get("error"),
        status=raw.get("status") or ("ERROR" if raw.get("error") else None), when=when,
        max_bound_ratio=raw.get("max_bound_ratio"), host_dependent=bool(raw.get("host_dependent", False)),
    )


def in_results_store(path: Path, top: Path | None = None) -> bool:
    """Whether ``path`` lies inside a parity results store (a directory holding a
    ``manifest.json``, below ``top`` when given): the case copies kept there are records of a
    run, not cases to run again."""
    path = Path(path)
    for parent in path.parents:
        if (parent / "manifest.json").is_file():
            return True
        if top is not None and parent == top:
            return False
    return False


def find_files(paths: list[Path]) -> list[tuple[Path, Path]]:
    """(case file, root) for every *.yaml/*.yml under the given files and directories.
    Hidden directories and results stores under a directory (the case copies in
    ``reports/results``) are not walked; a file named explicitly is always taken."""
    out = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found = []
            for d, dirs, files in os.walk(p):
                d = Path(d)
                dirs[:] = [x for x in dirs if not x.startswith(".") and not (d / x / "manifest.json").is_file()]
                found += [d / f for f in files
                          if f.endswith((".yaml", ".yml")) and not f.startswith(".") and (d / f).is_file()]
            out += [(f, p) for f in sorted(found)]
        elif p.exists():
            out.append((p, p.parent))
        else:
            raise CaseErrors([CaseError(p, None, None, "no such file or directory")])
    return out


def expand_dtypes(case: Case) -> list[Case]:
    """A case with ``dtypes:`` becomes one case per dtype, named ``NAME[dtype]``, every
    input generated (or rounded) in that dtype."""
    if not case.dtypes:
        return [case]
    import dataclasses

    return [dataclasses.replace(case, name=f"{case.name}[{d}]", dtypes=None,
                                inputs={k: dataclasses.replace(s, dtype=d) for k, s in case.inputs.items()})
            for d in case.dtypes]


def load_tree(paths: list[Path], strict: bool = True) -> list[Case]:
    """Load every case under ``paths`` (dtype sweeps expanded); all problems are raised together
    (``strict=False``: see load_case)."""
    return [case for case, _file, _root, _index, _raw in _walk(paths, strict)]


def _walk(paths: list[Path], strict: bool):
    """(case, file, root, index among the file's dtype-expanded cases, file bytes) of every
    case under ``paths``; every problem is raised together at the end, as CaseErrors."""
    errors: list[CaseError] = []
    seen: dict[str, str] = {}  # name -> where
    for file, root in find_files(paths):
        try:
            raw = yamlio.read(file)
            loaded = load_case(file, root, strict, raw)
        except CaseErrors as exc:
            errors += exc.errors
            continue
        except CaseError as exc:
            errors.append(exc)
            continue
        for index, case in enumerate(expand_dtypes(loaded)):
            if case.name in seen:
                errors.append(CaseError(file, case.line, "name", f"duplicate case name {case.name!r} "
                                                                 f"(also in {seen[case.name]})"))
                continue
            seen[case.name] = case.where()
            if not errors:
                yield case, file, root, index, raw
    if errors:
        raise CaseErrors(errors)


#: the cases a suite keeps from its check for the run, pickled, while they take this many bytes
#: in all (a small LRN case about 880 with its file's bytes: 38,000 of them; a Case object takes
#: about ten times its file's size, its pickle three to four times); the run reads the others again as it reaches
#: them (CaseRef.open), and lets each go once it is judged. Unpickling a small case takes
#: about 0.02 ms, reading and checking its file again 0.2-0.4 ms.
HOLD_BYTES = 32 << 20


class CaseChanged(InputError):
    """A case file changed (or went) between the check of the suite and the run reaching it."""


def _file_digest(raw: bytes) -> bytes:
    """What a CaseRef keeps of its file's bytes, to know them again."""
    import hashlib

    return hashlib.blake2b(raw, digest_size=16).digest()


@dataclass(slots=True, eq=False)
class CaseRef:
    """A case of a case file, checked and let go (load_suite): what a run needs to order, plan
    and size it without holding it, and where to read it again. A run opens it (``open``) when
    it reaches it and lets it go (``release``) once it is judged."""

    name: str
    file: str
    root: Path
    index: int  # among the file's dtype-expanded cases
    sha: bytes  # of the file's bytes when the suite was checked
    op_name: str
    frameworks: tuple[str, ...] | None
    devices: tuple[str, ...]
    blocked: bool
    elements: int
    held: bytes | None = None  # the case, pickled at the check (the first HOLD_BYTES of a suite), until released

    def open(self) -> Case:
        """The case as it was checked, if it was kept; else read again from its file
        (CaseChanged if the file's bytes are not those that were checked)."""
        if self.held is not None:
            return pickle.loads(self.held)  # made by this process from the case it checked
        try:
            raw = yamlio.read(Path(self.file))
        except CaseError as exc:
            raise CaseChanged(f"{self.file}: changed since the suite was checked: {exc.message}") from None
        if _file_digest(raw) != self.sha:
            raise CaseChanged(f"{self.file}: changed since the suite was checked (at the start of the run); run it "
                              f"again")
        case = expand_dtypes(load_case(Path(self.file), self.root, False, raw, checked=True))[self.index]
        return dataclasses.replace(case, text=raw)

    def release(self) -> None:
        self.held = None


def load_suite(paths: list[Path], strict: bool = True, hold_bytes: int | None = None,
               on_first=None) -> list[CaseRef]:
    """Every case under ``paths``, checked as load_tree checks them (every problem raised
    together), as a CaseRef each: a suite of any length held in a few hundred bytes a case
    (and the first ``hold_bytes`` of pickled cases, HOLD_BYTES by default, as they were checked).
    ``on_first(ref)`` sees the first case that checks, as soon as it does (parity run starts
    that case's workers while the rest are checked)."""
    hold_bytes = HOLD_BYTES if hold_bytes is None else hold_bytes
    out: list[CaseRef] = []
    held, sha = 0, b""
    shared: dict = {}  # one object for the many equal roots, device and framework tuples
    for case, file, root, index, raw in _walk(paths, strict):
        if index == 0:
            sha = _file_digest(raw)
        held_case = None
        if held < hold_bytes:
            try:
                held_case = pickle.dumps(dataclasses.replace(case, text=raw), protocol=pickle.HIGHEST_PROTOCOL)
            except (pickle.PicklingError, TypeError, AttributeError):  # read again when the run reaches it
                pass
            else:
                if held + len(held_case) <= hold_bytes:
                    held += len(held_case)
                else:
                    held, held_case = hold_bytes, None  # full: the rest are read again
        out.append(CaseRef(case.name, str(file), shared.setdefault(root, root), index, sha, case.op.name,
                           shared.setdefault(case.frameworks, case.frameworks),
                           shared.setdefault(case.devices, case.devices), bool(case.blocked), case.elements,
                           held_case))
        if on_first is not None and len(out) == 1:
            on_first(out[0])
    return out


def version_matches(version: str, prefix: str) -> bool:
    """'2.10' matches '2.10.0' and '2.10.1+cpu' but not '2.1.0' or '2.100'."""
    want = re.split(r"[.+]", prefix)
    have = re.split(r"[.+]", version)
    return have[: len(want)] == want
