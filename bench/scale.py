"""What a large suite costs: N small LRN cases through `parity run`, against a bare loop.

For each N (default 2,000 and 10,000) it writes N case files (shape [2, C, 6, 6], C = 4..11,
size 3/5/7, seed i; torch, tensorflow and mindspore: 6 comparisons each), then measures, in
one run, with the two commands in turn (parity, bare, parity, bare for ``--pairs 2``):

  a. `parity run DIR` as a user runs it (its reports and results store included), wall
     seconds, against bench/bare_scale.py (the same framework calls and float64 comparison in
     one process, no harness): the ratio and the overhead per case in ms;
  b. `parity report STORE` of the stored suite (no framework runs): seconds;
  c. the size of parity.html and parity.json per comparison, and of the store;
  d. the peak memory (ru_maxrss of the parity process alone: the workers are its children
     and are not counted) of `parity run` at 2,000 and 10,000 cases (bounded: the cases are
     handed to the report files as they finish, none is kept), and of `parity report` and
     its forked report writer (bounded too: the parent reads the store's manifest in pieces
     and builds, judges and hands on a case at a time);
  e. the CPU seconds (user + system) per case of each command: the whole parity run (its
     workers and report writer included), its parent process alone, and the bare loop. On a
     machine whose cores are all busy, wall time follows the CPU, and this says where it goes.

Prints a table and writes reports/bench-scale.json. Not a test: nothing here fails on a
slow machine; the targets (ratio <= 1.2, HTML <= 1 KB per comparison, report of 2,000 cases
in a few seconds) are printed beside the figures.

    .venv/bin/python bench/scale.py [--cases 2000 10000] [--pairs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
#: runs `parity` and prints on stderr's last line its own peak RSS (KiB), the peak of its forked
#: report writer (parity.report.WRITER_PEAK_KIB; 0 when there was none) and its own CPU seconds
#: (user + system, the parent process alone: its workers and writer are its children)
_PARENT_RSS = ("import resource, runpy, sys, atexit; "
               "atexit.register(lambda: print('maxrss_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
               "max(getattr(sys.modules.get('parity.report'), 'WRITER_PEAK_KIB', None) or [0]), "
               "(lambda u: u.ru_utime + u.ru_stime)(resource.getrusage(resource.RUSAGE_SELF)), file=sys.stderr)); "
               "sys.argv = ['parity'] + sys.argv[1:]; runpy.run_module('parity', run_name='__main__')")


def scale_cases(directory: Path, n: int) -> None:
    """The N case files bench/bare_scale.py mirrors."""
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        c, size = 4 + i % 8, 3 + 2 * (i % 3)
        (directory / f"c{i:05d}.yaml").write_text(
            f"name: scale/{i:05d}\nop: lrn\nparams: {{size: {size}, alpha: 1.0e-4, beta: 0.75, k: 2.0}}\n"
            f"inputs:\n  x: {{shape: [2, {c}, 6, 6], dtype: float32, seed: {i}}}\n"
            f"frameworks: [torch, tensorflow, mindspore]\n")


def _children_cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess, float]:
    """Wall seconds, the finished process, and the CPU seconds (user + system) of the command
    and every descendant it waited for (a parity run's workers and report writer included)."""
    # what earlier commands wrote (a store of thousands of files) goes to disk first, not during this one
    os.sync()
    cpu = _children_cpu()
    start = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "CI": "1"}, check=False)
    return time.perf_counter() - start, p, _children_cpu() - cpu


def measure(n: int, pairs: int, scratch: Path) -> dict:
    cases = scratch / f"cases-{n}"
    scale_cases(cases, n)
    harness, bare, rss, writer = [], [], [], []
    cpu, parent_cpu, bare_cpu = [], [], []
    for k in range(pairs):
        out = scratch / f"run-{n}-{k}"
        t, p, c = timed([PY, "-c", _PARENT_RSS, "run", str(cases), "-q", "--report-dir", str(out)])
        if p.returncode != 0:
            raise SystemExit(f"parity run failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
        harness.append(t)
        cpu.append(c)
        _, parent_kib, writer_kib, own_cpu = p.stderr.strip().splitlines()[-1].split()
        rss.append(int(parent_kib))
        writer.append(int(writer_kib))
        parent_cpu.append(float(own_cpu))
        t, p, c = timed([PY, str(ROOT / "bench" / "bare_scale.py"), str(n)])
        if p.returncode != 0:
            raise SystemExit(f"bare loop failed:\n{p.stderr[-2000:]}")
        bare.append(t)
        bare_cpu.append(c)
    report_dir = scratch / f"run-{n}-0"
    # counted from the JUnit file's root element: loading parity.json here would make this
    # process large, and a child's ru_maxrss starts from its parent's size at fork (it is
    # kept across exec), so the peak of the parity report below would read hundreds of MiB high
    with open(report_dir / "parity.junit.xml", encoding="utf-8") as f:
        comparisons = int(re.search(r'<testsuites [^>]*\btests="(\d+)"', f.read(4096)).group(1))
    t_report, p, _ = timed([PY, "-c", _PARENT_RSS, "report", str(report_dir / "results"), "--report-dir",
                            str(scratch / f"report-{n}")])
    _, report_kib, report_writer_kib, _ = p.stderr.strip().splitlines()[-1].split()
    store_bytes = sum(f.stat().st_size for f in (report_dir / "results").rglob("*") if f.is_file())
    ratios = [h / b for h, b in zip(harness, bare)]
    out = {
        "cases": n, "comparisons": comparisons, "pairs": pairs,
        "parity_run_s": harness, "bare_loop_s": bare, "ratio": sorted(ratios)[len(ratios) // 2],
        "overhead_ms_per_case": 1000 * (min(harness) - min(bare)) / n,
        # CPU seconds (user + system) of each run: parity's with its workers and report writer,
        # its parent process alone, and the bare loop's
        "parity_run_cpu_s": cpu, "parity_parent_cpu_s": parent_cpu, "bare_loop_cpu_s": bare_cpu,
        "parity_report_s": t_report, "parity_report_exit": p.returncode,
        "html_bytes_per_comparison": (report_dir / "parity.html").stat().st_size / comparisons,
        "json_bytes_per_comparison": (report_dir / "parity.json").stat().st_size / comparisons,
        "store_bytes_per_case": store_bytes / n,
        "parent_peak_rss_mib": max(rss) / 1024,
        "run_writer_peak_rss_mib": max(writer) / 1024,  # its forked report writer (0: none)
        "report_peak_rss_mib": int(report_kib) / 1024,
        "report_writer_peak_rss_mib": int(report_writer_kib) / 1024,
    }
    shutil.rmtree(cases)
    for k in range(pairs):
        shutil.rmtree(scratch / f"run-{n}-{k}", ignore_errors=True)
    return out


def _filesystem(path: str) -> str:
    """The type of the filesystem ``path`` is on (/proc/mounts' longest matching mount point)."""
    try:
        mounts = [line.split()[1:3] for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return "unknown"
    real = os.path.realpath(path)
    best = max((m for m in mounts if real == m[0] or real.startswith(m[0].rstrip("/") + "/")),
               key=lambda m: len(m[0]), default=("", "unknown"))
    return best[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, nargs="+", default=[2000, 10000])
    ap.add_argument("--pairs", type=int, default=1, help="parity/bare pairs per size (the median ratio is kept)")
    args = ap.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="parity-scale-") as tmp:
        for n in args.cases:
            print(f"{n} cases ...", file=sys.stderr, flush=True)
            results.append(measure(n, args.pairs, Path(tmp)))
        fs = _filesystem(tmp)
    out = ROOT / "reports" / "bench-scale.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"machine": {"cpus": os.cpu_count(), "scratch_filesystem": fs},
                               "results": results}, indent=1))
    print("| cases | comparisons | parity run (s) | bare loop (s) | ratio (target <= 1.2) | overhead per case | "
          "parity report (s) | HTML per comparison (target <= 1 KB) | JSON per comparison | store per case | "
          "parity run peak (its report writer's) | parity report peak (its forked writer's) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['cases']} | {r['comparisons']} | {min(r['parity_run_s']):.1f} | {min(r['bare_loop_s']):.1f} | "
              f"{r['ratio']:.2f}x | {r['overhead_ms_per_case']:.2f} ms | {r['parity_report_s']:.1f} | "
              f"{r['html_bytes_per_comparison'] / 1024:.2f} KB | {r['json_bytes_per_comparison'] / 1024:.2f} KB | "
              f"{r['store_bytes_per_case'] / 1024:.1f} KB | {r['parent_peak_rss_mib']:.0f} MiB "
              f"({r['run_writer_peak_rss_mib']:.0f} MiB) | "
              f"{r['report_peak_rss_mib']:.0f} MiB ({r['report_writer_peak_rss_mib']:.0f} MiB) |")
    print()
    print("CPU (user + system) per case, the run with the least wall time of each size:")
    print("| cases | parity run, every process | its parent process | its workers and report writer | bare loop |")
    print("| --- | --- | --- | --- | --- |")
    for r in results:
        k = r["parity_run_s"].index(min(r["parity_run_s"]))
        j = r["bare_loop_s"].index(min(r["bare_loop_s"]))
        per = 1000 / r["cases"]
        print(f"| {r['cases']} | {r['parity_run_cpu_s'][k] * per:.2f} ms | {r['parity_parent_cpu_s'][k] * per:.2f} ms | "
              f"{(r['parity_run_cpu_s'][k] - r['parity_parent_cpu_s'][k]) * per:.2f} ms | "
              f"{r['bare_loop_cpu_s'][j] * per:.2f} ms |")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
