"""JAX adapter (with Flax's normalization layers: flax.nnx and flax.linen).

float64 needs ``jax_enable_x64``: the adapter sets it before the first array is made, so a
float64 case computes in float64 (without it jax silently computes in float32). Gradients go
through ``jax.vjp`` of the op's gradient call (a pure function of the tensors: Flax linen's
``Module.apply`` with the case's weights as its parameters).
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

from parity.ops.base import Unsupported

# C++ log noise only; Python exceptions are untouched.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

UNSUPPORTED = (
    r"Unknown backend",                 # jax.devices('gpu') on a CPU-only jaxlib
    r"UNIMPLEMENTED",                   # XLA has no kernel for this dtype on this device
)

#: XLA flags that change numerics when set (recorded in info())
_NUMERIC_XLA_FLAGS = ("xla_cpu_enable_fast_math", "xla_cpu_fast_math_honor", "xla_gpu_enable_fast_min_max",
                      "xla_cpu_use_thunk_runtime", "xla_allow_excess_precision", "xla_cpu_enable_xprof")


class Adapter:
    name = "jax"
    UNSUPPORTED = UNSUPPORTED

    def __init__(self, device: str):
        import jax

        jax.config.update("jax_enable_x64", True)  # before any array: float64 cases compute in float64
        import jax.numpy as jnp

        self.lib = jax
        self.jnp = jnp
        self.version = jax.__version__
        if device == "cpu":
            self.device = jax.devices("cpu")[0]
        elif device == "gpu":
            try:
                gpus = jax.devices("gpu")
            except RuntimeError as exc:
                raise Unsupported(f"jax.devices('gpu') raised: {exc} (jax {jax.__version__}, backend "
                                  f"{jax.default_backend()})") from None
            self.device = gpus[0]
        else:
            raise Unsupported(f"unknown device {device!r}")

    # --- Flax, imported on first use ----------------------------------------------------
    @property
    def linen(self):
        import flax.linen

        return flax.linen

    @property
    def nnx(self):
        from flax import nnx

        return nnx

    # --- arrays -------------------------------------------------------------------------
    def tensor(self, arr: np.ndarray):
        """A NumPy array -> a jax array on the adapter's device (bfloat16 is ml_dtypes', as jax's)."""
        return self.lib.device_put(np.array(arr, order="C", copy=True), self.device)

    def numpy(self, t) -> np.ndarray:
        return np.asarray(self.lib.device_get(t))

    def param_dtype(self, x: np.ndarray):
        """The dtype of a layer's parameters for input x: float64 for float64 (Flax's default
        param_dtype is float32, which would round a float64 case's weights), else float32."""
        return self.jnp.float64 if x.dtype == np.float64 else self.jnp.float32

    def assign(self, variable, arr: np.ndarray) -> None:
        """Set an nnx Variable (Param, BatchStat) to the case's values, in its dtype."""
        variable.value = self.tensor(np.asarray(arr)).astype(variable.value.dtype)

    @contextlib.contextmanager
    def scope(self):
        with self.lib.default_device(self.device):
            yield

    def vjp(self, forward, inputs: dict, wrt: list[str], upstream: np.ndarray) -> dict:
        """Vector-Jacobian products of y = forward(tensors) with ``upstream``, by jax.vjp."""
        jax = self.lib
        with self.scope():
            fixed = {k: self.tensor(v) for k, v in inputs.items() if k not in wrt}

            def fn(*args):
                ts = dict(fixed)
                ts.update(zip(wrt, args))
                return forward(ts)[0]

            y, pullback = jax.vjp(fn, *[self.tensor(inputs[k]) for k in wrt])
            grads = pullback(self.tensor(upstream).astype(y.dtype))
        return {k: self.numpy(g).astype(inputs[k].dtype) for k, g in zip(wrt, grads)}

    def recover(self) -> None:
        """Nothing to clean up after a failed call (see mindspore.py)."""

    def info(self) -> dict:
        jax = self.lib
        import flax
        import jaxlib

        flags = os.environ.get("XLA_FLAGS", "")
        out = {
            "device": str(self.device),
            "platform": self.device.platform,
            "device_kind": getattr(self.device, "device_kind", None),
            "backend": jax.default_backend(),
            "jaxlib": jaxlib.__version__,
            "flax": flax.__version__,
            "x64": bool(jax.config.jax_enable_x64),
            "default_matmul_precision": jax.config.jax_default_matmul_precision or "default",
            "xla_flags": flags or "none",
            "numeric_xla_flags": [f for f in flags.split() if any(k in f for k in _NUMERIC_XLA_FLAGS)],
        }
        return out
