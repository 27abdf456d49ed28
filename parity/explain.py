"""`parity explain`: why two frameworks differ, and the call that makes them agree.

For a comparison between frameworks A and B the gap splits into:

* a semantic part: the canonical forms of A's and B's calls differ (field by field), and
  the float64 references of the two forms differ by ``semantic_max_abs``: the gap the
  difference alone causes;
* a numeric part: each framework against the float64 reference of its own call, in abs,
  ULP and as a fraction of the op's rounding bound (parity/ops/_norm.py): within the
  bound, rounding of the run dtype explains it.

When the forms differ it derives the parameters for B that compute A's form (and for A
that compute B's), or says why none exist, and verifies each by running it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from parity import compare, runner
from parity.cases import Case, load_case
from parity.errors import InputError
from parity.ops.base import NoExactMapping
from parity.report import fmt


@dataclass
class Mapping:
    """Native params for ``target`` that compute ``source``'s canonical form."""

    source: str
    target: str
    native: dict | None
    spellings: tuple[str, ...] = ()  # the target's spellings that compute it, in order
    reason: str = ""  # why none exists
    verified: compare.Comparison | None = None
    verify_case: Case | None = None

    @property
    def exists(self) -> bool:
        return self.native is not None


@dataclass
class PairExplanation:
    case: Case
    a: runner.Result
    b: runner.Result
    rows: list  # the a-vs-b comparisons, one per output
    own: dict  # framework -> its comparisons with the reference, per output
    mappings: list[Mapping] = field(default_factory=list)

    @property
    def semantic(self) -> list:
        return self.a.form.diff(self.b.form)


def _native_call(fw: str, native: dict, spelling: str | None) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in native.items())
    return f"{fw} {spelling or ''}({args})".replace(" (", "(")


def _mapping(case: Case, source: runner.Result, target: str) -> Mapping:
    """Params for ``target`` computing ``source``'s form, with a spelling that does."""
    op = case.op
    try:
        native = op.native_from_form(target, source.form, case.shapes)
    except NoExactMapping as exc:
        return Mapping(source.framework, target, None, reason=str(exc))
    forms = {s.name: op.form_from_native(target, native, case.shapes, s.name, case.dtype)
             for s in op.spellings[target]}
    exact = tuple(n for n, f in forms.items() if f == source.form)
    if exact:
        return Mapping(source.framework, target, native, exact)
    why = "; ".join(f"{n}: " + ", ".join(f"{label} {va} (wanted {vb})" for label, va, vb in f.diff(source.form))
                    for n, f in forms.items())
    return Mapping(source.framework, target, None, reason=f"no {target} spelling computes it: {why}")


def _verify_case(case: Case, m: Mapping, source: runner.Result) -> Case:
    """The case, run with ``source``'s call as it ran and the mapped call for the target."""
    native = {source.framework: source.native, m.target: m.native}
    spelling = {m.target: m.spellings}
    if source.spelling:
        spelling[source.framework] = (source.spelling,)
    return dataclasses.replace(
        case, name=f"{case.name} [explain: {m.target} as {m.source}]", native=native,
        frameworks=(source.framework, m.target), known=(), expected=(), spelling=spelling,
        devices=(source.device,))


def explain(cases: list[Case], between: tuple[str, str] | None = None, *, timeout: float = 300.0,
            log_dir: Path | None = None) -> list[PairExplanation]:
    """Run the cases, decompose every gap between two frameworks (or the pair asked for),
    and verify every exact mapping by running it."""
    pool = runner.WorkerPool(log_dir)
    try:
        return _explain(cases, between, timeout, pool)
    finally:
        pool.close()


def _explain(cases, between, timeout, pool) -> list[PairExplanation]:
    from parity import api

    report = api.run(cases, frameworks=list(between) if between else None, timeout=timeout, pool=pool,
                     keep_outputs=False)
    if report.interrupted:
        raise KeyboardInterrupt
    out: list[PairExplanation] = []
    for c in report.cases:
        case, results, rows = c.case, c.results, c.rows
        ran = {r.framework: r for r in results if r.status == runner.OK}
        if between:
            missing = [fw for fw in between if fw not in ran]
            if missing:
                why = "; ".join(f"{r.framework}: {r.status} {r.message}" for r in results if r.framework in missing)
                raise InputError(f"{case.name}: cannot explain {between[0]} vs {between[1]}: "
                                 f"{', '.join(missing)} did not run ({why or 'not in the case'})")
            pairs = [between]
        else:
            pairs = []
            for row in rows:
                if row.kind == "pair" and (row.verdict != compare.PASS or row.semantic):
                    key = (row.a.framework, row.b.framework)
                    if key not in pairs:
                        pairs.append(key)
        own = {}
        for row in rows:
            if row.kind == "reference":
                own.setdefault(row.a.framework, []).append(row)
        for fa, fb in pairs:
            pair_rows = [r for r in rows if r.kind == "pair" and {r.a.framework, r.b.framework} == {fa, fb}]
            ex = PairExplanation(case, ran[fa], ran[fb], pair_rows, own)
            if ex.semantic:
                ex.mappings = [_mapping(case, ran[fa], fb), _mapping(case, ran[fb], fa)]
            out.append(ex)

    # verify every mapping with one more run of all of them together
    checks = []
    for ex in out:
        for m in ex.mappings:
            if m.exists:
                source = ex.a if m.source == ex.a.framework else ex.b
                m.verify_case = _verify_case(ex.case, m, source)
                checks.append(m)
    if checks:
        checked = api.run([m.verify_case for m in checks], timeout=timeout, pool=pool, keep_outputs=False)
        if checked.interrupted:
            raise KeyboardInterrupt
        verified = {c.case.name: c.rows for c in checked.cases}
        for m in checks:
            pair = [r for r in verified[m.verify_case.name] if r.kind == "pair"]
            m.verified = max(pair, key=lambda r: (r.verdict != compare.PASS, r.metrics.max_abs if r.metrics else 0)) \
                if pair else None
    return out


# --- text --------------------------------------------------------------------------

def _numeric_line(row) -> str:
    m = row.metrics
    if m is None:
        return f"{row.a.label}: {row.verdict} {row.message.splitlines()[0] if row.message else ''}"
    ratio = m.bound_ratio
    share = "" if ratio is None else (
        f", {ratio:.0%} of the {row.dtype} rounding bound: rounding explains it" if ratio <= 1
        else f", {ratio:.3g}x the {row.dtype} rounding bound: rounding does NOT explain it")
    return f"{row.a.label}: max abs {fmt(m.max_abs)}, {fmt(m.max_ulp)} ulp{share}"


def _conclusion(ex: PairExplanation) -> list[str]:
    """What the decomposition means for each output's verdict, the declaration the verdict
    was held to, and the next step: the same words as the report's why."""
    out = []
    own = {(r.a.framework, r.output): r for rows in ex.own.values() for r in rows}
    for row in ex.rows:
        if row.verdict == "PASS" and not ex.semantic:
            continue
        ratios = [own.get((fw, row.output)) for fw in (ex.a.framework, ex.b.framework)]
        within = all(r is not None and r.metrics is not None and r.metrics.bound_ratio is not None
                     and r.metrics.bound_ratio <= 1 for r in ratios)
        if ex.semantic:
            cause = "semantic: the calls compute different things (the exact mapping below makes them agree)"
        elif within:
            cause = ("numeric: both sides are within the op's rounding bound of their own reference, so rounding "
                     "of the run dtype explains the gap; the tolerance is tighter than what rounding allows for "
                     "this input")
        else:
            cause = ("numeric, beyond the rounding bound: not rounding alone (an overflow, a one-pass variance, "
                     "another algorithm): look at the side whose reference row is beyond its bound")
        out.append(f"  verdict [{row.output}]: {row.verdict}: {cause}")
        if row.known is not None:
            k = row.known
            out.append(f"    declared: {k.label()} {k.describe()} at {row.case.path}:{k.line}: {k.reason}")
        for note in row.notes:
            out.append(f"    note: {note}")
        if not row.ok:
            if ex.semantic:
                step = "apply the exact mapping below to the case (--write-case PATH writes it), or declare the gap"
            elif within:
                step = (f"declare it in {row.case.path}: known: - between: [{row.a.label}, {row.b.label}] "
                        f"with max_bound_ratio: 1 (holds on every host) and the reason")
            else:
                step = "find which side is beyond its bound (numeric part above) and report or declare it"
            out.append(f"    next: {step}")
    return out


def render(explanations: list[PairExplanation]) -> str:
    lines: list[str] = []
    for ex in explanations:
        a, b = ex.a.framework, ex.b.framework
        lines.append(f"{ex.case.name}: {a} vs {b}")
        lines.append(f"  {a:<11} {_native_call(a, ex.a.native, ex.a.spelling)}")
        lines.append(f"  {b:<11} {_native_call(b, ex.b.native, ex.b.spelling)}")
        for row in ex.rows:
            m = row.metrics
            lines.append(f"  observed [{row.output}]: max abs {fmt(m.max_abs)}, {fmt(m.max_ulp)} ulp, "
                         f"{m.mismatches}/{m.n} beyond tolerance -> {row.verdict}")
        if ex.semantic:
            lines.append(f"  semantic part: the two calls are not equivalent; their canonical {ex.case.op.name} "
                         f"forms differ:")
            for label, va, vb in ex.semantic:
                lines.append(f"    {label}: {a} {va}, {b} {vb}")
            for row in ex.rows:
                if row.semantic_max_abs is not None:
                    share = row.semantic_max_abs / row.metrics.max_abs if row.metrics.max_abs else 1.0
                    lines.append(f"    gap from the difference alone [{row.output}] (float64 references): "
                                 f"max abs {fmt(row.semantic_max_abs)} ({share:.0%} of the observed gap)")
        else:
            lines.append("  semantic part: none: both calls compute the same canonical form")
        lines.append("  numeric part: each against the float64 reference of its own call:")
        for fw in (a, b):
            for row in ex.own.get(fw, []):
                lines.append(f"    [{row.output}] " + _numeric_line(row))
        lines += _conclusion(ex)
        for m in ex.mappings:
            head = f"  exact mapping: {m.target} computing {m.source}'s call: "
            if not m.exists:
                lines.append(head + f"none: {m.reason}")
                continue
            lines.append(head + _native_call(m.target, m.native, m.spellings[0]))
            if len(m.spellings) > 1:
                lines.append(f"    (other exact spellings, tried in order: {', '.join(m.spellings[1:])})")
            v = m.verified
            if v is None or v.metrics is None:
                lines.append(f"    verified by running it: {v.verdict if v else 'did not run'} "
                             f"{v.message.splitlines()[0] if v and v.message else ''}")
            else:
                side = v.a if v.a.framework == m.target else v.b
                lines.append(f"    verified by running it ({m.target} ran {side.spelling}): max abs "
                             f"{fmt(v.metrics.max_abs)}, {fmt(v.metrics.max_ulp)} ulp -> {v.verdict}")
        lines.append("")
    return "\n".join(lines)


def all_verified(explanations: list[PairExplanation]) -> bool:
    return all(m.verified is not None and m.verified.verdict == compare.PASS
               for ex in explanations for m in ex.mappings if m.exists)


def corrected_case(ex: PairExplanation) -> tuple[str, Case]:
    """YAML of the case with the first verified exact mapping applied (declarations about
    the target framework's old call removed), and the verification case."""
    m = next((m for m in ex.mappings if m.exists and m.verified is not None
              and m.verified.verdict == compare.PASS), None)
    if m is None:
        raise InputError(f"{ex.case.name}: no verified exact mapping between {ex.a.framework} and "
                         f"{ex.b.framework} to write")
    doc = yaml.safe_load(ex.case.path.read_text())
    source = ex.a if m.source == ex.a.framework else ex.b
    native = dict(doc.get("native") or {})
    native[m.target] = m.native
    if source.framework not in native:
        native[source.framework] = source.native
    doc["native"] = native
    spelling = dict(doc.get("spelling") or {})
    spelling[m.target] = m.spellings[0] if len(m.spellings) == 1 else list(m.spellings)
    doc["spelling"] = spelling
    doc["name"] = f"{ex.case.name}-exact-{m.target}"
    doc["description"] = (f"Written by parity explain from {ex.case.name}: {m.target} gets the parameters that "
                          f"compute {m.source}'s call exactly. " + str(doc.get("description", ""))).strip()
    # declarations about the target's old call no longer apply
    known = [k for k in doc.get("known") or [] if not isinstance(k, dict) or
             (m.target not in (k.get("between") or []) and k.get("framework") != m.target)]
    if known:
        doc["known"] = known
    else:
        doc.pop("known", None)
    doc.pop("expected", None)  # golden values belong to the original calls
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100, default_flow_style=None), m.verify_case


def write_corrected(ex: PairExplanation, path: Path) -> Case:
    text, _ = corrected_case(ex)
    path = Path(path)
    if ex.case.inputs and any(s.kind == "file" for s in ex.case.inputs.values()) \
            and path.parent.resolve() != ex.case.path.parent.resolve():
        raise InputError(f"{ex.case.name} reads .npy files relative to {ex.case.path.parent}: write the "
                         f"corrected case into that directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return load_case(path)
