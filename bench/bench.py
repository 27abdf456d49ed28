"""parity's benchmark (`make bench`): what the harness costs beyond the frameworks' own calls.

Measured in one run, on this machine:

  a. the default suite, `parity run cases/` with its reports and stored results, against
     bench/bare_suite.py (the same framework calls in one process: no workers, reference,
     comparison, report or stored results);
  b. the AlexNet LRN case alone (32x95x55x55 float32: with 96 channels mindspore fails), likewise;
  c. every op's float64 reference (with its rounding bound, as parity computes them) against
     torch's own float32 op on the same input;
  d. the comparator's throughput in GB/s of float32 pairs, the minor page faults of one call
     (about none: its working arrays are made once; thousands mean temporaries the allocator
     gave back to the kernel chunk by chunk, which cost 4-5x the time on some machines), and
     its peak memory as a multiple of the arrays it compares.

Writes reports/bench.json and prints a table. Not a test: nothing here fails on a slow
machine; the targets are printed next to the figures.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GLOG_v", "3")

from parity import ops  # noqa: E402
from parity.compare import metrics  # noqa: E402

PY = sys.executable
ALEXNET = ROOT / "cases" / "lrn" / "alexnet-95-channels.yaml"
SHAPE = (32, 96, 55, 55)


def wall(cmd: list[str]) -> tuple[float, dict]:
    start = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if p.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    last = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else "{}"
    try:
        info = json.loads(last)
    except json.JSONDecodeError:
        info = {}
    return seconds, info


def best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def suite_ratio(paths: list[str]) -> dict:
    """parity as `make parity` runs it (reports and stored results, in a scratch directory)
    against the bare script."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        harness, _ = wall([PY, "-m", "parity", "run", *paths, "-q", "--report-dir", scratch])
    bare, info = wall([PY, str(ROOT / "bench" / "bare_suite.py"), *paths])
    return {"harness_s": harness, "bare_s": bare, "ratio": harness / bare, "bare_phases": info}


def reference_vs_torch() -> list[dict]:
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    x = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    xt = torch.from_numpy(x)
    shapes = {"x": SHAPE}
    calls = {
        "lrn": ({"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0},
                lambda: torch.nn.functional.local_response_norm(xt, 5, 1e-4, 0.75, 2.0)),
        "instance_norm": ({}, lambda: torch.nn.functional.instance_norm(xt)),
        "group_norm": ({"num_groups": 32}, lambda: torch.nn.functional.group_norm(xt, 32)),
        "batch_norm": ({"training": True},
                       lambda: torch.nn.functional.batch_norm(xt, torch.zeros(96), torch.ones(96), training=True)),
        "layer_norm": ({"normalized_shape": [55, 55]}, lambda: torch.nn.functional.layer_norm(xt, (55, 55))),
        "rms_norm": ({"normalized_shape": [55, 55]}, lambda: torch.nn.functional.rms_norm(xt, (55, 55))),
    }
    out = []
    with torch.no_grad():
        for name, (params, torch_call) in calls.items():
            op = ops.get(name)
            form = op.form(params, shapes, "float32")
            ref = best(lambda: op.reference_and_bound({"x": x}, form, "float32"))
            alone = best(lambda: op.reference({"x": x}, form))
            tch = best(torch_call)
            out.append({"op": name, "reference_s": alone, "reference_and_bound_s": ref, "torch_fp32_s": tch,
                        "ratio": alone / tch, "ratio_with_bound": ref / tch})
    return out


def one_thread():
    """The comparator on one core: its thread pool of one worker, for the measurement."""
    import concurrent.futures

    from parity import parallel

    old = parallel._POOL
    parallel._POOL = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    return old


def memory_bandwidth(a: np.ndarray, b: np.ndarray) -> float:
    """GB/s this machine streams float32 data with, on one thread: read two arrays larger than
    the caches and write a third (np.add a + b -> c), counted as the bytes moved."""
    out = np.empty_like(a)
    t = best(lambda: np.add(a, b, out=out))
    return 3 * a.nbytes / t / 1e9


def comparator() -> dict:
    from parity import parallel

    old_pool = one_thread()
    try:
        return _comparator()
    finally:
        parallel._POOL = old_pool


def _comparator() -> dict:
    rng = np.random.default_rng(1)
    a = rng.standard_normal(SHAPE).astype(np.float32)
    b = (a.astype(np.float64) * (1 + 1e-7)).astype(np.float32)
    ref = a.astype(np.float64) * (1 + 3e-8)
    bound = np.abs(ref) * 1e-6
    metrics(a, b, "float32", 1e-5, 1.3e-6)  # this thread's working arrays made (metrics._Scratch)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    pair = best(lambda: metrics(a, b, "float32", 1e-5, 1.3e-6))
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / 3
    vs_ref = best(lambda: metrics(a, ref, "float32", 1e-5, 1.3e-6, bound))
    detailed = best(lambda: metrics(a, ref, "float32", 1e-5, 1.3e-6, bound, detail=True))
    tracemalloc.start()
    metrics(a, ref, "float32", 1e-5, 1.3e-6, bound)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    compared = a.nbytes + ref.nbytes + bound.nbytes
    bandwidth = memory_bandwidth(a, b)
    return {
        "threads": 1,
        "memory_gb_per_s": bandwidth,
        "pair_share_of_bandwidth": (a.nbytes + b.nbytes) / pair / 1e9 / bandwidth,
        "elements": a.size,
        "pair_float32_s": pair,
        "pair_gb_per_s": (a.nbytes + b.nbytes) / pair / 1e9,
        "pair_page_faults": faults,
        "vs_reference_s": vs_ref,
        "vs_reference_gb_per_s": (a.nbytes + a.nbytes) / vs_ref / 1e9,
        "with_drill_down_s": detailed,
        "with_drill_down_gb_per_s": (a.nbytes + a.nbytes) / detailed / 1e9,
        "peak_extra_bytes": peak,
        "peak_over_compared": peak / compared,
    }


def main() -> int:
    print("measuring (a few minutes): the suite, the AlexNet case, references, the comparator ...", flush=True)
    result = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "suite": suite_ratio(["cases"]),
        "alexnet": suite_ratio([str(ALEXNET)]),
        "references": reference_vs_torch(),
        "comparator": comparator(),
    }
    result["peak_rss_children_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    out = ROOT / "reports" / "bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1))

    s, a, c = result["suite"], result["alexnet"], result["comparator"]
    rows = [
        ("default suite: parity / bare", f"{s['harness_s']:.2f} s / {s['bare_s']:.2f} s", f"{s['ratio']:.2f}x", "<= 1.2x"),
        ("AlexNet LRN case: parity / bare", f"{a['harness_s']:.2f} s / {a['bare_s']:.2f} s", f"{a['ratio']:.2f}x",
         "<= 1.2x"),
    ]
    for r in result["references"]:
        rows.append((f"{r['op']}: float64 reference / torch fp32", f"{r['reference_s'] * 1e3:.0f} ms / "
                     f"{r['torch_fp32_s'] * 1e3:.0f} ms", f"{r['ratio']:.2f}x", "<= 1x" if r["op"] == "lrn" else ""))
        rows.append((f"{r['op']}: reference + rounding bound / torch", f"{r['reference_and_bound_s'] * 1e3:.0f} ms",
                     f"{r['ratio_with_bound']:.2f}x", ""))
    rows += [
        ("comparator (1 thread), float32 pair", f"{c['pair_float32_s'] * 1e3:.0f} ms",
         f"{c['pair_gb_per_s']:.2f} GB/s", ">= 1 GB/s"),
        ("  ... share of the memory bandwidth (np.add streams)", f"{c['memory_gb_per_s']:.1f} GB/s",
         f"{c['pair_share_of_bandwidth']:.2f}", ""),
        ("  ... minor page faults per call (temporaries given back", f"{c['pair_page_faults']:.0f}",
         "", "about 0"),
        ("      to the kernel and faulted in again)", "", "", ""),
        ("comparator, vs float64 reference + bound", f"{c['vs_reference_s'] * 1e3:.0f} ms",
         f"{c['vs_reference_gb_per_s']:.2f} GB/s", ">= 1 GB/s"),
        ("comparator, + drill-down data (as parity runs it)", f"{c['with_drill_down_s'] * 1e3:.0f} ms",
         f"{c['with_drill_down_gb_per_s']:.2f} GB/s", ""),
        ("comparator peak memory / arrays compared", f"{c['peak_extra_bytes'] / 2**20:.0f} MiB",
         f"{c['peak_over_compared']:.2f}x", "<= 3x"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\n{'measure':<{width}}  {'time':<24}  {'figure':<12}  target")
    for name, t, fig, target in rows:
        print(f"{name:<{width}}  {t:<24}  {fig:<12}  {target}")
    print(f"\nwritten to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
