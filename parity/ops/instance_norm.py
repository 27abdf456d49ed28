"""Instance normalization: per sample and channel, over the spatial dims (1d/2d/3d).

The canonical form is group normalization's (group_norm.py) with groups = channels.

Spellings:

* torch: ``nn.InstanceNorm{1,2,3}d(C, eps=1e-5, affine=False)``, ``F.instance_norm``.
* mindspore: ``nn.InstanceNorm{1,2,3}d(C, eps=1e-5, affine=True)``; not on CPU in 2.10
  ("Unsupported op [InstanceNorm] on CPU"), so the adapter falls back to
  ``nn.GroupNorm(C, C)``, the same computation, and the report says so.
* tensorflow: ``keras.layers.GroupNormalization(groups=-1, epsilon=1e-3, center, scale)``,
  channels last.

Default traps: affine is off in torch and on in mindspore (MindSpore's API-mapping
page for InstanceNorm2d); keras epsilon is 1e-3.
"""

from __future__ import annotations

from parity.ops._norm import FUZZ_EPS, affine_flag, applied, eps, flag, fuzz_spatial, vector_shape_problems
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
