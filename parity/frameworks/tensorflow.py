"""TensorFlow adapter (tensorflow-cpu, or a GPU build when installed)."""

from __future__ import annotations

import contextlib
import os

import numpy as np

from parity.ops.base import Unsupported

# C++ log noise only; Python exceptions are untouched.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

UNSUPPORTED = (
    r"Could not find device for node",      # no kernel for this dtype/device
    r"No OpKernel was registered",
    r"Value for attr '\w+' of \w+ is not in the list of allowed values",  # the op takes no such dtype
)


class Adapter:
    name = "tensorflow"
    UNSUPPORTED = UNSUPPORTED

    def __init__(self, device: str):
        import tensorflow as tf

        self.lib = tf
        self.version = tf.__version__
        if device == "cpu":
            self.device = "/CPU:0"
        elif device == "gpu":
            gpus = tf.config.list_physical_devices("GPU")
            if not gpus:
                raise Unsupported(f"tf.config.list_physical_devices('GPU') is empty (tensorflow {tf.__version__}, "
                                  f"built with CUDA: {tf.test.is_built_with_cuda()})")
            self.device = "/GPU:0"
        else:
            raise Unsupported(f"unknown device {device!r}")

    def tensor(self, arr: np.ndarray):
        with self.lib.device(self.device):
            return self.lib.constant(np.asarray(arr, order="C"))

    def numpy(self, t) -> np.ndarray:
        return np.asarray(t)

    @property
    def keras(self):
        """Keras 3 (its TensorFlow backend), imported on first use."""
        import keras

        return keras

    def assign(self, variable, arr: np.ndarray) -> None:
        variable.assign(self.lib.cast(self.tensor(arr), variable.dtype))

    @contextlib.contextmanager
    def scope(self):
        with self.lib.device(self.device):
            yield

    def vjp(self, forward, inputs: dict, wrt: list[str], upstream: np.ndarray) -> dict:
        """Vector-Jacobian products of y = forward(tensors) with ``upstream``, by GradientTape
        (keras layers' weights are variables: forward returns them as the sources)."""
        tf = self.lib
        with tf.device(self.device):
            ts = {k: self.tensor(v) for k, v in inputs.items()}
            with tf.GradientTape() as tape:
                for k in wrt:
                    tape.watch(ts[k])
                y, sources = forward(ts)
            targets = [(sources or {}).get(k, ts[k]) for k in wrt]
            grads = tape.gradient(y, targets, output_gradients=tf.cast(self.tensor(upstream), y.dtype))
        return {k: (self.numpy(tf.cast(g, ts[k].dtype)) if g is not None else np.zeros_like(inputs[k]))
                for k, g in zip(wrt, grads)}

    def recover(self) -> None:
        """Nothing to clean up after a failed call (see mindspore.py)."""

    def info(self) -> dict:
        tf = self.lib
        return {
            "device": self.device,
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
            "onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
            # whether oneDNN kernels are in use: tensorflow turns them on by default only on CPUs
            # with AVX-512 VNNI/BF16 or AMX, so an AVX2 machine runs other kernels
            "onednn_enabled": _onednn_enabled(),
            "deterministic_ops": os.environ.get("TF_DETERMINISTIC_OPS", "default (off)"),
            "built_with_cuda": bool(tf.test.is_built_with_cuda()),
            "keras_backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
        }


def _onednn_enabled() -> bool | None:
    try:
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return None
