"""Group normalization (channels on dim 1).

Canonical form::

    y = (x - mean_g) / sqrt(var_g + eps) * weight[c] + bias[c]

with mean and biased variance over the channels of group g and all spatial
positions, per sample; weight and bias are applied where the form says so.
Instance normalization (instance_norm.py) is the same form with groups = channels.

Spellings:

* torch: ``nn.GroupNorm(num_groups, C, eps=1e-5, affine=True)``, ``F.group_norm``.
* mindspore: ``nn.GroupNorm(num_groups, C, eps=1e-5, affine=True)``, ``ops.group_norm``.
* tensorflow: ``keras.layers.GroupNormalization(groups, axis=-1, epsilon=1e-3, center, scale)``,
  channels last.

* onnxruntime: ``GroupNormalization(num_groups, epsilon=1e-5)``, scale and bias required:
  opset 21 one per channel, opset 18 one per group (onnx#5466).
* jax: ``flax.nnx.GroupNorm`` / ``flax.linen.GroupNorm(num_groups=32, group_size=None,
  epsilon=1e-6, use_fast_variance=True)``, channels last.

Default traps: keras epsilon 1e-3 (torch and mindspore 1e-5); Flax's epsilon 1e-6 and 32
groups; ONNX's opset 18 scale per group.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from parity.ops._norm import (UNIT_ROUNDOFF, affine_flag, applied, channel_perm, channels_first, channels_last, eps,
                              flag, FUZZ_EPS, fuzz_spatial, jax_first, jax_last, jax_linen, jax_nnx, jax_params,
                              keras_dtype, keras_variables, onnx_applies, onnx_float, onnx_vector, show_bool,
                              standardize, standardize_vjp, sum_to, vector_shape_problems)
from parity.ops.base import Backend, Form, NoExactMapping, Op, Spelling, Unsupported, strategies, tidy


@dataclass(frozen=True)
class GroupNormForm(Form):
    groups: int = field(metadata={"label": "groups"})
    eps: float = field(metadata={"label": "eps"})
    scale: bool = field(metadata={"label": "multiplies by the case's weight", "show": show_bool})
    shift: bool = field(metadata={"label": "adds the case's bias", "show": show_bool})


def group_norm_outputs(inputs, form: GroupNormForm, dtype: str | None = None) -> tuple[dict, dict]:
    """float64 outputs and, with ``dtype``, their rounding bounds (see _norm.standardize)."""
    x = np.asarray(inputs["x"])
    n, c = x.shape[:2]
    xg = x.reshape((n, form.groups, c // form.groups, -1))
    shape = (1, form.groups, c // form.groups, 1)
    w = np.asarray(inputs["weight"], np.float64).reshape(shape) if form.scale else None
    b = np.asarray(inputs["bias"], np.float64).reshape(shape) if form.shift else None
    y, bound, _ = standardize(xg, (2, 3), form.eps, UNIT_ROUNDOFF[dtype] if dtype else None, 0, w, b)
    return {"y": y.reshape(x.shape)}, ({"y": bound.reshape(x.shape)} if dtype else {})


def group_norm_vjp(inputs, form: GroupNormForm, upstream) -> dict:
    """Gradients of sum(g * y) per group (see _norm.standardize_vjp); a weight or bias the
    form does not apply has a zero gradient."""
    x = np.asarray(inputs["x"], np.float64)
    n, c = x.shape[:2]
    grouped = (n, form.groups, c // form.groups, -1)
    xg, gg = x.reshape(grouped), np.asarray(upstream, np.float64).reshape(grouped)
    scale = np.asarray(inputs["weight"], np.float64).reshape(1, form.groups, -1, 1) if form.scale else None
    grad_x, xhat, mag_x = standardize_vjp(xg, gg, (2, 3), form.eps, scale)
    out, mag = {"grad_x": grad_x.reshape(x.shape)}, {"grad_x": mag_x.reshape(x.shape)}
    for name, on, term in (("weight", form.scale, gg * xhat), ("bias", form.shift, gg)):
        if name in inputs:
            out[f"grad_{name}"] = sum_to(term, (1, 2)).reshape(c) if on else np.zeros(c)
            mag[f"grad_{name}"] = sum_to(np.abs(term), (1, 2)).reshape(c) if on else np.zeros(c)
    return out, mag


def channels(shapes) -> int:
    return int(shapes["x"][1])


# --- helpers the spellings share (instance_norm.py uses them too) -------------------------

def torch_affine(fw, module, inputs):
    if getattr(module, "weight", None) is not None and "weight" in inputs:
        fw.assign(module.weight, inputs["weight"])
    if getattr(module, "bias", None) is not None and "bias" in inputs:
        fw.assign(module.bias, inputs["bias"])


def mindspore_affine(fw, cell, inputs, affine: bool):
    """Set a mindspore cell's gamma/beta to the case's weight/bias (when it applies them)."""
    if affine and "weight" in inputs:
        fw.assign(cell.gamma, inputs["weight"])
    if affine and "bias" in inputs:
        fw.assign(cell.beta, inputs["bias"])


def optional_tensor(fw, inputs, name):
    return fw.tensor(inputs[name]) if name in inputs else None


def affine_tensors(ts, affine: bool):
    return (ts.get("weight") if affine else None), (ts.get("bias") if affine else None)


def _groups_form(p, shapes) -> GroupNormForm:
    """torch's and mindspore's parameters: num_groups, eps, one affine switch."""
    return GroupNormForm(p["num_groups"], tidy(p["eps"]), *applied(shapes, p["affine"], p["affine"]))


def _groups_native(framework: str, form: GroupNormForm, shapes) -> dict:
    return {"num_groups": form.groups, "eps": form.eps, "affine": affine_flag(framework, form, shapes)}


_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["num_groups"],
    "properties": {"num_groups": {"type": "integer", "minimum": 1, "x-expected": "a positive integer"},
                   "eps": eps(1e-5), "affine": flag(True)},
}


# --- torch: nn.GroupNorm(num_groups, C, eps=1e-5, affine=True), F.group_norm -------------------

_TORCH_SCHEMA = _SCHEMA


def _torch_to_form(p, shapes, spelling, dtype) -> GroupNormForm:
    return _groups_form(p, shapes)


def _torch_from_form(form: GroupNormForm, shapes) -> dict:
    return _groups_native("torch", form, shapes)


def _torch_module(fw, inputs, p):
    x = inputs["x"]
    m = fw.lib.nn.GroupNorm(p["num_groups"], x.shape[1], eps=p["eps"], affine=p["affine"], dtype=fw.param_dtype(x))
    torch_affine(fw, m, inputs)
    with fw.scope():
        return {"y": fw.numpy(m(fw.tensor(x)))}


def _torch_functional(fw, inputs, p):
    w = optional_tensor(fw, inputs, "weight") if p["affine"] else None
    b = optional_tensor(fw, inputs, "bias") if p["affine"] else None
    with fw.scope():
        y = fw.lib.nn.functional.group_norm(fw.tensor(inputs["x"]), p["num_groups"], w, b, p["eps"])
        return {"y": fw.numpy(y)}


def _torch_grad(fw, ts, p):
    w, b = affine_tensors(ts, p["affine"])
    return fw.lib.nn.functional.group_norm(ts["x"], p["num_groups"], w, b, p["eps"]), None


# --- tensorflow: keras.layers.GroupNormalization(groups, epsilon=1e-3, center, scale) ----------

_TENSORFLOW_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {"groups": {"type": "integer", "minimum": -1, "default": 32,
                              "x-expected": "a positive integer, or -1 (one group per channel)"},
                   "epsilon": eps(1e-3), "center": flag(True), "scale": flag(True)},
}


def _tensorflow_to_form(p, shapes, spelling, dtype) -> GroupNormForm:
    groups = channels(shapes) if p["groups"] == -1 else p["groups"]
    return GroupNormForm(groups, tidy(p["epsilon"]), *applied(shapes, p["scale"], p["center"]))


def _tensorflow_from_form(form: GroupNormForm, shapes) -> dict:
    return {"groups": form.groups, "epsilon": form.eps, "center": form.shift, "scale": form.scale}


def tensorflow_group(fw, inputs, p, groups=None):
    x = inputs["x"]
    keras = fw.keras
    with fw.scope():
        layer = keras.layers.GroupNormalization(groups=groups or p["groups"], axis=-1, epsilon=p["epsilon"],
                                                center=p["center"], scale=p["scale"], dtype=keras_dtype(x))
        xt = fw.tensor(channels_last(x))
        layer.build(xt.shape)
        if p["scale"] and "weight" in inputs:
            fw.assign(layer.gamma, inputs["weight"])
        if p["center"] and "bias" in inputs:
            fw.assign(layer.beta, inputs["bias"])
        return {"y": channels_first(fw.numpy(layer(xt)))}


def tensorflow_group_grad(fw, ts, p, groups=None):
    """keras GroupNormalization with the case's weight and bias in its variables (their
    gradients are the variables')."""
    tf = fw.lib
    x = ts["x"]
    last, first = channel_perm(len(x.shape))
    layer = fw.keras.layers.GroupNormalization(groups=groups or p["groups"], axis=-1, epsilon=p["epsilon"],
                                               center=p["center"], scale=p["scale"], dtype=x.dtype.name)
    xt = tf.transpose(x, last)
    layer.build(xt.shape)
    sources = keras_variables(fw, ts, [("weight", layer.gamma, p["scale"]), ("bias", layer.beta, p["center"])])
    return tf.transpose(layer(xt), first), sources


# --- mindspore: nn.GroupNorm(num_groups, C, eps=1e-5, affine=True), ops.group_norm -------------

_MINDSPORE_SCHEMA = _SCHEMA


def _mindspore_to_form(p, shapes, spelling, dtype) -> GroupNormForm:
    return _groups_form(p, shapes)


def _mindspore_from_form(form: GroupNormForm, shapes) -> dict:
    return _groups_native("mindspore", form, shapes)


def mindspore_group_module(fw, inputs, p, groups=None):
    x = inputs["x"]
    m = fw.lib.nn.GroupNorm(groups or p["num_groups"], x.shape[1], eps=p["eps"], affine=p["affine"],
                            dtype=fw.param_dtype(x))
    mindspore_affine(fw, m, inputs, p["affine"])
    with fw.scope():
        return {"y": fw.numpy(m(fw.tensor(x)))}


def _mindspore_functional(fw, inputs, p):
    w = optional_tensor(fw, inputs, "weight") if p["affine"] else None
    b = optional_tensor(fw, inputs, "bias") if p["affine"] else None
    with fw.scope():
        return {"y": fw.numpy(fw.lib.ops.group_norm(fw.tensor(inputs["x"]), p["num_groups"], w, b, p["eps"]))}


def _mindspore_grad(fw, ts, p):
    w, b = affine_tensors(ts, p["affine"])
    return fw.lib.ops.group_norm(ts["x"], p["num_groups"], w, b, p["eps"]), None


# --- onnxruntime: GroupNormalization(num_groups, epsilon=1e-5): opset 21 takes one scale and bias ---
# per channel (stash_type=1, its default: stage one in float32, float64 inputs too; 11: in float64);
# opset 18 one per GROUP (onnx#5466, why 21 replaced it). ORT runs both as their ONNX function
# bodies (float16, float, double), whose variance is one-pass: E[x^2] - E[x]^2.

_ONNXRUNTIME_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["num_groups"],
    "properties": {"num_groups": {"type": "integer", "minimum": 1, "x-expected": "a positive integer"},
                   "epsilon": eps(1e-5),
                   "stash_type": {"enum": [1, 11], "default": 1,
                                  "x-expected": "1 (float32 statistics) or 11 (float64): opset 21 only"}},
}
_ONNXRUNTIME_18 = "GroupNormalization-18"


def _onnxruntime_to_form(p, shapes, spelling, dtype) -> GroupNormForm:
    return GroupNormForm(p["num_groups"], onnx_float(p["epsilon"], dtype, "epsilon"), *applied(shapes, True, True))


def _onnxruntime_from_form(form: GroupNormForm, shapes) -> dict:
    onnx_applies("GroupNormalization", form, shapes)
    return {"num_groups": form.groups, "epsilon": form.eps, "stash_type": 1}


def _per_group(inputs, name, groups, c, fill, dtype):
    """GroupNormalization-18's per-group scale or bias from the case's per-channel one: exact
    only where the case's values are the same for every channel of a group."""
    v = onnx_vector(inputs, name, c, fill, dtype).reshape(groups, c // groups)
    if (v != v[:, :1]).any():
        raise Unsupported(f"GroupNormalization-18 takes one scale and bias per group (onnx#5466; opset 21 takes "
                          f"one per channel): the case's {name} differs within a group, so no opset 18 call "
                          f"computes it")
    return np.ascontiguousarray(v[:, 0])


def _onnxruntime_model(opset: int):
    def run(fw, inputs, p):
        x = inputs["x"]
        c, g = x.shape[1], p["num_groups"]
        if opset == 18:
            scale, bias = (_per_group(inputs, n, g, c, f, x.dtype) for n, f in (("weight", 1.0), ("bias", 0.0)))
            attrs = {"num_groups": g, "epsilon": float(p["epsilon"])}
        else:
            scale, bias = onnx_vector(inputs, "weight", c, 1.0, x.dtype), onnx_vector(inputs, "bias", c, 0.0, x.dtype)
            attrs = {"num_groups": g, "epsilon": float(p["epsilon"]), "stash_type": p["stash_type"]}
        out = fw.run_node("GroupNormalization", opset, [("X", fw.tensor(x)), ("scale", scale), ("bias", bias)],
                          attrs, [("Y", x.dtype)])
        return {"y": out["Y"]}

    return run


def _onnxruntime_grad(fw, ts, p):  # never reached: the adapter's vjp says why there are no gradients
    raise NotImplementedError


# --- jax: flax.nnx.GroupNorm / flax.linen.GroupNorm(num_groups=32, group_size=None, epsilon=1e-6, --
# use_bias, use_scale, use_fast_variance=True), channels last

_JAX_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {"num_groups": {"type": ["integer", "null"], "minimum": 1, "default": 32,
                                  "x-expected": "a positive integer, or null (then group_size)"},
                   "group_size": {"type": ["integer", "null"], "minimum": 1, "default": None,
                                  "x-expected": "a positive integer, or null"},
                   "epsilon": eps(1e-6), "use_bias": flag(True), "use_scale": flag(True),
                   "use_fast_variance": flag(True)},
}


def _jax_groups(p, shapes) -> int:
    if (p["num_groups"] is None) == (p["group_size"] is None):
        raise NoExactMapping("flax GroupNorm takes num_groups or group_size (num_groups=None with group_size), "
                             "not both or neither")
    return p["num_groups"] if p["group_size"] is None else channels(shapes) // p["group_size"]


def _jax_to_form(p, shapes, spelling, dtype) -> GroupNormForm:
    return GroupNormForm(_jax_groups(p, shapes), tidy(p["epsilon"]), *applied(shapes, p["use_scale"], p["use_bias"]))


def _jax_from_form(form: GroupNormForm, shapes) -> dict:
    # two-pass variance: the computation the rounding bound is about (Flax's default is one-pass)
    return {"num_groups": form.groups, "group_size": None, "epsilon": form.eps, "use_bias": form.shift,
            "use_scale": form.scale, "use_fast_variance": False}


def jax_group_args(fw, x, p) -> dict:
    return dict(num_groups=p["num_groups"], group_size=p["group_size"], epsilon=p["epsilon"],
                use_bias=p["use_bias"], use_scale=p["use_scale"], use_fast_variance=p["use_fast_variance"],
                dtype=x.dtype, param_dtype=fw.param_dtype(x))


def _jax_nnx(fw, inputs, p):
    x = inputs["x"]
    c = x.shape[1]
    weights = jax_params(inputs, {"scale": "weight", "bias": "bias"}, (c,), fw.param_dtype(x),
                         {"scale": p["use_scale"], "bias": p["use_bias"]})
    with fw.scope():
        y, _ = jax_nnx(fw, "GroupNorm", c, jax_last(fw, fw.tensor(x)), weights, **jax_group_args(fw, x, p))
        return {"y": fw.numpy(jax_first(fw, y))}


def _jax_linen(fw, inputs, p):
    with fw.scope():
        return {"y": fw.numpy(_jax_grad(fw, {k: fw.tensor(v) for k, v in inputs.items()}, p)[0])}


def _jax_grad(fw, ts, p):
    """flax.linen.GroupNorm with the case's weight and bias as its params (jax arrays)."""
    x = ts["x"]
    c = x.shape[1]
    args = jax_group_args(fw, x, p)
    dt = args["param_dtype"]
    params = {}
    if p["use_scale"]:
        params["scale"] = ts["weight"].astype(dt) if "weight" in ts else fw.jnp.ones(c, dt)
    if p["use_bias"]:
        params["bias"] = ts["bias"].astype(dt) if "bias" in ts else fw.jnp.zeros(c, dt)
    y, _ = jax_linen(fw, "GroupNorm", jax_last(fw, x), params, **args)
    return jax_first(fw, y), None


class GroupNorm(Op):
    name = "group_norm"
    summary = "Group normalization over channel groups and spatial dims (channels on dim 1)"
    optional_inputs = ("weight", "bias")
    params_schema = _TORCH_SCHEMA
    backends = {
        "torch": Backend(
            _TORCH_SCHEMA, _torch_to_form, _torch_from_form,
            spellings=(Spelling("torch", "nn.GroupNorm", _torch_module),
                       Spelling("torch", "F.group_norm", _torch_functional)),
            grad=Spelling("torch", "F.group_norm", _torch_grad)),
        "tensorflow": Backend(
            _TENSORFLOW_SCHEMA, _tensorflow_to_form, _tensorflow_from_form,
            spellings=(Spelling("tensorflow", "keras.layers.GroupNormalization", tensorflow_group),),
            grad=Spelling("tensorflow", "keras.layers.GroupNormalization", tensorflow_group_grad)),
        "mindspore": Backend(
            _MINDSPORE_SCHEMA, _mindspore_to_form, _mindspore_from_form,
            spellings=(Spelling("mindspore", "nn.GroupNorm", mindspore_group_module),
                       Spelling("mindspore", "ops.group_norm", _mindspore_functional)),
            grad=Spelling("mindspore", "ops.group_norm", _mindspore_grad)),
        "onnxruntime": Backend(
            _ONNXRUNTIME_SCHEMA, _onnxruntime_to_form, _onnxruntime_from_form,
            spellings=(Spelling("onnxruntime", "GroupNormalization-21", _onnxruntime_model(21)),
                       Spelling("onnxruntime", _ONNXRUNTIME_18, _onnxruntime_model(18))),
            grad=Spelling("onnxruntime", "GroupNormalization-21", _onnxruntime_grad)),
        "jax": Backend(
            _JAX_SCHEMA, _jax_to_form, _jax_from_form,
            spellings=(Spelling("jax", "flax.nnx.GroupNorm", _jax_nnx),
                       Spelling("jax", "flax.linen.GroupNorm", _jax_linen)),
            grad=Spelling("jax", "flax.linen.GroupNorm", _jax_grad)),
    }

    def check_shapes(self, shapes, params):
        x = shapes.get("x")
        if x is None:
            return []
        if len(x) < 2:
            return [(("inputs", "x", "shape"), f"group_norm needs (N, C, ...), got shape {list(x)}")]
        groups = params.get("num_groups")
        if isinstance(groups, int) and groups > 0 and x[1] % groups:
            return [(("params", "num_groups"), f"must divide the {x[1]} channels of x, got {groups}")]
        return vector_shape_problems(shapes, ("weight", "bias"), (x[1],), "one value per channel")

    def reference_and_bound(self, inputs, form, dtype):
        return group_norm_outputs(inputs, form, dtype)

    def reference_vjp(self, inputs, form, upstream):
        return group_norm_vjp(inputs, form, upstream)

    def fuzz(self, draw):
        st = strategies()
        shape = fuzz_spatial(draw)
        groups = draw(st.integers(1, 4))
        shape[1] = groups * draw(st.integers(1, 4))
        affine = draw(st.booleans())
        params = {"num_groups": groups, "eps": draw(st.sampled_from(FUZZ_EPS)), "affine": affine}
        return tuple(shape), params, ("weight", "bias") if affine else ()
