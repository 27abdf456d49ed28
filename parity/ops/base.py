"""What every operator family provides.

An operator file (``parity/ops/<family>.py``) holds, for one family:

* the *canonical form*: a small frozen dataclass (``Form``) whose fields describe
  the computation unambiguously (e.g. LRN's window and alpha per squared element);
* the float64 NumPy reference of the form and its rounding bound
  (``reference_and_bound``, the one reference hook: ``reference`` and
  ``rounding_bound`` are derived from it);
* one ``Backend`` per framework, in the op's ``backends`` table: the JSON schema of the
  framework's native parameters, how they map to the form and back (``to_form`` /
  ``from_form``, raising ``NoExactMapping`` when a framework cannot express a form
  exactly), the spellings (``Spelling``) that run the op, written against the small
  adapter API of ``parity/frameworks/<name>.py`` (``fw.lib``, ``fw.tensor``,
  ``fw.numpy``, ``fw.scope``), and the call gradients are taken through. Each op file
  has one section per framework with the same function names in each
  (``_torch_to_form``, ``_tensorflow_to_form``, ``_mindspore_to_form``, ...), so
  backends read side by side; a convention kept as data only (LRN's ``onnx``) has a
  schema and a ``to_form`` and no spellings. Adding a framework to an op is adding
  one entry to its table;
* optionally a hypothesis strategy (``fuzz``) for ``parity fuzz``.

Nothing here imports a deep-learning framework (or hypothesis): the parent process
imports ops to plan runs and compute references; only workers execute spellings.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np


class NoExactMapping(Exception):
    """A framework has no call that computes exactly this canonical form."""


class Unsupported(Exception):
    """A spelling cannot run here (op, dtype, rank or device missing in the framework)."""


class UnknownFramework(KeyError):
    """An op was asked about a framework it has no backend for (or about a part that a
    data-only convention lacks: spellings, native parameters for a form)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # KeyError's would quote the message
        return self.message


@dataclass(frozen=True)
class Spelling:
    """One way a framework spells an operator.

    ``run(fw, inputs, native)`` gets the framework adapter, the inputs as NumPy
    arrays (canonical layout: channels on dim 1) and the framework's native
    parameters; it returns the outputs as NumPy arrays in canonical layout.
    ``unsupported`` lists regular expressions: an exception whose message matches
    one means "this spelling cannot run here" (UNSUPPORTED), not a failure.
    """

    framework: str
    name: str
    run: Callable[..., dict]
    unsupported: tuple[str, ...] = ()


@dataclass(frozen=True)
class Backend:
    """One framework's part of an op (one entry of ``Op.backends``).

    ``schema``: JSON schema of the case's ``native: {framework: ...}``.
    ``to_form(p, shapes, spelling, dtype) -> Form``: the canonical form of native params
    ``p`` (schema defaults filled in); ``spelling`` matters where two spellings take the
    same parameters but compute different things, ``dtype`` where a default depends on it.
    ``from_form(form, shapes) -> dict``: native params computing exactly ``form``, raising
    NoExactMapping with the reason when none exist; None where it cannot be asked.
    ``spellings``: the calls that run it, in the order tried; empty for a convention kept
    as data only (it is then not one of ``Op.frameworks()``).
    ``grad``: the call gradients are taken through (see ``Op.grad_spellings``), or None.
    """

    schema: dict
    to_form: Callable[..., Form]
    from_form: Callable[..., dict] | None = None
    spellings: tuple[Spelling, ...] = ()
    grad: Spelling | None = None


class FrameworkTable(Mapping):
    """A read-only mapping framework -> value whose misses raise UnknownFramework, saying
    which frameworks the op has."""

    def __init__(self, op: str, items: dict, backends: Mapping | None = None, what: str = ""):
        self._op, self._items, self._what = op, dict(items), what
        self._backends = self._items if backends is None else backends

    def __getitem__(self, framework):
        try:
            return self._items[framework]
        except KeyError:
            raise UnknownFramework(self._missing(framework)) from None

    def _missing(self, framework) -> str:
        if framework in self._backends and self._what:
            data_only = not self._backends[framework].spellings
            return (f"{self._op}'s {framework} backend has no {self._what}"
                    + (" (a convention kept as data only)" if data_only else ""))
        return _unknown_framework(self._op, framework, self._backends)

    def __contains__(self, framework) -> bool:
        return framework in self._items

    def __iter__(self):
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._op}: {self._items!r})"


def _unknown_framework(op: str, framework, backends) -> str:
    return f"{op} has no {framework} backend; it has: {', '.join(backends)}"


class _FromBackends:
    """A read-only attribute of an op derived from its ``backends``: framework -> pick(backend),
    for the backends where pick gives something."""

    def __init__(self, pick: Callable[[Backend], Any], what: str):
        self.pick, self.what = pick, what
        self._made: dict[type, tuple[Mapping, FrameworkTable]] = {}  # per op class, from its backends table

    def __set_name__(self, owner, name):
        self.attr = name

    def __get__(self, obj, owner=None):
        cls = owner if obj is None else type(obj)
        backends = cls.backends
        hit = self._made.get(cls)
        if hit is None or hit[0] is not backends:  # the tables are read-only: made once per class
            items = {fw: v for fw, b in backends.items() if (v := self.pick(b)) is not None}
            hit = self._made[cls] = (backends, FrameworkTable(getattr(cls, "name", cls.__name__), items, backends,
                                                              self.what))
        return hit[1]

    def __set__(self, obj, value):
        raise AttributeError(f"{self.attr} is derived from the op's backends table; change backends instead")


def tidy(value: float) -> float:
    """Undo the last-bit noise of a derived parameter (3e-4/3, 1 - 0.9): a float within 2 ulps
    of ``value`` that a person would have typed (at most 12 significant digits) replaces it.
    1e-4 and 0.1 come back exactly; other values (float32's epsilon) are unchanged."""
    value = float(value)
    if not math.isfinite(value) or value == 0 or _digits(value) <= 12:
        return value
    for direction in (math.inf, -math.inf):
        near = value
        for _ in range(2):
            near = math.nextafter(near, direction)
            if _digits(near) <= 12:
                return near
    return value


def _digits(value: float) -> int:
    """Significant digits of the shortest repr of a float."""
    mantissa = repr(abs(value)).split("e")[0].replace(".", "").lstrip("0")
    return len(mantissa.rstrip("0")) or 1


@dataclass(frozen=True)
class Form:
    """A canonical form. Subclasses are frozen dataclasses; field metadata
    ``label`` names a field for people and ``show`` formats its value."""

    def fields(self) -> list[tuple[str, str, str]]:
        """[(field name, label, value as text)]. Made once per form (a form is frozen, and the
        forms of a suite are a few objects asked thousands of times: Op.form_from_native)."""
        made = self.__dict__.get("_fields")
        if made is None:
            layout = _LAYOUTS.get(type(self))
            if layout is None:
                layout = _LAYOUTS[type(self)] = tuple((f.name, f.metadata.get("label", f.name),
                                                       f.metadata.get("show", _show)) for f in dataclasses.fields(self))
            made = tuple((name, label, show(self, getattr(self, name))) for name, label, show in layout)
            object.__setattr__(self, "_fields", made)
        return list(made)

    def __getstate__(self):
        """Pickled without what ``fields`` remembered (it is made again on demand)."""
        state = self.__dict__
        return {k: v for k, v in state.items() if k != "_fields"} if "_fields" in state else state

    def diff(self, other: "Form") -> list[tuple[str, str, str]]:
        """[(label, self's value, other's value)] for the fields that differ."""
        if type(self) is not type(other):
            return [("form", type(self).__name__, type(other).__name__)]
        a, b = self.fields(), other.fields()
        return [(la, va, vb) for (na, la, va), (_, _, vb) in zip(a, b) if va != vb]

    def describe(self) -> str:
        return ", ".join(f"{label} {value}" for _, label, value in self.fields())


#: Form subclass -> ((field name, label, show), ...): what Form.fields reads of dataclasses.fields
_LAYOUTS: dict = {}

#: how many form_from_native answers are remembered (then all are forgotten at once)
FORMS_KEPT = 4096
_FORMS: dict = {}


class _NoKey(Exception):
    pass


def _frozen(value):
    """A hashable key for a parameter value that tells its type apart: 1, 1.0 and True are
    three keys, and so are 0.0 and -0.0 (a form may show them differently). A value of any
    other type raises _NoKey."""
    if type(value) is float:
        return ("float", value, math.copysign(1.0, value))
    if value is None or type(value) in (bool, int, str):
        return (type(value).__name__, value)
    if isinstance(value, Mapping):
        return ("d",) + tuple((k, _frozen(v)) for k, v in value.items())
    if type(value) in (list, tuple):
        return (type(value).__name__,) + tuple(_frozen(v) for v in value)
    raise _NoKey


def _show(_form, value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _registered(cls, name: str) -> "Op":
    """The registry's op of that name and class (a pickled op, unpickled), else a new one."""
    from parity import ops

    op = ops.registry().get(name)
    return op if type(op) is cls else cls()


class Op:
    """Base class of an operator family. See the module docstring."""

    def __reduce__(self):
        # pickled by name (a held case, a case handed to the report writer): unpickled as the
        # registry's own object, with its identity, not a copy
        return (_registered, (type(self), self.name))

    name: ClassVar[str]
    summary: ClassVar[str]
    #: inputs the op needs and may take, in the order of torch's functional API
    inputs: ClassVar[tuple[str, ...]] = ("x",)
    optional_inputs: ClassVar[tuple[str, ...]] = ()
    outputs: ClassVar[tuple[str, ...]] = ("y",)
    #: the framework whose spelling the case file's ``params:`` uses
    params_framework: ClassVar[str] = "torch"
    #: JSON schema of ``params:`` (defaults filled in by ``with_defaults``)
    params_schema: ClassVar[dict]
    #: framework -> its Backend: the op's whole per-framework part, in the order frameworks
    #: run and report (a plain dict in the class body; Op wraps it in a FrameworkTable)
    backends: ClassVar[Mapping[str, Backend]]
    #: JSON schema of ``native: {framework: ...}`` per framework (data-only conventions too)
    native_schemas = _FromBackends(lambda b: b.schema, "schema")
    #: framework -> the spellings that run the op (frameworks with at least one)
    spellings = _FromBackends(lambda b: b.spellings or None, "spellings")
    #: inputs a gradient is taken with respect to (when the case gives them)
    differentiable: ClassVar[tuple[str, ...]] = ("x", "weight", "bias")
    #: framework -> the call gradients are taken through: a Spelling whose ``run(fw, tensors,
    #: native)`` takes framework tensors (canonical layout) and returns (y, sources): the first
    #: output as a differentiable framework tensor, and where the gradient of an input lives
    #: when it is not the tensor given (a keras layer's variable), else None
    grad_spellings = _FromBackends(lambda b: b.grad, "gradient spelling")
    #: other conventions worth knowing (e.g. ONNX), as data: name -> description
    conventions: ClassVar[dict[str, str]] = {}
    #: default tolerance, in machine epsilons of the run dtype (compare.default_tolerance)
    tolerance_ulps: ClassVar[int] = 16

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if hasattr(cls, "backends"):  # a table whose misses raise UnknownFramework, naming the op's
            cls.backends = FrameworkTable(getattr(cls, "name", cls.__name__), dict(cls.backends))

    # --- parameters -------------------------------------------------------
    @staticmethod
    def with_defaults(schema: dict, params: dict) -> dict:
        """The params with the schema's defaults filled in, in the schema's order."""
        params = params or {}
        out = {k: params.get(k, v.get("default")) for k, v in schema.get("properties", {}).items()
               if k in params or "default" in v}
        out.update({k: v for k, v in params.items() if k not in out})
        return out

    def form(self, params: dict, shapes: dict | None = None, dtype: str = "float32") -> Form:
        """Canonical form of the case's ``params:`` (``shapes``: the inputs' shapes)."""
        return self.form_from_native(self.params_framework, self.with_defaults(self.params_schema, params),
                                     shapes, dtype=dtype)

    def backend(self, framework: str) -> Backend:
        """The framework's entry of the table; UnknownFramework when the op has none."""
        return self.backends[framework]

    def form_from_native(self, framework: str, native: dict, shapes: dict | None = None,
                         spelling: str | None = None, dtype: str = "float32") -> Form:
        """Canonical form of a framework's call. ``spelling`` matters where two spellings
        of one framework take the same parameters but compute different things; ``dtype``
        where a default depends on it (torch RMSNorm's eps=None).

        Remembered (the last FORMS_KEPT calls' arguments, values with their types): a suite
        of many cases asks for a few forms thousands of times, and a form is a frozen value."""
        try:
            key = (id(self), framework, _frozen(native), _frozen(shapes), spelling, dtype)
        except _NoKey:  # a value of another type (a NumPy scalar): not remembered
            key = None
        form = _FORMS.get(key) if key is not None else None
        if form is None:
            b = self.backend(framework)
            form = b.to_form(self.with_defaults(b.schema, native), shapes, spelling, dtype)
            if key is not None:
                if len(_FORMS) >= FORMS_KEPT:
                    _FORMS.clear()
                _FORMS[key] = form
        return form

    def native_from_form(self, framework: str, form: Form, shapes: dict | None = None) -> dict:
        """The framework's native params computing exactly ``form``; NoExactMapping (with the
        reason) when none exist."""
        b = self.backend(framework)
        if b.from_form is None:
            raise UnknownFramework(f"{self.name}'s {framework} backend gives no native parameters for a form"
                                   + (" (a convention kept as data only)" if not b.spellings else ""))
        return b.from_form(form, shapes)

    def native_for(self, framework: str, params: dict, shapes: dict | None = None, dtype: str = "float32") -> dict:
        """Native parameters computing exactly the case's canonical params.

        The params framework gets them as written (no round trip through floats).
        Raises NoExactMapping with the reason when none exist.
        """
        params = self.with_defaults(self.params_schema, params)
        if framework == self.params_framework:
            return params
        return self.native_from_form(framework, self.form(params, shapes, dtype), shapes)

    # --- inputs -----------------------------------------------------------
    def check_shapes(self, shapes: dict[str, tuple[int, ...]], params: dict) -> list[tuple[tuple, str]]:
        """Problems with the input shapes for this op: [(path in the case, message)]."""
        return []

    #: optional inputs a form may leave unused, by the form's field that says it uses them
    uses_fields: ClassVar[dict[str, str]] = {"weight": "scale", "bias": "shift"}

    def uses(self, form: Form, name: str) -> bool:
        """Whether a call of ``form`` uses input ``name`` (a norm with affine off ignores the
        weight and bias it is given)."""
        attr = self.uses_fields.get(name)
        return attr is None or not hasattr(form, attr) or bool(getattr(form, attr))

    def unused_input_hint(self, name: str, params: dict) -> str:
        """What to do about an input no side uses (cases.py refuses the case with it): the
        switch that applies it, as the case's params spell it."""
        props = self.params_schema.get("properties", {})
        switches = [k for k in ("affine", "elementwise_affine", name) if props.get(k, {}).get("type") == "boolean"]
        now = ", ".join(f"{k}: {str(self.with_defaults(self.params_schema, params).get(k)).lower()}" for k in switches)
        fix = " or ".join(f"params.{k}: true" for k in switches) or "the parameter that applies it"
        return (f"{self.name} with {now or 'these parameters'} ignores {name} in every framework the case runs "
                f"(torch's functional call, which the input names follow, would apply it); set {fix} to apply "
                f"it, or leave it out (`parity list --ops {self.name}`)")

    def grad_inputs(self, present) -> list[str]:
        """The differentiable inputs among those a case gives, in order."""
        return [k for k in self.differentiable if k in present]

    def reference_vjp(self, inputs: dict[str, np.ndarray], form: Form,
                      upstream: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """float64 vector-Jacobian products of the first output with ``upstream``,
        {"grad_x": ..., "grad_weight": ...} for the differentiable inputs given, and for each
        the *magnitude* of its terms: per element, the sum of the absolute values of the terms
        the gradient adds up (a weight's gradient sums over every position; grad_x over the
        group its normalization couples). Rounding errors of a sum scale with it, not with
        the sum, which cancellation can make arbitrarily small (compare.output_tolerance)."""
        raise NotImplementedError

    def output_dtype(self, output: str, dtype: str) -> str:
        """The dtype every framework returns ``output`` in, for inputs of ``dtype``."""
        return dtype

    # --- the reference ----------------------------------------------------
    def reference_and_bound(self, inputs: dict[str, np.ndarray], form: Form,
                            dtype: str | None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The op's reference hook: the exact float64 outputs of ``form`` on ``inputs`` (as
        given, any float dtype) and, with ``dtype``, per output element the bound on the error
        rounding in ``dtype`` can cause (see _norm.py); with ``dtype`` None, or where the op
        has no derived bound, the bounds are {}."""
        raise NotImplementedError

    def reference(self, inputs: dict[str, np.ndarray], form: Form) -> dict[str, np.ndarray]:
        """Exact float64 outputs of ``form`` on ``inputs``."""
        return self.reference_and_bound(inputs, form, None)[0]

    def rounding_bound(self, inputs: dict[str, np.ndarray], form: Form, dtype: str) -> dict[str, np.ndarray] | None:
        """Per-element bound on the error rounding in ``dtype`` can cause, or None where the op
        has no derived bound."""
        return self.reference_and_bound(inputs, form, dtype)[1] or None

    # --- fuzzing ----------------------------------------------------------
    #: ``fuzz(draw) -> (shape of x, params, optional inputs to give)``: one example for
    #: ``parity fuzz``, drawn with hypothesis's ``draw`` (import hypothesis inside, through
    #: ``strategies()``); None: the op has no strategy (see ``parity.ops.fuzzable``)
    fuzz: ClassVar[Callable[..., tuple[tuple[int, ...], dict, tuple[str, ...]]] | None] = None

    # --- helpers ----------------------------------------------------------
    def frameworks(self) -> tuple[str, ...]:
        """The frameworks that run the op (data-only conventions left out), in table order."""
        return tuple(self.spellings)

    def spelling(self, framework: str, name: str) -> Spelling:
        for s in self.spellings.get(framework, ()):
            if s.name == name:
                return s
        raise KeyError(name)


def strategies():
    """``hypothesis.strategies``, imported when a strategy is drawn: importing an op never
    imports hypothesis."""
    from hypothesis import strategies as st

    return st
