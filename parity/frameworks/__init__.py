"""Framework adapters: one module per framework, same names in each.

Each module defines ``Adapter(device)`` with:

``lib``             the imported framework module
``version``         its version string
``tensor(arr)``     a NumPy array -> a framework tensor on the adapter's device
``numpy(t)``        a framework tensor -> a NumPy array (host memory)
``scope()``         context manager to run an op in (device placement, no autograd)
``assign(p, arr)``  set a parameter (weight, running statistic) to the case's values
``recover()``       clean up after a call that raised, before the next one
``vjp(forward, inputs, wrt, upstream)``  vector-Jacobian products of forward(tensors) -> (y, sources)
``info()``          environment facts recorded with every result (threads, flags, device)
``UNSUPPORTED``     regexes: messages meaning "no such op / dtype / device here"

Only worker processes import these modules; the parent uses the light helpers below.
"""

from __future__ import annotations

import importlib
import importlib.util

#: framework name -> the Python module it imports
MODULES = {"torch": "torch", "tensorflow": "tensorflow", "mindspore": "mindspore", "onnxruntime": "onnxruntime",
           "jax": "jax"}
NAMES = tuple(MODULES)
DEVICES = ("cpu", "gpu")
#: framework name -> the other modules its spellings need (onnxruntime's models are built with
#: the onnx package; jax's spellings are Flax's layers)
ALSO_NEEDS = {"onnxruntime": ("onnx",), "jax": ("flax",)}


def installed(name: str) -> bool:
    """Whether the framework (and what its spellings need) can be found, without importing it."""
    try:
        return all(importlib.util.find_spec(m) is not None for m in (MODULES[name], *ALSO_NEEDS.get(name, ())))
    except (ImportError, ValueError):
        return False


def load(name: str, device: str):
    """Import the framework (worker side only) and return its adapter for ``device``."""
    module = importlib.import_module(f"parity.frameworks.{name}")
    return module.Adapter(device)
