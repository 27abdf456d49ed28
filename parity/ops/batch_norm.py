"""Batch normalization, training and inference: y and the updated running statistics.

Canonical form (channels on dim 1, statistics over every other dim):

* training: y = (x - mean_b) / sqrt(var_b + eps) * weight + bias, with the batch mean and
  the *biased* batch variance; then
  running_mean <- (1 - momentum) * running_mean + momentum * mean_b
  running_var  <- (1 - momentum) * running_var  + momentum * v_b,
  where momentum is the weight of the NEW statistic and v_b is the unbiased (n/(n-1))
  or the biased batch variance, as the form says;
* inference: y = (x - running_mean) / sqrt(running_var + eps) * weight + bias, and the
  running statistics are returned unchanged.

Inputs are named as in torch's functional API: x, weight, bias, running_mean,
running_var (default zeros and ones, every framework's initial values).

Spellings (verified on CPU, see docs/facts.md):

* torch ``nn.BatchNorm{1,2,3}d(C, eps=1e-5, momentum=0.1, affine=True)`` (modules start in
  training mode), ``F.batch_norm``: momentum = weight of the new value, unbiased update.
* mindspore ``nn.BatchNorm{1,2,3}d(C, eps=1e-5, momentum=0.9, affine=True)`` (cells start
  in inference mode; ``use_batch_statistics`` overrides): momentum = weight of the OLD
  value, unbiased update; ``ops.batch_norm`` (momentum = weight of the new value; the
  adapter converts).
* tensorflow ``keras.layers.BatchNormalization(momentum=0.99, epsilon=1e-3)`` (called with
  training=False by default): momentum = weight of the old value, BIASED update;
  ``tf.raw_ops.FusedBatchNormV3`` (exponential_avg_factor = 1 - momentum, epsilon as
  given): unbiased update. Both take keras's parameter names here.
* onnxruntime ``BatchNormalization(epsilon=1e-5, momentum=0.9, training_mode=0)`` (opset 15;
  opset 7, where training is asked for by the extra outputs): momentum = weight of the old
  value, BIASED update (the ONNX spec's ReduceVar); always applies scale and B.
* jax ``flax.nnx.BatchNorm(use_running_average=False, momentum=0.99, epsilon=1e-5)`` (nnx
  modules compute batch statistics unless told; ``flax.linen.BatchNorm`` has no default and
  is told): momentum = weight of the old value, BIASED update, one-pass variance by default.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from parity.ops._norm import (FUZZ_EPS, UNIT_ROUNDOFF, affine_bound, affine_flag, applied, channel_perm, channel_shape,
                              channels_first, channels_last, eps, flag, fuzz_spatial, jax_first, jax_last, jax_linen,
                              jax_nnx, jax_params, keras_dtype, keras_variables, onnx_applies, onnx_float, onnx_vector,
                              per_channel, show_bool, standardize, standardize_vjp, sum_to, vector_shape_problems)
from parity.ops.base import Backend, Form, NoExactMapping, Op, Spelling, Unsupported, strategies, tidy

UNBIASED, BIASED = "unbiased batch variance", "biased batch variance"


def _show_optional(_form, value) -> str:
    return "-" if value is None else (f"{value:.6g}" if isinstance(value, float) else str(value))


@dataclass(frozen=True)
class BatchNormForm(Form):
    training: bool = field(metadata={"label": "normalizes with", "show":
                                     lambda f, v: "batch statistics (training)" if v else "running statistics"})
    eps: float = field(metadata={"label": "eps"})
    scale: bool = field(metadata={"label": "multiplies by the case's weight", "show": show_bool})
    shift: bool = field(metadata={"label": "adds the case's bias", "show": show_bool})
    momentum: float | None = field(default=None, metadata={"label": "momentum (weight of the new statistic)",
                                                           "show": _show_optional})
    running_var: str | None = field(default=None, metadata={"label": "running_var update uses the",
                                                            "show": _show_optional})


def make_form(training, eps_, scale, shift, momentum_new, unbiased) -> BatchNormForm:
    if not training:  # no update: momentum and the variance estimator do not matter
        return BatchNormForm(False, tidy(eps_), scale, shift)
    return BatchNormForm(True, tidy(eps_), scale, shift, tidy(momentum_new), UNBIASED if unbiased else BIASED)


def batch_norm_outputs(inputs, form: BatchNormForm, dtype: str | None = None) -> tuple[dict, dict]:
    """float64 outputs and, with ``dtype``, their rounding bounds.

    Training: the standardization bound over (N, spatial) (_norm.standardize) and, for the
    running statistics, m |d_mu| (and m |d_v|) plus three roundings of the update's terms.
    Inference: the difference x - running_mean, the eps addition, sqrt, division and output
    rounding. The running statistics are float32 in every framework: their u is float32's.
    """
    x = np.asarray(inputs["x"])
    c = x.shape[1]
    shape = channel_shape(x)
    rm = np.asarray(inputs["running_mean"], np.float64) if "running_mean" in inputs else np.zeros(c)
    rv = np.asarray(inputs["running_var"], np.float64) if "running_var" in inputs else np.ones(c)
    w = np.asarray(inputs["weight"], np.float64).reshape(shape) if form.scale else None
    b = np.asarray(inputs["bias"], np.float64).reshape(shape) if form.shift else None
    u = UNIT_ROUNDOFF[dtype] if dtype else None
    if not form.training:
        x64 = np.asarray(x, np.float64)
        s = np.sqrt(rv.reshape(shape) + form.eps)
        y = (x64 - rm.reshape(shape)) / s
        out = {"y": y if w is None and b is None else y * (1.0 if w is None else w) + (0.0 if b is None else b),
               "running_mean": rm, "running_var": rv}
        if not dtype:
            return out, {}
        bound = u * (np.abs(x64) + np.abs(rm.reshape(shape))) / s + 5 * u * np.abs(y)
        return out, {"y": affine_bound(y, bound, w, b, u), "running_mean": np.zeros(c), "running_var": np.zeros(c)}
    axes = (0,) + tuple(range(2, x.ndim))
    y, bound, (mean, var, d_mu, d_var) = standardize(x, axes, form.eps, u, 1, w, b)
    n = x.size // c
    with np.errstate(divide="ignore", invalid="ignore"):  # n == 1: 0 * inf = NaN, as the formula says
        f = np.float64(n) / (n - 1) if form.running_var == UNBIASED else 1.0
    mean, var, d_mu, d_var = (a.reshape(c) for a in (mean, var, d_mu, d_var))
    with np.errstate(invalid="ignore"):
        v = var * f
    m = form.momentum
    out = {"y": y, "running_mean": (1 - m) * rm + m * mean, "running_var": (1 - m) * rv + m * v}
    if not dtype:
        return out, {}
    us = UNIT_ROUNDOFF["float64" if dtype == "float64" else "float32"]
    with np.errstate(invalid="ignore"):
        d_v = d_var * f + us * np.abs(v)
    return out, {
        "y": bound,
        "running_mean": m * d_mu + 3 * us * (np.abs((1 - m) * rm) + np.abs(m * mean)),
        "running_var": m * d_v + 3 * us * (np.abs((1 - m) * rv) + np.abs(m * v)),
    }


def batch_norm_vjp(inputs, form: BatchNormForm, upstream) -> dict:
    """Gradients of sum(g * y) for x, weight and bias (the running statistics are not
    differentiable inputs). Training: through the batch statistics (_norm.standardize_vjp
    over N and the spatial dims); inference: y is affine in x, grad_x = g * weight / s."""
    x = np.asarray(inputs["x"], np.float64)
    g = np.asarray(upstream, np.float64)
    c = x.shape[1]
    shape = channel_shape(x)
    w = np.asarray(inputs["weight"], np.float64).reshape(shape) if form.scale else None
    if form.training:
        grad_x, xhat, mag_x = standardize_vjp(x, g, (0,) + tuple(range(2, x.ndim)), form.eps, w)
    else:
        rm = np.asarray(inputs["running_mean"], np.float64) if "running_mean" in inputs else np.zeros(c)
        rv = np.asarray(inputs["running_var"], np.float64) if "running_var" in inputs else np.ones(c)
        s = np.sqrt(rv.reshape(shape) + form.eps)
        xhat = (x - rm.reshape(shape)) / s
        grad_x = g * (w if w is not None else 1.0) / s
        mag_x = np.abs(grad_x)
    out, mag = {"grad_x": grad_x}, {"grad_x": mag_x}
    for name, on, term in (("weight", form.scale, g * xhat), ("bias", form.shift, g)):
        if name in inputs:
            out[f"grad_{name}"] = sum_to(term, (1,)) if on else np.zeros(c)
            mag[f"grad_{name}"] = sum_to(np.abs(term), (1,)) if on else np.zeros(c)
    return out, mag


# --- helpers the spellings share --------------------------------------------------------

def _stats(inputs, x, dtype):
    c = x.shape[1]
    return per_channel(inputs, "running_mean", c, 0.0, dtype), per_channel(inputs, "running_var", c, 1.0, dtype)


def _param_dtype(x):
    return np.float64 if x.dtype == np.float64 else np.float32


def _stat_tensors(fw, ts, x):
    """For the gradient spellings: copies of the running statistics (a gradient never updates
    the case's)."""
    c = x.shape[1]
    dt = np.float64 if x.dtype == fw.lib.float64 else np.float32
    return (fw.tensor(np.asarray(fw.numpy(ts["running_mean"]), dt) if "running_mean" in ts else np.zeros(c, dt)),
            fw.tensor(np.asarray(fw.numpy(ts["running_var"]), dt) if "running_var" in ts else np.ones(c, dt)))


def _momentum(form: BatchNormForm) -> float:
    """The form's weight of the new statistic (any value where the form updates nothing)."""
    return form.momentum if form.training else 0.1


def _unbiased_only(framework: str, form: BatchNormForm) -> None:
    if form.training and form.running_var != UNBIASED:
        raise NoExactMapping(f"{framework} updates running_var with the unbiased batch variance")


_MOMENTUM = {"type": "number", "minimum": 0, "maximum": 1, "x-expected": "a number in [0, 1]"}


# --- torch: nn.BatchNormNd(C, eps=1e-5, momentum=0.1, affine=True), F.batch_norm ---------------
# momentum = weight of the new value, unbiased update; modules start in training mode

_TORCH_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {"training": flag(True), "momentum": {**_MOMENTUM, "default": 0.1}, "eps": eps(1e-5),
                   "affine": flag(True)},
}


def _torch_to_form(p, shapes, spelling, dtype) -> BatchNormForm:
    return make_form(p["training"], p["eps"], *applied(shapes, p["affine"], p["affine"]), p["momentum"], True)


def _torch_from_form(form: BatchNormForm, shapes) -> dict:
    _unbiased_only("torch", form)
    return {"training": form.training, "momentum": _momentum(form), "eps": form.eps,
            "affine": affine_flag("torch", form, shapes)}


def _torch_module(fw, inputs, p):
    x = inputs["x"]
    cls = getattr(fw.lib.nn, f"BatchNorm{max(x.ndim - 2, 1)}d")
    m = cls(x.shape[1], eps=p["eps"], momentum=p["momentum"], affine=p["affine"], dtype=fw.param_dtype(x))
    if p["affine"] and "weight" in inputs:
        fw.assign(m.weight, inputs["weight"])
    if p["affine"] and "bias" in inputs:
        fw.assign(m.bias, inputs["bias"])
    rm, rv = _stats(inputs, x, _param_dtype(x))
    fw.assign(m.running_mean, rm)
    fw.assign(m.running_var, rv)
    m.train(p["training"])
    with fw.scope():
        y = m(fw.tensor(x))
        return {"y": fw.numpy(y), "running_mean": fw.numpy(m.running_mean), "running_var": fw.numpy(m.running_var)}


def _torch_functional(fw, inputs, p):
    x = inputs["x"]
    rm, rv = (fw.tensor(a) for a in _stats(inputs, x, _param_dtype(x)))
    w = fw.tensor(inputs["weight"]) if p["affine"] and "weight" in inputs else None
    b = fw.tensor(inputs["bias"]) if p["affine"] and "bias" in inputs else None
    with fw.scope():
        y = fw.lib.nn.functional.batch_norm(fw.tensor(x), rm, rv, w, b, training=p["training"],
                                            momentum=p["momentum"], eps=p["eps"])
        return {"y": fw.numpy(y), "running_mean": fw.numpy(rm), "running_var": fw.numpy(rv)}


def _torch_grad(fw, ts, p):
    x = ts["x"]
    rm, rv = _stat_tensors(fw, ts, x)
    # weight and bias in the statistics' dtype, as nn.BatchNormNd holds them (half-precision
    # inputs: float32); torch's backward refuses a half weight beside float32 statistics
    w, b = ((ts[k].to(rm.dtype) if p["affine"] and k in ts else None) for k in ("weight", "bias"))
    return fw.lib.nn.functional.batch_norm(x, rm, rv, w, b, training=p["training"], momentum=p["momentum"],
                                           eps=p["eps"]), None


# --- tensorflow: keras.layers.BatchNormalization(momentum=0.99, epsilon=1e-3), ---------------
# raw_ops.FusedBatchNormV3 (keras's parameter names): momentum = weight of the old value;
# keras's update is BIASED, the fused op's unbiased; called with training=False by default

_KERAS = "keras.layers.BatchNormalization"
_FUSED = "raw_ops.FusedBatchNormV3"

_TENSORFLOW_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {"training": flag(False), "momentum": {**_MOMENTUM, "default": 0.99},
                   "epsilon": eps(1e-3), "center": flag(True), "scale": flag(True)},
}


def _tensorflow_to_form(p, shapes, spelling, dtype) -> BatchNormForm:
    return make_form(p["training"], p["epsilon"], *applied(shapes, p["scale"], p["center"]),
                     1.0 - p["momentum"], spelling == _FUSED)


def _tensorflow_from_form(form: BatchNormForm, shapes) -> dict:
    return {"training": form.training, "momentum": tidy(1.0 - _momentum(form)), "epsilon": form.eps,
            "center": form.shift, "scale": form.scale}


def _tensorflow_keras(fw, inputs, p):
    x = inputs["x"]
    with fw.scope():
        layer = fw.keras.layers.BatchNormalization(axis=-1, momentum=p["momentum"], epsilon=p["epsilon"],
                                                   center=p["center"], scale=p["scale"], dtype=keras_dtype(x))
        xt = fw.tensor(channels_last(x))
        layer.build(xt.shape)
        if p["scale"] and "weight" in inputs:
            fw.assign(layer.gamma, inputs["weight"])
        if p["center"] and "bias" in inputs:
            fw.assign(layer.beta, inputs["bias"])
        rm, rv = _stats(inputs, x, x.dtype)
        fw.assign(layer.moving_mean, rm)
        fw.assign(layer.moving_variance, rv)
        y = layer(xt, training=p["training"])
        return {"y": channels_first(fw.numpy(y)), "running_mean": fw.numpy(layer.moving_mean),
                "running_var": fw.numpy(layer.moving_variance)}


def _tensorflow_fused(fw, inputs, p):
    x = inputs["x"]
    c = x.shape[1]
    tf = fw.lib
    # channels last, every non-channel dim folded into (N, 1, positions, C): the same
    # statistics, in the layout FusedBatchNormV3 takes on CPU for any input rank
    flat = np.ascontiguousarray(channels_last(x)).reshape(x.shape[0], 1, -1, c)
    rm, rv = _stats(inputs, x, np.float32)
    w = per_channel(inputs, "weight", c, 1.0, np.float32) if p["scale"] else np.ones(c, np.float32)
    b = per_channel(inputs, "bias", c, 0.0, np.float32) if p["center"] else np.zeros(c, np.float32)
    with fw.scope():
        out = tf.raw_ops.FusedBatchNormV3(x=fw.tensor(flat), scale=w, offset=b, mean=rm, variance=rv,
                                          epsilon=p["epsilon"], exponential_avg_factor=1.0 - p["momentum"],
                                          data_format="NHWC", is_training=p["training"])
        y = fw.numpy(out.y).reshape(channels_last(x).shape)
        return {"y": channels_first(y), "running_mean": fw.numpy(out.batch_mean),
                "running_var": fw.numpy(out.batch_variance)}


def _tensorflow_grad(fw, ts, p):
    tf = fw.lib
    x = ts["x"]
    last, first = channel_perm(len(x.shape))
    layer = fw.keras.layers.BatchNormalization(axis=-1, momentum=p["momentum"], epsilon=p["epsilon"],
                                               center=p["center"], scale=p["scale"], dtype=x.dtype.name)
    xt = tf.transpose(x, last)
    layer.build(xt.shape)
    sources = keras_variables(fw, ts, [("weight", layer.gamma, p["scale"]), ("bias", layer.beta, p["center"])])
    keras_variables(fw, ts, [("running_mean", layer.moving_mean, True), ("running_var", layer.moving_variance, True)])
    return tf.transpose(layer(xt, training=p["training"]), first), sources


# --- mindspore: nn.BatchNormNd(C, eps=1e-5, momentum=0.9, affine=True), ops.batch_norm ----------
# momentum = weight of the OLD value (ops.batch_norm: of the new; the adapter converts),
# unbiased update; cells start in inference mode, use_batch_statistics overrides

_MINDSPORE_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {"training": flag(False), "momentum": {**_MOMENTUM, "default": 0.9},
                   "eps": eps(1e-5), "affine": flag(True),
                   "use_batch_statistics": {"type": ["boolean", "null"], "default": None}},
}
_MINDSPORE_RANK = (r"rank of images must be in",)


def _mindspore_training(p) -> bool:
    return p["training"] if p["use_batch_statistics"] is None else p["use_batch_statistics"]


def _mindspore_to_form(p, shapes, spelling, dtype) -> BatchNormForm:
    return make_form(_mindspore_training(p), p["eps"], *applied(shapes, p["affine"], p["affine"]),
                     1.0 - p["momentum"], True)


def _mindspore_from_form(form: BatchNormForm, shapes) -> dict:
    _unbiased_only("mindspore", form)
    return {"training": form.training, "momentum": tidy(1.0 - _momentum(form)), "eps": form.eps,
            "affine": affine_flag("mindspore", form, shapes), "use_batch_statistics": None}


def _mindspore_module(fw, inputs, p):
    x = inputs["x"]
    cls = getattr(fw.lib.nn, f"BatchNorm{max(x.ndim - 2, 1)}d")
    m = cls(x.shape[1], eps=p["eps"], momentum=p["momentum"], affine=p["affine"],
            use_batch_statistics=p["use_batch_statistics"], dtype=fw.param_dtype(x))
    cell = getattr(m, "bn2d", m)  # BatchNorm3d wraps a BatchNorm2d
    if p["affine"] and "weight" in inputs:
        fw.assign(cell.gamma, inputs["weight"])
    if p["affine"] and "bias" in inputs:
        fw.assign(cell.beta, inputs["bias"])
    rm, rv = _stats(inputs, x, np.float32)
    fw.assign(cell.moving_mean, rm)
    fw.assign(cell.moving_variance, rv)
    m.set_train(p["training"])
    with fw.scope():
        y = m(fw.tensor(x))
        return {"y": fw.numpy(y), "running_mean": fw.numpy(cell.moving_mean),
                "running_var": fw.numpy(cell.moving_variance)}


def _mindspore_functional(fw, inputs, p):
    x = inputs["x"]
    ms = fw.lib
    rm, rv = _stats(inputs, x, np.float32)
    rm_p = ms.Parameter(ms.Tensor(rm), name="running_mean", requires_grad=False)
    rv_p = ms.Parameter(ms.Tensor(rv), name="running_var", requires_grad=False)
    c = x.shape[1]
    w = per_channel(inputs, "weight", c, 1.0, np.float32) if p["affine"] else np.ones(c, np.float32)
    b = per_channel(inputs, "bias", c, 0.0, np.float32) if p["affine"] else np.zeros(c, np.float32)
    with fw.scope():
        y = ms.ops.batch_norm(fw.tensor(x), rm_p, rv_p, fw.tensor(w), fw.tensor(b), training=_mindspore_training(p),
                              momentum=1.0 - p["momentum"], eps=p["eps"])
        return {"y": fw.numpy(y), "running_mean": fw.numpy(rm_p), "running_var": fw.numpy(rv_p)}


def _mindspore_grad(fw, ts, p):
    ms = fw.lib
    x = ts["x"]
    c = x.shape[1]
    rm, rv = (ms.Parameter(t, name=n, requires_grad=False)
              for t, n in zip(_stat_tensors(fw, ts, x), ("running_mean", "running_var")))
    dt = rm.dtype  # scale and offset in the statistics' dtype: the primitive takes one dtype for all four
    w = ts["weight"].astype(dt) if p["affine"] and "weight" in ts else ms.ops.ones(c, dt)
    b = ts["bias"].astype(dt) if p["affine"] and "bias" in ts else ms.ops.zeros(c, dt)
    return ms.ops.batch_norm(x, rm, rv, w, b, training=_mindspore_training(p), momentum=1.0 - p["momentum"],
                             eps=p["eps"]), None


# --- onnxruntime: BatchNormalization(epsilon=1e-5, momentum=0.9, training_mode=0), a one-node ---
# model (opset 15; opset 7, whose training mode is its extra outputs): momentum = weight of the
# OLD value, and running_var is updated with the BIASED (population) batch variance, as the ONNX
# spec says and ORT's kernel does; scale, B, input_mean and input_var are required inputs

_ONNXRUNTIME_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {"training_mode": {"enum": [0, 1], "default": 0, "x-expected": "0 or 1"},
                   "momentum": {**_MOMENTUM, "default": 0.9}, "epsilon": eps(1e-5)},
}
_ONNXRUNTIME_BN = "BatchNormalization"


def _onnxruntime_to_form(p, shapes, spelling, dtype) -> BatchNormForm:
    training = bool(p["training_mode"])
    e = onnx_float(p["epsilon"], dtype, "epsilon")
    m = onnx_float(p["momentum"], dtype, "momentum") if training else p["momentum"]
    return make_form(training, e, *applied(shapes, True, True), 1.0 - m, False)


def _onnxruntime_from_form(form: BatchNormForm, shapes) -> dict:
    if form.training and form.running_var != BIASED:
        raise NoExactMapping("ONNX BatchNormalization (and onnxruntime's kernel) updates running_var with the "
                             "biased (population) batch variance")
    onnx_applies(_ONNXRUNTIME_BN, form, shapes)
    return {"training_mode": int(form.training), "momentum": tidy(1.0 - _momentum(form)), "epsilon": form.eps}


def _onnxruntime_model(opset: int):
    def run(fw, inputs, p):
        x = inputs["x"]
        c = x.shape[1]
        sdt = _param_dtype(x)
        rm, rv = _stats(inputs, x, sdt)
        training = bool(p["training_mode"])
        # opset 15 takes float32 parameters beside half-precision X; before it they have X's type
        pdt = sdt if opset >= 15 else x.dtype
        if training and pdt != sdt:
            raise Unsupported(f"BatchNormalization before opset 15 takes scale, B, mean and var in X's type "
                              f"({x.dtype}): its running statistics would be {x.dtype}, not {np.dtype(sdt).name}")
        args = [("X", fw.tensor(x)), ("scale", onnx_vector(inputs, "weight", c, 1.0, pdt)),
                ("B", onnx_vector(inputs, "bias", c, 0.0, pdt)), ("input_mean", rm.astype(pdt)),
                ("input_var", rv.astype(pdt))]
        attrs = {"epsilon": float(p["epsilon"]), "momentum": float(p["momentum"])}
        outputs = [("Y", x.dtype)]
        if training:
            outputs += [("running_mean", pdt), ("running_var", pdt)]
            if opset >= 14:
                attrs["training_mode"] = 1
            else:  # opset 7..13: training is asked for by the optional outputs
                outputs += [("saved_mean", pdt), ("saved_var", pdt)]
        out = fw.run_node(_ONNXRUNTIME_BN, opset, args, attrs, outputs)
        if not training:  # inference: the running statistics are inputs, unchanged
            return {"y": out["Y"], "running_mean": np.asarray(rm, sdt), "running_var": np.asarray(rv, sdt)}
        return {"y": out["Y"], "running_mean": out["running_mean"], "running_var": out["running_var"]}

    return run


def _onnxruntime_grad(fw, ts, p):  # never reached: the adapter's vjp says why there are no gradients
    raise NotImplementedError


# --- jax: flax.nnx.BatchNorm(use_running_average=False, momentum=0.99, epsilon=1e-5, ...) and --------
# flax.linen.BatchNorm (no default for use_running_average: the spelling passes it), channels last:
# momentum = weight of the OLD value; the running variance is updated with the BIASED batch
# variance; one-pass variance by default (use_fast_variance=True)

_JAX_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {"use_running_average": flag(False), "momentum": {**_MOMENTUM, "default": 0.99},
                   "epsilon": eps(1e-5), "use_bias": flag(True), "use_scale": flag(True),
                   "use_fast_variance": flag(True)},
}


def _jax_to_form(p, shapes, spelling, dtype) -> BatchNormForm:
    return make_form(not p["use_running_average"], p["epsilon"], *applied(shapes, p["use_scale"], p["use_bias"]),
                     1.0 - p["momentum"], False)


def _jax_from_form(form: BatchNormForm, shapes) -> dict:
    if form.training and form.running_var != BIASED:
        raise NoExactMapping("flax BatchNorm updates its running variance with the biased batch variance")
    # two-pass variance: the computation the rounding bound is about (Flax's default is one-pass)
    return {"use_running_average": not form.training, "momentum": tidy(1.0 - _momentum(form)), "epsilon": form.eps,
            "use_bias": form.shift, "use_scale": form.scale, "use_fast_variance": False}


def _jax_args(fw, x, p) -> dict:
    return dict(momentum=p["momentum"], epsilon=p["epsilon"], use_bias=p["use_bias"], use_scale=p["use_scale"],
                use_fast_variance=p["use_fast_variance"], dtype=x.dtype, param_dtype=fw.param_dtype(x))


def _jax_nnx(fw, inputs, p):
    x = inputs["x"]
    c = x.shape[1]
    sdt = _param_dtype(x)
    rm, rv = _stats(inputs, x, sdt)
    variables = jax_params(inputs, {"scale": "weight", "bias": "bias"}, (c,), fw.param_dtype(x),
                           {"scale": p["use_scale"], "bias": p["use_bias"]})
    variables.update(mean=rm, var=rv)
    with fw.scope():
        y, m = jax_nnx(fw, "BatchNorm", c, jax_last(fw, fw.tensor(x)), variables,
                       use_running_average=p["use_running_average"], **_jax_args(fw, x, p))
        return {"y": fw.numpy(jax_first(fw, y)), "running_mean": fw.numpy(m.mean.value).astype(sdt),
                "running_var": fw.numpy(m.var.value).astype(sdt)}


def _jax_linen_apply(fw, ts, p):
    x = ts["x"]
    c = x.shape[1]
    args = _jax_args(fw, x, p)
    dt = args["param_dtype"]
    jnp = fw.jnp
    params = {}
    if p["use_scale"]:
        params["scale"] = ts["weight"].astype(dt) if "weight" in ts else jnp.ones(c, dt)
    if p["use_bias"]:
        params["bias"] = ts["bias"].astype(dt) if "bias" in ts else jnp.zeros(c, dt)
    stats = {"mean": ts["running_mean"].astype(dt) if "running_mean" in ts else jnp.zeros(c, dt),
             "var": ts["running_var"].astype(dt) if "running_var" in ts else jnp.ones(c, dt)}
    y, updated = jax_linen(fw, "BatchNorm", jax_last(fw, x), params, stats,
                           call={"use_running_average": p["use_running_average"]}, **args)
    return jax_first(fw, y), updated


def _jax_linen(fw, inputs, p):
    x = inputs["x"]
    sdt = _param_dtype(x)
    with fw.scope():
        y, stats = _jax_linen_apply(fw, {k: fw.tensor(v) for k, v in inputs.items()}, p)
        return {"y": fw.numpy(y), "running_mean": fw.numpy(stats["mean"]).astype(sdt),
                "running_var": fw.numpy(stats["var"]).astype(sdt)}


def _jax_grad(fw, ts, p):
    """flax.linen.BatchNorm with the case's weight and bias as its params (jax arrays)."""
    return _jax_linen_apply(fw, ts, p)[0], None


class BatchNorm(Op):
    name = "batch_norm"
    summary = "Batch normalization (training or inference): y and the updated running statistics"
    optional_inputs = ("weight", "bias", "running_mean", "running_var")
    outputs = ("y", "running_mean", "running_var")
    params_schema = _TORCH_SCHEMA
    backends = {
        "torch": Backend(
            _TORCH_SCHEMA, _torch_to_form, _torch_from_form,
            spellings=(Spelling("torch", "nn.BatchNormNd", _torch_module),
                       Spelling("torch", "F.batch_norm", _torch_functional)),
            grad=Spelling("torch", "F.batch_norm", _torch_grad)),
        "tensorflow": Backend(
            _TENSORFLOW_SCHEMA, _tensorflow_to_form, _tensorflow_from_form,
            spellings=(Spelling("tensorflow", _KERAS, _tensorflow_keras),
                       Spelling("tensorflow", _FUSED, _tensorflow_fused)),
            grad=Spelling("tensorflow", _KERAS, _tensorflow_grad)),
        "mindspore": Backend(
            _MINDSPORE_SCHEMA, _mindspore_to_form, _mindspore_from_form,
            spellings=(Spelling("mindspore", "nn.BatchNormNd", _mindspore_module),
                       Spelling("mindspore", "ops.batch_norm", _mindspore_functional, _MINDSPORE_RANK)),
            grad=Spelling("mindspore", "ops.batch_norm", _mindspore_grad, _MINDSPORE_RANK)),
        "onnxruntime": Backend(
            _ONNXRUNTIME_SCHEMA, _onnxruntime_to_form, _onnxruntime_from_form,
            spellings=(Spelling("onnxruntime", "BatchNormalization-15", _onnxruntime_model(15)),
                       Spelling("onnxruntime", "BatchNormalization-7", _onnxruntime_model(7))),
            grad=Spelling("onnxruntime", "BatchNormalization-15", _onnxruntime_grad)),
        "jax": Backend(
            _JAX_SCHEMA, _jax_to_form, _jax_from_form,
            spellings=(Spelling("jax", "flax.nnx.BatchNorm", _jax_nnx),
                       Spelling("jax", "flax.linen.BatchNorm", _jax_linen)),
            grad=Spelling("jax", "flax.linen.BatchNorm", _jax_grad)),
    }

    def check_shapes(self, shapes, params):
        x = shapes.get("x")
        if x is None:
            return []
        if not 2 <= len(x) <= 5:
            return [(("inputs", "x", "shape"), f"batch_norm needs (N, C), (N, C, L), (N, C, H, W) or "
                                               f"(N, C, D, H, W), got shape {list(x)}")]
        return vector_shape_problems(shapes, self.optional_inputs, (x[1],), "one value per channel")

    def reference_and_bound(self, inputs, form, dtype):
        return batch_norm_outputs(inputs, form, dtype)

    def reference_vjp(self, inputs, form, upstream):
        return batch_norm_vjp(inputs, form, upstream)

    def output_dtype(self, output, dtype):
        """Running statistics are float32 (float64 for float64 inputs) in every framework."""
        if output not in ("running_mean", "running_var"):
            return dtype
        return "float64" if dtype == "float64" else "float32"

    def fuzz(self, draw):
        st = strategies()
        shape = fuzz_spatial(draw, 2, 5, n_min=2)  # training needs more than one value per channel
        training = draw(st.booleans())
        params = {"training": training, "momentum": draw(st.sampled_from([0.1, 0.01, 0.5])),
                  "eps": draw(st.sampled_from(FUZZ_EPS)), "affine": True}
        return tuple(shape), params, ("weight", "bias") + (() if training else ("running_mean", "running_var"))
