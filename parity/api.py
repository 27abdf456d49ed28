"""parity's Python API: build or load cases, run them, rebuild reports from stored results.

    import numpy as np, parity

    x = np.random.default_rng(0).standard_normal((2, 8, 5, 5)).astype(np.float32)
    case = parity.case(op="lrn", params={"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0},
                       inputs={"x": x}, name="my/lrn")
    report = parity.run([case], frameworks=["torch", "tensorflow"])
    df = report.to_pandas()                    # one row per comparison: the columns of parity.csv
    report.exit_code                           # 0, 1; 130 when interrupted
    report.outputs("my/lrn", "torch")["y"]     # each side's arrays, and the reference:
    report.reference("my/lrn")["y"]
    report.write("reports/")                   # HTML, CSV, JSON, JUnit XML, Markdown

As in Polygraphy's comparator (``Comparator.run -> RunResults -> compare_accuracy``),
running, storing and judging are separate steps, each usable alone: ``run`` runs and judges
(and stores, with ``results=``); ``load`` rebuilds a Report from a store without running a
framework, judged under the stored case copies or, with ``cases=``, under today's case
files. Every front end (the command line, ``parity explain``, ``parity fuzz``, the pytest
plugin, ``parity new-case``) goes through these calls.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

from parity import cases as cases_
from parity import compare, frameworks, host, npyio, runner, store
from parity.cases import Case
from parity.errors import InputError
from parity.report import CaseReport, Report, Tally

__all__ = ["case", "load", "load_cases", "load_suite", "run"]


def case(op: str, *, inputs: dict, params: dict | None = None, native: dict | None = None, name: str | None = None,
         base: Path | None = None, **fields) -> Case:
    """A validated case built in code, with the same checks and errors as a case file.

    ``inputs`` maps each input to a NumPy array (used as given; its dtype one of float16,
    bfloat16, float32, float64) or to a spec as in a file (``{"shape": [2, 8, 5, 5], "dtype":
    "float32", "init": "normal", "seed": 0}``, ``{"values": [...], "dtype": ...}``, ``{"file":
    "x.npy"}`` relative to ``base``). Every other key of a case file may be given:
    ``frameworks``, ``devices``, ``spelling``, ``tolerance``, ``expected``, ``known``,
    ``dtypes``, ``grad``, ``timeout``, ``description``, ``source``. Without ``name`` the case is
    named after its op and a hash of its contents. Raises parity.errors.CaseErrors."""
    data = {"op": op, "inputs": inputs, **{k: v for k, v in fields.items() if v is not None}}
    if params is not None:
        data["params"] = params
    if native is not None:
        data["native"] = native
    if name is not None:
        data["name"] = name
    return cases_.from_mapping(data, base)


def load_cases(paths, strict: bool = True) -> list[Case]:
    """The cases of case files and directories (searched for *.yaml), dtype sweeps expanded.
    Raises parity.errors.CaseErrors listing every problem. ``strict=False`` keeps a case whose
    only problem is a TODO reason (``Case.blocked``): a run reports it as not run."""
    return cases_.load_tree([Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)], strict)


def load_suite(paths, strict: bool = True, on_first=None) -> list[cases_.CaseRef]:
    """The cases of case files and directories as load_cases checks them, each as a CaseRef:
    what a run needs to order and plan it, and where to read it again (``ref.open()``), so
    that a suite of any length costs a few hundred bytes a case until a run reaches it.
    ``parity.run`` takes them as it takes cases. ``on_first(ref)`` sees the first case as soon
    as it is checked."""
    return cases_.load_suite([Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)], strict,
                             on_first=on_first)


def _cases(cases_or_paths, lazy: bool = False) -> list:
    """The cases to run or judge: Case objects as given (dtype sweeps expanded), CaseRefs as
    given, case files and directories loaded (as CaseRefs with ``lazy``)."""
    items = [cases_or_paths] if isinstance(cases_or_paths, (str, Path, Case)) else list(cases_or_paths)
    out: list = []
    files = [Path(x) for x in items if isinstance(x, (str, Path))]
    if files:
        out += (cases_.load_suite if lazy else cases_.load_tree)(files, strict=False)
    for c in items:
        if isinstance(c, Case):
            out += cases_.expand_dtypes(c)
        elif isinstance(c, cases_.CaseRef):
            out.append(c)
    seen: dict = {}
    for c in out:
        if c.name in seen and seen[c.name] is not c:
            where = [x.path if isinstance(x, Case) else x.file for x in (seen[c.name], c)]
            raise InputError(f"two cases are named {c.name!r} ({where[0]}, {where[1]})")
        seen[c.name] = c
    return out


def run(cases_or_paths, *, frameworks: list[str] | None = None, devices: list[str] | None = None,
        results: Path | None = None, baseline: str | None = None, baselines: Path = Path("baselines"),
        baseline_partial: bool = False,
        timeout: float = runner.DEFAULT_TIMEOUT, python: dict | None = None, env: dict | None = None,
        keep_outputs: bool | None = None, pool: runner.WorkerPool | None = None, on_result=None,
        on_start=None, on_case=None, keep_cases: bool = True, log_dir: Path | None = None,
        command: str | None = None) -> Report:
    """Run cases (Case objects, case files or directories) in every framework they ask for
    (or ``frameworks``), on their devices (or ``devices``), against the float64 reference, and
    judge every comparison. Returns a Report.

    ``results``: also write a results store there (whole or not at all, parity.store).
    ``baseline``: also compare each run with its own output in that baseline; a run the
    baseline lacks is an ERROR, unless ``baseline_partial``.
    ``python``: {"torch": PYTHON} runs a framework from another interpreter, {"torch:LABEL":
    PYTHON} a second time from it; ``env``: {"mindspore:LABEL": {"ONEDNN_MAX_CPU_ISA":
    "AVX2"}} a second time with environment variables set. ``keep_outputs``: keep every
    array in the Report (default: when no results store is written; otherwise outputs() reads
    them back from the store). ``pool``: workers to reuse across calls (runner.WorkerPool;
    close it when done). ``on_start(plan)`` is called before the first run starts, with a
    runner.Plan (``plan.runs``, ``plan.cases``, ``plan.runs_of(case)``: each case's runs are
    planned only when the run reaches it), ``on_result(result)`` as each finishes,
    ``on_case(case_report)`` with each case when all its runs are judged, in the order of the
    cases (parity.report.writer(DIR).add writes the report files so, as the run goes).
    ``keep_cases=False``: the Report keeps no case (``cases`` is empty; its counts, hosts,
    versions and exit_code still hold), so that a suite of any size costs the memory of its
    largest case; hand the cases to ``on_case``. Case files are loaded as CaseRefs
    (load_suite), each read again when the run reaches it.

    Ctrl-C (KeyboardInterrupt) stops the run: the Report holds the cases finished so far,
    with ``interrupted`` and ``stopped`` set (exit_code 130), and the store is written with
    them. A case file changed since it was checked stops the run the same way and raises
    parity.cases.CaseChanged (an InputError) after the store is written. Any other failure
    leaves an existing store in place (parity.store.Writer.abandon)."""
    from parity import fsutil

    cases = _cases(cases_or_paths, lazy=True)
    _check_names(frameworks, devices)
    planner = runner.Planner(frameworks, devices, python, env)
    if on_start:
        on_start(planner.summary(cases))
    old = store.load(store.baseline_path(baselines, baseline)) if baseline else None
    keep = results is None if keep_outputs is None else keep_outputs
    command = command or f"parity.run({len(cases)} cases)"
    writer = store.Writer(results, command, host.fingerprint()) if results is not None else None
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    done: list[CaseReport] = []
    tally = None if keep_cases else Tally()
    ahead: dict[int, CaseReport] = {}  # finished before a case that comes earlier in the suite
    upto = [0]  # the index of the next case to hand on

    def hand_on(cr: CaseReport, flushing: bool) -> None:
        if on_case:
            with fsutil.deferred_signals() as held:  # a case reaches on_case whole, or not at all
                on_case(cr)
            if held and not flushing:  # (from on_cases_done: runner.execute raises it after the block)
                raise KeyboardInterrupt
        if tally is None:
            done.append(cr)
        else:
            tally.add(cr)

    def in_order(i: int | None, cr: CaseReport | None, flush: bool = False, hold: bool = False) -> None:
        if cr is not None:
            ahead[i] = cr
        while upto[0] in ahead or (flush and ahead):
            nxt = upto[0] if upto[0] in ahead else min(ahead)
            upto[0] = nxt + 1
            hand_on(ahead.pop(nxt), flush or hold)

    def on_cases_done(finished):
        """The cases that finished together, judged in one pass (compare.evaluate_many), then
        each stored and handed on (runner.execute holds Ctrl-C back until they all are: no case
        the workers finished is dropped)."""
        rows_of = compare.evaluate_many([
            (c, res, refs, old.cases[c.name].results if old and c.name in old.cases else ([] if old else None),
             baseline or "", baseline_partial) for _, c, res, refs, _, _ in finished])
        for (i, c, res, refs, summary, arrays), rows in zip(finished, rows_of):
            if writer:
                writer.add(c, res, arrays, next((r.inputs_sha256 for r in res + refs if r.inputs_sha256), None))
            if not keep:
                for r in res + refs:  # the store has them: the parent keeps only what the reports need
                    r.outputs, r.bounds, r.magnitudes = {}, {}, {}
            in_order(i, CaseReport(c, res, refs, rows, summary, dict(arrays) if keep else None), hold=True)

    interrupted, changed = False, None
    try:
        try:
            runner.execute(cases, planner, timeout=timeout, on_result=on_result, on_cases_done=on_cases_done,
                           log_dir=log_dir, pool=pool)
        except KeyboardInterrupt:
            interrupted = True
        except cases_.CaseChanged as exc:  # stopped as by Ctrl-C: what was computed is kept
            interrupted, changed = True, exc
        with fsutil.deferred_signals() as held:  # the cases that finished after one that never did
            in_order(None, None, flush=True)
        interrupted = interrupted or bool(held)
    except BaseException:
        if writer:
            with fsutil.deferred_signals():
                writer.abandon()
        raise
    if writer:
        with fsutil.deferred_signals():
            writer.close(interrupted)
    if changed is not None:
        raise cases_.CaseChanged(f"{changed}" + (f"; the cases finished before it are stored in {results}"
                                                 if writer else ""))
    return Report(done, started, time.perf_counter() - t0, command, host.fingerprint(), interrupted,
                  stopped=interrupted, results_dir=Path(results) if results is not None else None, tally=tally)


def _check_names(fws, devices) -> None:
    bad = [f for f in fws or [] if f not in frameworks.NAMES]
    if bad:
        raise InputError(f"frameworks: unknown {', '.join(bad)}; expected some of {', '.join(frameworks.NAMES)}")
    bad = [d for d in devices or [] if d not in frameworks.DEVICES]
    if bad:
        raise InputError(f"devices: unknown {', '.join(bad)}; expected {', '.join(frameworks.DEVICES)}")


def load(results, cases=None, *, baseline: str | None = None, baselines: Path = Path("baselines"),
         baseline_partial: bool = False, quiet: bool = False, on_case=None, keep_cases: bool = True) -> Report:
    """A Report from one or more results stores (read as one: several hosts, shards, a CPU
    and a GPU machine), running no framework. The references and comparisons are computed
    again from the stored inputs and outputs.

    ``cases``: judge the stored outputs under these case files (a directory, files, or Case
    objects) instead of the copies stored with them: their ``known:``, tolerances and golden
    values; each ``when:`` is judged against the host, versions and device that made the
    stored run. A stored run whose call the case no longer makes is an ERROR that says so;
    the cases on one side only are named on stderr (unless ``quiet``).

    ``on_case`` and ``keep_cases`` as in ``run``: with ``keep_cases=False`` one store (and the
    baseline) is read a case at a time, each case built from the manifest, its arrays read when
    it is judged and forgotten after (``parity report``); the Report's ``manifest`` is then the
    store's manifest without its ``cases`` and ``runs``."""
    stored = Stored(results, cases, baseline=baseline, baselines=baselines, baseline_partial=baseline_partial,
                    quiet=quiet, lazy=not keep_cases)
    t0 = time.perf_counter()
    done: list[CaseReport] = []
    tally = None if keep_cases else Tally()
    try:
        for cr in stored.judged(keep_arrays=keep_cases):
            if on_case:
                on_case(cr)
            if tally is None:
                done.append(cr)
            else:
                tally.add(cr)
    finally:
        stored.close()
    return stored.report(done, time.perf_counter() - t0, tally)


#: Stored.judged judges cases together while their outputs (the references' included) take
#: less than this
JUDGED_BYTES = 4 << 20


class Stored:
    """Stored results opened for judging (what ``load`` does, in steps, for a front end that
    hands the judged cases on itself: ``parity report``, write_set): the store(s) read and
    checked, today's cases put in (``cases``), the baseline read. ``judged()`` gives each
    case's CaseReport in turn; ``report()`` the Report around them.

    ``lazy``: each case's arrays are read when it is judged; and one store (and the baseline)
    is read a case at a time (parity.store.Streamed): its manifest is checked whole first,
    then each case is built from it again when judged, so that judging a store of any size
    holds its largest case, not the store. Several stores are read whole, as one."""

    def __init__(self, results, cases=None, *, baseline: str | None = None, baselines: Path = Path("baselines"),
                 baseline_partial: bool = False, quiet: bool = False, lazy: bool = False):
        self.roots = [Path(results)] if isinstance(results, (str, Path)) else [Path(r) for r in results]
        self.streamed = lazy and len(self.roots) == 1
        self.today: dict | None = None  # today's cases (``cases``) by name
        if self.streamed:
            self.src = store.stream(self.roots[0])
            self.names = self.src.names
            if cases is not None:
                self.today, self.names = _today(self.names, cases, quiet, lazy=True)
        else:
            self.src = store.load_many(self.roots, lazy=lazy)
            if cases is not None:
                rejudge(self.src, cases, quiet=quiet)
            self.names = list(self.src.cases)
        self.cases_arg = cases
        self.baseline, self.baseline_partial = baseline, baseline_partial
        self.prior = None
        if baseline:
            where = store.baseline_path(baselines, baseline)
            self.prior = store.stream(where) if self.streamed else store.load(where)

    def close(self) -> None:
        """Let go of the manifests a streamed store and baseline hold open."""
        for st in (self.src, self.prior):
            if isinstance(st, store.Streamed):
                st.close()

    def size(self) -> int:
        """The stored runs: about half the comparisons there will be."""
        if self.streamed:
            return self.src.runs()
        return sum(len(sc.results) for sc in self.src.cases.values())

    def _stored(self):
        """Each stored case in turn (today's case put in, with ``cases``)."""
        if not self.streamed:
            yield from self.src.cases.values()
            return
        with npyio.Packs() as packs:
            for name in self.names:
                sc = self.src.get(name, packs, lazy=False, load_outputs=True)  # judged now: read, not checked first
                ref = None
                if self.today is not None:
                    ref = self.today[name]
                    _rejudged(sc, ref.open() if isinstance(ref, cases_.CaseRef) else ref)
                yield sc
                if isinstance(ref, cases_.CaseRef):
                    ref.release()

    def _prior(self, name: str):
        """The baseline's runs of case ``name`` (with their outputs), [] when it has none;
        None without a baseline."""
        prior = self.prior
        if prior is None:
            return None
        if isinstance(prior, store.Streamed):
            if name not in prior:
                return []
            with npyio.Packs() as packs:
                return prior.get(name, packs, lazy=False, load_outputs=True).results
        return prior.cases[name].results if name in prior.cases else []

    def judged(self, keep_arrays: bool = True):
        """Each case's CaseReport, in store order. Cases are judged a few at a time (up to
        runner.BATCH of them, or JUDGED_BYTES of arrays, their baseline's included: so a suite
        of small cases costs the metrics passes of few, and memory stays bounded by the
        largest case)."""
        batch: list = []
        size = 0
        for sc in self._stored():
            sc.read()
            refs = runner.reference_results(sc.case, [r.form for r in sc.results], sc.inputs, sc.digest)
            prior = self._prior(sc.case.name)
            batch.append((sc, refs, prior))
            size += sum(a.nbytes for a in sc.inputs.values()) + sum(
                a.nbytes for r in sc.results + refs + (prior or []) for a in r.outputs.values())
            if len(batch) >= runner.BATCH or size >= JUDGED_BYTES:
                yield from self._judge(batch, keep_arrays)
                batch, size = [], 0
        yield from self._judge(batch, keep_arrays)

    def _judge(self, batch: list, keep_arrays: bool):
        from parity import inputs

        rows_of = compare.evaluate_many([(sc.case, sc.results, refs, prior, self.baseline or "",
                                          self.baseline_partial) for sc, refs, prior in batch])
        for (sc, refs, _), rows in zip(batch, rows_of):
            cr = CaseReport(sc.case, sc.results, refs, rows, inputs.summarize(sc.inputs),
                            dict(sc.inputs) if keep_arrays else None)
            if not keep_arrays:
                sc.drop()
                for r in refs:
                    r.outputs, r.bounds, r.magnitudes = {}, {}, {}
            yield cr

    def report(self, done: list[CaseReport], seconds: float, tally: Tally | None = None) -> Report:
        src, roots = self.src, self.roots
        command = f"parity report {' '.join(map(str, roots))} (results of: {src.manifest.get('command', '?')})"
        if self.cases_arg is not None:
            cases = self.cases_arg
            command += f" --cases {cases if isinstance(cases, (str, Path)) else '...'}"
        return Report(done, str(src.manifest.get("created", "")), seconds, command,
                      src.manifest.get("host") or host.fingerprint(), bool(src.manifest.get("interrupted")),
                      results_dir=roots[0] if len(roots) == 1 else None, manifest=src.manifest, tally=tally)


def _today(names: list[str], cases, quiet: bool, lazy: bool = False) -> tuple[dict, list[str]]:
    """Today's cases (``cases``: as ``run`` takes them; CaseRefs with ``lazy``) by name, and
    the stored ``names`` that they have; what is on one side only is said on stderr."""
    from parity.report.escape import terminal

    today = {c.name: c for c in _cases(cases, lazy=lazy)}
    label = cases if isinstance(cases, (str, Path)) else "the cases given"
    stored = set(names)
    gone = [name for name in names if name not in today]
    missing = [name for name in today if name not in stored]
    if not quiet and gone:
        print(terminal(f"note: {len(gone)} stored case(s) are not in {label} and are left out: {', '.join(gone[:5])}"
                       + (" ..." if len(gone) > 5 else "")), file=sys.stderr)
    if not quiet and missing:
        print(terminal(f"note: {len(missing)} case(s) of {label} are not in the store and are not judged: "
                       f"{', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else "")), file=sys.stderr)
    return today, [name for name in names if name in today]


def rejudge(src: store.Store, cases, quiet: bool = False) -> None:
    """Put today's cases in place of the stored copies, in ``src`` (a loaded store): same
    names, same inputs (checked by their SHA-256), and each stored run kept only where the
    case still asks for the call it made; a run of another call becomes an ERROR that says
    so. Stored cases that ``cases`` no longer has are left out."""
    today, kept = _today(list(src.cases), cases, quiet)
    for name in [name for name in src.cases if name not in today]:
        del src.cases[name]
    for name in kept:
        _rejudged(src.cases[name], today[name])


def _rejudged(sc: store.StoredCase, c: Case) -> None:
    """Today's case ``c`` in place of the stored copy in ``sc`` (see rejudge)."""
    from parity import inputs, protocol
    from parity.ops.base import NoExactMapping

    arrays = {k: spec.materialize() for k, spec in c.inputs.items()}
    if c.grad:
        arrays[protocol.UPSTREAM] = c.upstream()
    changed = sc.digest is not None and inputs.digest(arrays) != sc.digest
    sc.case = c
    for i, r in enumerate(sc.results):
        r.case = c
        why = "the case's inputs changed since this store was made" if changed else None
        if why is None:
            try:
                native, forms = runner._native_and_forms(c, r.framework, c.spelling.get(r.framework))
            except NoExactMapping as exc:
                native, forms = None, {}
                if r.native is not None:
                    why = f"the case now has no exact {r.framework} call ({exc})"
            if why is None and native != r.native:
                why = f"the case now asks {r.framework} for {native}, the stored run made {r.native}"
            if why is None and r.native is not None:
                spelling = r.spelling or next(iter(forms))
                r.form = forms.get(spelling) or c.op.form_from_native(r.framework, r.native, c.shapes, spelling,
                                                                      c.dtype)
        if why is not None:
            r.status, r.outputs = runner.ERROR, {}
            if i < len(sc.output_paths):
                sc.output_paths[i] = {}  # not read later either (StoredCase.read)
            r.message = f"stored run not judged: {why}; run the case again"
