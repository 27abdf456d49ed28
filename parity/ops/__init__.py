"""Operator registry: one module per operator family."""

from __future__ import annotations

import os

from parity.ops.base import Backend, Form, NoExactMapping, Op, Spelling, UnknownFramework, Unsupported
from parity.ops.batch_norm import BatchNorm
from parity.ops.group_norm import GroupNorm
from parity.ops.instance_norm import InstanceNorm
from parity.ops.layer_norm import LayerNorm
from parity.ops.lrn import LRN
from parity.ops.rms_norm import RMSNorm

__all__ = ["Backend", "Form", "NoExactMapping", "Op", "Spelling", "UnknownFramework", "Unsupported", "fuzzable",
           "get", "names", "registry"]

_OPS: dict[str, Op] = {op.name: op for op in (LRN(), InstanceNorm(), GroupNorm(), BatchNorm(), LayerNorm(), RMSNorm())}

TEST_OPS_ENV = "PARITY_TEST_OPS"


def registry() -> dict[str, Op]:
    """Every operator, plus the fault-injection op when PARITY_TEST_OPS=1 (tests only)."""
    if os.environ.get(TEST_OPS_ENV) == "1":
        from parity.ops._testing import Fault

        return {**_OPS, Fault.name: Fault()}
    return _OPS


def names() -> list[str]:
    return sorted(registry())


def get(name: str) -> Op:
    return registry()[name]


def fuzzable() -> list[str]:
    """The operators with a fuzz strategy (``Op.fuzz``), in registry order: what ``parity fuzz`` takes."""
    return [name for name, op in registry().items() if op.fuzz is not None]
