"""ONNX Runtime adapter: every spelling is a one-node ONNX model, built with the ``onnx``
package and run in an ``InferenceSession``.

A spelling names its operator and version as ONNX does ("LRN-13": the model imports that
opset); ``run_node`` builds the model
(the operator in the default domain, imported at that opset, the lowest IR version that opset
needs), runs it on the CPU execution provider (CUDA where a GPU and an ORT GPU build exist)
with the session's default options, and returns the outputs. ONNX attributes are float32
(``AttributeProto.f``): a float64 model computes with its epsilon, alpha or momentum rounded
to float32, which the op files' mappings take into account.

ONNX Runtime's Python API runs inference only: gradients are UNSUPPORTED, with that reason.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

from parity.ops.base import Unsupported

UNSUPPORTED = (
    r"NOT_IMPLEMENTED : Could not find an implementation for",   # no kernel for this dtype (or opset)
    r"Type Error: Type 'tensor\(\w+\)' of input parameter \(\w+\) of operator \(\w+\) in node \(.*\) is invalid",
)

#: why there are no gradients (the worker reports it as UNSUPPORTED on the grad_* rows)
NO_GRADIENTS = ("onnxruntime's InferenceSession runs inference only: its Python API has no vector-Jacobian "
                "product (gradients need an onnxruntime-training build and a training graph, not a "
                "one-node inference model)")

#: numpy dtype name -> ONNX TensorProto element type name
_ELEM = {"float16": "FLOAT16", "bfloat16": "BFLOAT16", "float32": "FLOAT", "float64": "DOUBLE", "int64": "INT64"}


class Adapter:
    name = "onnxruntime"
    UNSUPPORTED = UNSUPPORTED

    def __init__(self, device: str):
        import onnx
        import onnxruntime as ort

        self.lib = ort
        self.onnx = onnx
        self.version = ort.__version__
        available = list(ort.get_available_providers())
        if device == "cpu":
            self.providers = ["CPUExecutionProvider"]
        elif device == "gpu":
            if "CUDAExecutionProvider" not in available:
                raise Unsupported(f"onnxruntime {ort.__version__} has no CUDAExecutionProvider (available: "
                                  f"{', '.join(available)}; device {ort.get_device()}): a GPU run needs the "
                                  f"onnxruntime-gpu build and a CUDA device")
            self.providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        else:
            raise Unsupported(f"unknown device {device!r}")
        self.device = device
        self.available = available
        self.options = ort.SessionOptions()

    # --- arrays -------------------------------------------------------------------------
    def tensor(self, arr: np.ndarray) -> np.ndarray:
        """ONNX Runtime takes NumPy arrays: a private C-ordered copy (bfloat16 stays ml_dtypes')."""
        return np.array(arr, order="C", copy=True)

    def numpy(self, t) -> np.ndarray:
        return np.asarray(t)

    def param_dtype(self, x: np.ndarray):
        """Parameters (scale, bias, running statistics) as the other frameworks hold them:
        float64 for float64 inputs, else float32 (where the operator's type constraints allow)."""
        return np.float64 if x.dtype == np.float64 else np.float32

    def assign(self, parameter, arr: np.ndarray) -> None:
        raise Unsupported("onnxruntime models take their parameters as inputs; there is nothing to assign")

    @contextlib.contextmanager
    def scope(self):
        yield

    # --- one-node models ----------------------------------------------------------------
    def model(self, op_type: str, opset: int, inputs: list, attrs: dict, outputs: list):
        """A one-node ONNX model: ``inputs`` [(name, array or None)] in the operator's input
        order (None: an omitted optional input, written as ""), ``outputs`` [(name, dtype)]."""
        onnx = self.onnx
        helper, proto = onnx.helper, onnx.TensorProto
        inputs = list(inputs)
        while inputs and inputs[-1][1] is None:  # trailing optional inputs are left out, not written as "":
            inputs.pop()  # onnxruntime 1.32's LayerNormalization segfaults on a trailing "" (tests/test_new_frameworks.py)
        given = [(n, a) for n, a in inputs if a is not None]
        node = helper.make_node(op_type, [n if a is not None else "" for n, a in inputs], [n for n, _ in outputs],
                                **attrs)
        graph = helper.make_graph(
            [node], f"parity_{op_type}",
            [helper.make_tensor_value_info(n, getattr(proto, _ELEM[a.dtype.name]), list(a.shape)) for n, a in given],
            [helper.make_tensor_value_info(n, getattr(proto, _ELEM[np.dtype(d).name]), None) for n, d in outputs])
        opsets = [helper.make_opsetid("", opset)]
        return helper.make_model(graph, opset_imports=opsets, producer_name="parity",
                                 ir_version=helper.find_min_ir_version_for(opsets))

    def run_node(self, op_type: str, opset: int, inputs: list, attrs: dict, outputs: list) -> dict:
        """Build the one-node model, run it in an InferenceSession, return {output: array}."""
        ort = self.lib
        model = self.model(op_type, opset, inputs, attrs, outputs)
        session = ort.InferenceSession(model.SerializeToString(), sess_options=self.options,
                                       providers=self.providers)
        given = {n: a for n, a in inputs if a is not None}
        if any(a.dtype.name == "bfloat16" for a in given.values()):
            return self._run_bfloat16(session, model, given, outputs)
        got = session.run([n for n, _ in outputs], given)
        return {n: np.asarray(v) for (n, _), v in zip(outputs, got)}

    def _run_bfloat16(self, session, model, given: dict, outputs: list) -> dict:
        """NumPy has no bfloat16 that onnxruntime's Python API converts: the inputs go in as
        OrtValues over their bits (uint16), and the outputs are bound to uint16 buffers of the
        shapes ONNX's shape inference gives, read back as ml_dtypes' bfloat16."""
        import ml_dtypes

        ort, proto = self.lib, self.onnx.TensorProto

        def value(arr):
            if arr.dtype == np.uint16:  # bfloat16 bits
                return ort.OrtValue.ortvalue_from_numpy_with_onnx_type(arr, proto.BFLOAT16)
            return ort.OrtValue.ortvalue_from_numpy(arr)

        binding = session.io_binding()
        keep = {n: np.ascontiguousarray(a).view(np.uint16) if a.dtype.name == "bfloat16" else np.ascontiguousarray(a)
                for n, a in given.items()}  # the OrtValues share these buffers
        for n, bits in keep.items():
            binding.bind_ortvalue_input(n, value(bits))
        inferred = self.onnx.shape_inference.infer_shapes(model, strict_mode=True)
        shapes = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in inferred.graph.output}
        buffers = {n: np.empty(shapes[n], np.uint16 if np.dtype(d).name == "bfloat16" else np.dtype(d))
                   for n, d in outputs}
        for n, buf in buffers.items():
            binding.bind_ortvalue_output(n, value(buf))
        session.run_with_iobinding(binding)
        return {n: (buffers[n].view(ml_dtypes.bfloat16) if np.dtype(d).name == "bfloat16" else buffers[n])
                for n, d in outputs}

    # --- gradients ----------------------------------------------------------------------
    def vjp(self, forward, inputs: dict, wrt: list[str], upstream: np.ndarray) -> dict:
        raise Unsupported(NO_GRADIENTS)

    def recover(self) -> None:
        """Nothing to clean up after a failed call: each run has its own session."""

    def info(self) -> dict:
        ort = self.lib
        so = self.options
        return {
            "device": self.device,
            "onnx": self.onnx.__version__,
            "providers_requested": list(self.providers),
            "providers_available": self.available,
            "ort_device": ort.get_device(),
            "graph_optimization_level": str(so.graph_optimization_level).split(".")[-1],
            "execution_mode": str(so.execution_mode).split(".")[-1],
            "intra_op_threads": so.intra_op_num_threads or "default (one per physical core)",
            "inter_op_threads": so.inter_op_num_threads or "default",
            "opset": "per spelling, in its name: the operator's opset, the lowest IR version it needs",
            "max_opset_onnx": self.onnx.defs.onnx_opset_version(),
            "build": getattr(ort, "get_build_info", lambda: None)(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "default"),
        }
