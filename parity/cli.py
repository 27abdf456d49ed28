"""The `parity` command line.

Exit status: 0 when every comparison passes or is declared in its case; 1 when
anything is FAIL, FIXED or an undeclared ERROR/CRASH/TIMEOUT (or the run was
interrupted); 2 for bad input (a bad case file, an unknown name, a bad option).
"""

from __future__ import annotations

import argparse
import gc
import math
import shlex
import signal
import sys
import time
from pathlib import Path

from parity import __version__, frameworks, ops
from parity.errors import InputError
from parity.report.escape import terminal as _safe


def say(*parts, file=None, end="\n") -> None:
    """print() for text that may come from a case file, a store or a framework: control
    characters are shown, not sent to the terminal (parity.report.escape.terminal)."""
    print(_safe(" ".join(map(str, parts))), file=file, end=end)

EPILOG = """\
exit status: 0 all comparisons PASS or declared (KNOWN_GAP, expected ERROR/UNSUPPORTED);
             1 FAIL, FIXED, or an undeclared ERROR/CRASH/TIMEOUT; 2 bad input.
Reports are written to REPORT_DIR: parity.html, parity.csv, parity.json, parity.junit.xml and
parity.md (also appended to $GITHUB_STEP_SUMMARY when set), and worker logs in logs/.
"""




def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _python_map(values: list[str]) -> dict[str, str]:
    """--python FW=PYTHON (run FW with PYTHON) or FW:LABEL=PYTHON (an extra run of FW, labelled)."""
    import re

    out = {}
    for v in values or []:
        key, sep, path = v.partition("=")
        fw, _, label = key.partition(":")
        if not sep or fw not in frameworks.NAMES or not path or (":" in key and not re.fullmatch(
                r"[A-Za-z0-9._-]+", label)):
            raise InputError(f"--python: expected FRAMEWORK=PYTHON or FRAMEWORK:LABEL=PYTHON with FRAMEWORK in "
                             f"{', '.join(frameworks.NAMES)} and LABEL of letters, digits, '.', '_', '-'; got {v!r}")
        out[key] = path
    return out


def _env_map(values: list[str]) -> dict[str, dict[str, str]]:
    """--env FW:LABEL=VAR=VALUE (repeatable; the same FW:LABEL collects several variables)."""
    import re

    out: dict[str, dict[str, str]] = {}
    for v in values or []:
        key, sep, assignment = v.partition("=")
        fw, colon, label = key.partition(":")
        var, eq, value = assignment.partition("=")
        if not (sep and colon and eq and fw in frameworks.NAMES and re.fullmatch(r"[A-Za-z0-9._-]+", label)
                and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var) and "\0" not in value):
            raise InputError(f"--env: expected FRAMEWORK:LABEL=VARIABLE=VALUE with FRAMEWORK in "
                             f"{', '.join(frameworks.NAMES)}, LABEL of letters, digits, '.', '_', '-' and VARIABLE a "
                             f"name such as ONEDNN_MAX_CPU_ISA; got {v!r}")
        out.setdefault(key, {})[var] = value
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="parity",
        description="Run the same normalization operator in torch, tensorflow and mindspore, compare them "
                    "with each other and with an exact float64 NumPy reference, and report where, by how much "
                    "and why they differ.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"parity {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def paths(sp):
        sp.add_argument("paths", nargs="*", type=Path, default=[Path("cases")], metavar="PATH",
                        help="case files or directories searched for *.yaml (default: cases/)")
        sp.add_argument("-k", "--case", action="append", default=[], metavar="TEXT",
                        help="only cases whose name contains TEXT (repeatable)")

    run = sub.add_parser("run", help="run cases and write reports", epilog=EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    paths(run)
    run.add_argument("--frameworks", type=_csv, metavar="A,B", default=None,
                     help=f"only these frameworks (from: {', '.join(frameworks.NAMES)})")
    run.add_argument("--device", type=_csv, metavar="D", default=None,
                     help="run on these devices instead of the cases' own (cpu, gpu)")
    run.add_argument("--timeout", type=_seconds, default=300.0, metavar="SEC",
                     help="per-run time limit in seconds, unless the case sets timeout: (default 300)")
    run.add_argument("--python", action="append", metavar="FW[:LABEL]=PYTHON",
                     help="run framework FW with another Python interpreter (torch=/opt/venv/bin/python), or, with "
                          "a LABEL, run it there as well, side by side (torch:2.12=/opt/old/bin/python)")
    run.add_argument("--env", action="append", metavar="FW:LABEL=VAR=VALUE",
                     help="run framework FW a second time, labelled LABEL, with environment variable VAR set to VALUE "
                          "(repeat for more variables): e.g. mindspore:avx2=ONEDNN_MAX_CPU_ISA=AVX2 or "
                          "tensorflow:noonednn=TF_ENABLE_ONEDNN_OPTS=0 (see README, 'Hosts')")
    run.add_argument("--host-label", metavar="NAME",
                     help="name this machine in results and reports (default: vendor and widest ISA, e.g. amd-avx2)")
    run.add_argument("--report-dir", type=Path, default=Path("reports"), metavar="DIR",
                     help="where to write the reports (default: reports/)")
    run.add_argument("--no-report", action="store_true", help="print the table only; write no report files")
    run.add_argument("--results", type=Path, metavar="DIR",
                     help="where to store inputs and every output array (default: REPORT_DIR/results)")
    run.add_argument("--no-results", action="store_true", help="do not store inputs and outputs")
    run.add_argument("--baseline", metavar="NAME",
                     help="also compare each framework's outputs with its own outputs in baseline NAME")
    run.add_argument("--baselines", type=Path, default=Path("baselines"), metavar="DIR",
                     help="where baselines live (default: baselines/)")
    run.add_argument("--baseline-partial", action="store_true",
                     help="with --baseline: accept cases and sides the baseline lacks (UNSUPPORTED; default: ERROR)")
    run.add_argument("--shard", type=_shard, metavar="K/N",
                     help="run the K-th of N deterministic slices of the cases (sorted by name)")
    run.add_argument("-q", "--quiet", action="store_true",
                     help="no progress (a bar on a terminal, one line per run in CI or a pipe)")
    run.add_argument("-v", "--verbose", action="store_true",
                     help="print every comparison in the table (default: those that are not PASS, and the counts)")

    ls = sub.add_parser("list", help="list cases (and with --ops, operators and their spellings)")
    paths(ls)
    ls.add_argument("--ops", action="store_true",
                    help="list operators instead: with PATH names (parity list --ops layer_norm), those ops with "
                         "their parameters and defaults, inputs, each framework's spellings and native parameters, "
                         "and the default traps (where a framework's defaults compute something else than torch's)")

    val = sub.add_parser("validate", help="check case files without running anything")
    paths(val)

    rep = sub.add_parser("report", help="render reports from stored results, running nothing",
                         description="Render the reports from results stored by `parity run` (several stores are "
                                     "merged, e.g. a CPU and a GPU machine's). References and comparisons are "
                                     "recomputed from the stored inputs and outputs; no framework runs.")
    rep.add_argument("results", nargs="+", type=Path, metavar="RESULTS", help="results directories")
    rep.add_argument("--report-dir", type=Path, default=Path("reports"), metavar="DIR",
                     help="where to write the reports (default: reports/)")
    rep.add_argument("--baseline", metavar="NAME", help="also compare with baseline NAME")
    rep.add_argument("--baselines", type=Path, default=Path("baselines"), metavar="DIR")
    rep.add_argument("--baseline-partial", action="store_true",
                     help="with --baseline: accept cases and sides the baseline lacks (UNSUPPORTED; default: ERROR)")
    rep.add_argument("-v", "--verbose", action="store_true",
                     help="print every comparison in the table (default: those that are not PASS, and the counts)")
    rep.add_argument("--cases", type=Path, metavar="DIR", dest="cases_dir",
                     help="judge the stored outputs under the case files in DIR (their known:, tolerances and "
                          "expected values) instead of the copies stored with them; when: conditions are judged "
                          "against the host, versions and device that made each stored run")

    mg = sub.add_parser("merge", help="combine result stores from several machines or shards into one")
    mg.add_argument("results", nargs="+", type=Path, metavar="RESULTS")
    mg.add_argument("--out", type=Path, required=True, metavar="DIR", help="the merged results directory (new)")

    bl = sub.add_parser("baseline", help="keep a run's results as a named baseline, or list baselines")
    bl.add_argument("action", choices=["save", "list"])
    bl.add_argument("name", nargs="?", metavar="NAME")
    bl.add_argument("--results", type=Path, metavar="DIR", help="the results to keep (default: reports/results)")
    bl.add_argument("--report-dir", type=Path, default=Path("reports"), metavar="DIR", help=argparse.SUPPRESS)
    bl.add_argument("--baselines", type=Path, default=Path("baselines"), metavar="DIR",
                    help="where baselines live (default: baselines/)")
    bl.add_argument("--replace", action="store_true", help="replace baseline NAME if it exists (default: refuse)")

    nc = sub.add_parser("new-case", help="write a regression case from stored results",
                        description="Write a YAML regression case that reproduces a stored run: the same calls "
                                    "(native parameters and spellings), the inputs saved as .npy beside it, and "
                                    "every observed gap or error declared with the versions that showed it and a "
                                    "placeholder reason that `parity validate` refuses until you fill it in.")
    nc.add_argument("--from", dest="from_results", type=Path, required=True, metavar="RESULTS")
    nc.add_argument("--case", required=True, action="append", metavar="NAME",
                    help="a stored case to turn into a regression case (repeat for several)")
    nc.add_argument("--between", nargs=2, metavar=("A", "B"), help="keep only these two frameworks")
    nc.add_argument("--name", metavar="NAME", help="name of the new case (default: regression/<case>)")
    nc.add_argument("--out", type=Path, default=Path("cases/regressions"), metavar="DIR",
                    help="directory for the case and its .npy files (default: cases/regressions)")

    ac = sub.add_parser(
        "accept", help="update case files in place to declare what stored results show (the upgrade loop)",
        description="For each stored case whose comparisons are not ok, edit its case file itself, keeping its "
                    "comments, formatting and inputs: remove declarations a FIXED verdict proved stale, widen "
                    "the bound a FAIL exceeded, and declare new gaps and errors with the versions and host that "
                    "showed them and a TODO reason (that case does not run until the reason is written; the "
                    "others do). Prints the diff; --write writes it. Exit status 1 when there are edits not "
                    "written, 0 otherwise.")
    ac.add_argument("--from", dest="from_results", type=Path, default=Path("reports/results"), metavar="RESULTS",
                    help="the results store (default: reports/results)")
    ac.add_argument("-k", "--case", action="append", default=[], metavar="TEXT",
                    help="only cases whose name contains TEXT (repeatable)")
    ac.add_argument("--write", action="store_true", help="write the edits (default: show them)")

    ex = sub.add_parser(
        "explain", help="decompose gaps into semantics and numerics; derive and verify the exact mapping",
        description="Run the cases and, for every pair of frameworks that differ (or the pair given), say which "
                    "canonical-form fields differ and how much of the gap that explains, how far each framework "
                    "is from the float64 reference of its own call (as a share of the op's rounding bound), and "
                    "the parameters that make one compute the other's call, verified by running them. Exit "
                    "status 1 if a derived mapping fails its verification run.")
    ex.add_argument("cases", nargs="+", metavar="CASE", help="a case name (looked up under --cases-dir) or a case file")
    ex.add_argument("--between", nargs=2, metavar=("A", "B"), help="explain this pair of frameworks only")
    ex.add_argument("--write-case", type=Path, metavar="PATH",
                    help="write the case with the verified exact mapping applied (one case and pair)")
    ex.add_argument("--cases-dir", type=Path, default=Path("cases"), metavar="DIR",
                    help="where to look up case names (default: cases/)")
    ex.add_argument("--timeout", type=_seconds, default=300.0, metavar="SEC", help="per-run time limit")
    fz = sub.add_parser(
        "fuzz", help="search with hypothesis for inputs the frameworks disagree on; write each as a case",
        description="Generate cases of OP with hypothesis (shapes, parameters, dtypes, value ranges from tiny to "
                    "huge, large means, constant channels, gradients), run each in every framework against the "
                    "float64 reference, shrink every kind of disagreement (a comparison beyond tolerance, an "
                    "ERROR, CRASH or TIMEOUT) to a minimal example, write it to OUT as a regression case (with an "
                    ".npy input where needed) and run it again from that file to confirm it reproduces. "
                    "Exit status 1 when something was found, 0 when not, 2 for bad options.")
    fz.add_argument("op", metavar="OP", help=f"the operator ({', '.join(ops.fuzzable())})")
    fz.add_argument("--frameworks", type=_csv, metavar="A,B", default=None,
                    help=f"only these frameworks (from: {', '.join(frameworks.NAMES)})")
    fz.add_argument("--max-examples", type=int, default=100, metavar="N",
                    help="examples to generate (shrinking a finding runs more; default 100)")
    fz.add_argument("--seed", type=int, default=0, help="hypothesis seed: the same seed searches the same "
                                                        "examples (default 0)")
    fz.add_argument("--dtypes", type=_csv, metavar="D,E", default=None,
                    help="dtypes to draw from (default: float32, float16, bfloat16, float64)")
    fz.add_argument("--no-grad", action="store_true", help="forward outputs only (default: gradients in about "
                                                            "half the examples)")
    fz.add_argument("--beyond-bound", action="store_true",
                    help="count a forward FAIL only when the op's rounding bound does not explain it (inputs "
                         "so ill-conditioned that rounding alone exceeds the tolerance are then not findings)")
    fz.add_argument("--out", type=Path, default=Path("fuzz-findings"), metavar="DIR",
                    help="where to write the cases found and fuzz-OP.json (default: fuzz-findings/)")
    fz.add_argument("--timeout", type=_seconds, default=120.0, metavar="SEC", help="per-run time limit (default 120)")
    return p


def _select(cases, patterns):
    if not patterns:
        return cases
    chosen = [c for c in cases if any(p in c.name for p in patterns)]
    if not chosen:
        raise InputError(f"no case name contains {' or '.join(map(repr, patterns))}")
    return chosen


def cmd_validate(args) -> int:
    from parity.cases import load_suite

    cases = _select(load_suite(args.paths, hold_bytes=0), args.case)  # each case checked, none kept
    print(f"{len(cases)} case(s) valid")
    return 0


def cmd_list(args) -> int:
    if args.ops:
        from parity import opinfo

        names = [str(p) for p in args.paths if str(p) != "cases"]
        unknown = [n for n in names if n not in ops.registry()]
        if unknown:
            raise InputError(f"list --ops: unknown op {', '.join(unknown)}; there are: {', '.join(ops.names())}")
        if not names:  # the overview: one line per op and framework
            for name, op in sorted(ops.registry().items()):
                say(f"{name}: {op.summary}")
                for fw, spellings in op.spellings.items():
                    mark = "" if frameworks.installed(fw) else "  (not installed)"
                    say(f"  {fw:<11} {', '.join(s.name for s in spellings)}{mark}")
            say("(parity list --ops OP ... shows each op's parameters, defaults and default traps)")
            return 0
        say("\n\n".join(opinfo.describe(ops.get(n)) for n in names))
        return 0
    from parity.cases import load_tree

    for c in _select(load_tree(args.paths), args.case):
        fws = ",".join(c.frameworks) if c.frameworks else "(installed: " + ",".join(
            fw for fw in c.op.frameworks() if frameworks.installed(fw)) + ")"
        shapes = " ".join(f"{k}={'x'.join(map(str, s.shape))}:{s.dtype}" for k, s in c.inputs.items())
        say(f"{c.name}\t{c.op.name}\t{fws}\t{','.join(c.devices)}\t{shapes}\t{c.path}")
    return 0


def _seconds(value: str) -> float:
    """A time limit: a finite number of seconds > 0, at most a day, as a case's timeout:"""
    from parity.cases import MAX_TIMEOUT

    try:
        x = float(value)
    except ValueError:
        x = math.nan
    if not (math.isfinite(x) and 0 < x <= MAX_TIMEOUT):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds > 0 and at most {MAX_TIMEOUT} "
                                         f"(a day), got {value!r}")
    return x


def _shard(value: str) -> tuple[int, int]:
    k, sep, n = value.partition("/")
    try:
        k, n = int(k), int(n)
    except ValueError:
        k = n = 0
    if not sep or not (1 <= k <= n):
        raise argparse.ArgumentTypeError(f"expected K/N with 1 <= K <= N, got {value!r}")
    return k, n


def shard(cases: list, k: int, n: int) -> list:
    """The K-th of N deterministic slices: cases sorted by name, every N-th from the K-th."""
    return [c for i, c in enumerate(sorted(cases, key=lambda c: c.name)) if i % n == k - 1]


def _report_lock(report_dir: Path):
    """The report directory, checked before anything runs, and locked for this process."""
    from parity import fsutil

    fsutil.usable_dir(report_dir, "--report-dir")
    return fsutil.Lock(Path(report_dir) / ".parity.lock", f"--report-dir {report_dir}").acquire()


def _not_a_baseline(results: Path, baselines: Path) -> None:
    from parity import store

    real = Path(results).resolve()
    if store.is_baseline(results) or real.is_relative_to(Path(baselines).resolve()):
        raise InputError(f"--results {results}: is in the baselines directory {baselines}; a run never writes into a "
                         f"baseline (save one afterwards with `parity baseline save NAME`)")


def cmd_run(args) -> int:
    from parity import api, host, runner

    python = _python_map(args.python)
    env = _env_map(args.env)
    if args.host_label is not None:
        if not host.valid_label(args.host_label):
            raise InputError(f"--host-label: expected 1-40 letters, digits, '.', '_' or '-', got {args.host_label!r}")
        host.fingerprint(args.host_label)
    if args.frameworks:
        bad = [f for f in args.frameworks if f not in frameworks.NAMES]
        if bad:
            raise InputError(f"--frameworks: unknown {', '.join(bad)}; expected some of {', '.join(frameworks.NAMES)}")
    if args.device:
        bad = [d for d in args.device if d not in frameworks.DEVICES]
        if bad:
            raise InputError(f"--device: unknown {', '.join(bad)}; expected {', '.join(frameworks.DEVICES)}")
    # the first case's workers start importing their frameworks while the rest of the suite is
    # checked (a 10,000-case suite takes seconds to check); they are killed if the suite fails
    log_dir = None if args.no_report else args.report_dir / "logs"
    pool = runner.WorkerPool(log_dir)
    planner = runner.Planner(args.frameworks, args.device, python, env)
    startup = max(120.0, args.timeout)

    def launch(first) -> None:
        if args.case or args.shard:  # the first case may not be one that runs
            return
        try:
            pool.launch(planner.worker_keys(first), startup)
        except Exception:  # noqa: BLE001 - only a head start: the run starts its workers itself
            pool.kill()

    try:
        cases = _select(api.load_suite(args.paths, strict=False, on_first=launch), args.case)  # read again as run
    except BaseException:
        pool.kill()
        raise
    _collect_less()
    try:
        return _run_suite(args, cases, pool, log_dir, python, env)
    finally:
        pool.close()


def _collect_less() -> None:
    """For the rest of this command (its report writer, forked after, included): what is held
    now (the suite's CaseRefs, a store's index, the imports) lives to the end, so the garbage
    collector need not walk it again at each full collection; and it collects after 50,000
    new objects, not 700, since a suite allocates and frees thousands of objects a case (few
    of them in cycles). At 10,000 small cases this took the collector's CPU from 1.6 s to 0.26
    s in the parent and from 0.54 s to 0 in the report writer (gc.callbacks, one run each)."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _run_suite(args, cases, pool, log_dir, python, env) -> int:
    from parity import api, fsutil, store
    from parity.report import background, terminal

    if args.shard:
        cases = shard(cases, *args.shard)
    results_dir = None if args.no_results else (args.results or store.default_results_dir(args.report_dir))
    if results_dir is not None:
        _not_a_baseline(results_dir, args.baselines)
    if args.baseline:
        store.baseline_path(args.baselines, args.baseline)  # a missing baseline stops us before anything runs
    lock = None if args.no_report else _report_lock(args.report_dir)
    reports = None
    try:
        progress = terminal.Progress(0)
        table = terminal.Table(args.verbose)
        # the report files are written as the cases finish, by a second process (forked here,
        # before the runner's threads start), and the parent keeps none of them
        reports = None if args.no_report else background.writer(args.report_dir)

        def on_case(c):
            table.add(c)
            if reports is not None:
                reports.add(c)

        signal.signal(signal.SIGTERM, _interrupt)  # CI cancels with SIGTERM: treat it as Ctrl-C
        try:
            rep = api.run(cases, frameworks=args.frameworks, devices=args.device, results=results_dir,
                          baseline=args.baseline, baselines=args.baselines, baseline_partial=args.baseline_partial,
                          timeout=args.timeout, python=python, pool=pool,
                          env=env, keep_outputs=False, on_result=None if args.quiet else progress.update,
                          on_start=progress.start, on_case=on_case, keep_cases=False, log_dir=log_dir,
                          command="parity " + shlex.join(sys.argv[1:]))
        finally:
            progress.close()
        if rep.interrupted:
            print("\ninterrupted: writing the results finished so far", file=sys.stderr)
        with fsutil.deferred_signals(restore=False) as held:  # a second Ctrl-C waits for whole reports
            say(table.render(rep), end="")
            if reports is not None:
                try:
                    written, reports = reports.close(rep), None
                except BaseException:  # a full disk: the error is said by main; the results are whole
                    reports = None
                    if results_dir is not None:
                        say(f"results: {results_dir} (written; the report files were not)")
                    raise
                say("reports: " + ", ".join(str(p) for p in written))
            if results_dir is not None:
                say(f"results: {results_dir}")
    finally:
        if reports is not None:  # the run failed: the previous report files stay as they were
            reports.abandon()
        if lock is not None:
            lock.release()
    return 130 if held else rep.exit_code


def cmd_report(args) -> int:
    from parity import api, fsutil, store
    from parity.report import Tally, background, terminal

    if args.baseline:
        store.baseline_path(args.baselines, args.baseline)
    lock = _report_lock(args.report_dir)
    reports = stored = None
    try:
        # the store's manifest is read and checked first; then each case is built from it again,
        # its arrays read and judged, and handed to the report files' writer (a second process,
        # as in `parity run`), so that a store of any size is judged in the memory of its largest case
        stored = api.Stored(args.results, args.cases_dir, baseline=args.baseline, baselines=args.baselines,
                            baseline_partial=args.baseline_partial, lazy=True)
        _collect_less()
        table = terminal.Table(args.verbose)
        reports = background.writer(args.report_dir)
        tally, t0 = Tally(), time.perf_counter()
        for c in stored.judged(keep_arrays=False):
            table.add(c)
            reports.add(c)
            tally.add(c)
        rep = stored.report([], time.perf_counter() - t0, tally)
        with fsutil.deferred_signals(restore=False) as held:
            say(table.render(rep), end="")
            try:
                written, reports = reports.close(rep), None
            except BaseException:  # a full disk: said by main (close left the previous files as they were)
                reports = None
                raise
            say("reports: " + ", ".join(str(p) for p in written))
    finally:
        if reports is not None:  # it failed: the previous report files stay as they were
            reports.abandon()
        if stored is not None:
            stored.close()
        lock.release()
    return 130 if held else rep.exit_code


def cmd_merge(args) -> int:
    from parity import store

    out = store.merge(args.results, args.out)
    say(f"merged {len(args.results)} result stores into {out}")
    return 0


def cmd_baseline(args) -> int:
    from parity import store

    if args.action == "list":
        root = Path(args.baselines)
        names = sorted(p.name for p in root.glob("*") if store.is_store(p)) if root.is_dir() else []
        for name in names:
            m = store.load(root / name, load_outputs=False).manifest
            versions = ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items())
            say(f"{name}\t{m.get('created', '')}\t{len(m.get('cases', []))} cases\t{versions}")
        if not names:
            say(f"no baselines in {root}")
        return 0
    if not args.name:
        raise InputError("baseline save: give a NAME")
    results = args.results or store.default_results_dir(args.report_dir)
    dest = store.save_baseline(results, args.baselines, args.name, replace=args.replace)
    say(f"saved {results} as baseline {args.name!r} in {dest}")
    return 0


def cmd_accept(args) -> int:
    from parity import accept

    edits = accept.accept(args.from_results, args.case or None, write=args.write)
    if not edits:
        say(f"nothing to accept: every stored comparison in {args.from_results} is ok under its case file")
        return 0
    for edit in edits:
        say(edit.diff, end="")
        say(f"{edit.path}: " + "; ".join(edit.summary))
    todo = sum(edit.after.count(f"{accept.PLACEHOLDER}:") - edit.before.count(f"{accept.PLACEHOLDER}:")
               for edit in edits)
    if args.write:
        say(f"wrote {len(edits)} case file(s)" + (f"; write the {todo} TODO reason(s): until then those cases do not "
                                                  f"run" if todo else ""))
        return 0
    say(f"{len(edits)} case file(s) to edit: run again with --write to write them")
    return 1


def cmd_new_case(args) -> int:
    from parity import scaffold

    if args.name and len(args.case) > 1:
        raise InputError("new-case: --name names one case; give one --case with it")
    for name in args.case:
        path = scaffold.new_case(args.from_results, name, args.out, args.between, args.name)
        todo = scaffold.todo(path)
        if todo:
            say(f"wrote {path}: {todo} known entr{'y' if todo == 1 else 'ies'} to explain: replace each TODO reason "
                f"(the case does not run until then), then run it")
        else:
            say(f"wrote {path}: every comparison passed, so it declares nothing; run it to check it reproduces")
    return 0


def _interrupt(signum, frame):
    """Ctrl-C and SIGTERM stop a run (the results finished so far are kept): the first raises
    KeyboardInterrupt; the final writing holds later ones back (fsutil.deferred_signals)."""
    raise KeyboardInterrupt


def _find_cases(names: list[str], cases_dir: Path):
    import difflib

    from parity.cases import load_tree

    out, tree = [], None
    for name in names:
        if Path(name).is_file():
            out += load_tree([Path(name)])
            continue
        if tree is None:
            tree = {c.name: c for c in load_tree([cases_dir])}
        if name not in tree:
            close = difflib.get_close_matches(name, list(tree), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise InputError(f"no case named {name!r} under {cases_dir}{hint}")
        out.append(tree[name])
    return out


def cmd_explain(args) -> int:
    from parity import explain

    if args.between:
        bad = [f for f in args.between if f not in frameworks.NAMES]
        if bad or args.between[0] == args.between[1]:
            raise InputError(f"--between: expected two different frameworks from {', '.join(frameworks.NAMES)}")
    cases = _find_cases(args.cases, args.cases_dir)
    result = explain.explain(cases, tuple(args.between) if args.between else None, timeout=args.timeout)
    if not result:
        print("no gaps to explain: every pair of frameworks agrees and computes the same form")
    say(explain.render(result), end="")
    if args.write_case:
        if len(result) != 1:
            raise InputError(f"--write-case needs exactly one case and pair to explain, got {len(result)}; "
                             f"use --between A B")
        case = explain.write_corrected(result[0], args.write_case)
        say(f"wrote {args.write_case} ({case.name}); it loads and validates")
    return 0 if explain.all_verified(result) else 1


def cmd_fuzz(args) -> int:
    from parity import fuzz
    from parity.inputs import DTYPES

    if args.op not in ops.fuzzable():
        raise InputError(f"parity fuzz: unknown op {args.op!r}; it generates: {', '.join(ops.fuzzable())}")
    if args.max_examples < 1:
        raise InputError("--max-examples: expected a number >= 1")
    bad = [d for d in args.dtypes or [] if d not in DTYPES]
    if bad or args.dtypes == []:
        raise InputError(f"--dtypes: expected names from {', '.join(DTYPES)}, got {', '.join(bad) or 'none'}")
    bad = [f for f in args.frameworks or [] if f not in frameworks.NAMES]
    if bad:
        raise InputError(f"--frameworks: unknown {', '.join(bad)}; known: {', '.join(frameworks.NAMES)}")
    dtypes = tuple(d for d in fuzz.DTYPES if d in args.dtypes) if args.dtypes else fuzz.DTYPES

    def progress(n, ex, sig):
        if not sys.stderr.isatty():
            return
        print(f"\r{n:5d} examples run  {'finding' if sig else 'agree  '}  {_safe(ex.describe())[:90]:90}", end="",
              file=sys.stderr, flush=True)

    outcome = fuzz.search(args.op, only=args.frameworks, max_examples=args.max_examples, seed=args.seed,
                          dtypes=dtypes, grad=not args.no_grad, out=args.out, timeout=args.timeout,
                          beyond_bound=args.beyond_bound, progress=progress)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    say(fuzz.render(outcome), end="")
    say(f"report: {fuzz.write_report(outcome, args.out)}")
    return 1 if outcome.findings else 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return {"run": cmd_run, "list": cmd_list, "validate": cmd_validate, "explain": cmd_explain,
                "report": cmd_report, "merge": cmd_merge, "baseline": cmd_baseline,
                "new-case": cmd_new_case, "accept": cmd_accept, "fuzz": cmd_fuzz}[args.command](args)
    except InputError as exc:
        say(f"parity: error: {exc}" if "\n" not in str(exc) else f"parity: invalid input:\n{exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        return 1
    except KeyboardInterrupt:  # between the run and its reports: the results are stored
        print("\ninterrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # the filesystem said no (full disk, permissions): one line, not a traceback
        where = f"{exc.filename}: " if exc.filename else ""
        say(f"parity: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
