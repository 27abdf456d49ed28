"""MindSpore adapter (PyNative mode)."""

from __future__ import annotations

import contextlib
import os

import numpy as np

from parity.ops.base import Unsupported

# GLOG_v=3 keeps MindSpore's C++ logs to errors; Python exceptions are untouched.
os.environ.setdefault("GLOG_v", "3")

UNSUPPORTED = (
    r"must be a type of \{",                 # dtype not in the primitive's type list
    r"Unsupported device target",
    r"not support(ed)? on (CPU|GPU|this device)",
    r"Unsupported op \[",                    # "Unsupported op [InstanceNorm] on CPU"
    r"[Kk]ernel \S+ unregistered",           # "The kernel RmsNorm unregistered."
    r"Create kernelmod for op \S+ failed",
    r"KernelMod Init Failed",
    r"Unsupported data type",
    r"bfloat16 data type is not supported",
)


class Adapter:
    name = "mindspore"
    UNSUPPORTED = UNSUPPORTED

    def __init__(self, device: str):
        import mindspore as ms

        self.lib = ms
        self.version = ms.__version__
        target = {"cpu": "CPU", "gpu": "GPU"}.get(device)
        if target is None:
            raise Unsupported(f"unknown device {device!r}")
        ms.set_context(mode=ms.PYNATIVE_MODE)
        try:
            ms.set_device(target)
        except (RuntimeError, ValueError) as exc:
            raise Unsupported(str(exc).split("\n\n")[0]) from None
        self.device = target
        self._made: dict = {}  # stateless()'s callables
        # Synchronous launch: each kernel runs inside the call that made it, so a failing kernel
        # fails in its own run (not in a later one) and no asynchronous pipeline thread hands
        # every op over. Each run ends with a synchronize anyway (scope), so nothing overlapped.
        # On a 2-core CPU one small LRN call took 0.40 ms of wall time and 0.8 ms of CPU
        # this way, against 4.2 ms and 8.3 ms asynchronously (README, "Performance").
        ms.runtime.launch_blocking()
        self.warmup = self._numpy_abi_warmup()

    def stateless(self, name: str, args: dict, make):
        """The callable ``make()`` builds (a primitive or a cell without parameters: nn.LRN,
        ops.LRN), made once per ``name`` and ``args`` and reused, as a model calls its layers:
        a new nn.LRN costs its construction and a kernel made again at its first call (a small
        LRN call took 412 us of wall time and 821 us of CPU with a new cell, 154 us and 308 us
        with one reused). Forgotten after any failed call (``recover``)."""
        key = (name, tuple((k, type(v).__name__, repr(v)) for k, v in sorted(args.items())))
        made = self._made.get(key)
        if made is None:
            made = make()
            if len(self._made) >= 256:
                self._made.clear()
            self._made[key] = made
        return made

    def _numpy_abi_warmup(self) -> str:
        """MindSpore 2.10 wheels are built against NumPy 1.x. Under NumPy 2 the first op
        that takes a tuple argument in a process raises SystemError ("returned a result
        with an exception set") and later calls work. Make that first call here, so no
        run inherits it, and record what happened (tests/test_frameworks.py checks it)."""
        try:
            self.lib.ops.reshape(self.lib.Tensor(np.zeros(1, np.float32)), (1,))
        except SystemError as exc:
            return f"first tuple-argument op raised SystemError: {str(exc)[:120]}"
        return "none needed"

    def tensor(self, arr: np.ndarray):
        if arr.dtype.name == "bfloat16":  # via float32, exactly
            return self.lib.Tensor(np.asarray(arr, np.float32)).astype(self.lib.bfloat16)
        return self.lib.Tensor(np.asarray(arr, order="C"))

    def numpy(self, t) -> np.ndarray:
        if t.dtype == self.lib.bfloat16:  # asnumpy() refuses bfloat16 under NumPy 2
            import ml_dtypes

            return t.astype(self.lib.float32).asnumpy().astype(ml_dtypes.bfloat16)
        return t.asnumpy()

    def param_dtype(self, x: np.ndarray):
        """The dtype of a cell's parameters for input x (the cells' ``dtype=`` argument, float32
        by default): float64 for float64 inputs, so that a float64 case's weights are not
        rounded to float32; else float32."""
        return self.lib.float64 if x.dtype == np.float64 else self.lib.float32

    def assign(self, parameter, arr: np.ndarray) -> None:
        parameter.set_data(self.tensor(arr).astype(parameter.dtype))

    @contextlib.contextmanager
    def scope(self):
        yield
        # PyNative runs asynchronously: make a failing kernel fail inside this run
        self.lib.runtime.synchronize()

    def vjp(self, forward, inputs: dict, wrt: list[str], upstream: np.ndarray) -> dict:
        """Vector-Jacobian products of y = forward(tensors) with ``upstream``, by mindspore.vjp."""
        fixed = {k: self.tensor(v) for k, v in inputs.items() if k not in wrt}

        def fn(*args):
            ts = dict(fixed)
            ts.update(zip(wrt, args))
            return forward(ts)[0]

        y, pullback = self.lib.vjp(fn, *[self.tensor(inputs[k]) for k in wrt])
        grads = pullback(self.tensor(upstream).astype(y.dtype))
        grads = grads if isinstance(grads, tuple) else (grads,)
        out = {k: self.numpy(g) for k, g in zip(wrt, grads)}
        self.lib.runtime.synchronize()
        return out

    def recover(self) -> None:
        """After a failed call: drain errors the asynchronous runtime still holds (an op with
        two outputs, such as rms_norm, raises once per output), so the next call starts clean;
        and make every reused callable again (``stateless``)."""
        self._made.clear()
        for _ in range(4):
            try:
                self.lib.runtime.synchronize()
                return
            except Exception:  # noqa: BLE001 - the failure was already reported by the run
                continue

    def info(self) -> dict:
        ms = self.lib
        out = {"device": self.device, "mode": "PYNATIVE", "numpy_abi_warmup": self.warmup, "commit": _commit_id(ms)}
        with contextlib.suppress(Exception):  # a private accessor: read back what was set, where it exists
            from mindspore._c_expression import RuntimeConf

            out["launch_blocking"] = bool(RuntimeConf.get_instance().is_launch_blocking())
        with contextlib.suppress(Exception):  # a build without the context key: leave it out
            out["runtime_num_threads"] = ms.get_context("runtime_num_threads")
        out.update(_onednn(ms))
        return out


#: oneDNN's dnnl_cpu_isa_t values (dnnl_types.h), for the ISA its kernels run with
_DNNL_ISA = {0x0: "default", 0x1: "sse41", 0x3: "avx", 0x7: "avx2", 0xF: "avx2_vnni", 0x1F: "avx2_vnni_2",
             0x27: "avx512_core", 0x67: "avx512_core_vnni", 0xE7: "avx512_core_bf16", 0x1EF: "avx10_1_512",
             0xFEF: "avx10_1_512_amx", 0x1FEF: "avx10_1_512_amx_fp16"}


def _commit_id(ms) -> str | None:
    path = os.path.join(os.path.dirname(ms.__file__), ".commit_id")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().split("=", 1)[-1].strip().strip("'\"") or None
    except OSError:
        return None


def _onednn(ms) -> dict:
    """The oneDNN that mindspore's CPU kernels (LRN among them) run on: its version and the
    ISA it dispatches to on this CPU (ONEDNN_MAX_CPU_ISA caps it)."""
    import ctypes
    import glob

    libs = sorted(glob.glob(os.path.join(os.path.dirname(ms.__file__), "lib", "libdnnl.so*")))
    if not libs:
        return {}

    class Version(ctypes.Structure):
        _fields_ = [("major", ctypes.c_int), ("minor", ctypes.c_int), ("patch", ctypes.c_int),
                    ("hash", ctypes.c_char_p), ("cpu_runtime", ctypes.c_uint), ("gpu_runtime", ctypes.c_uint)]

    try:
        lib = ctypes.CDLL(libs[0])
        lib.dnnl_version.restype = ctypes.POINTER(Version)
        lib.dnnl_get_effective_cpu_isa.restype = ctypes.c_int
        v = lib.dnnl_version().contents
        isa = lib.dnnl_get_effective_cpu_isa()
    except (OSError, AttributeError, ValueError):
        return {}
    return {"onednn": f"{v.major}.{v.minor}.{v.patch}", "onednn_isa": _DNNL_ISA.get(isa, hex(isa))}
