"""The floor for a large suite of small LRN cases: the same framework calls with no harness.

One process imports torch, tensorflow and mindspore and, for each case that bench/scale.py
writes (``scale_cases``: shape [2, C, 6, 6], C = 4..11, size 3/5/7, seed i), draws the same
input (float64 PCG64 normals rounded to float32), makes the same calls parity makes (torch
nn.LocalResponseNorm, tensorflow raw_ops.LRN on NHWC, mindspore nn.LRN: one cell per parameter
set, reused, as parity's worker does), computes the same float64 reference and compares every
framework with it and with each other (max abs and the mismatch count against parity's default
float32 tolerance). No workers, validation, store or reports.

    .venv/bin/python bench/bare_scale.py N
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GLOG_v", "3")
# as parity's workers run (runner.Worker._env): idle OpenMP threads sleep instead of spinning.
# Without it this one process is slower (its torch threads spin while tensorflow and
# mindspore compute: 2,000 small cases took about 1.5x as long), and a ratio to it flattered parity.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
start = time.perf_counter()

import numpy as np  # noqa: E402

import mindspore as ms  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

ms.set_context(mode=ms.PYNATIVE_MODE)
# as parity's mindspore worker runs (frameworks/mindspore.py): kernels launched synchronously
ms.runtime.launch_blocking()
imported = time.perf_counter()
TOL = 16 * 2.0**-23


def spec(i: int) -> tuple[int, int]:
    """(channels, LRN size) of case i: the same as bench/scale.py's scale_cases."""
    return 4 + i % 8, 3 + 2 * (i % 3)


def reference(x, n, alpha, beta, k):
    x = x.astype(np.float64)
    sq = x * x
    s = sq.copy()
    below, above = n // 2, (n - 1) // 2
    for d in range(1, min(below, x.shape[1] - 1) + 1):
        s[:, d:] += sq[:, :-d]
    for d in range(1, min(above, x.shape[1] - 1) + 1):
        s[:, :-d] += sq[:, d:]
    return x / (k + alpha / n * s) ** beta


def compare(a, b):
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return float(d.max()), int(np.count_nonzero(d > TOL + TOL * np.maximum(np.abs(a), np.abs(b))))


def main(n_cases: int) -> None:
    alpha, beta, k = 1e-4, 0.75, 2.0
    worst = 0.0
    cells = {}  # as parity's mindspore worker (Adapter.stateless): one nn.LRN per parameter set, reused
    for i in range(n_cases):
        c, n = spec(i)
        rng = np.random.Generator(np.random.PCG64(i))
        x = rng.standard_normal(2 * c * 36).reshape(2, c, 6, 6).astype(np.float32)
        ref = reference(x, n, alpha, beta, k)
        r = (n - 1) // 2
        cell = cells.get(n)
        if cell is None:
            cell = cells[n] = ms.nn.LRN(depth_radius=r, bias=k, alpha=alpha / n, beta=beta)
        outs = {
            "torch": torch.nn.LocalResponseNorm(n, alpha, beta, k)(torch.from_numpy(x)).numpy(),
            "tensorflow": np.moveaxis(tf.raw_ops.LRN(input=tf.constant(np.moveaxis(x, 1, -1)), depth_radius=r,
                                                     bias=k, alpha=alpha / n, beta=beta).numpy(), -1, 1),
            "mindspore": cell(ms.Tensor(x)).asnumpy(),
        }
        names = list(outs)
        for j, a in enumerate(names):
            worst = max(worst, compare(outs[a], ref)[0])
            for b in names[j + 1:]:
                worst = max(worst, compare(outs[a], outs[b])[0])
    done = time.perf_counter()
    print(f'{{"import_s": {imported - start:.3f}, "calls_s": {done - imported:.3f}, "cases": {n_cases}, '
          f'"worst_max_abs": {worst!r}}}')


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
