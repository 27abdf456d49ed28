"""How the HTML report scales: its size per comparison and html.render's time, at 500 and
2,000 small cases (3,000 and 12,000 comparisons).

The frameworks run once: a few real small cases (passing ones, a declared semantic gap, an
undeclared FAIL, an UNSUPPORTED, a declared host-dependent ERROR and an undeclared ERROR of
the test-only fault op) go through ``parity.run``; their CaseReports are then replicated under
new names, in memory, to build each suite (mostly passing, as a real suite is: every
non-passing sample case appears once per 100 cases).

    .venv/bin/python bench/html_scale.py                  # 500 and 2000 cases
    .venv/bin/python bench/html_scale.py 500 2000 10000 --out /tmp/html   # also write the pages
    .venv/bin/python bench/html_scale.py --cache /tmp/sample.pickle       # reuse the runs

Prints, per suite: cases, comparisons, bytes, bytes per comparison and render seconds (best
of --repeat). Not a test: nothing fails; the target (1 KB per comparison, linear) is printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pickle
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PARITY_TEST_OPS", "1")  # the fault op: an undeclared ERROR with a traceback
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GLOG_v", "3")

import parity
from parity.report import (
    CaseReport,
    Report,
    html,
)

SHIPPED = ["group_norm/random-4d", "layer_norm/random-last-2", "batch_norm/random-4d", "instance_norm/random-2d",
           "lrn/alexnet-95-channels", "lrn/mindspore-doc-example", "lrn/even-size", "lrn/mindspore-one-channel"]
EXTRA = {
    "undeclared-gap": """
        name: bench/undeclared-gap
        op: lrn
        description: torch size=2 vs mindspore depth_radius=1, not declared
        params: {size: 2}
        native: {mindspore: {depth_radius: 1, bias: 1.0, alpha: 1.0e-4, beta: 0.75}}
        inputs: {x: {shape: [1, 4, 2, 2], dtype: float32}}
        frameworks: [torch, mindspore]
    """,
    "raises": """
        name: bench/torch-raises
        op: fault
        params: {mode: ok}
        native: {torch: {mode: raise}}
        inputs: {x: {shape: [2, 3], dtype: float32, seed: 1}}
        frameworks: [torch, tensorflow]
    """,
}


def sample(cache: Path | None) -> Report:
    if cache and cache.exists():
        return pickle.loads(cache.read_bytes())
    paths = []
    for name in SHIPPED:
        p = ROOT / "cases" / f"{name}.yaml"
        if p.exists():  # alexnet-95 is large; a trimmed checkout may lack some
            paths.append(p)
    tmp = Path(tempfile.mkdtemp(prefix="html-scale-"))
    for name, text in EXTRA.items():
        (tmp / f"{name}.yaml").write_text(textwrap.dedent(text).lstrip())
        paths.append(tmp / f"{name}.yaml")
    t0 = time.perf_counter()
    report = parity.run(paths, keep_outputs=False, command="bench/html_scale.py")
    print(f"ran {len(report.cases)} sample cases, {len(report.rows)} comparisons in {time.perf_counter() - t0:.1f} s",
          file=sys.stderr)
    if cache:
        cache.write_bytes(pickle.dumps(report))
    return report


def renamed(c: CaseReport, name: str) -> CaseReport:
    case = dataclasses.replace(c.case, name=name)
    return CaseReport(case, [dataclasses.replace(r, case=case) for r in c.results],
                      [dataclasses.replace(r, case=case) for r in c.refs],
                      [dataclasses.replace(row, case=case) for row in c.rows], c.inputs)


def synthetic(base: Report, n: int) -> Report:
    """n cases: each non-passing sample case once per 100, passing ones for the rest."""
    passing = [c for c in base.cases if all(r.verdict == "PASS" for r in c.rows)] or base.cases
    other = [c for c in base.cases if c not in passing]
    cases, i = [], 0
    while len(cases) < n:
        block = other + passing * max(1, (100 - len(other)) // len(passing))
        for c in block:
            if len(cases) == n:
                break
            cases.append(renamed(c, f"{c.case.name}#{i:05d}"))
            i += 1
    return dataclasses.replace(base, cases=cases)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sizes", nargs="*", type=int, default=[500, 2000], help="suite sizes in cases")
    ap.add_argument("--cache", type=Path, help="pickle of the sample runs (written once, then reused)")
    ap.add_argument("--out", type=Path, help="also write each page as OUT/parity-N.html")
    ap.add_argument("--repeat", type=int, default=3, help="render each suite this many times; the best time counts")
    args = ap.parse_args()
    base = sample(args.cache)
    print(f"{'cases':>6} {'comparisons':>11} {'bytes':>11} {'B/comparison':>12} {'render s':>9} {'s/500 cases':>11}")
    for n in args.sizes:
        rep = synthetic(base, n)
        rows = len(rep.rows)
        best, text = float("inf"), ""
        for _ in range(max(1, args.repeat)):
            t0 = time.perf_counter()
            text = html.render(rep)
            best = min(best, time.perf_counter() - t0)
        size = len(text.encode())
        print(f"{n:>6} {rows:>11} {size:>11} {size / rows:>12.0f} {best:>9.2f} {best * 500 / n:>11.2f}")
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"parity-{n}.html").write_text(text)
    print("target: <= 1024 B per comparison, linear in the number of comparisons")


if __name__ == "__main__":
    main()
