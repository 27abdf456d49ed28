"""Instance normalization: per sample and channel, over the spatial dims (1d/2d/3d).

The canonical form is group normalization's (group_norm.py) with groups = channels.

Spellings:

* torch: ``nn.InstanceNorm{1,2,3}d(C, eps=1e-5, affine=False)``, ``F.instance_norm``.
* mindspore: ``nn.InstanceNorm{1,2,3}d(C, eps=1e-5, affine=True)``; not on CPU in 2.10
  ("Unsupported op [InstanceNorm] on CPU"), so the adapter falls back to
  ``nn.GroupNorm(C, C)``, the same computation, and the report says so.
* tensorflow: ``keras.layers.GroupNormalization(groups=-1, epsilon=1e-3, center, scale)``,
  channels last.

* onnxruntime: ``InstanceNormalization(epsilon=1e-5)`` (opset 22; opset 6), scale and B
  required: it always applies them (ones and zeros when the case gives none).
* jax: ``flax.nnx.InstanceNorm`` / ``flax.linen.InstanceNorm(epsilon=1e-6, use_bias, use_scale,
  use_fast_variance=True)``, channels last; ``jax.nn.standardize`` over the spatial axes
  (no weights).

Default traps: affine is off in torch and on in mindspore (MindSpore's API-mapping
page for InstanceNorm2d); keras epsilon is 1e-3, Flax's 1e-6 (and a one-pass variance).
"""

from __future__ import annotations

from parity.ops._norm import (FUZZ_EPS, affine_flag, applied, eps, flag, fuzz_spatial, jax_first, jax_last, jax_linen,
                              jax_nnx, jax_params, onnx_applies, onnx_vector, vector_shape_problems)
from parity.ops.base import Backend, Op, Spelling, strategies, tidy
from parity.ops.group_norm import (GroupNormForm, affine_tensors, channels, group_norm_outputs, group_norm_vjp,
                                   mindspore_affine, mindspore_group_module, optional_tensor, tensorflow_group,
                                   tensorflow_group_grad, torch_affine)


def _affine_form(p, shapes) -> GroupNormForm:
    """torch's and mindspore's parameters: eps and one affine switch (defaults differ)."""
    return GroupNormForm(channels(shapes), tidy(p["eps"]), *applied(shapes, p["affine"], p["affine"]))


def _affine_native(framework: str, form: GroupNormForm, shapes) -> dict:
    return {"eps": form.eps, "affine": affine_flag(framework, form, shapes)}


# --- torch: nn.InstanceNormNd(C, eps=1e-5, affine=False), F.instance_norm ----------------------

_TORCH_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {"eps": eps(1e-5), "affine": flag(False)},
}


def _torch_to_form(p, shapes, spelling, dtype) -> GroupNormForm:
    return _affine_form(p, shapes)


def _torch_from_form(form: GroupNormForm, shapes) -> dict:
    return _affine_native("torch", form, shapes)


def _torch_module(fw, inputs, p):
    x = inputs["x"]
    cls = getattr(fw.lib.nn, f"InstanceNorm{x.ndim - 2}d")
    m = cls(x.shape[1], eps=p["eps"], affine=p["affine"], dtype=fw.param_dtype(x))
    torch_affine(fw, m, inputs)
    with fw.scope():
        return {"y": fw.numpy(m(fw.tensor(x)))}


def _torch_functional(fw, inputs, p):
    w = optional_tensor(fw, inputs, "weight") if p["affine"] else None
    b = optional_tensor(fw, inputs, "bias") if p["affine"] else None
    with fw.scope():
        y = fw.lib.nn.functional.instance_norm(fw.tensor(inputs["x"]), weight=w, bias=b, eps=p["eps"])
        return {"y": fw.numpy(y)}


def _torch_grad(fw, ts, p):
    w, b = affine_tensors(ts, p["affine"])
    return fw.lib.nn.functional.instance_norm(ts["x"], weight=w, bias=b, eps=p["eps"]), None


# --- tensorflow: keras.layers.GroupNormalization(groups=-1, epsilon=1e-3, center, scale) -------

_TENSORFLOW_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {"epsilon": eps(1e-3), "center": flag(True), "scale": flag(True)},
}


def _tensorflow_to_form(p, shapes, spelling, dtype) -> GroupNormForm:
    return GroupNormForm(channels(shapes), tidy(p["epsilon"]), *applied(shapes, p["scale"], p["center"]))


def _tensorflow_from_form(form: GroupNormForm, shapes) -> dict:
    return {"epsilon": form.eps, "center": form.shift, "scale": form.scale}


def _tensorflow_keras(fw, inputs, p):
    return tensorflow_group(fw, inputs, p, groups=-1)


def _tensorflow_grad(fw, ts, p):
    return tensorflow_group_grad(fw, ts, p, groups=-1)


# --- mindspore: nn.InstanceNormNd(C, eps=1e-5, affine=True); nn.GroupNorm(C, C) on CPU ----------

_MINDSPORE_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {"eps": eps(1e-5), "affine": flag(True)},
}


def _mindspore_to_form(p, shapes, spelling, dtype) -> GroupNormForm:
    return _affine_form(p, shapes)


def _mindspore_from_form(form: GroupNormForm, shapes) -> dict:
    return _affine_native("mindspore", form, shapes)


def _mindspore_module(fw, inputs, p):
    x = inputs["x"]
    cls = getattr(fw.lib.nn, f"InstanceNorm{x.ndim - 2}d")
    m = cls(x.shape[1], eps=p["eps"], affine=p["affine"], dtype=fw.param_dtype(x))
    mindspore_affine(fw, m, inputs, p["affine"])
    with fw.scope():
        return {"y": fw.numpy(m(fw.tensor(x)))}


def _mindspore_as_group(fw, inputs, p):
    p = dict(p)
    p.setdefault("num_groups", inputs["x"].shape[1])
    return mindspore_group_module(fw, inputs, p, groups=inputs["x"].shape[1])


def _mindspore_grad(fw, ts, p):
    w, b = affine_tensors(ts, p["affine"])
    return fw.lib.ops.group_norm(ts["x"], ts["x"].shape[1], w, b, p["eps"]), None


# --- onnxruntime: InstanceNormalization(epsilon=1e-5), scale and B required (opset 22; opset 6) ----
# ORT's CPU kernel has float and float16 (opset 22 also runs float16), no float64 or bfloat16.

_ONNXRUNTIME_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {"epsilon": eps(1e-5)},
}


def _onnxruntime_to_form(p, shapes, spelling, dtype) -> GroupNormForm:
    return GroupNormForm(channels(shapes), tidy(p["epsilon"]), *applied(shapes, True, True))


def _onnxruntime_from_form(form: GroupNormForm, shapes) -> dict:
    onnx_applies("InstanceNormalization", form, shapes)
    return {"epsilon": form.eps}


def _onnxruntime_model(opset: int):
    def run(fw, inputs, p):
        x = inputs["x"]
        c = x.shape[1]
        args = [("input", fw.tensor(x)), ("scale", onnx_vector(inputs, "weight", c, 1.0, x.dtype)),
                ("B", onnx_vector(inputs, "bias", c, 0.0, x.dtype))]
        out = fw.run_node("InstanceNormalization", opset, args, {"epsilon": float(p["epsilon"])},
                          [("output", x.dtype)])
        return {"y": out["output"]}

    return run


def _onnxruntime_grad(fw, ts, p):  # never reached: the adapter's vjp says why there are no gradients
    raise NotImplementedError


# --- jax: flax.nnx.InstanceNorm / flax.linen.InstanceNorm(epsilon=1e-6, use_bias, use_scale, -------
# use_fast_variance=True), channels last; jax.nn.standardize over the spatial axes (no weights)

_JAX_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {"epsilon": eps(1e-6), "use_bias": flag(True), "use_scale": flag(True),
                   "use_fast_variance": flag(True)},
}
_JAX_STANDARDIZE = "jax.nn.standardize"


def _jax_to_form(p, shapes, spelling, dtype) -> GroupNormForm:
    if spelling == _JAX_STANDARDIZE:  # no weights
        return GroupNormForm(channels(shapes), tidy(p["epsilon"]), False, False)
    return GroupNormForm(channels(shapes), tidy(p["epsilon"]), *applied(shapes, p["use_scale"], p["use_bias"]))


def _jax_from_form(form: GroupNormForm, shapes) -> dict:
    # two-pass variance: the computation the rounding bound is about (Flax's default is one-pass)
    return {"epsilon": form.eps, "use_bias": form.shift, "use_scale": form.scale, "use_fast_variance": False}


def _jax_layer_args(fw, x, p):
    return dict(epsilon=p["epsilon"], use_bias=p["use_bias"], use_scale=p["use_scale"],
                use_fast_variance=p["use_fast_variance"], dtype=x.dtype, param_dtype=fw.param_dtype(x))


def _jax_nnx(fw, inputs, p):
    x = inputs["x"]
    c = x.shape[1]
    weights = jax_params(inputs, {"scale": "weight", "bias": "bias"}, (c,), fw.param_dtype(x),
                         {"scale": p["use_scale"], "bias": p["use_bias"]})
    with fw.scope():
        y, _ = jax_nnx(fw, "InstanceNorm", c, jax_last(fw, fw.tensor(x)), weights, **_jax_layer_args(fw, x, p))
        return {"y": fw.numpy(jax_first(fw, y))}


def _jax_linen(fw, inputs, p):
    with fw.scope():
        return {"y": fw.numpy(_jax_grad(fw, {k: fw.tensor(v) for k, v in inputs.items()}, p)[0])}


def _jax_standardize(fw, inputs, p):
    x = inputs["x"]
    with fw.scope():
        y = fw.lib.nn.standardize(fw.tensor(x), axis=tuple(range(2, x.ndim)), epsilon=p["epsilon"],
                                  algorithm="fast" if p["use_fast_variance"] else "stable")
        return {"y": fw.numpy(y)}


def _jax_grad(fw, ts, p):
    """flax.linen.InstanceNorm with the case's weight and bias as its params (jax arrays)."""
    x = ts["x"]
    c = x.shape[1]
    dt = fw.jnp.float64 if x.dtype == fw.jnp.float64 else fw.jnp.float32
    params = {}
    if p["use_scale"]:
        params["scale"] = ts["weight"].astype(dt) if "weight" in ts else fw.jnp.ones(c, dt)
    if p["use_bias"]:
        params["bias"] = ts["bias"].astype(dt) if "bias" in ts else fw.jnp.zeros(c, dt)
    args = _jax_layer_args(fw, x, p)
    args["param_dtype"] = dt
    y, _ = jax_linen(fw, "InstanceNorm", jax_last(fw, x), params, **args)
    return jax_first(fw, y), None


class InstanceNorm(Op):
    name = "instance_norm"
    summary = "Instance normalization over spatial dims, per sample and channel (1d/2d/3d)"
    optional_inputs = ("weight", "bias")
    params_schema = _TORCH_SCHEMA
    backends = {
        "torch": Backend(
            _TORCH_SCHEMA, _torch_to_form, _torch_from_form,
            spellings=(Spelling("torch", "nn.InstanceNormNd", _torch_module),
                       Spelling("torch", "F.instance_norm", _torch_functional)),
            grad=Spelling("torch", "F.instance_norm", _torch_grad)),
        "tensorflow": Backend(
            _TENSORFLOW_SCHEMA, _tensorflow_to_form, _tensorflow_from_form,
            spellings=(Spelling("tensorflow", "keras.layers.GroupNormalization(groups=-1)", _tensorflow_keras),),
            grad=Spelling("tensorflow", "keras.layers.GroupNormalization(groups=-1)", _tensorflow_grad)),
        "mindspore": Backend(
            _MINDSPORE_SCHEMA, _mindspore_to_form, _mindspore_from_form,
            spellings=(Spelling("mindspore", "nn.InstanceNormNd", _mindspore_module),
                       Spelling("mindspore", "nn.GroupNorm(num_groups=C)", _mindspore_as_group)),
            grad=Spelling("mindspore", "ops.group_norm(num_groups=C)", _mindspore_grad)),
        "onnxruntime": Backend(
            _ONNXRUNTIME_SCHEMA, _onnxruntime_to_form, _onnxruntime_from_form,
            spellings=(Spelling("onnxruntime", "InstanceNormalization-22", _onnxruntime_model(22)),
                       Spelling("onnxruntime", "InstanceNormalization-6", _onnxruntime_model(6))),
            grad=Spelling("onnxruntime", "InstanceNormalization-22", _onnxruntime_grad)),
        "jax": Backend(
            _JAX_SCHEMA, _jax_to_form, _jax_from_form,
            spellings=(Spelling("jax", "flax.nnx.InstanceNorm", _jax_nnx),
                       Spelling("jax", "flax.linen.InstanceNorm", _jax_linen),
                       Spelling("jax", _JAX_STANDARDIZE, _jax_standardize)),
            grad=Spelling("jax", "flax.linen.InstanceNorm", _jax_grad)),
    }

    def check_shapes(self, shapes, params):
        x = shapes.get("x")
        if x is None:
            return []
        if not 3 <= len(x) <= 5:
            return [(("inputs", "x", "shape"),
                     f"instance_norm needs (N, C, L), (N, C, H, W) or (N, C, D, H, W), got shape {list(x)}")]
        return vector_shape_problems(shapes, ("weight", "bias"), (x[1],), "one value per channel")

    def reference_and_bound(self, inputs, form, dtype):
        return group_norm_outputs(inputs, form, dtype)

    def reference_vjp(self, inputs, form, upstream):
        return group_norm_vjp(inputs, form, upstream)

    def fuzz(self, draw):
        st = strategies()
        shape = fuzz_spatial(draw)
        shape[-1] = max(shape[-1], 2)  # one value per channel: torch refuses to normalize it
        affine = draw(st.booleans())
        return tuple(shape), {"eps": draw(st.sampled_from(FUZZ_EPS)), "affine": affine}, \
            ("weight", "bias") if affine else ()
