"""Pieces shared by the normalization families (instance, group, batch, layer, RMS)."""

from __future__ import annotations

import numpy as np


def flag(default: bool) -> dict:
    return {"type": "boolean", "default": default}


EPS = {"type": "number", "exclusiveMinimum": 0, "x-expected": "a number > 0"}


def eps(default: float) -> dict:
    return {**EPS, "default": default}


def show_bool(_form, value) -> str:
    return "yes" if value else "no"


def applied(shapes: dict, scale: bool, shift: bool) -> tuple[bool, bool]:
    """Whether a call multiplies by the case's weight and adds the case's bias.

    A weight the case does not give starts at ones (a bias at zeros) in every
    framework, so "affine on" without weights computes the same as "affine off".
    """
    return bool(scale and "weight" in shapes), bool(shift and "bias" in shapes)


def affine_flag(framework: str, form, shapes: dict) -> bool:
    """The one affine switch (weight and bias together, torch and mindspore) for a form."""
    if (form.scale, form.shift) == (False, False):
        return False
    if (form.scale, form.shift) == applied(shapes, True, True):
        return True
    from parity.ops.base import NoExactMapping

    raise NoExactMapping(f"{framework}'s affine switches the weight and the bias together; the case applies "
                         f"{'only the weight' if form.scale else 'only the bias'}")


def channel_shape(x: np.ndarray) -> tuple[int, ...]:
    """Shape that broadcasts a per-channel (dim 1) vector against x."""
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def channels_last(x: np.ndarray) -> np.ndarray:
    return np.moveaxis(x, 1, -1)


def channels_first(y: np.ndarray) -> np.ndarray:
    return np.moveaxis(y, -1, 1)


def per_channel(inputs: dict, name: str, channels: int, fill: float, dtype) -> np.ndarray:
    """The case's per-channel input, or the frameworks' initial value."""
    if name in inputs:
        return np.asarray(inputs[name])
    return np.full(channels, fill, dtype=dtype)


def vector_shape_problems(shapes: dict, names: tuple[str, ...], want: tuple[int, ...], what: str) -> list:
    """Shape problems of parameter inputs (weight, bias, running stats)."""
    out = []
    for name in names:
        if name in shapes and tuple(shapes[name]) != tuple(want):
            out.append((("inputs", name, "shape"),
                        f"must be {list(want)} ({what}), got {list(shapes[name])}"))
    return out


def keras_dtype(x: np.ndarray) -> str:
    """The keras dtype policy for an input: its own dtype, or the mixed policy for half
    precision (half-precision outputs, float32 variables, as the other frameworks)."""
    return {"float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}.get(x.dtype.name, x.dtype.name)


# --- rounding bounds ---------------------------------------------------------------
#
# ``rounding_bound`` of an op returns, per output element, a first-order bound on the
# error of ANY implementation that evaluates the canonical formula in the run dtype
# (unit roundoff u), sums in any order, and computes variances in two passes (mean
# first). It is the "rounding of that dtype can explain it" line: an error inside it is
# numerics, one beyond it is not explained by rounding (an overflow, a one-pass
# variance, a different computation). Higham, Accuracy and Stability of Numerical
# Algorithms, 2nd ed.: a sum of M terms in any order has error <= gamma(M-1) * sum|x_i|,
# gamma(k) = k u / (1 - k u).

UNIT_ROUNDOFF = {"float16": 2.0**-11, "bfloat16": 2.0**-8, "float32": 2.0**-24, "float64": 2.0**-53}


def gamma(k, u: float):
    k = np.asarray(k, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(k * u < 1, k * u / np.maximum(1 - k * u, 1e-300), np.inf)


def standardize(x: np.ndarray, axes: tuple[int, ...], eps_: float, u: float | None = None, split: int = 0,
                scale: np.ndarray | None = None, shift: np.ndarray | None = None):
    """y = (x - mean) / sqrt(var + eps) * scale + shift over ``axes`` in float64 (two-pass
    variance), and with ``u`` its rounding bound; chunked along ``split`` (an axis not in
    ``axes``) and spread over threads. ``scale``/``shift`` broadcast against x (or None).

    Returns (y, bound or None, stats) with stats = (mean, var, d_mu, d_var), keepdims.

    The bound (any summation order, two-pass variance):
    mean:      |d_mu| <= gamma(M) * mean|x|
    variance:  with the computed mean, (1/M) sum (x - mu_hat)^2 = var + d_mu^2 exactly, and
               its evaluation adds a relative gamma(M + 3) (differences, squares, sum, divide):
               |d_var| <= d_mu^2 + gamma(M + 3) * (var + d_mu^2)
    y:         |d_y| <= d_mu / s + |y| * (d_var / (2 s^2) + 6u),  s = sqrt(var + eps)
               (6u: the difference, eps addition, sqrt, division and output rounding)
    affine:    |d_y| * |scale| + 2u (|y scale| + |shift|)
    """
    from parity import parallel

    assert split not in axes
    m = int(np.prod([x.shape[a] for a in axes]))
    y = np.empty(x.shape, np.float64)
    bound = np.empty(x.shape, np.float64) if u is not None else None
    stat_shape = tuple(1 if a in axes else n for a, n in enumerate(x.shape))
    stats = [np.empty(stat_shape) for _ in range(4)]
    g_mean = float(gamma(m, u)) if u is not None else 0.0
    g_var = float(gamma(m + 3, u)) if u is not None else 0.0

    def pick(arr, sl):
        if arr is None or np.ndim(arr) == 0 or arr.shape[split] == 1:
            return arr
        index = [slice(None)] * arr.ndim
        index[split] = sl
        return arr[tuple(index)]

    def one(sl):
        index = [slice(None)] * x.ndim
        index[split] = sl
        index = tuple(index)
        xc = np.asarray(x[index], dtype=np.float64)
        mean = xc.mean(axis=axes, keepdims=True)
        d = xc - mean
        var = np.mean(np.square(d), axis=axes, keepdims=True)
        s2 = var + eps_
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = 1.0 / np.sqrt(s2)
        yc = np.multiply(d, inv, out=d)
        sc, sh = pick(scale, sl), pick(shift, sl)
        if u is not None:
            d_mu = g_mean * np.mean(np.abs(xc), axis=axes, keepdims=True)
            d_var = d_mu**2 + g_var * (var + d_mu**2)
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = d_var / (2 * s2) + 6 * u
                bc = np.multiply(np.abs(yc), rel)  # inf * 0 where the variance overflowed: NaN
            bc += d_mu * inv
            if sc is not None:
                bc *= np.abs(sc)
                bc += 2 * u * np.abs(yc * sc)
            if sh is not None:
                bc += 2 * u * np.abs(sh)
            bound[index] = bc
            stats[2][index], stats[3][index] = d_mu, d_var
        if sc is not None:
            yc *= sc
        if sh is not None:
            yc += sh
        y[index] = yc
        stats[0][index], stats[1][index] = mean, var

    per = max(1, (1 << 19) // max(1, int(np.prod(x.shape)) // x.shape[split]))  # ~4 MiB of float64 a chunk
    parallel.run(one, parallel.spans(x.shape[split], per))
    return y, bound, tuple(stats)


def affine_bound(y, bound, weight, bias, u: float):
    """Bound after y * weight + bias (weight/bias broadcast already, or None)."""
    w = np.abs(weight) if weight is not None else 1.0
    yw = y * (weight if weight is not None else 1.0)
    b = np.abs(bias) if bias is not None else 0.0
    return bound * w + 2 * u * (np.abs(yw) + b)


def keras_variables(fw, ts: dict, pairs) -> dict:
    """Set a built keras layer's variables to the case's inputs (framework tensors), for the
    gradient spellings: ``pairs`` = [(input name, variable, whether the layer uses it)].
    Returns {input name: variable} for those set: where their gradients live."""
    tf = fw.lib
    sources = {}
    for name, var, used in pairs:
        if used and name in ts:
            var.assign(tf.cast(tf.reshape(ts[name], var.shape), var.dtype))
            sources[name] = var
    return sources


# --- reference vector-Jacobian products --------------------------------------------------

def standardize_vjp(x: np.ndarray, g: np.ndarray, axes: tuple[int, ...], eps_: float, scale=None):
    """For y = xhat * scale + shift, xhat = (x - mean) / s over ``axes`` (s = sqrt(var + eps),
    biased variance), the float64 gradients of sum(g * y):

    grad_x = (gw - mean(gw) - xhat * mean(gw * xhat)) / s,  gw = g * scale
    and xhat, for grad_scale = sum(g * xhat) and grad_shift = sum(g) over the other axes, and
    the magnitude of grad_x's terms, (|gw| + mean|gw| + |xhat| mean|gw xhat|) / s (see
    Op.reference_vjp).
    """
    x = np.asarray(x, np.float64)
    g = np.asarray(g, np.float64)
    mean = x.mean(axis=axes, keepdims=True)
    d = x - mean
    s = np.sqrt(np.mean(d * d, axis=axes, keepdims=True) + eps_)
    xhat = d / s
    gw = g * scale if scale is not None else g
    grad_x = (gw - gw.mean(axis=axes, keepdims=True) - xhat * (gw * xhat).mean(axis=axes, keepdims=True)) / s
    agw = np.abs(gw)
    magnitude = (agw + agw.mean(axis=axes, keepdims=True)
                 + np.abs(xhat) * np.abs(gw * xhat).mean(axis=axes, keepdims=True)) / s
    return grad_x, xhat, magnitude


def sum_to(a: np.ndarray, keep: tuple[int, ...]) -> np.ndarray:
    """Sum ``a`` over every axis not in ``keep`` (the gradient of a broadcast parameter)."""
    return a.sum(axis=tuple(i for i in range(a.ndim) if i not in keep))


def channel_perm(rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(to channels last, back to channels first) axis orders for a rank."""
    return (0,) + tuple(range(2, rank)) + (1,), (0, rank - 1) + tuple(range(1, rank - 1))


# --- fuzz strategies' building blocks (hypothesis imported only when drawn) ---------------------

FUZZ_EPS = [1e-5, 1e-3, 1e-6, 1e-2]  # hypothesis shrinks towards the first


def fuzz_spatial(draw, rank_min=3, rank_max=5, n_min=1) -> list[int]:
    """A shape (N, C, spatial...) of rank rank_min..rank_max, small sides."""
    from parity.ops.base import strategies

    st = strategies()
    rank = draw(st.integers(rank_min, rank_max))
    return [draw(st.integers(n_min, 4))] + [draw(st.integers(1, 6)) for _ in range(rank - 1)]


def fuzz_trailing(draw) -> tuple[tuple[int, ...], list[int]]:
    """A shape of rank 2..4 and its last k dims (k < rank): a normalized_shape."""
    from parity.ops.base import strategies

    st = strategies()
    rank = draw(st.integers(2, 4))
    shape = tuple(draw(st.integers(1, 6)) for _ in range(rank))
    k = draw(st.integers(1, rank - 1))
    return shape, list(shape[rank - k:])


# --- onnxruntime: what the norm families' one-node models share --------------------------------

def onnx_float(value: float, dtype: str, what: str) -> float:
    """The value of an ONNX float attribute as a run of ``dtype`` computes with it, for the
    canonical form. ONNX attributes are float32 (``AttributeProto.f``): in a float16, bfloat16 or
    float32 run every framework computes with the float32 value, so the form keeps the value
    given; a float64 kernel adds float32(value), so where that rounding changes it (1e-5 is
    9.99999974738e-06) no ONNX call computes the float64 form: NoExactMapping, with the reason."""
    from parity.ops.base import NoExactMapping, tidy

    as_attr = float(np.float32(value))
    if dtype != "float64":
        return tidy(value)
    if as_attr != float(value):
        raise NoExactMapping(f"ONNX attributes are float32: {what} {float(value)!r} is {as_attr!r} as an attribute, "
                             f"and onnxruntime's float64 kernel computes with that; no ONNX attribute holds the "
                             f"float64 {float(value)!r} (give native {what}: {as_attr!r} to run it)")
    return as_attr


def onnx_applies(framework_op: str, form, shapes: dict) -> None:
    """ONNX's norms take the weight and bias as inputs (scale, B) and apply what they are given
    (ones and zeros where the case gives none), so they cannot ignore a weight or bias the case
    gives. NoExactMapping when the form does."""
    from parity.ops.base import NoExactMapping

    given = applied(shapes, True, True)
    wants = (form.scale, getattr(form, "shift", given[1]))
    if wants != given:
        ignored = [n for n, on, g in zip(("weight", "bias"), wants, given) if g and not on]
        raise NoExactMapping(f"ONNX {framework_op} takes the case's weight and bias as its inputs and applies "
                             f"them; it cannot ignore the case's {' and '.join(ignored)}")


def onnx_vector(inputs: dict, name: str, shape, fill: float, dtype) -> np.ndarray:
    """The case's weight or bias in ``dtype`` (ONNX's type constraint), or ones/zeros."""
    if name in inputs:
        return np.asarray(inputs[name]).astype(dtype)
    return np.full(shape, fill, dtype=dtype)


# --- jax: Flax's layers (flax.nnx, flax.linen) ----------------------------------------------------

def jax_params(inputs: dict, names: dict, shape, dtype, use: dict) -> dict:
    """{flax parameter name: array} for the parameters a layer uses: the case's input (``names``
    maps flax's name to the case's, e.g. scale -> weight), else Flax's initial ones/zeros."""
    out = {}
    for flax_name, case_name in names.items():
        if use.get(flax_name, True):
            fill = 1.0 if flax_name == "scale" else 0.0
            out[flax_name] = (np.asarray(inputs[case_name]).astype(dtype).reshape(shape) if case_name in inputs
                              else np.full(shape, fill, dtype=dtype))
    return out


def jax_nnx(fw, name: str, num_features: int, x, variables: dict, **kwargs):
    """flax.nnx.<name>(num_features, **kwargs) with its variables (Params, BatchStats) set to
    ``variables`` (NumPy arrays, in their own dtype), called on x (a jax array): (y, module)."""
    nnx = fw.nnx
    module = getattr(nnx, name)(num_features, rngs=nnx.Rngs(0), **kwargs)
    for attr, arr in variables.items():
        var = getattr(module, attr)
        var.value = fw.tensor(np.asarray(arr)).reshape(var.value.shape)
    return module(x), module


def jax_linen(fw, name: str, x, params: dict, batch_stats: dict | None = None, call: dict | None = None, **kwargs):
    """flax.linen.<name>(**kwargs).apply with ``params`` (and ``batch_stats``, mutable) on x:
    (y, updated batch_stats or None). Arrays may be NumPy or jax (traced, for jax.vjp)."""
    module = getattr(fw.linen, name)(**kwargs)
    variables = {"params": dict(params)}
    if batch_stats is not None:
        variables["batch_stats"] = dict(batch_stats)
        y, updated = module.apply(variables, x, mutable=["batch_stats"], **(call or {}))
        return y, updated["batch_stats"]
    return module.apply(variables, x, **(call or {})), None


def jax_last(fw, x):
    """Channels (dim 1) last, for Flax's channels-last layers (a jax array)."""
    return fw.jnp.moveaxis(x, 1, -1)


def jax_first(fw, y):
    return fw.jnp.moveaxis(y, -1, 1)
