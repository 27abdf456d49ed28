"""A test-only operator that misbehaves on purpose (enabled by PARITY_TEST_OPS=1).

``fault`` computes y = 2 * x through the framework, except that its ``mode``
parameter makes it raise, abort the worker process, crash it with a segmentation
fault, exit, hang, return the wrong
shape or dtype, fail an allocation (``oom``) or die as the out-of-memory killer
would kill it (``oom_kill``, SIGKILL); ``grad_mode`` does the same for its gradient
(``raise``, ``unsupported``). The tests use it to check that each misbehaviour becomes a
verdict and that every other result is kept. It is never registered in normal use.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field

import numpy as np

from parity import frameworks
from parity.ops.base import Backend, Form, Op, Spelling

MODES = ["ok", "raise", "abort", "segfault", "exit", "hang", "wrong_shape", "wrong_dtype", "unsupported", "oom", "oom_kill"]


@dataclass(frozen=True)
class FaultForm(Form):
    scale: float = field(metadata={"label": "scale"})


def _run(fw, inputs, p):
    mode = p.get("mode", "ok")
    if mode == "raise":
        raise RuntimeError("injected failure: the framework raised")
    if mode == "unsupported":
        raise RuntimeError("injected: this op is not supported on this device")
    if mode == "abort":
        os.abort()
    if mode == "segfault":  # a real invalid memory read
        import ctypes

        ctypes.string_at(0)
    if mode == "exit":
        os._exit(3)
    if mode == "hang":
        time.sleep(3600)
    if mode == "oom":  # an allocation the machine cannot satisfy (8 TiB): MemoryError
        np.ones(1 << 40, dtype=np.float64)
    if mode == "oom_kill":  # what the kernel's out-of-memory killer does to a process
        os.kill(os.getpid(), signal.SIGKILL)
    with fw.scope():
        y = fw.numpy(fw.tensor(inputs["x"]) * 2)
    if mode == "wrong_shape":
        y = y.reshape(-1)
    if mode == "wrong_dtype":
        y = y.astype(np.float64)
    return {"y": y}


GRAD_MODES = ["ok", "raise", "unsupported"]


def _grad(fw, ts, p):
    mode = p.get("grad_mode", "ok")
    if mode == "raise":
        raise RuntimeError("injected failure: the gradient raised")
    if mode == "unsupported":
        raise RuntimeError("injected: this gradient is not supported on this device")
    return ts["x"] * 2, None


_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"mode": {"enum": MODES, "default": "ok"}, "grad_mode": {"enum": GRAD_MODES, "default": "ok"}},
}


_UNSUPPORTED = (r"not supported on this device",)


def _to_form(p, shapes, spelling, dtype) -> FaultForm:
    return FaultForm(scale=2.0)


def _from_form(form: FaultForm, shapes) -> dict:
    return {}


def _backend(framework: str) -> Backend:
    """fault in one framework: y = 2x through the adapter API every framework has."""
    return Backend(_SCHEMA, _to_form, _from_form,
                   spellings=(Spelling(framework, "fault", _run, _UNSUPPORTED),),
                   grad=Spelling(framework, "2 * x", _grad, _UNSUPPORTED))


class Fault(Op):
    name = "fault"
    summary = "test only: y = 2x, or a chosen misbehaviour"
    params_schema = _SCHEMA
    backends = {fw: _backend(fw) for fw in frameworks.NAMES}  # every framework parity runs
    differentiable = ("x",)

    def native_for(self, framework, params, shapes=None, dtype=None):
        return self.with_defaults(_SCHEMA, params)

    def reference_and_bound(self, inputs, form, dtype):
        return {"y": np.asarray(inputs["x"], np.float64) * form.scale}, {}

    def reference_vjp(self, inputs, form, upstream):
        grad = form.scale * np.asarray(upstream, np.float64)
        return {"grad_x": grad}, {"grad_x": np.abs(grad)}
