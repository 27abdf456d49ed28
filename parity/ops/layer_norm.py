"""Layer normalization over the last k dims.

Canonical form::

    y = (x - mean) / sqrt(var + eps) * weight + bias

mean and biased variance over the normalized axes, per position of the other axes;
weight and bias have the shape of the parameter axes (torch: the normalized axes).

Spellings:

* torch: ``nn.LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=True, bias=True)``,
  ``F.layer_norm``.
* mindspore: ``nn.LayerNorm(normalized_shape, begin_norm_axis=-1, begin_params_axis=-1,
  epsilon=1e-7)``: the normalized axes are ``begin_norm_axis..`` and the parameter axes
  ``begin_params_axis..``; ``ops.LayerNorm`` (the primitive, same parameters). mindspore
  2.10 CPU has no kernel for ``ops.layer_norm`` / ``mint`` ("LayerNormExt").
* tensorflow: ``keras.layers.LayerNormalization(axis=-1, epsilon=1e-3, center, scale)``;
  ``axis`` may list several axes.

* onnxruntime: ``LayerNormalization(axis=-1, epsilon=1e-5, stash_type=1)`` (opset 17):
  normalizes [axis, rank); Scale required (ones when the case gives no weight), B optional.
* jax: ``flax.nnx.LayerNorm`` / ``flax.linen.LayerNorm(epsilon=1e-6, reduction_axes=-1,
  feature_axes=-1, use_fast_variance=True)``; ``jax.nn.standardize(axis, epsilon=1e-5,
  algorithm="fast")`` (no weights).

Default traps: eps 1e-5 (torch, onnx), 1e-7 (mindspore), 1e-3 (keras), 1e-6 (Flax);
mindspore's default begin_norm_axis=-1 normalizes the last dim only; Flax and
jax.nn.standardize compute a one-pass variance (E[x^2] - E[x]^2) unless told.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from parity.ops._norm import (FUZZ_EPS, UNIT_ROUNDOFF, applied, eps, flag, fuzz_trailing, jax_linen, jax_nnx, jax_params,
                              keras_dtype, keras_variables, onnx_applies, onnx_float, onnx_vector, show_bool,
                              standardize, standardize_vjp, sum_to)
from parity.ops.base import Backend, Form, NoExactMapping, Op, Spelling, strategies, tidy


def _show_axes(_form, axes) -> str:
    return "[" + ", ".join(map(str, axes)) + "]"


@dataclass(frozen=True)
class LayerNormForm(Form):
    axes: tuple[int, ...] = field(metadata={"label": "normalized axes", "show": _show_axes})
    params_axes: tuple[int, ...] = field(metadata={"label": "weight/bias axes", "show": _show_axes})
    eps: float = field(metadata={"label": "eps"})
    scale: bool = field(metadata={"label": "multiplies by the case's weight", "show": show_bool})
    shift: bool = field(metadata={"label": "adds the case's bias", "show": show_bool})


def trailing(rank: int, k: int) -> tuple[int, ...]:
    return tuple(range(rank - k, rank))


def is_trailing(axes: tuple[int, ...], rank: int) -> bool:
    return bool(axes) and axes == trailing(rank, len(axes))


def positive(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def layer_norm_outputs(inputs, form, dtype: str | None = None) -> tuple[dict, dict]:
    """float64 outputs and, with ``dtype``, their rounding bounds (see _norm.standardize)."""
    x = np.asarray(inputs["x"])
    free = [a for a in range(x.ndim) if a not in form.axes]
    axes, shape_x = form.axes, x.shape
    if not free:  # every axis normalized: add a leading one to split on
        x, axes, free = x[None], tuple(a + 1 for a in form.axes), [0]
    shape = [x.shape[a] if a - (x.ndim - len(shape_x)) in form.params_axes else 1 for a in range(x.ndim)]
    w = np.asarray(inputs["weight"], np.float64).reshape(shape) if form.scale else None
    b = np.asarray(inputs["bias"], np.float64).reshape(shape) if form.shift else None
    y, bound, _ = standardize(x, axes, form.eps, UNIT_ROUNDOFF[dtype] if dtype else None, free[0], w, b)
    return {"y": y.reshape(shape_x)}, ({"y": bound.reshape(shape_x)} if dtype else {})


def layer_norm_vjp(inputs, form, upstream) -> dict:
    """Gradients of sum(g * y) (_norm.standardize_vjp over the normalized axes); weight and
    bias gradients sum over every axis but the parameter axes."""
    x = np.asarray(inputs["x"], np.float64)
    g = np.asarray(upstream, np.float64)
    shape = [n if a in form.params_axes else 1 for a, n in enumerate(x.shape)]
    w = np.asarray(inputs["weight"], np.float64).reshape(shape) if form.scale else None
    grad_x, xhat, mag_x = standardize_vjp(x, g, form.axes, form.eps, w)
    out, mag = {"grad_x": grad_x}, {"grad_x": mag_x}
    for name, on, term in (("weight", form.scale, g * xhat), ("bias", form.shift, g)):
        if name in inputs:
            zeros = np.zeros(np.shape(inputs[name]))
            out[f"grad_{name}"] = sum_to(term, form.params_axes) if on else zeros
            mag[f"grad_{name}"] = sum_to(np.abs(term), form.params_axes) if on else zeros
    return out, mag


def check_trailing_shapes(op_name: str, shapes: dict, k: int, param_names=("weight", "bias")) -> list:
    x = shapes.get("x")
    if x is None:
        return []
    if k > len(x):
        return [(("params", "normalized_shape"), f"has {k} dims but x has only {len(x)}")]
    want = tuple(x[len(x) - k:])
    out = []
    for name in param_names:
        if name in shapes and tuple(shapes[name]) != want:
            out.append((("inputs", name, "shape"), f"must be the normalized shape {list(want)}, "
                                                    f"got {list(shapes[name])}"))
    return out


def _trailing_only(framework: str, form: LayerNormForm, rank: int) -> None:
    if not (is_trailing(form.axes, rank) and is_trailing(form.params_axes, rank)):
        raise NoExactMapping(f"{framework} normalizes trailing axes only; the case normalizes {list(form.axes)}")


_AXIS = {"type": "integer", "x-expected": "an axis index"}


# --- torch: nn.LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=True, bias=True) -------

_TORCH_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["normalized_shape"],
    "properties": {
        "normalized_shape": {"type": "array", "minItems": 1,
                             "items": {"type": "integer", "minimum": 1, "x-expected": "a positive integer"},
                             "x-expected": "the shape of the last dims of x, e.g. [64]"},
        "eps": eps(1e-5), "elementwise_affine": flag(True), "bias": flag(True)},
}


def _torch_to_form(p, shapes, spelling, dtype) -> LayerNormForm:
    axes = trailing(len(shapes["x"]), len(p["normalized_shape"]))
    return LayerNormForm(axes, axes, tidy(p["eps"]),
                         *applied(shapes, p["elementwise_affine"], p["elementwise_affine"] and p["bias"]))


def _torch_from_form(form: LayerNormForm, shapes) -> dict:
    _trailing_only("torch", form, len(shapes["x"]))
    if form.params_axes != form.axes:
        raise NoExactMapping("torch LayerNorm's weights span exactly the normalized axes")
    for affine, bias in ((False, False), (True, True), (True, False)):
        if applied(shapes, affine, affine and bias) == (form.scale, form.shift):
            return {"normalized_shape": [shapes["x"][a] for a in form.axes], "eps": form.eps,
                    "elementwise_affine": affine, "bias": bias}
    raise NoExactMapping("torch LayerNorm cannot add a bias without multiplying by its weight")


def _torch_module(fw, inputs, p):
    m = fw.lib.nn.LayerNorm(p["normalized_shape"], eps=p["eps"], elementwise_affine=p["elementwise_affine"],
                            bias=p["bias"], dtype=fw.param_dtype(inputs["x"]))
    if p["elementwise_affine"] and "weight" in inputs:
        fw.assign(m.weight, inputs["weight"])
    if p["elementwise_affine"] and p["bias"] and "bias" in inputs:
        fw.assign(m.bias, inputs["bias"])
    with fw.scope():
        return {"y": fw.numpy(m(fw.tensor(inputs["x"])))}


def _torch_functional(fw, inputs, p):
    w = fw.tensor(inputs["weight"]) if p["elementwise_affine"] and "weight" in inputs else None
    b = fw.tensor(inputs["bias"]) if p["elementwise_affine"] and p["bias"] and "bias" in inputs else None
    with fw.scope():
        y = fw.lib.nn.functional.layer_norm(fw.tensor(inputs["x"]), p["normalized_shape"], w, b, p["eps"])
        return {"y": fw.numpy(y)}


def _torch_grad(fw, ts, p):
    w = ts.get("weight") if p["elementwise_affine"] else None
    b = ts.get("bias") if p["elementwise_affine"] and p["bias"] else None
    return fw.lib.nn.functional.layer_norm(ts["x"], p["normalized_shape"], w, b, p["eps"]), None


# --- tensorflow: keras.layers.LayerNormalization(axis=-1, epsilon=1e-3, center, scale) ---------

_TENSORFLOW_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {"axis": {"anyOf": [_AXIS, {"type": "array", "items": _AXIS, "minItems": 1}],
                            "default": -1, "x-expected": "an axis or a list of axes"},
                   "epsilon": eps(1e-3), "center": flag(True), "scale": flag(True)},
}


def _tensorflow_to_form(p, shapes, spelling, dtype) -> LayerNormForm:
    rank = len(shapes["x"])
    axis = p["axis"] if isinstance(p["axis"], list) else [p["axis"]]
    axes = tuple(sorted({positive(a, rank) for a in axis}))
    return LayerNormForm(axes, axes, tidy(p["epsilon"]), *applied(shapes, p["scale"], p["center"]))


def _tensorflow_from_form(form: LayerNormForm, shapes) -> dict:
    if form.params_axes != form.axes:
        raise NoExactMapping("keras LayerNormalization's weights span exactly the normalized axes")
    return {"axis": list(form.axes), "epsilon": form.eps, "center": form.shift, "scale": form.scale}


def _tensorflow_keras(fw, inputs, p):
    x = inputs["x"]
    axis = p["axis"]
    with fw.scope():
        layer = fw.keras.layers.LayerNormalization(axis=axis, epsilon=p["epsilon"], center=p["center"],
                                                   scale=p["scale"], dtype=keras_dtype(x))
        xt = fw.tensor(x)
        layer.build(xt.shape)
        if p["scale"] and "weight" in inputs:
            fw.assign(layer.gamma, inputs["weight"])
        if p["center"] and "bias" in inputs:
            fw.assign(layer.beta, inputs["bias"])
        return {"y": fw.numpy(layer(xt))}


def _tensorflow_grad(fw, ts, p):
    x = ts["x"]
    layer = fw.keras.layers.LayerNormalization(axis=p["axis"], epsilon=p["epsilon"], center=p["center"],
                                               scale=p["scale"], dtype=x.dtype.name)
    layer.build(x.shape)
    sources = keras_variables(fw, ts, [("weight", layer.gamma, p["scale"]), ("bias", layer.beta, p["center"])])
    return layer(x), sources


# --- mindspore: nn.LayerNorm(normalized_shape, begin_norm_axis=-1, begin_params_axis=-1, --------
# epsilon=1e-7), ops.LayerNorm (the primitive, same parameters); always applies gamma and beta

_MINDSPORE_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {"begin_norm_axis": {**_AXIS, "default": -1},
                   "begin_params_axis": {**_AXIS, "default": -1},
                   "epsilon": eps(1e-7)},
}


def _mindspore_axes(p, rank):
    return positive(p["begin_norm_axis"], rank), positive(p["begin_params_axis"], rank)


def _mindspore_to_form(p, shapes, spelling, dtype) -> LayerNormForm:
    rank = len(shapes["x"])
    norm_axis, params_axis = _mindspore_axes(p, rank)
    return LayerNormForm(tuple(range(norm_axis, rank)), tuple(range(params_axis, rank)), tidy(p["epsilon"]),
                         *applied(shapes, True, True))


def _mindspore_from_form(form: LayerNormForm, shapes) -> dict:
    _trailing_only("mindspore", form, len(shapes["x"]))
    if (form.scale, form.shift) != applied(shapes, True, True):
        raise NoExactMapping("mindspore nn.LayerNorm always applies gamma and beta")
    return {"begin_norm_axis": form.axes[0], "begin_params_axis": form.params_axes[0], "epsilon": form.eps}


def _mindspore_params(inputs, x, params_axis):
    shape = x.shape[params_axis:]
    dt = np.float64 if x.dtype == np.float64 else np.float32
    gamma = np.asarray(inputs["weight"]) if "weight" in inputs else np.ones(shape, dt)
    beta = np.asarray(inputs["bias"]) if "bias" in inputs else np.zeros(shape, dt)
    return gamma, beta


def _mindspore_module(fw, inputs, p):
    x = inputs["x"]
    norm_axis, params_axis = _mindspore_axes(p, x.ndim)
    # positive axes: mindspore rejects negative ones other than -1
    m = fw.lib.nn.LayerNorm(x.shape[params_axis:], begin_norm_axis=norm_axis, begin_params_axis=params_axis,
                            epsilon=p["epsilon"], dtype=fw.lib.float64 if x.dtype == np.float64 else fw.lib.float32)
    gamma, beta = _mindspore_params(inputs, x, params_axis)
    fw.assign(m.gamma, gamma)
    fw.assign(m.beta, beta)
    with fw.scope():
        return {"y": fw.numpy(m(fw.tensor(x)))}


def _mindspore_primitive(fw, inputs, p):
    x = inputs["x"]
    norm_axis, params_axis = _mindspore_axes(p, x.ndim)
    gamma, beta = _mindspore_params(inputs, x, params_axis)
    prim = fw.lib.ops.LayerNorm(begin_norm_axis=norm_axis, begin_params_axis=params_axis, epsilon=p["epsilon"])
    with fw.scope():
        y, _, _ = prim(fw.tensor(x), fw.tensor(gamma), fw.tensor(beta))
        return {"y": fw.numpy(y)}


def _mindspore_grad(fw, ts, p):
    x = ts["x"]
    ms = fw.lib
    norm_axis, params_axis = _mindspore_axes(p, len(x.shape))
    shape = tuple(x.shape[params_axis:])
    gamma = ts["weight"] if "weight" in ts else ms.ops.ones(shape, x.dtype)
    beta = ts["bias"] if "bias" in ts else ms.ops.zeros(shape, x.dtype)
    prim = ms.ops.LayerNorm(begin_norm_axis=norm_axis, begin_params_axis=params_axis, epsilon=p["epsilon"])
    return prim(x, gamma, beta)[0], None


# --- onnxruntime: LayerNormalization(axis=-1, epsilon=1e-5, stash_type=1), opset 17: normalizes ---
# [axis, rank); Scale required, B optional (given when the case gives a bias); float16, float, double

_ONNXRUNTIME_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {"axis": {**_AXIS, "default": -1}, "epsilon": eps(1e-5),
                   "stash_type": {"enum": [1], "default": 1, "x-expected": "1 (float32 statistics)"}},
}


def _onnxruntime_to_form(p, shapes, spelling, dtype) -> LayerNormForm:
    rank = len(shapes["x"])
    axes = tuple(range(positive(p["axis"], rank), rank))
    return LayerNormForm(axes, axes, onnx_float(p["epsilon"], dtype, "epsilon"), *applied(shapes, True, True))


def _onnxruntime_from_form(form: LayerNormForm, shapes) -> dict:
    _trailing_only("onnxruntime", form, len(shapes["x"]))
    if form.params_axes != form.axes:
        raise NoExactMapping("ONNX LayerNormalization's Scale and B span the normalized axes")
    onnx_applies("LayerNormalization", form, shapes)
    return {"axis": form.axes[0], "epsilon": form.eps, "stash_type": 1}


def _onnxruntime_model(fw, inputs, p):
    x = inputs["x"]
    shape = x.shape[positive(p["axis"], x.ndim):]
    args = [("X", fw.tensor(x)), ("Scale", onnx_vector(inputs, "weight", shape, 1.0, x.dtype)),
            ("B", np.asarray(inputs["bias"]).astype(x.dtype) if "bias" in inputs else None)]
    attrs = {"axis": p["axis"], "epsilon": float(p["epsilon"]), "stash_type": p["stash_type"]}
    return {"y": fw.run_node("LayerNormalization", 17, args, attrs, [("Y", x.dtype)])["Y"]}


def _onnxruntime_grad(fw, ts, p):  # never reached: the adapter's vjp says why there are no gradients
    raise NotImplementedError


# --- jax: flax.nnx.LayerNorm / flax.linen.LayerNorm(epsilon=1e-6, use_bias, use_scale, ----------------
# reduction_axes=-1, feature_axes=-1, use_fast_variance=True); jax.nn.standardize (no weights,
# epsilon as given, algorithm "fast" unless use_fast_variance is false)

_JAX_AXES = {"anyOf": [_AXIS, {"type": "array", "items": _AXIS, "minItems": 1}], "default": -1,
             "x-expected": "an axis or a list of axes"}
_JAX_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {"epsilon": eps(1e-6), "use_bias": flag(True), "use_scale": flag(True),
                   "reduction_axes": _JAX_AXES, "feature_axes": _JAX_AXES, "use_fast_variance": flag(True)},
}
_JAX_STANDARDIZE = "jax.nn.standardize"


def _jax_axes(value, rank) -> tuple[int, ...]:
    return tuple(sorted({positive(a, rank) for a in (value if isinstance(value, list) else [value])}))


def _jax_to_form(p, shapes, spelling, dtype) -> LayerNormForm:
    rank = len(shapes["x"])
    axes = _jax_axes(p["reduction_axes"], rank)
    if spelling == _JAX_STANDARDIZE:  # no weights
        return LayerNormForm(axes, axes, tidy(p["epsilon"]), False, False)
    return LayerNormForm(axes, _jax_axes(p["feature_axes"], rank), tidy(p["epsilon"]),
                         *applied(shapes, p["use_scale"], p["use_bias"]))


def _jax_from_form(form: LayerNormForm, shapes) -> dict:
    # two-pass variance: the computation the rounding bound is about (Flax's default is one-pass)
    return {"epsilon": form.eps, "use_bias": form.shift, "use_scale": form.scale,
            "reduction_axes": list(form.axes), "feature_axes": list(form.params_axes), "use_fast_variance": False}


def _jax_args(fw, x, p) -> dict:
    return dict(epsilon=p["epsilon"], use_bias=p["use_bias"], use_scale=p["use_scale"],
                reduction_axes=tuple(_jax_axes(p["reduction_axes"], x.ndim)),
                feature_axes=tuple(_jax_axes(p["feature_axes"], x.ndim)), use_fast_variance=p["use_fast_variance"],
                dtype=x.dtype, param_dtype=fw.param_dtype(x))


def _jax_nnx(fw, inputs, p):
    x = inputs["x"]
    args = _jax_args(fw, x, p)
    shape = tuple(x.shape[a] for a in args["feature_axes"])
    n = int(np.prod(shape))  # nnx holds one vector of num_features and reshapes it onto the feature axes
    weights = jax_params(inputs, {"scale": "weight", "bias": "bias"}, (n,), args["param_dtype"],
                         {"scale": p["use_scale"], "bias": p["use_bias"]})
    with fw.scope():
        y, _ = jax_nnx(fw, "LayerNorm", n, fw.tensor(x), weights, **args)
        return {"y": fw.numpy(y)}


def _jax_linen(fw, inputs, p):
    with fw.scope():
        return {"y": fw.numpy(_jax_grad(fw, {k: fw.tensor(v) for k, v in inputs.items()}, p)[0])}


def _jax_standardize(fw, inputs, p):
    x = inputs["x"]
    with fw.scope():
        y = fw.lib.nn.standardize(fw.tensor(x), axis=_jax_axes(p["reduction_axes"], x.ndim), epsilon=p["epsilon"],
                                  algorithm="fast" if p["use_fast_variance"] else "stable")
        return {"y": fw.numpy(y)}


def _jax_grad(fw, ts, p):
    """flax.linen.LayerNorm with the case's weight and bias as its params (jax arrays)."""
    x = ts["x"]
    args = _jax_args(fw, x, p)
    dt = args["param_dtype"]
    shape = tuple(x.shape[a] for a in args["feature_axes"])
    params = {}
    if p["use_scale"]:
        params["scale"] = ts["weight"].astype(dt).reshape(shape) if "weight" in ts else fw.jnp.ones(shape, dt)
    if p["use_bias"]:
        params["bias"] = ts["bias"].astype(dt).reshape(shape) if "bias" in ts else fw.jnp.zeros(shape, dt)
    return jax_linen(fw, "LayerNorm", x, params, **args)[0], None


class LayerNorm(Op):
    name = "layer_norm"
    summary = "Layer normalization over the last k dims"
    optional_inputs = ("weight", "bias")
    params_schema = _TORCH_SCHEMA
    backends = {
        "torch": Backend(
            _TORCH_SCHEMA, _torch_to_form, _torch_from_form,
            spellings=(Spelling("torch", "nn.LayerNorm", _torch_module),
                       Spelling("torch", "F.layer_norm", _torch_functional)),
            grad=Spelling("torch", "F.layer_norm", _torch_grad)),
        "tensorflow": Backend(
            _TENSORFLOW_SCHEMA, _tensorflow_to_form, _tensorflow_from_form,
            spellings=(Spelling("tensorflow", "keras.layers.LayerNormalization", _tensorflow_keras),),
            grad=Spelling("tensorflow", "keras.layers.LayerNormalization", _tensorflow_grad)),
        "mindspore": Backend(
            _MINDSPORE_SCHEMA, _mindspore_to_form, _mindspore_from_form,
            spellings=(Spelling("mindspore", "nn.LayerNorm", _mindspore_module),
                       Spelling("mindspore", "ops.LayerNorm", _mindspore_primitive)),
            grad=Spelling("mindspore", "ops.LayerNorm", _mindspore_grad)),
        "onnxruntime": Backend(
            _ONNXRUNTIME_SCHEMA, _onnxruntime_to_form, _onnxruntime_from_form,
            spellings=(Spelling("onnxruntime", "LayerNormalization-17", _onnxruntime_model),),
            grad=Spelling("onnxruntime", "LayerNormalization-17", _onnxruntime_grad)),
        "jax": Backend(
            _JAX_SCHEMA, _jax_to_form, _jax_from_form,
            spellings=(Spelling("jax", "flax.nnx.LayerNorm", _jax_nnx),
                       Spelling("jax", "flax.linen.LayerNorm", _jax_linen),
                       Spelling("jax", _JAX_STANDARDIZE, _jax_standardize)),
            grad=Spelling("jax", "flax.linen.LayerNorm", _jax_grad)),
    }

    def check_shapes(self, shapes, params):
        x = shapes.get("x")
        ns = params.get("normalized_shape")
        if x is None or not isinstance(ns, list):
            return []
        if list(x[len(x) - len(ns):]) != ns:
            return [(("params", "normalized_shape"), f"must be the last {len(ns)} dims of x "
                                                     f"{list(x[max(len(x) - len(ns), 0):])}, got {ns}")]
        return check_trailing_shapes(self.name, shapes, len(ns))

    def reference_and_bound(self, inputs, form, dtype):
        return layer_norm_outputs(inputs, form, dtype)

    def reference_vjp(self, inputs, form, upstream):
        return layer_norm_vjp(inputs, form, upstream)

    def fuzz(self, draw):
        st = strategies()
        shape, normalized = fuzz_trailing(draw)
        affine = draw(st.booleans())
        return shape, {"normalized_shape": normalized, "eps": draw(st.sampled_from(FUZZ_EPS)),
                       "elementwise_affine": affine}, ("weight", "bias") if affine else ()
