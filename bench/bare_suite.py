"""The floor for `parity run cases/`: the same framework calls with no harness.

One process imports every installed framework and makes every case's calls (and
gradient calls, for cases with grad:) one after another, with the spellings and native parameters parity would use (the adapters
are the thin NumPy-in/NumPy-out wrappers of parity/frameworks). No worker processes, no
float64 reference, no comparison, no report. Prints the wall time per phase as JSON.

    .venv/bin/python bench/bare_suite.py [PATH ...]
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GLOG_v", "3")
# as parity's workers run (runner.Worker._env): idle OpenMP threads sleep instead of spinning.
# Without it this one process is slower (its torch threads spin while the other frameworks
# compute), and a ratio to it flattered parity.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
start = time.perf_counter()

from parity import frameworks  # noqa: E402
from parity.cases import load_tree  # noqa: E402
from parity.runner import plan  # noqa: E402

paths = sys.argv[1:] or ["cases"]
cases = load_tree(paths)
runs = [r for r in plan(cases) if r.planned_status is None]
loaded = time.perf_counter()

adapters = {}
for fw in sorted({r.framework for r in runs}):
    adapters[fw] = frameworks.load(fw, "cpu")
imported = time.perf_counter()

inputs = {}
calls = 0
for run in runs:
    case = run.case
    if case.name not in inputs:
        inputs[case.name] = {k: s.materialize() for k, s in case.inputs.items()}
    fw = adapters[run.framework]
    for name in run.forms:  # the first spelling that runs, as the worker does
        spelling = case.op.spelling(run.framework, name)
        try:
            spelling.run(fw, inputs[case.name], run.native)
            calls += 1
        except Exception:  # noqa: BLE001 - a failing call costs its time too
            fw.recover()
            continue
        if case.grad:  # and the gradients, through the op's gradient call
            grad = case.op.grad_spellings[run.framework]
            try:
                fw.vjp(lambda ts: grad.run(fw, ts, run.native), inputs[case.name], case.grad_inputs(),
                       case.upstream())
                calls += 1
            except Exception:  # noqa: BLE001
                fw.recover()
        break
done = time.perf_counter()
print(json.dumps({"cases": len(cases), "runs": len(runs), "calls": calls, "load_s": loaded - start,
                  "import_s": imported - loaded, "calls_s": done - imported, "total_s": done - start}))
