"""Local Response Normalization across channels.

Canonical form (channels on dim 1, zero padding outside 0..C-1)::

    y_c = x_c / (bias + alpha * sum_{c' = c - below}^{c + above} x_{c'}^2) ** beta

Native spellings (see docs/facts.md, "Local Response Normalization, verified facts"):

* torch ``LocalResponseNorm(size=n, alpha, beta, k)``: window [c - n//2, c + (n-1)//2],
  alpha divided by n (torch averages the squares), bias = k. Even n: the window
  is asymmetric and leans towards lower channels.
* tensorflow ``raw_ops.LRN(depth_radius=r, bias, alpha, beta)``: window [c-r, c+r],
  alpha NOT divided by the window size; channels last, 4-D only.
* mindspore ``nn.LRN`` / ``ops.LRN``: tensorflow's formula, channels on dim 1, 4-D only.
* ONNX ``LRN(size=n)``: window [c - (n-1)//2, c + ceil((n-1)/2)], alpha / n. For even n it
  leans the other way from torch (pytorch#75722). Run by onnxruntime (a one-node model, opset
  13 and opset 1), whose CPU kernel refuses even sizes; also kept as data (``onnx``).
* jax: no library call (jax.nn, jax.lax, flax): UNSUPPORTED with that reason.

Exact mappings: torch size n odd <-> depth_radius (n-1)/2 with alpha_tf = alpha_torch/n.
For even n no tensorflow/mindspore call computes torch's window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from parity.ops.base import Backend, Form, NoExactMapping, Op, Spelling, Unsupported, strategies, tidy


def _show_window(_form, window) -> str:
    below, above = window
    lo = f"c-{below}" if below else "c"
    hi = f"c+{above}" if above else "c"
    return f"[{lo}, {hi}] ({below + above + 1} channel{'s' if below + above else ''})"


@dataclass(frozen=True)
class LRNForm(Form):
    window: tuple[int, int] = field(metadata={"label": "window", "show": _show_window})
    alpha: float = field(metadata={"label": "alpha per squared element"})
    beta: float = field(metadata={"label": "beta"})
    bias: float = field(metadata={"label": "bias (k)"})

    @property
    def width(self) -> int:
        return self.window[0] + self.window[1] + 1


def _num(default):
    return {"type": "number", "default": default}


def _channels_last(x):
    return np.moveaxis(x, 1, -1)


def _channels_first(y):
    return np.moveaxis(y, -1, 1)


def _radius_form(p) -> LRNForm:
    """tensorflow's and mindspore's formula: window [c-depth_radius, c+depth_radius], alpha as given."""
    r = int(p["depth_radius"])
    return LRNForm(window=(r, r), alpha=tidy(p["alpha"]), beta=tidy(p["beta"]), bias=tidy(p["bias"]))


def _radius_native(framework: str, form: LRNForm) -> dict:
    below, above = form.window
    if below != above:
        raise NoExactMapping(
            f"{framework}'s LRN window [c-depth_radius, c+depth_radius] is symmetric; the window "
            f"{_show_window(form, form.window)} (torch size={form.width}) is not, so no depth_radius computes it")
    return {"depth_radius": below, "bias": form.bias, "alpha": form.alpha, "beta": form.beta}


_RADIUS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "depth_radius": {"type": "integer", "minimum": 0, "default": 5, "x-expected": "a non-negative integer"},
        "bias": _num(1.0),
        "alpha": _num(1.0),
        "beta": _num(0.5),
    },
}


# --- torch: nn.LocalResponseNorm(size=n, alpha, beta, k), alpha / n ------------------------

_TORCH_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["size"],
    "properties": {
        "size": {"type": "integer", "minimum": 1, "x-expected": "a positive integer"},
        "alpha": _num(1e-4),
        "beta": _num(0.75),
        "k": _num(1.0),
    },
}


def _torch_to_form(p, shapes, spelling, dtype) -> LRNForm:
    n = int(p["size"])
    return LRNForm(window=(n // 2, (n - 1) // 2), alpha=tidy(p["alpha"] / n), beta=tidy(p["beta"]), bias=tidy(p["k"]))


def _torch_from_form(form: LRNForm, shapes) -> dict:
    below, above = form.window
    n = form.width
    if (n // 2, (n - 1) // 2) != (below, above):
        raise NoExactMapping(
            f"torch's window for size n is [c-n//2, c+(n-1)//2]; no size gives {_show_window(form, form.window)}")
    return {"size": n, "alpha": tidy(form.alpha * n), "beta": form.beta, "k": form.bias}


def _torch_module(fw, inputs, p):
    with fw.scope():
        m = fw.lib.nn.LocalResponseNorm(size=p["size"], alpha=p["alpha"], beta=p["beta"], k=p["k"])
        return {"y": fw.numpy(m(fw.tensor(inputs["x"])))}


def _torch_functional(fw, inputs, p):
    with fw.scope():
        y = fw.lib.nn.functional.local_response_norm(
            fw.tensor(inputs["x"]), size=p["size"], alpha=p["alpha"], beta=p["beta"], k=p["k"])
        return {"y": fw.numpy(y)}


def _torch_grad(fw, ts, p):
    return fw.lib.nn.functional.local_response_norm(ts["x"], p["size"], p["alpha"], p["beta"], p["k"]), None


# --- tensorflow: raw_ops.LRN(depth_radius=r, bias, alpha, beta), channels last, 4-D ------------

_TENSORFLOW_SCHEMA = _RADIUS_SCHEMA
_TENSORFLOW_RANK = (r"must be 4-dimensional",)


def _tensorflow_to_form(p, shapes, spelling, dtype) -> LRNForm:
    return _radius_form(p)


def _tensorflow_from_form(form: LRNForm, shapes) -> dict:
    return _radius_native("tensorflow", form)


def _tensorflow_raw(fw, inputs, p):
    with fw.scope():
        y = fw.lib.raw_ops.LRN(input=fw.tensor(_channels_last(inputs["x"])), depth_radius=p["depth_radius"],
                               bias=p["bias"], alpha=p["alpha"], beta=p["beta"])
        return {"y": _channels_first(fw.numpy(y))}


def _tensorflow_nn(fw, inputs, p):
    with fw.scope():
        y = fw.lib.nn.local_response_normalization(
            fw.tensor(_channels_last(inputs["x"])), depth_radius=p["depth_radius"],
            bias=p["bias"], alpha=p["alpha"], beta=p["beta"])
        return {"y": _channels_first(fw.numpy(y))}


def _tensorflow_grad(fw, ts, p):
    from parity.ops._norm import channel_perm

    tf = fw.lib
    last, first = channel_perm(len(ts["x"].shape))
    y = tf.nn.local_response_normalization(tf.transpose(ts["x"], last), depth_radius=p["depth_radius"],
                                           bias=p["bias"], alpha=p["alpha"], beta=p["beta"])
    return tf.transpose(y, first), None


# --- mindspore: nn.LRN / ops.LRN: tensorflow's formula, channels on dim 1, 4-D ---------------

_MINDSPORE_SCHEMA = {
    **_RADIUS_SCHEMA,
    "properties": {
        **_RADIUS_SCHEMA["properties"],
        "norm_region": {"enum": ["ACROSS_CHANNELS"], "default": "ACROSS_CHANNELS"},
    },
}
_MINDSPORE_RANK = (r"rank of input\s+must be equal to 4",)


def _mindspore_to_form(p, shapes, spelling, dtype) -> LRNForm:
    return _radius_form(p)


def _mindspore_from_form(form: LRNForm, shapes) -> dict:
    return _radius_native("mindspore", form)


def _mindspore_args(p):
    return dict(depth_radius=p["depth_radius"], bias=p["bias"], alpha=p["alpha"], beta=p["beta"],
                norm_region=p.get("norm_region", "ACROSS_CHANNELS"))


def _mindspore_nn(fw, inputs, p):
    args = _mindspore_args(p)
    with fw.scope():  # one cell per parameter set, reused (Adapter.stateless: LRN has no parameters)
        return {"y": fw.numpy(fw.stateless("nn.LRN", args, lambda: fw.lib.nn.LRN(**args))(fw.tensor(inputs["x"])))}


def _mindspore_ops(fw, inputs, p):
    args = _mindspore_args(p)
    with fw.scope():
        return {"y": fw.numpy(fw.stateless("ops.LRN", args, lambda: fw.lib.ops.LRN(**args))(fw.tensor(inputs["x"])))}


def _mindspore_grad(fw, ts, p):
    return fw.lib.ops.LRN(**_mindspore_args(p))(ts["x"]), None


# --- onnx (as data, not run; onnx.ai/onnx/operators/onnx__LRN.html): LRN(size=n) --------------

_ONNX_SCHEMA = {"type": "object", "properties": {"size": {"type": "integer"}, "alpha": _num(1e-4),
                                                 "beta": _num(0.75), "bias": _num(1.0)}}


def _onnx_to_form(p, shapes, spelling, dtype) -> LRNForm:
    n = int(p["size"])
    return LRNForm(window=((n - 1) // 2, n // 2), alpha=tidy(p["alpha"] / n), beta=tidy(p["beta"]), bias=tidy(p["bias"]))


# --- onnxruntime: LRN(size=n, alpha, beta, bias): ONNX's window, alpha / n; a one-node model ---
# (onnx.defs.get_schema("LRN", 13).doc). ORT's CPU kernel takes odd sizes only ("size_ % 2 == 1
# was false"); it has float (and, through inserted casts, float16) kernels, no float64 or bfloat16.

_ONNXRUNTIME_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["size"],
    "properties": {
        "size": {"type": "integer", "minimum": 1, "x-expected": "a positive integer"},
        "alpha": _num(1e-4),
        "beta": _num(0.75),
        "bias": _num(1.0),
    },
}
_ONNXRUNTIME_ODD = (r"size_ % 2 == 1 was false",)  # ORT's LRN kernel refuses even sizes


def _onnxruntime_to_form(p, shapes, spelling, dtype) -> LRNForm:
    return _onnx_to_form(p, shapes, spelling, dtype)


def _onnxruntime_from_form(form: LRNForm, shapes) -> dict:
    below, above = form.window
    n = form.width
    if ((n - 1) // 2, n // 2) != (below, above):
        raise NoExactMapping(
            f"ONNX's LRN window for size n is [c-(n-1)//2, c+n//2] (for even n it leans towards higher "
            f"channels, torch's towards lower: pytorch#75722); no size gives {_show_window(form, form.window)}")
    return {"size": n, "alpha": tidy(form.alpha * n), "beta": form.beta, "bias": form.bias}


def _onnxruntime_model(opset: int):
    def run(fw, inputs, p):
        x = inputs["x"]
        attrs = {"size": int(p["size"]), "alpha": float(p["alpha"]), "beta": float(p["beta"]),
                 "bias": float(p["bias"])}
        return {"y": fw.run_node("LRN", opset, [("X", fw.tensor(x))], attrs, [("Y", x.dtype)])["Y"]}

    return run


def _onnxruntime_grad(fw, ts, p):  # never reached: the adapter's vjp says why there are no gradients
    raise NotImplementedError


# --- jax: no local response normalization in jax.nn, jax.lax, flax.linen or flax.nnx -------------
# The entry takes torch's parameters, so that a run reaches the jax worker, which answers
# UNSUPPORTED with the reason (a reduce_window over squared channels would be a formula of
# parity's own, not a library spelling).

_JAX_SCHEMA = _TORCH_SCHEMA
_JAX_NONE = "none: no LRN in jax.nn, jax.lax or flax"


def _jax_to_form(p, shapes, spelling, dtype) -> LRNForm:
    return _torch_to_form(p, shapes, spelling, dtype)


def _jax_from_form(form: LRNForm, shapes) -> dict:
    return _torch_from_form(form, shapes)


def _jax_none(fw, inputs, p):
    import flax

    raise Unsupported(f"jax {fw.version} and flax {flax.__version__} have no local response normalization: "
                      f"neither jax.nn, jax.lax, flax.linen nor flax.nnx has one")


def _jax_grad(fw, ts, p):
    return _jax_none(fw, ts, p)


class LRN(Op):
    name = "lrn"
    summary = "Local Response Normalization across channels (AlexNet)"
    params_schema = _TORCH_SCHEMA
    backends = {
        "torch": Backend(
            _TORCH_SCHEMA, _torch_to_form, _torch_from_form,
            spellings=(Spelling("torch", "nn.LocalResponseNorm", _torch_module),
                       Spelling("torch", "F.local_response_norm", _torch_functional)),
            grad=Spelling("torch", "F.local_response_norm", _torch_grad)),
        "tensorflow": Backend(
            _TENSORFLOW_SCHEMA, _tensorflow_to_form, _tensorflow_from_form,
            spellings=(Spelling("tensorflow", "raw_ops.LRN", _tensorflow_raw, _TENSORFLOW_RANK),
                       Spelling("tensorflow", "nn.local_response_normalization", _tensorflow_nn, _TENSORFLOW_RANK)),
            grad=Spelling("tensorflow", "nn.local_response_normalization", _tensorflow_grad, _TENSORFLOW_RANK)),
        "mindspore": Backend(
            _MINDSPORE_SCHEMA, _mindspore_to_form, _mindspore_from_form,
            spellings=(Spelling("mindspore", "nn.LRN", _mindspore_nn, _MINDSPORE_RANK),
                       Spelling("mindspore", "ops.LRN", _mindspore_ops, _MINDSPORE_RANK)),
            grad=Spelling("mindspore", "ops.LRN", _mindspore_grad, _MINDSPORE_RANK)),
        "onnxruntime": Backend(
            _ONNXRUNTIME_SCHEMA, _onnxruntime_to_form, _onnxruntime_from_form,
            spellings=(Spelling("onnxruntime", "LRN-13", _onnxruntime_model(13), _ONNXRUNTIME_ODD),
                       Spelling("onnxruntime", "LRN-1", _onnxruntime_model(1), _ONNXRUNTIME_ODD)),
            grad=Spelling("onnxruntime", "LRN-13", _onnxruntime_grad)),
        "jax": Backend(
            _JAX_SCHEMA, _jax_to_form, _jax_from_form,
            spellings=(Spelling("jax", _JAX_NONE, _jax_none),),
            grad=Spelling("jax", _JAX_NONE, _jax_grad)),
        "onnx": Backend(_ONNX_SCHEMA, _onnx_to_form),  # data only: explanations, never run
    }
    conventions = {
        "onnx": "ONNX LRN(size=n): window [c-floor((n-1)/2), c+ceil((n-1)/2)], alpha/n; "
                "for even n it leans the opposite way from torch (pytorch#75722)",
        "caffe": "Caffe LRN(local_size=n, alpha): torch's convention for odd n (alpha/n)",
    }

    # --- inputs -----------------------------------------------------------
    def check_shapes(self, shapes, params):
        x = shapes.get("x")
        if x is not None and len(x) < 3:
            return [(("inputs", "x", "shape"),
                     f"lrn needs a tensor of rank >= 3 with channels on dim 1 (N, C, ...), got shape {list(x)}")]
        return []

    # --- the reference ----------------------------------------------------
    def reference_and_bound(self, inputs, form: LRNForm, dtype):
        y, bound = lrn_reference_and_bound(inputs["x"], form, dtype)
        return {"y": y}, ({"y": bound} if dtype else {})

    def reference_vjp(self, inputs, form: LRNForm, upstream):
        """y_c = x_c D_c^-beta, D_c = bias + alpha sum_{c' in W(c)} x_c'^2 gives
        grad_x_j = g_j D_j^-beta - 2 alpha beta x_j sum_{c: j in W(c)} g_c x_c D_c^(-beta-1),
        and j is in W(c) = [c - below, c + above] when c is in [j - above, j + below]: the
        mirrored window. The magnitude of the terms: the same with absolute values."""
        x = np.asarray(inputs["x"], np.float64)
        g = np.asarray(upstream, np.float64)
        below, above = form.window
        d = form.bias + form.alpha * window_sum(np.square(x), below, above)
        t = window_sum(g * x * np.power(d, -form.beta - 1), above, below)
        t_abs = window_sum(np.abs(g * x) * np.power(d, -form.beta - 1), above, below)
        first = g * np.power(d, -form.beta)
        c = 2 * form.alpha * form.beta
        return {"grad_x": first - c * x * t}, {"grad_x": np.abs(first) + abs(c) * np.abs(x) * t_abs}

    # --- fuzzing ----------------------------------------------------------
    def fuzz(self, draw):
        st = strategies()
        shape = (draw(st.integers(1, 3)), draw(st.integers(1, 24)), draw(st.integers(1, 5)), draw(st.integers(1, 5)))
        params = {"size": draw(st.integers(1, 9)), "alpha": draw(st.sampled_from([1e-4, 1e-3, 1e-2, 0.1, 1.0])),
                  "beta": draw(st.sampled_from([0.75, 0.5, 1.0, 0.6])), "k": draw(st.sampled_from([2.0, 1.0, 0.5]))}
        return shape, params, ()


def window_sum(sq: np.ndarray, below: int, above: int) -> np.ndarray:
    """sum_{c'=c-below}^{c+above} sq[:, c'] (zero outside 0..C-1), by shifted adds."""
    total = sq.copy()
    channels = sq.shape[1]
    for d in range(1, min(below, channels - 1) + 1):
        total[:, d:] += sq[:, :-d]
    for d in range(1, min(above, channels - 1) + 1):
        total[:, :-d] += sq[:, d:]
    return total


def lrn_reference_and_bound(x: np.ndarray, form: LRNForm, dtype: str | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The reference and (with ``dtype``) its rounding bound in one pass: per sample, in
    threads, in place: a few MiB of temporaries, whatever the batch size. Element by element
    the same operations as lrn_reference, so the same values.

    The bound: S = sum of the window's squares: |d_S| <= gamma(w + 1) S (w squares, w - 1
    adds, and torch's division by n); base = k + alpha S: |d_base| <= alpha |d_S| + 3u base
    (scale, multiply, add); y = x base^-beta: |d_y| <= |y| (beta d_base / base + (4 + |beta ln
    base|) u + 2u) (pow as exp(beta log base), the division, the output rounding)."""
    from parity import parallel
    from parity.ops._norm import UNIT_ROUNDOFF, gamma

    u = UNIT_ROUNDOFF[dtype] if dtype else None
    g = float(gamma(form.width + 1, u)) if u else 0.0
    y = np.empty(x.shape, np.float64)
    bound = np.empty(x.shape, np.float64) if u else None

    def one(sl):
        xc = np.asarray(x[sl], dtype=np.float64)
        base = window_sum(np.square(xc), *form.window)
        base *= form.alpha
        base += form.bias
        power = np.power(base, form.beta)
        yc = np.divide(xc, power, out=y[sl])
        if u is None:
            return
        with np.errstate(divide="ignore", invalid="ignore"):
            d_base = g * np.abs(base - form.bias) + 3 * u * np.abs(base)  # alpha |d_S| + 3u base
            rel = form.beta * d_base / np.abs(base)
            rel += (6 + np.abs(form.beta * np.log(np.abs(base)))) * u
        np.multiply(np.abs(yc), rel, out=bound[sl])

    per = max(1, (1 << 19) // max(1, int(np.prod(x.shape[1:]))))  # about 4 MiB of float64 per chunk
    parallel.run(one, parallel.spans(x.shape[0], per))
    return y, bound


def lrn_reference(x: np.ndarray, below: int, above: int, alpha: float, beta: float, bias: float) -> np.ndarray:
    """float64 LRN over dim 1 by shifted sums of squares.

    Each x^2 of a float32/float16 input is exact in float64 and the window sum adds
    at most ``below + above + 1`` such terms, so the sum is correct to a few float64
    ulps: far below any float32 rounding. (A cumulative-sum difference would be
    faster for very wide windows but cancels catastrophically.)
    """
    x = np.asarray(x, dtype=np.float64)
    total = window_sum(np.square(x), below, above)
    total *= alpha
    total += bias
    np.power(total, beta, out=total)
    np.divide(x, total, out=total)
    return total
