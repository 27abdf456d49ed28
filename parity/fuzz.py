"""``parity fuzz OP``: search for inputs on which the frameworks disagree, with hypothesis.

Each example is a whole case: a shape, the op's parameters (torch's spelling, mapped
exactly to the other frameworks as ``parity run`` does), a dtype, a value regime (plain,
scaled from 1e-30 to huge, a large mean over a small spread, a constant channel) and
whether gradients are compared. It is written as a case file (with an .npy input where
the values cannot be described by a seeded draw) and run through the public loader,
the real framework workers and the comparator, exactly as ``parity run`` would.

A *finding* is a comparison that is not OK (FAIL beyond tolerance, or an ERROR, CRASH or
TIMEOUT). Findings are grouped by their first failing comparison (who against whom, the
verdict, forward or gradient, the dtype); hypothesis shrinks each group to a minimal
example (smaller shapes, simpler parameters, plain values), which is written to ``--out``
as a regression case and run once more from that file to confirm it reproduces. Hypothesis
stops generating soon after its first failure, so the search runs in rounds (see search).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from parity import frameworks, ops, runner
from parity.cases import load_case
from parity.errors import InputError

DTYPES = ("float32", "float16", "bfloat16", "float64")  # hypothesis shrinks towards the first
REGIMES = ("plain", "scaled", "offset", "constant-channel")


@dataclass(frozen=True)
class Example:
    """One generated case."""

    op: str
    shape: tuple[int, ...]
    params: dict
    dtype: str
    regime: str
    seed: int
    std: float = 1.0
    mean: float = 0.0
    channel: int = 0  # the constant channel (constant-channel regime)
    weights: tuple[str, ...] = ()  # weight/bias/running stats given as inputs
    grad: bool = False

    def describe(self) -> str:
        values = {"plain": "N(0, 1)", "scaled": f"N(0, {self.std:g}^2)", "offset": f"N({self.mean:g}, {self.std:g}^2)",
                  "constant-channel": f"N({self.mean:g}, {self.std:g}^2), channel {self.channel} constant"}[self.regime]
        params = ", ".join(f"{k}={v}" for k, v in self.params.items())
        extra = (f", {'+'.join(self.weights)}" if self.weights else "") + (", gradients" if self.grad else "")
        return f"{self.op} {list(self.shape)} {self.dtype} {values}; {params}{extra}"


# --- strategies --------------------------------------------------------------------------

def _st():
    from hypothesis import strategies as st

    return st


def _values(draw, dtype: str):
    """(regime, std, mean): extremes scaled to the dtype's range."""
    st = _st()
    regime = draw(st.sampled_from(REGIMES))
    top = {"float16": 4, "bfloat16": 30, "float32": 30, "float64": 100}[dtype]
    if regime == "plain":
        return regime, 1.0, 0.0
    if regime == "scaled":  # tiny to huge
        return regime, 10.0 ** draw(st.integers(-30, top)), 0.0
    mean = 10.0 ** draw(st.integers(1, min(top, 8)))
    std = 10.0 ** draw(st.integers(-3, 0))
    return regime, std, mean


def examples(op: str, dtypes: tuple[str, ...], grad: bool):
    """The hypothesis strategy of Examples for ``op``: the op's own strategy (``Op.fuzz``: shape,
    params, optional inputs) with a dtype, a value regime, a seed and whether gradients count."""
    st = _st()
    the_op = ops.get(op)
    if the_op.fuzz is None:
        raise InputError(f"parity fuzz has no generator for op {op!r}; it knows: {', '.join(ops.fuzzable())}")

    @st.composite
    def strategy(draw):
        shape, params, weights = the_op.fuzz(draw)
        dtype = draw(st.sampled_from(dtypes))
        regime, std, mean = _values(draw, dtype)
        channel = draw(st.integers(0, shape[1] - 1)) if regime == "constant-channel" and len(shape) > 1 else 0
        return Example(op, shape, params, dtype, regime, draw(st.integers(0, 2**16)), std, mean, channel,
                       weights, bool(grad and draw(st.booleans())))

    return strategy()


# --- examples as case files ------------------------------------------------------------------

def _weight_shape(ex: Example, name: str) -> list[int]:
    if ex.op in ("layer_norm", "rms_norm"):
        return list(ex.params["normalized_shape"])
    return [ex.shape[1]]


def mapping(ex: Example, name: str, description: str = "", source: str = "") -> tuple[dict, np.ndarray | None]:
    """The case of ``ex`` as the mapping a case file holds, and the x array when ``ex`` needs
    one given (a constant channel): the input spec is then {"dtype": ...}, to which the array
    is added in memory (``case``) or as a file beside the YAML (``write_case``)."""
    x = {"shape": list(ex.shape), "dtype": ex.dtype, "seed": ex.seed}
    array = None
    if ex.regime != "plain":
        x.update(mean=ex.mean, std=ex.std)
    if ex.regime == "constant-channel":
        from parity.inputs import InputSpec

        array = InputSpec("x", "random", ex.shape, "float64", seed=ex.seed,
                          args={"mean": ex.mean, "std": ex.std}).materialize()
        array[:, ex.channel] = ex.mean
        x = {"dtype": ex.dtype}
    inputs = {"x": x}
    for i, name_ in enumerate(ex.weights):
        spec = {"shape": _weight_shape(ex, name_), "dtype": ex.dtype, "seed": ex.seed + 1 + i}
        if name_ == "running_var":
            spec.update(init="uniform", low=0.5, high=2.0)
        inputs[name_] = spec
    doc = {"name": name, "op": ex.op}
    if description:
        doc["description"] = description
    if source:
        doc["source"] = source
    doc["params"] = ex.params
    if ex.grad:
        doc["grad"] = True
    doc["inputs"] = inputs
    return doc, array


def case(ex: Example, name: str):
    """``ex`` as a case in memory (parity.case): nothing is written."""
    from parity import cases

    doc, array = mapping(ex, name)
    if array is not None:
        doc["inputs"]["x"] = {"array": array, "dtype": ex.dtype}
    return cases.from_mapping(doc)


def write_case(ex: Example, directory: Path, stem: str, name: str, description: str = "",
               source: str = "") -> Path:
    """Write ``ex`` as ``directory/stem.yaml`` (and ``stem.x.npy`` when needed); returns the path."""
    directory.mkdir(parents=True, exist_ok=True)
    doc, array = mapping(ex, name, description, source)
    if array is not None:
        np.save(directory / f"{stem}.x.npy", array, allow_pickle=False)
        doc["inputs"]["x"] = {"file": f"{stem}.x.npy", "dtype": ex.dtype}
    path = directory / f"{stem}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=100))
    return path


# --- running ---------------------------------------------------------------------------------

@dataclass
class Finding:
    signature: tuple
    example: Example
    rows: list
    path: Path | None = None
    reproduced: bool | None = None
    flaky: bool = False  # hypothesis replayed it and it did not fail again

    def summary(self) -> str:
        a, b, verdict, part, dtype = self.signature
        worst = self.rows[0]
        how = (f"max abs {worst.metrics.max_abs:.3g} > tolerance (atol {worst.atol:.3g}, rtol {worst.rtol:.3g})"
               + (f", {worst.cause}" if worst.cause else "")
               if worst.metrics is not None else (worst.message.splitlines() or [""])[0][:160])
        return f"{verdict} {a} vs {b} ({dtype} {part}{'' if worst.output == '*' else ', ' + worst.output}): {how}"


WITHIN_BOUND = "numeric, within the rounding bound"


def signature(rows, skip=(), beyond_bound: bool = False) -> tuple | None:
    """What kind of disagreement: the first comparison that is not OK whose kind is not in
    ``skip``, as (side a, side b, verdict, forward|gradient, dtype). Comparisons with the
    reference come first; a pair of frameworks counts only when neither side already fails
    against the reference (else it is the same disagreement seen twice). With
    ``beyond_bound``, a FAIL that the op's rounding bound explains does not count."""
    bad = [r for r in rows if not r.ok and not (beyond_bound and r.verdict == "FAIL" and r.cause == WITHIN_BOUND)]
    failing = {(r.a.label, r.output) for r in bad if r.kind == "reference"}
    bad = [r for r in bad if r.kind == "reference" or not (
        {(r.a.label, r.output), (r.b.label, r.output)} & failing)]
    bad.sort(key=lambda r: (r.kind != "reference", r.output.startswith("grad_")))
    for r in bad:
        if (sig := row_signature(r)) not in skip:
            return sig
    return None


def row_signature(r) -> tuple:
    return (r.a.label, r.b.label, r.verdict, "gradient" if r.output.startswith("grad_") else "forward", r.dtype)


def signatures(rows, beyond_bound: bool = False) -> set[tuple]:
    """Every kind of disagreement among the rows."""
    out, skip = set(), set()
    while (sig := signature(rows, skip, beyond_bound)) is not None:
        out.add(sig)
        skip.add(sig)
    return out


class Searcher:
    """Runs examples through warm workers and keeps statistics of what it searched."""

    def __init__(self, op: str, only: list[str] | None, timeout: float, workdir: Path, beyond_bound: bool = False):
        self.op, self.only, self.timeout, self.workdir = op, only, timeout, workdir
        self.beyond_bound = beyond_bound
        self.pool = runner.WorkerPool(workdir / "logs")
        self.count = 0
        self.stats: dict[str, Counter] = {k: Counter() for k in ("dtype", "regime", "rank", "grad", "outcome")}
        self.params: dict[str, set] = {}
        self.versions: dict[str, str] = {}
        self.frameworks_ran: set[str] = set()

    def run_case(self, c) -> list:
        from parity import api

        report = api.run([c], frameworks=self.only, timeout=self.timeout, pool=self.pool, keep_outputs=False)
        if report.interrupted:
            raise KeyboardInterrupt
        for r in report.cases[0].results if report.cases else []:
            if r.version:
                self.versions[r.framework] = r.version
            if r.status == runner.OK:
                self.frameworks_ran.add(r.framework)
        return report.rows

    def run(self, ex: Example) -> list:
        self.count += 1
        rows = self.run_case(case(ex, f"fuzz/{self.op}/ex{self.count}"))
        for key, value in (("dtype", ex.dtype), ("regime", ex.regime), ("rank", len(ex.shape)), ("grad", ex.grad)):
            self.stats[key][value] += 1
        for k, v in ex.params.items():
            self.params.setdefault(k, set()).add(json.dumps(v))
        sig = signature(rows, beyond_bound=self.beyond_bound)
        self.stats["outcome"]["finding" if sig else "agree"] += 1
        return rows

    def close(self):
        self.pool.close()


class _Found(Exception):
    """Raised inside the hypothesis test for an example with a finding; one subclass per
    signature, so that hypothesis shrinks each kind of disagreement separately."""

    def __init__(self, finding: Finding):
        super().__init__(finding.summary())
        self.finding = finding


@dataclass
class Outcome:
    op: str
    frameworks: list[str]
    max_examples: int
    seed: int
    generated: int
    executed: int
    seconds: float
    stats: dict
    params: dict
    versions: dict
    findings: list[Finding] = field(default_factory=list)
    beyond_bound: bool = False

    def to_json(self) -> dict:
        return {
            "op": self.op, "frameworks": self.frameworks, "max_examples": self.max_examples, "seed": self.seed,
            "beyond_bound": self.beyond_bound,
            "generated": self.generated, "executed": self.executed, "seconds": round(self.seconds, 2),
            "searched": {k: {str(v): n for v, n in c.items()} for k, c in self.stats.items()},
            "params": {k: sorted(json.loads(v) for v in vs) if all(json.loads(v) is not None for v in vs)
                       else sorted(vs) for k, vs in self.params.items()},
            "versions": self.versions,
            "findings": [{"signature": list(f.signature), "summary": f.summary(), "example": f.example.describe(),
                          "case": str(f.path) if f.path else None, "reproduced": f.reproduced, "flaky": f.flaky}
                         for f in self.findings],
        }


def search(op_name: str, *, only: list[str] | None = None, max_examples: int = 100, seed: int = 0,
           dtypes: tuple[str, ...] = DTYPES, grad: bool = True, out: Path = Path("fuzz-findings"),
           timeout: float = 120.0, beyond_bound: bool = False, progress=None) -> Outcome:
    """Search, shrink, write and re-check the findings. See the module docstring."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as hseed

    op = ops.get(op_name)
    if op_name not in ops.fuzzable():
        raise InputError(f"parity fuzz has no generator for op {op_name!r}; it knows: {', '.join(ops.fuzzable())}")
    fws = [fw for fw in (only or op.frameworks()) if fw in op.frameworks() and frameworks.installed(fw)]
    if not fws:
        raise InputError(f"no installed framework has op {op_name} (asked for: {', '.join(only or op.frameworks())})")
    start = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="parity-fuzz-"))
    searcher = Searcher(op_name, fws, timeout, workdir, beyond_bound)
    kinds: dict[tuple, type] = {}
    found: dict[tuple, Finding] = {}
    generated = 0
    strategy = examples(op_name, dtypes, grad and bool(op.grad_spellings))
    # Hypothesis stops generating soon after its first failing example and shrinks it. So the
    # search runs in rounds: each round treats the kinds already found as agreement, so it
    # finds and shrinks new kinds only, until a round generates its whole budget without one.
    for round_ in range(64):
        budget = max_examples - generated
        if budget <= 0:
            break
        calls, first = 0, None

        @settings(max_examples=budget, database=None, deadline=None, report_multiple_bugs=True,
                  phases=(Phase.generate, Phase.shrink), suppress_health_check=list(HealthCheck),
                  verbosity=Verbosity.quiet, print_blob=False)
        @hseed(seed + round_)
        @given(strategy)
        def probe(ex):
            nonlocal calls, first
            calls += 1
            rows = searcher.run(ex)
            sig = signature(rows, skip=found, beyond_bound=beyond_bound)
            if progress:
                progress(searcher.count, ex, sig)
            if sig is None:
                return
            first = first or calls
            cls = kinds.setdefault(sig, type(f"Finding{len(kinds)}", (_Found,), {}))
            raise cls(Finding(sig, ex, [r for r in rows if not r.ok and row_signature(r) == sig]))

        new: list[Finding] = []
        try:
            probe()
        except _Found as exc:
            new = [exc.finding]
        except BaseExceptionGroup as group:
            caught, other = group.split(_Found)
            if other is not None and not _only_flaky_wrappers(other):
                searcher.close()
                raise other from None
            new = list(_findings(caught))
        except BaseException:
            searcher.close()
            raise
        generated += first or calls  # after the first finding, the calls are mostly shrinking
        if not new:
            break
        for f in new:
            found.setdefault(f.signature, f)
    findings = list(found.values())
    command = " ".join([f"parity fuzz {op_name}", f"--seed {seed}", f"--max-examples {max_examples}"]
                       + ([f"--frameworks {','.join(only)}"] if only else [])
                       + ([f"--dtypes {','.join(dtypes)}"] if tuple(dtypes) != DTYPES else [])
                       + ([] if grad else ["--no-grad"]) + (["--beyond-bound"] if beyond_bound else []))
    try:
        for finding in sorted(findings, key=lambda f: f.signature):
            _write_and_check(finding, searcher, out, command)
    finally:
        searcher.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return Outcome(op_name, fws, max_examples, seed, generated, searcher.count, time.perf_counter() - start,
                   searcher.stats, searcher.params, searcher.versions, findings, beyond_bound)


def _findings(group, flaky: bool = False):
    """The findings in a (nested) exception group; hypothesis wraps one whose example did not
    fail again when replayed in FlakyFailure: such a finding is marked flaky."""
    from hypothesis.errors import FlakyFailure

    for e in group.exceptions:
        if isinstance(e, _Found):
            e.finding.flaky = e.finding.flaky or flaky
            yield e.finding
        elif isinstance(e, BaseExceptionGroup):
            yield from _findings(e, flaky or isinstance(e, FlakyFailure))


def _only_flaky_wrappers(group) -> bool:
    """True when what split() left holds no exception of its own (empty FlakyFailure shells)."""
    return all(isinstance(e, BaseExceptionGroup) and _only_flaky_wrappers(e) for e in group.exceptions)


def _write_and_check(finding: Finding, searcher: Searcher, out: Path, command: str) -> None:
    ex = finding.example
    digest = hashlib.sha256(repr(dataclasses.astuple(ex)).encode()).hexdigest()[:8]
    stem = f"{ex.op}-{digest}"
    versions = ", ".join(f"{fw} {v}" for fw, v in sorted(searcher.versions.items()))
    finding.path = write_case(
        ex, out, stem, f"fuzz/{stem}",
        description=f"Found by parity fuzz: {finding.summary()}. Inputs: {ex.describe()}.",
        source=f"{command} ({dt.date.today().isoformat()}; {versions}): a shrunk, minimal example")
    case = load_case(finding.path)
    finding.reproduced = finding.signature in signatures(searcher.run_case(case), searcher.beyond_bound)


def render(outcome: Outcome) -> str:
    s = outcome.stats
    lines = [f"searched {outcome.op} in {', '.join(outcome.frameworks)}: {outcome.generated} examples generated, "
             f"{outcome.executed} run in all (shrinking and re-checking findings), {outcome.seconds:.1f} s, "
             f"hypothesis seed {outcome.seed}"]
    for key in ("dtype", "regime", "rank", "grad"):
        lines.append(f"  {key + ':':8} " + ", ".join(f"{v} {n}" for v, n in sorted(s[key].items(), key=str)))
    for k, vs in sorted(outcome.params.items()):
        values = sorted(json.loads(v) for v in vs) if all(json.loads(v) is not None for v in vs) else sorted(vs)
        shown = values if len(values) <= 6 else [values[0], "...", values[-1]]
        lines.append(f"  {k + ':':8} " + ", ".join(map(str, shown)))
    if not outcome.findings:
        lines.append("no finding: every comparison was within tolerance or declared")
    else:
        lines.append(f"{len(outcome.findings)} finding(s), each shrunk to a minimal example:")
        for f in outcome.findings:
            state = {True: "reproduces from the file", False: "DID NOT reproduce from the file",
                     None: "not checked"}[f.reproduced]
            lines.append(f"  - {f.summary()}" + (" [flaky: did not fail again when hypothesis replayed it]"
                                                  if f.flaky else ""))
            lines.append(f"    example: {f.example.describe()}")
            lines.append(f"    case:    {f.path} ({state})")
    return "\n".join(lines) + "\n"


def write_report(outcome: Outcome, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"fuzz-{outcome.op}.json"
    path.write_text(json.dumps(outcome.to_json(), indent=1, default=str) + "\n")
    return path

