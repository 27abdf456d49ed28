"""Comparisons: every row of a case, with its verdict.

For each case: each run against the float64 reference of its own call (per output), every
pair of runs that produced outputs, each golden value against the sides it names, and with
a baseline each run against its own stored output. ``evaluate`` builds the rows from the
metrics (parity.metrics) and lets the case's declarations (parity.declarations) turn
their verdicts. Verdicts and statuses: parity.verdicts; side labels: parity.sides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from parity import sides
from parity.cases import Case, Known
from parity.declarations import Declarations
from parity.inputs import DTYPES
from parity.metrics import EPSILON, Metrics, metrics, metrics_many, ordered_bits, ulp_distance  # noqa: F401 - re-exported
from parity.runner import Result
from parity.verdicts import (CRASH, ERROR, FAIL, FIXED, KNOWN_GAP, OK, PASS, TIMEOUT, UNSUPPORTED,  # noqa: F401
                             VERDICTS, is_ok)

REFERENCE, EXPECTED, BASELINE = sides.REFERENCE, sides.EXPECTED, sides.BASELINE


@dataclass(slots=True)
class Side:
    """One side of a comparison: a framework run, the reference, a golden value or a baseline,
    with the environment it ran in (for a run: its host and variant)."""

    label: str
    framework: str
    device: str = "cpu"
    version: str | None = None
    spelling: str | None = None
    variant: str | None = None
    host: dict | None = None


@dataclass(slots=True)
class Comparison:
    case: Case
    kind: str  # "reference" | "pair" | "expected" | "baseline"
    a: Side
    b: Side
    output: str
    dtype: str
    verdict: str
    atol: float
    rtol: float
    metrics: Metrics | None = None
    message: str = ""
    declared: bool = False
    known: Known | None = None
    semantic: list = field(default_factory=list)  # [(field label, a's value, b's value)]
    semantic_max_abs: float | None = None
    #: what else a reader should know: a declaration that did not apply here and why, a
    #: host-dependent outcome and whether it happened
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return is_ok(self.verdict, self.declared)

    @property
    def title(self) -> str:
        return f"{self.a.label} vs {self.b.label}"

    @property
    def cause(self) -> str:
        """Why the two sides differ: the calls compute different things (semantic), or the
        same thing rounded differently (numeric, within or beyond the op's rounding bound)."""
        if self.semantic:
            return "semantic"
        if self.metrics is None or self.kind == "expected":
            return ""
        r = self.metrics.bound_ratio
        if r is None:
            return "numeric"
        return "numeric, within the rounding bound" if r <= 1 else "numeric, beyond the rounding bound"


def default_tolerance(op, dtype: str) -> tuple[float, float]:
    """(atol, rtol) when a case gives none: the op's ``tolerance_ulps`` machine epsilons of
    the dtype, relative, with the same absolute floor for values near zero (the outputs of
    these ops are O(1)). float32, 16 eps: 1.9e-6; float16: 1.6e-2; bfloat16: 0.125;
    float64: 3.6e-15. Two implementations that each round within a few ulps of the exact
    value, with reductions over thousands of terms, stay well inside it."""
    tol = op.tolerance_ulps * EPSILON[dtype]
    return tol, tol


def tolerance(case: Case, dtype: str) -> tuple[float, float]:
    atol, rtol = default_tolerance(case.op, dtype)
    return case.tolerance.get("atol", atol), case.tolerance.get("rtol", rtol)


def output_tolerance(case: Case, output: str, reference: Result | None) -> tuple[float, float]:
    """(atol, rtol) for one output. Forward outputs: ``tolerance``. A gradient element is a sum
    whose terms can cancel (grad_x of a layer normalized over two values is nearly zero, from
    terms of size |g|/s), and rounding errors scale with the sum of the absolute values of the
    terms, not with the sum (its condition number). So, unless the case sets atol, a
    gradient's atol is norm-wise: the default tolerance times the root mean square, over the
    gradient's elements, of the magnitude of their terms (Op.reference_vjp); rtol stays the
    default."""
    atol, rtol = tolerance(case, case.dtype)
    if not output.startswith("grad_") or "atol" in case.tolerance or reference is None:
        return atol, rtol
    m = reference.magnitudes.get(output)
    if m is None or not np.size(m):
        return atol, rtol
    m = np.asarray(m, np.float64)
    m = m[np.isfinite(m)]
    rms = float(np.sqrt(np.mean(m * m))) if m.size else 0.0
    return max(atol, atol * rms), rtol


def side_label(framework: str, device: str, variant: str | None = None, host: str | None = None) -> str:
    """torch, torch@gpu, torch[np126] (a variant run), torch@gpu[np126], torch/amd-avx2 (another host)."""
    return sides.label(framework, device, variant, host)


def side_matches(name: str, label: str) -> bool:
    """Whether a side a case names ('torch', 'torch@gpu', 'torch[label]', 'torch/host', '*')
    covers the side ``label``."""
    return sides.matches(name, label)


def host_labels(results: list[Result]) -> dict[int, str]:
    """{id(result): host part of its side label} for the runs that need one: the same framework,
    device and variant from more than one host (labels where they are unique, else ids)."""
    by_side: dict[tuple, set] = {}
    for r in results:
        if r.host:
            by_side.setdefault((r.framework, r.device, r.variant), set()).add(r.host["id"])
    multi = {k for k, ids in by_side.items() if len(ids) > 1}
    if not multi:
        return {}
    hosts = {r.host["id"]: r.host for r in results if r.host}
    labels = [h.get("label") for h in hosts.values()]
    name = {hid: (h.get("label") if labels.count(h.get("label")) == 1 else hid) for hid, h in hosts.items()}
    return {id(r): name[r.host["id"]] for r in results if r.host and (r.framework, r.device, r.variant) in multi}


def _order(r: Result):
    """Frameworks in their usual order; the same side from several hosts in the order the
    results came (the stores' order: the sort is stable)."""
    from parity.frameworks import NAMES

    return (NAMES.index(r.framework) if r.framework in NAMES else 99, r.device, r.variant or "")


def _diff_text(diff, a: str, b: str) -> str:
    return "; ".join(f"{label}: {a} {va}, {b} {vb}" for label, va, vb in diff)


# --- evaluation ------------------------------------------------------------------

class _Evaluation:
    """The rows of one case, built in named steps (see ``evaluate``)."""

    def __init__(self, case: Case, results: list[Result], refs: list[Result]):
        self.case, self.results, self.refs = case, results, refs
        self.dtype = case.dtype
        self.ref_of = {r.form: r for r in refs}
        own = self.ref_of.get(case.form())
        self.own_ref = own if own is not None and own.status == OK else None
        ref_host = refs[0].host if refs else None
        self.ref_side = Side(REFERENCE, REFERENCE, "cpu", refs[0].version if refs else None, host=ref_host)
        self.default_tol = tolerance(case, self.dtype)
        self.tols = {out: output_tolerance(case, out, self.own_ref) for out in case.outputs()}
        self.host_part = host_labels(results)
        versions: dict = {}
        for r in results:
            if r.version and not r.variant:
                versions.setdefault((r.host or {}).get("id"), {}).setdefault(r.framework, r.version)
        self.declarations = Declarations(case, versions)
        self.rows: list[Comparison] = []
        self._measure: list[tuple] = []  # (row, a, b, bound) for settle
        self._kept: list[tuple] = []  # (row, status, message) for settle, in order
        for r in results:
            if r.status == OK:
                _check_outputs(r, self.ref_of.get(r.form), case)
        self.ran = sorted((r for r in results if r.status == OK), key=_order)

    def side(self, r: Result, output: str = "") -> Side:
        """A run as a side; for a gradient output, with the call the gradient went through."""
        spelling = (r.grad or {}).get("spelling") if output.startswith("grad_") else r.spelling
        return Side(sides.label(r.framework, r.device, r.variant, self.host_part.get(id(r))), r.framework, r.device,
                    r.version, spelling, r.variant, r.host)

    def row(self, kind: str, a: Side, b: Side, output: str, verdict: str, tol=None, **kw) -> Comparison:
        atol, rtol = tol or self.tols.get(output, self.default_tol)
        return Comparison(self.case, kind, a, b, output, self.dtype, verdict, atol, rtol, **kw)

    def measure(self, row: Comparison, a, b, bound=None) -> None:
        """The row's metrics and PASS/FAIL, computed by ``settle`` (all the case's at once)."""
        self._measure.append((row, a, b, bound))

    def jobs(self) -> list[tuple]:
        """What ``settle`` measures: a metrics_many job per row measured so far."""
        return [(a, b, row.atol, row.rtol, bound) for row, a, b, bound in self._measure]

    def settle(self, measured: list[Metrics] | None = None) -> None:
        """The metrics of every row measured so far, in one pass (metrics_many; or ``measured``,
        that pass's answer to ``jobs()`` made for several cases at once), then the declarations
        applied to the rows kept, in order. The drill-down data (histogram, worst elements, per
        channel) only for a row beyond tolerance, where a reader needs it (a second pass)."""
        if measured is None:
            measured = metrics_many(self.jobs(), self.dtype)
        for (row, a, b, bound), m in zip(self._measure, measured, strict=True):
            if m.mismatches:
                m = metrics(a, b, self.dtype, row.atol, row.rtol, bound, detail=True)
            row.metrics = m
            row.verdict = PASS if m.mismatches == 0 else FAIL
        self._measure.clear()
        for row, status, message in self._kept:
            if status is not None:
                self.declarations.apply_status(row, status, message)
            if status is None or status == OK:
                self.declarations.apply_gap(row)
            self.rows.append(row)
        self._kept.clear()

    def keep(self, row: Comparison, status: str | None = None, message: str = "") -> None:
        """Keep the row; once it is measured (``settle``), the declarations are applied to it:
        its run's status first, where given."""
        self._kept.append((row, status, message))

    def against_reference(self) -> None:
        """Each run against the reference of its own canonical form; a run without outputs gets
        one row (its status), not one per output."""
        own_form = self.case.form()
        for r in sorted(self.results, key=_order):
            ref = self.ref_of.get(r.form)
            for output in self.case.outputs() if r.status == OK else ("*",):
                status, message = _row_status(r, output)
                row = self.row("reference", self.side(r, output), self.ref_side, output, status)
                if status != OK:
                    row.message = message
                elif ref is None or ref.status != OK:
                    row.verdict, row.message = ERROR, (ref.message if ref else "no reference for this form")
                else:
                    self.measure(row, r.outputs[output], ref.outputs[output], ref.bounds.get(output))
                    if r.form != own_form:
                        row.message = "compared with the reference of this framework's own call: " + \
                                      _diff_text(r.form.diff(own_form), "this call", "the case's params")
                self.keep(row, status, message)

    def pairs(self) -> None:
        """Every pair of runs that produced outputs."""
        for i, ra in enumerate(self.ran):
            for rb in self.ran[i + 1:]:
                sem = ra.form.diff(rb.form)
                for output in self.case.outputs():
                    if output not in ra.outputs or output not in rb.outputs:
                        continue  # a gradient one side could not take: its reference row says why
                    row = self.row("pair", self.side(ra, output), self.side(rb, output), output, PASS, semantic=sem)
                    same = self.ref_of.get(ra.form) if not sem else None
                    bound = 2 * same.bounds[output] if same is not None and output in same.bounds else None
                    self.measure(row, ra.outputs[output], rb.outputs[output], bound)
                    if sem:
                        fa, fb = self.ref_of.get(ra.form), self.ref_of.get(rb.form)
                        if fa and fb and fa.status == OK and fb.status == OK:
                            row.semantic_max_abs = float(np.max(np.abs(fa.outputs[output] - fb.outputs[output])))
                        row.message = "different computations: " + _diff_text(sem, row.a.label, row.b.label)
                    self.keep(row)

    def golden(self) -> None:
        """Each golden value against the reference and the frameworks it names."""
        for e in self.case.expected:
            golden = e.spec.materialize("float64")
            tol = (e.atol if e.atol is not None else self.tols[e.output][0],
                   e.rtol if e.rtol is not None else self.tols[e.output][1])
            targets = []
            if e.who in (REFERENCE, "all") and self.own_ref is not None:
                targets.append((self.ref_side, self.own_ref))
            if e.who != REFERENCE:
                targets += [(self.side(r, e.output), r) for r in self.ran if e.who in ("all", r.framework)]
            for side, r in targets:
                out = r.outputs.get(e.output)
                if out is None:
                    continue  # a gradient this side could not take: its reference row says why
                row = self.row("expected", side, Side(EXPECTED, EXPECTED), e.output, PASS, tol)
                if out.shape != golden.shape:
                    row.verdict = FAIL
                    row.message = f"shape {list(out.shape)} but the expected values have shape {list(golden.shape)}"
                else:
                    self.measure(row, out, golden)
                row.message = (row.message + "; " if row.message else "") + f"golden values: expected.{e.who}"
                self.keep(row)

    def against_baseline(self, baseline: list[Result], name: str, partial: bool = False) -> None:
        """Each run against the same framework, device and variant (and host, where the baseline
        has it) in the baseline. A run the baseline lacks (a case or side added since, or a
        baseline saved from a subset) is an ERROR: after an upgrade a silent gap would be a false
        green; with ``partial`` it is UNSUPPORTED."""
        old: dict = {}
        for b in baseline:
            key = (b.framework, b.device, b.dtype, b.variant)
            old.setdefault(key + ((b.host or {}).get("id"),), b)
            old.setdefault(key, b)
        for r in self.ran:
            key = (r.framework, r.device, r.dtype, r.variant)
            b = old.get(key + ((r.host or {}).get("id"),)) or old.get(key)
            for output in self.case.outputs():
                if output not in r.outputs:
                    continue
                a_side = self.side(r, output)
                b_side = Side(BASELINE, BASELINE, r.device, b.version if b else None,
                              self.side(b, output).spelling if b else None, host=b.host if b else None)
                row = self.row("baseline", a_side, b_side, output, PASS)
                if b is None:
                    row.verdict = UNSUPPORTED if partial else ERROR
                    row.message = (f"not in baseline {name!r}: it was saved without this case or side"
                                   + ("" if partial else "; save a new baseline, or accept runs the baseline lacks "
                                                         "with --baseline-partial"))
                elif b.status != OK:
                    row.verdict = UNSUPPORTED
                    row.message = f"no baseline output ({b.status}: {b.message})"
                elif b.inputs_sha256 and r.inputs_sha256 and b.inputs_sha256 != r.inputs_sha256:
                    row.verdict = ERROR
                    row.message = "the case's inputs changed since the baseline: save a new baseline"
                elif output in b.outputs:
                    self.measure(row, r.outputs[output], b.outputs[output])
                    changed = f"{b.version} -> {r.version}" if b.version != r.version else f"same version {r.version}"
                    row.message = f"{a_side.label} against its own output in baseline {name!r} ({changed})"
                else:
                    row.verdict = UNSUPPORTED
                    row.message = (f"baseline {name!r} has no output {output!r} of {a_side.label} "
                                   f"(saved before the case had it)")
                self.keep(row)

    def finish(self, measured: list[Metrics] | None = None) -> list[Comparison]:
        self.settle(measured)
        self.declarations.mark_fixed()
        self.declarations.note_misses()
        for row in self.rows:
            if row.verdict == FAIL and not row.message and row.metrics is not None:
                row.message = (f"{row.metrics.mismatches} of {row.metrics.n} elements beyond tolerance and no "
                               f"declaration covers {row.title} [{row.output}]")
        return self.rows


def evaluate(case: Case, results: list[Result], refs: list[Result], baseline: list[Result] | None = None,
             baseline_name: str = "baseline", baseline_partial: bool = False) -> list[Comparison]:
    """Every comparison of one case, with its verdict; with ``baseline`` (the stored results of
    an earlier run) also each run against its own baseline output. Each declaration's
    ``when:`` is judged against the runs' own environments (host, versions, device)."""
    return _evaluation(case, results, refs, baseline, baseline_name, baseline_partial).finish()


def _evaluation(case, results, refs, baseline, baseline_name, baseline_partial) -> _Evaluation:
    ev = _Evaluation(case, results, refs)
    ev.against_reference()
    ev.pairs()
    ev.golden()
    if baseline is not None:
        ev.against_baseline(baseline, baseline_name, baseline_partial)
    return ev


def evaluate_many(items) -> list[list[Comparison]]:
    """``evaluate(*item)`` of each item (case, results, refs, and optionally baseline,
    baseline_name, baseline_partial), the same rows, with the metrics of all their comparisons
    computed in one metrics_many pass per dtype: several small cases cost the NumPy calls of
    one (metrics_many stacks the pairs of one size and tolerance)."""
    evs = [_evaluation(*item, *(None, "baseline", False)[len(item) - 3:]) for item in items]
    by_dtype: dict[str, list[_Evaluation]] = {}
    for ev in evs:
        by_dtype.setdefault(ev.dtype, []).append(ev)
    measured: dict[int, list[Metrics]] = {}
    for dtype, group in by_dtype.items():
        jobs = [ev.jobs() for ev in group]
        flat = iter(metrics_many([j for js in jobs for j in js], dtype))
        for ev, js in zip(group, jobs):
            measured[id(ev)] = [next(flat) for _ in js]
    return [ev.finish(measured[id(ev)]) for ev in evs]


def _row_status(r: Result, output: str) -> tuple[str, str]:
    """The status and message of one output of a run: the run's, and for a gradient output
    also how the gradient went."""
    if r.status != OK or not output.startswith("grad_"):
        return r.status, r.message
    g = r.grad or {"status": ERROR, "message": "harness: the worker took no gradient"}
    if g["status"] != OK:
        return g["status"], f"gradient by {g.get('spelling') or r.framework}: {g.get('message', '')}"
    if output not in r.outputs:
        return ERROR, f"gradient by {g.get('spelling')}: no output {output!r}"
    return OK, ""


def _check_outputs(r: Result, ref: Result | None, case: Case) -> None:
    """A run that returns missing outputs, or the wrong shape or dtype, is an ERROR (a
    gradient output: its shape only, and a bad one fails the gradient, not the run)."""
    if r.grad and r.grad.get("status") == OK and ref is not None and ref.status == OK:
        bad = [f"{k} has shape {list(r.outputs[k].shape)}, expected {list(ref.outputs[k].shape)}"
               for k in case.outputs() if k.startswith("grad_") and k in r.outputs and k in ref.outputs
               and r.outputs[k].shape != ref.outputs[k].shape]
        if bad:
            r.grad = {**r.grad, "status": ERROR, "message": "bad output: " + "; ".join(bad)}
    problems = []
    for name in case.op.outputs:
        if name not in r.outputs:
            problems.append(f"no output {name!r}")
            continue
        out = r.outputs[name]
        want_dtype = DTYPES[case.op.output_dtype(name, r.dtype)]
        if ref is not None and ref.status == OK and out.shape != ref.outputs[name].shape:
            problems.append(f"output {name} has shape {list(out.shape)}, expected {list(ref.outputs[name].shape)}")
        if out.dtype != want_dtype:
            problems.append(f"output {name} has dtype {out.dtype.name}, expected {want_dtype.name}")
    if problems:
        r.status = ERROR
        r.message = f"bad output from {r.spelling or r.framework}: " + "; ".join(problems)


def exit_code(rows: list[Comparison]) -> int:
    return 0 if all(r.ok for r in rows) else 1


def counts(rows: list[Comparison]) -> dict[str, int]:
    out = {v: 0 for v in VERDICTS}
    for r in rows:
        out[r.verdict] += 1
    return out
