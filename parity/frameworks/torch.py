"""PyTorch adapter."""

from __future__ import annotations

import contextlib

import numpy as np

from parity.ops.base import Unsupported

UNSUPPORTED = (
    r"not implemented for '",           # no kernel for this dtype on this device, e.g. 'Half' on CPU
    r"Torch not compiled with CUDA",
)


class Adapter:
    name = "torch"
    UNSUPPORTED = UNSUPPORTED

    def __init__(self, device: str):
        import torch

        self.lib = torch
        self.version = torch.__version__
        if device == "cpu":
            self.device = torch.device("cpu")
        elif device == "gpu":
            if not torch.cuda.is_available():
                build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
                raise Unsupported(f"torch.cuda.is_available() is False (torch {torch.__version__}, {build})")
            self.device = torch.device("cuda")
        else:
            raise Unsupported(f"unknown device {device!r}")

    def tensor(self, arr: np.ndarray):
        # a private, writable, C-ordered copy (arrays from the wire are read-only views);
        # NumPy has no bfloat16: it travels as float32 (exactly) and is rounded back here
        if arr.dtype.name == "bfloat16":
            return self.lib.from_numpy(np.asarray(arr, np.float32)).to(self.device, self.lib.bfloat16)
        return self.lib.from_numpy(np.array(arr, order="C", copy=True)).to(self.device)

    def numpy(self, t) -> np.ndarray:
        t = t.detach().cpu()
        if t.dtype == self.lib.bfloat16:
            import ml_dtypes

            return t.float().numpy().astype(ml_dtypes.bfloat16)
        return t.numpy()

    def param_dtype(self, x: np.ndarray):
        """The dtype of a module's parameters for input x: float64 for float64, else float32
        (torch's CPU kernels take half-precision inputs with float32 parameters)."""
        return self.lib.float64 if x.dtype == np.float64 else self.lib.float32

    def assign(self, parameter, arr: np.ndarray) -> None:
        """Set a module's parameter or buffer to the case's values (cast to its dtype)."""
        with self.lib.no_grad():
            parameter.copy_(self.tensor(arr))

    @contextlib.contextmanager
    def scope(self):
        with self.lib.no_grad():
            yield
        if self.device.type == "cuda":
            self.lib.cuda.synchronize()

    def vjp(self, forward, inputs: dict, wrt: list[str], upstream: np.ndarray) -> dict:
        """Vector-Jacobian products of y = forward(tensors) with ``upstream``, by autograd."""
        ts = {k: self.tensor(v) for k, v in inputs.items()}
        for k in wrt:
            ts[k].requires_grad_(True)
        y, sources = forward(ts)
        targets = [(sources or {}).get(k, ts[k]) for k in wrt]
        grads = self.lib.autograd.grad(y, targets, grad_outputs=self.tensor(upstream).to(y.dtype), allow_unused=True)
        return {k: (self.numpy(g) if g is not None else np.zeros_like(inputs[k])) for k, g in zip(wrt, grads)}

    def recover(self) -> None:
        """Nothing to clean up after a failed call (see mindspore.py)."""

    def info(self) -> dict:
        torch = self.lib
        out = {
            "device": str(self.device),
            "threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(),
            "mkldnn": bool(torch.backends.mkldnn.is_available()),
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            # the kernels ATen dispatched to on this CPU (ATEN_CPU_CAPABILITY caps it)
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            **_build_facts(torch),
        }
        if self.device.type == "cuda":
            out.update(
                device_name=torch.cuda.get_device_name(self.device),
                cuda=torch.version.cuda,
                cudnn=torch.backends.cudnn.version(),
                allow_tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
                allow_tf32_cudnn=torch.backends.cudnn.allow_tf32,
                cudnn_deterministic=torch.backends.cudnn.deterministic,
            )
        return out


def _build_facts(torch) -> dict:
    """The libraries this build of torch computes with (from ``torch.__config__.show()``)."""
    facts = {}
    for line in torch.__config__.show().splitlines():
        line = line.strip(" -")
        if line.startswith("Intel(R) MKL-DNN") or line.startswith("oneDNN"):
            facts["onednn"] = line.split("(Git")[0].strip()
        elif "Math Kernel Library" in line:
            facts["mkl"] = line.split("-Product")[0].strip()
        elif line.startswith("OpenMP"):
            facts["openmp"] = line
    return facts
