"""RMS normalization over the last k dims.

Canonical form::

    y = x / sqrt(mean(x^2 over the normalized axes) + eps) * weight

Spellings:

* torch: ``nn.RMSNorm(normalized_shape, eps=None, elementwise_affine=True)``, ``F.rms_norm``.
  ``eps=None`` means ``torch.finfo(compute dtype).eps``, and the compute dtype of
  float16/bfloat16/float32 inputs is float32: 1.19e-7 even for half precision.
* tensorflow: ``keras.layers.RMSNormalization(axis=-1, epsilon=1e-6)`` (one weight, "scale").
* mindspore: ``ops.rms_norm(x, gamma, epsilon=1e-6)`` normalizes over gamma's dims; 2.10 has
  no CPU kernel ("The kernel RmsNorm unregistered"), so the adapter falls back to the same
  formula written with mindspore ops (``x * ops.rsqrt(ops.mean(x*x) + eps) * gamma``) and
  the report says so. mindspore's native params here are ``normalized_shape`` (gamma's
  shape) and ``epsilon``.
* onnxruntime: ``RMSNormalization(axis=-1, epsilon=1e-5, stash_type=1)`` (opset 23), scale
  required.
* jax: ``flax.nnx.RMSNorm`` / ``flax.linen.RMSNorm(epsilon=1e-6, reduction_axes=-1)``.

Default traps: torch's eps=None (float32's epsilon, 1.19e-7) against 1e-6 (keras, mindspore,
Flax) and 1e-5 (ONNX).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from parity.ops._norm import (EPS, UNIT_ROUNDOFF, applied, eps, flag, fuzz_trailing, gamma, jax_linen, jax_nnx, keras_dtype,
                              keras_variables, onnx_float, onnx_vector, show_bool, sum_to)
from parity.ops.base import Backend, Form, NoExactMapping, Op, Spelling, strategies, tidy
from parity.ops.layer_norm import check_trailing_shapes, trailing

FLOAT32_EPS = float(np.finfo(np.float32).eps)
FLOAT64_EPS = float(np.finfo(np.float64).eps)


def _show_axes(_form, axes) -> str:
    return "[" + ", ".join(map(str, axes)) + "]"


@dataclass(frozen=True)
class RMSNormForm(Form):
    axes: tuple[int, ...] = field(metadata={"label": "normalized axes", "show": _show_axes})
    eps: float = field(metadata={"label": "eps"})
    scale: bool = field(metadata={"label": "multiplies by the case's weight", "show": show_bool})


def torch_default_eps(dtype: str) -> float:
    """torch RMSNorm's eps=None: finfo of the compute dtype (float32 unless float64)."""
    return FLOAT64_EPS if dtype == "float64" else FLOAT32_EPS


def _shape_schema():
    return {"type": "array", "minItems": 1,
            "items": {"type": "integer", "minimum": 1, "x-expected": "a positive integer"},
            "x-expected": "the shape of the last dims of x, e.g. [64]"}


def rms_norm_outputs(inputs, form: RMSNormForm, dtype: str | None = None) -> tuple[dict, dict]:
    """float64 y = x / sqrt(mean(x^2) + eps) * weight and, with ``dtype``, its rounding bound:
    r = mean(x^2): |d_r| <= gamma(M + 1) r (squares, sum, divide); |d_y| <= |y| (d_r /
    (2 (r + eps)) + 8u) (the eps addition, a reciprocal square root as frameworks compute it,
    within 3 ulps, two products, the output rounding); then the weight: |w| d_y + u |y w|.
    Chunked along the first axis
    that is not normalized, in threads."""
    from parity import parallel

    x = np.asarray(inputs["x"])
    u = UNIT_ROUNDOFF[dtype] if dtype else None
    free = [a for a in range(x.ndim) if a not in form.axes]
    shape_x, axes = x.shape, form.axes
    if not free:
        x, axes, free = x[None], tuple(a + 1 for a in form.axes), [0]
    split = free[0]
    w = np.asarray(inputs["weight"], np.float64) if form.scale else None
    g = float(gamma(int(np.prod([x.shape[a] for a in axes])) + 1, u)) if u else 0.0
    y = np.empty(x.shape, np.float64)
    bound = np.empty(x.shape, np.float64) if u else None

    def one(sl):
        index = [slice(None)] * x.ndim
        index[split] = sl
        index = tuple(index)
        xc = np.asarray(x[index], np.float64)
        r = np.mean(np.square(xc), axis=axes, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            yc = xc / np.sqrt(r + form.eps)
            if u:
                bc = np.abs(yc) * (g * r / (2 * (r + form.eps)) + 8 * u)
                if w is not None:
                    bc = bc * np.abs(w) + u * np.abs(yc * w)
                bound[index] = bc
        y[index] = yc * w if w is not None else yc

    per = max(1, (1 << 19) // max(1, int(np.prod(x.shape)) // x.shape[split]))
    parallel.run(one, parallel.spans(x.shape[split], per))
    y, bound = y.reshape(shape_x), (bound.reshape(shape_x) if u else None)
    return {"y": y}, ({"y": bound} if u else {})


def rms_norm_vjp(inputs, form: RMSNormForm, upstream) -> dict:
    """Gradients of sum(g * y), y = x / s * w, s = sqrt(mean(x^2) + eps) over the axes M:
    grad_x = (g w) / s - x mean(g w x) / s^3 and grad_w = sum(g x / s) over the other axes,
    and the magnitudes of their terms (Op.reference_vjp)."""
    x = np.asarray(inputs["x"], np.float64)
    g = np.asarray(upstream, np.float64)
    w = np.asarray(inputs["weight"], np.float64) if form.scale else None
    w = w.reshape([n if a in form.axes else 1 for a, n in enumerate(x.shape)]) if w is not None else None
    s = np.sqrt(np.mean(x * x, axis=form.axes, keepdims=True) + form.eps)
    gw = g * w if w is not None else g
    out = {"grad_x": gw / s - x * np.mean(gw * x, axis=form.axes, keepdims=True) / s**3}
    mag = {"grad_x": np.abs(gw) / s + np.abs(x) * np.mean(np.abs(gw * x), axis=form.axes, keepdims=True) / s**3}
    if "weight" in inputs:
        zeros = np.zeros(np.shape(inputs["weight"]))
        out["grad_weight"] = sum_to(g * x / s, form.axes) if form.scale else zeros
        mag["grad_weight"] = sum_to(np.abs(g * x / s), form.axes) if form.scale else zeros
    return out, mag


# --- torch: nn.RMSNorm(normalized_shape, eps=None, elementwise_affine=True), F.rms_norm --------

_TORCH_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["normalized_shape"],
    "properties": {
        "normalized_shape": _shape_schema(),
        "eps": {"anyOf": [EPS, {"type": "null"}], "default": None,
                "x-expected": "a number > 0, or null (torch: the float32 machine epsilon)"},
        "elementwise_affine": flag(True)},
}


def _torch_to_form(p, shapes, spelling, dtype) -> RMSNormForm:
    e = torch_default_eps(dtype) if p["eps"] is None else p["eps"]
    return RMSNormForm(trailing(len(shapes["x"]), len(p["normalized_shape"])), tidy(e),
                       applied(shapes, p["elementwise_affine"], False)[0])


def _torch_from_form(form: RMSNormForm, shapes) -> dict:
    if form.axes != trailing(len(shapes["x"]), len(form.axes)):
        raise NoExactMapping("torch normalizes trailing axes only")
    shape = [shapes["x"][a] for a in form.axes]
    return {"normalized_shape": shape, "eps": form.eps, "elementwise_affine": form.scale or "weight" not in shapes}


def _torch_eps(p):
    return p["eps"]  # None is passed on: torch resolves it


def _torch_module(fw, inputs, p):
    m = fw.lib.nn.RMSNorm(p["normalized_shape"], eps=_torch_eps(p), elementwise_affine=p["elementwise_affine"],
                          dtype=fw.param_dtype(inputs["x"]))
    if p["elementwise_affine"] and "weight" in inputs:
        fw.assign(m.weight, inputs["weight"])
    with fw.scope():
        return {"y": fw.numpy(m(fw.tensor(inputs["x"])))}


def _torch_functional(fw, inputs, p):
    w = fw.tensor(inputs["weight"]) if p["elementwise_affine"] and "weight" in inputs else None
    with fw.scope():
        y = fw.lib.nn.functional.rms_norm(fw.tensor(inputs["x"]), p["normalized_shape"], w, _torch_eps(p))
        return {"y": fw.numpy(y)}


def _torch_grad(fw, ts, p):
    w = ts.get("weight") if p["elementwise_affine"] else None
    return fw.lib.nn.functional.rms_norm(ts["x"], p["normalized_shape"], w, _torch_eps(p)), None


# --- tensorflow: keras.layers.RMSNormalization(axis=-1, epsilon=1e-6), one weight ("scale") -----

_TENSORFLOW_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {"axis": {"anyOf": [{"type": "integer"},
                                      {"type": "array", "items": {"type": "integer"}, "minItems": 1}],
                            "default": -1, "x-expected": "an axis or a list of axes"},
                   "epsilon": eps(1e-6)},
}


def _tensorflow_to_form(p, shapes, spelling, dtype) -> RMSNormForm:
    rank = len(shapes["x"])
    axis = p["axis"] if isinstance(p["axis"], list) else [p["axis"]]
    axes = tuple(sorted({a + rank if a < 0 else a for a in axis}))
    return RMSNormForm(axes, tidy(p["epsilon"]), applied(shapes, True, False)[0])


def _tensorflow_from_form(form: RMSNormForm, shapes) -> dict:
    if form.scale != applied(shapes, True, False)[0]:
        raise NoExactMapping("keras RMSNormalization always multiplies by its scale")
    return {"axis": list(form.axes), "epsilon": form.eps}


def _tensorflow_keras(fw, inputs, p):
    x = inputs["x"]
    with fw.scope():
        layer = fw.keras.layers.RMSNormalization(axis=p["axis"], epsilon=p["epsilon"], dtype=keras_dtype(x))
        xt = fw.tensor(x)
        layer.build(xt.shape)
        if "weight" in inputs:
            fw.assign(layer.scale, inputs["weight"])
        return {"y": fw.numpy(layer(xt))}


def _tensorflow_grad(fw, ts, p):
    x = ts["x"]
    layer = fw.keras.layers.RMSNormalization(axis=p["axis"], epsilon=p["epsilon"], dtype=x.dtype.name)
    layer.build(x.shape)
    sources = keras_variables(fw, ts, [("weight", layer.scale, True)])  # before the call
    return layer(x), sources


# --- mindspore: ops.rms_norm(x, gamma, epsilon=1e-6) over gamma's dims; no CPU kernel in 2.10, ---
# so the same formula in mindspore ops follows; native params: normalized_shape, epsilon

_MINDSPORE_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["normalized_shape"],
    "properties": {"normalized_shape": _shape_schema(), "epsilon": eps(1e-6)},
}
_COMPOSITE = "composite: x * ops.rsqrt(ops.mean(x*x) + eps) * gamma"


def _mindspore_to_form(p, shapes, spelling, dtype) -> RMSNormForm:
    return RMSNormForm(trailing(len(shapes["x"]), len(p["normalized_shape"])), tidy(p["epsilon"]),
                       applied(shapes, True, False)[0])


def _mindspore_from_form(form: RMSNormForm, shapes) -> dict:
    if form.axes != trailing(len(shapes["x"]), len(form.axes)):
        raise NoExactMapping("mindspore normalizes trailing axes only")
    shape = [shapes["x"][a] for a in form.axes]
    if form.scale != applied(shapes, True, False)[0]:
        raise NoExactMapping("mindspore rms_norm always multiplies by gamma")
    return {"normalized_shape": shape, "epsilon": form.eps}


def _mindspore_gamma(inputs, p, x):
    if "weight" in inputs:
        return np.asarray(inputs["weight"])
    return np.ones(p["normalized_shape"], x.dtype)


def _mindspore_rms_norm(fw, inputs, p):
    x = inputs["x"]
    with fw.scope():
        y = fw.lib.ops.rms_norm(fw.tensor(x), fw.tensor(_mindspore_gamma(inputs, p, x)), epsilon=p["epsilon"])
        y = y[0] if isinstance(y, tuple) else y
        return {"y": fw.numpy(y)}


def _mindspore_formula(fw, x, gamma, p):
    """x * rsqrt(mean(x^2 over gamma's dims) + eps) * gamma in mindspore ops (tensors in and out):
    the composite spelling, and the call its gradient goes through."""
    ops = fw.lib.ops
    axes = trailing(len(x.shape), len(p["normalized_shape"]))
    return x * ops.rsqrt(ops.mean(x * x, axis=axes, keep_dims=True) + p["epsilon"]) * gamma


def _mindspore_composite(fw, inputs, p):
    x = inputs["x"]
    with fw.scope():
        return {"y": fw.numpy(_mindspore_formula(fw, fw.tensor(x), fw.tensor(_mindspore_gamma(inputs, p, x)), p))}


def _mindspore_grad(fw, ts, p):
    x = ts["x"]
    gamma_ = ts["weight"] if "weight" in ts else fw.lib.ops.ones(tuple(p["normalized_shape"]), x.dtype)
    return _mindspore_formula(fw, x, gamma_, p), None


# --- onnxruntime: RMSNormalization(axis=-1, epsilon=1e-5, stash_type=1), opset 23: over [axis, --------
# rank); scale required (its type is Y's: fed in X's dtype)

_ONNXRUNTIME_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {"axis": {"type": "integer", "default": -1, "x-expected": "an axis index"}, "epsilon": eps(1e-5),
                   "stash_type": {"enum": [1], "default": 1, "x-expected": "1 (float32 statistics)"}},
}


def _onnxruntime_to_form(p, shapes, spelling, dtype) -> RMSNormForm:
    rank = len(shapes["x"])
    axis = p["axis"] + rank if p["axis"] < 0 else p["axis"]
    return RMSNormForm(tuple(range(axis, rank)), onnx_float(p["epsilon"], dtype, "epsilon"),
                       applied(shapes, True, False)[0])


def _onnxruntime_from_form(form: RMSNormForm, shapes) -> dict:
    if form.axes != trailing(len(shapes["x"]), len(form.axes)):
        raise NoExactMapping("ONNX RMSNormalization normalizes trailing axes only")
    if form.scale != applied(shapes, True, False)[0]:
        raise NoExactMapping("ONNX RMSNormalization takes the case's weight as its scale input and applies it")
    return {"axis": form.axes[0], "epsilon": form.eps, "stash_type": 1}


def _onnxruntime_model(fw, inputs, p):
    x = inputs["x"]
    axis = p["axis"] + x.ndim if p["axis"] < 0 else p["axis"]
    args = [("X", fw.tensor(x)), ("scale", onnx_vector(inputs, "weight", x.shape[axis:], 1.0, x.dtype))]
    attrs = {"axis": p["axis"], "epsilon": float(p["epsilon"]), "stash_type": p["stash_type"]}
    return {"y": fw.run_node("RMSNormalization", 23, args, attrs, [("Y", x.dtype)])["Y"]}


def _onnxruntime_grad(fw, ts, p):  # never reached: the adapter's vjp says why there are no gradients
    raise NotImplementedError


# --- jax: flax.nnx.RMSNorm / flax.linen.RMSNorm(epsilon=1e-6, use_scale, reduction_axes=-1, ------------
# feature_axes=-1); use_fast_variance is taken and has no effect (no mean is subtracted)

_JAX_AXES = {"anyOf": [{"type": "integer"}, {"type": "array", "items": {"type": "integer"}, "minItems": 1}],
             "default": -1, "x-expected": "an axis or a list of axes"}
_JAX_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {"epsilon": eps(1e-6), "use_scale": flag(True), "reduction_axes": _JAX_AXES,
                   "feature_axes": _JAX_AXES, "use_fast_variance": flag(True)},
}


def _jax_axes(value, rank) -> tuple[int, ...]:
    return tuple(sorted({a + rank if a < 0 else a for a in (value if isinstance(value, list) else [value])}))


def _jax_to_form(p, shapes, spelling, dtype) -> RMSNormForm:
    rank = len(shapes["x"])
    axes = _jax_axes(p["reduction_axes"], rank)
    if p["use_scale"] and "weight" in shapes and _jax_axes(p["feature_axes"], rank) != axes:
        raise NoExactMapping("the case's weight spans the normalized axes; flax's feature_axes differ from them")
    return RMSNormForm(axes, tidy(p["epsilon"]), applied(shapes, p["use_scale"], False)[0])


def _jax_from_form(form: RMSNormForm, shapes) -> dict:
    return {"epsilon": form.eps, "use_scale": form.scale, "reduction_axes": list(form.axes),
            "feature_axes": list(form.axes), "use_fast_variance": False}


def _jax_args(fw, x, p) -> dict:
    return dict(epsilon=p["epsilon"], use_scale=p["use_scale"],
                reduction_axes=_jax_axes(p["reduction_axes"], x.ndim),
                feature_axes=_jax_axes(p["feature_axes"], x.ndim), use_fast_variance=p["use_fast_variance"],
                dtype=x.dtype, param_dtype=fw.param_dtype(x))


def _jax_nnx(fw, inputs, p):
    x = inputs["x"]
    args = _jax_args(fw, x, p)
    n = int(np.prod([x.shape[a] for a in args["feature_axes"]]))  # one vector, reshaped onto the feature axes
    weights = {}
    if p["use_scale"]:
        w = inputs["weight"] if "weight" in inputs else np.ones(n)
        weights["scale"] = np.asarray(w).astype(args["param_dtype"]).reshape(n)
    with fw.scope():
        y, _ = jax_nnx(fw, "RMSNorm", n, fw.tensor(x), weights, **args)
        return {"y": fw.numpy(y)}


def _jax_linen(fw, inputs, p):
    with fw.scope():
        return {"y": fw.numpy(_jax_grad(fw, {k: fw.tensor(v) for k, v in inputs.items()}, p)[0])}


def _jax_grad(fw, ts, p):
    """flax.linen.RMSNorm with the case's weight as its scale (a jax array)."""
    x = ts["x"]
    args = _jax_args(fw, x, p)
    dt = args["param_dtype"]
    shape = tuple(x.shape[a] for a in args["feature_axes"])
    params = {}
    if p["use_scale"]:
        params["scale"] = ts["weight"].astype(dt).reshape(shape) if "weight" in ts else fw.jnp.ones(shape, dt)
    return jax_linen(fw, "RMSNorm", x, params, **args)[0], None


class RMSNorm(Op):
    name = "rms_norm"
    summary = "RMS normalization over the last k dims"
    optional_inputs = ("weight",)
    params_schema = _TORCH_SCHEMA
    backends = {
        "torch": Backend(
            _TORCH_SCHEMA, _torch_to_form, _torch_from_form,
            spellings=(Spelling("torch", "nn.RMSNorm", _torch_module),
                       Spelling("torch", "F.rms_norm", _torch_functional)),
            grad=Spelling("torch", "F.rms_norm", _torch_grad)),
        "tensorflow": Backend(
            _TENSORFLOW_SCHEMA, _tensorflow_to_form, _tensorflow_from_form,
            spellings=(Spelling("tensorflow", "keras.layers.RMSNormalization", _tensorflow_keras),),
            grad=Spelling("tensorflow", "keras.layers.RMSNormalization", _tensorflow_grad)),
        "mindspore": Backend(
            _MINDSPORE_SCHEMA, _mindspore_to_form, _mindspore_from_form,
            spellings=(Spelling("mindspore", "ops.rms_norm", _mindspore_rms_norm),
                       Spelling("mindspore", _COMPOSITE, _mindspore_composite)),
            grad=Spelling("mindspore", _COMPOSITE, _mindspore_grad)),
        "onnxruntime": Backend(
            _ONNXRUNTIME_SCHEMA, _onnxruntime_to_form, _onnxruntime_from_form,
            spellings=(Spelling("onnxruntime", "RMSNormalization-23", _onnxruntime_model),),
            grad=Spelling("onnxruntime", "RMSNormalization-23", _onnxruntime_grad)),
        "jax": Backend(
            _JAX_SCHEMA, _jax_to_form, _jax_from_form,
            spellings=(Spelling("jax", "flax.nnx.RMSNorm", _jax_nnx),
                       Spelling("jax", "flax.linen.RMSNorm", _jax_linen)),
            grad=Spelling("jax", "flax.linen.RMSNorm", _jax_grad)),
    }

    def check_shapes(self, shapes, params):
        x = shapes.get("x")
        ns = params.get("normalized_shape")
        if x is None or not isinstance(ns, list):
            return []
        if list(x[len(x) - len(ns):]) != ns:
            return [(("params", "normalized_shape"), f"must be the last {len(ns)} dims of x "
                                                     f"{list(x[max(len(x) - len(ns), 0):])}, got {ns}")]
        return check_trailing_shapes(self.name, shapes, len(ns), ("weight",))

    def reference_and_bound(self, inputs, form, dtype):
        return rms_norm_outputs(inputs, form, dtype)

    def reference_vjp(self, inputs, form, upstream):
        return rms_norm_vjp(inputs, form, upstream)

    def fuzz(self, draw):
        st = strategies()
        shape, normalized = fuzz_trailing(draw)
        return shape, {"normalized_shape": normalized, "eps": draw(st.sampled_from([1e-6, 1e-5, 1e-3])),
                       "elementwise_affine": True}, ("weight",)
