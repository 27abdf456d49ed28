"""Reports: terminal table, CSV, JSON, JUnit XML, Markdown and a self-contained HTML page.

A Report holds the judged cases (CaseReport) of a run or a store, or, for a run that keeps
none (parity.run(keep_cases=False)), only their totals (Tally). Each format is a sink fed
one case at a time (parity.report.stream), so the files of a suite of any size are written
in the memory of its largest case. The files are written as a set (each staged beside its
destination, then all renamed), so an interrupted run never leaves half a report behind.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from parity.cases import Case
from parity import host
from parity.compare import Comparison, counts, exit_code, side_label
from parity.report.stream import Tally
from parity.runner import Result


@dataclass
class CaseReport:
    case: Case
    results: list[Result]
    refs: list[Result]
    rows: list[Comparison]
    inputs: dict = field(default_factory=dict)  # a summary of each input (shape, dtype, range, sha256)
    #: the input arrays, when the report keeps them (parity.run(keep_outputs=True), parity.load)
    arrays: dict | None = None


#: the columns of Report.to_pandas (and of parity.csv) that hold integers, floats and booleans
_INT_COLUMNS = ("mismatches", "elements", "nonfinite_mismatches")
_FLOAT_COLUMNS = ("max_abs", "max_rel", "mean_abs", "max_ulp", "mismatch_fraction", "min_atol", "atol", "rtol",
                  "worst_a", "worst_b", "bound_ratio", "semantic_max_abs")
_BOOL_COLUMNS = ("ok", "declared")


@dataclass
class Report:
    """What a run (parity.run) or a results store (parity.load) gave: every comparison with
    its verdict, every run with its environment. ``to_pandas`` is the table a user analyses;
    the report files (``write``) are views of it."""

    cases: list[CaseReport]
    started: str
    seconds: float
    command: str
    host: dict
    interrupted: bool = False  # the results are incomplete: a run stopped before every case ran
    stopped: bool = False  # this process was stopped by Ctrl-C or SIGTERM (exit status 130)
    #: the results store the runs were written to, for outputs() to read arrays back from
    results_dir: Path | None = None
    #: a report of stored results (parity.load): the store's manifest (created, command, cases, ...)
    manifest: dict | None = field(default=None, repr=False)
    #: the totals of a report that keeps no case (parity.run(keep_cases=False)); None: count ``cases``
    tally: Tally | None = field(default=None, repr=False)

    def _tally(self) -> Tally:
        return self.tally if self.tally is not None else Tally.of(self.cases)

    @property
    def rows(self) -> list[Comparison]:
        return [row for c in self.cases for row in c.rows]

    # --- tables -------------------------------------------------------------------------
    def to_pandas(self):
        """One row per comparison, with the columns of parity.csv (case, op, comparison, kind,
        a, b, output, dtype, device_a/b, host_a/b, verdict, ok, declared, the metrics, cause,
        bound_ratio, semantic, message, notes, known_reason, ...): numbers as numbers (missing
        ones are NA), the verdict as a category. A copy: yours to change."""
        return self._frame().copy()

    def _frame(self):
        """to_pandas' table, made once (summary, matrix and the report files share it)."""
        cached = self.__dict__.get("_frame_cache")
        if cached is not None and cached[0] == len(self.cases):
            return cached[1]
        df = self._make_frame()
        self.__dict__["_frame_cache"] = (len(self.cases), df)
        return df

    def _make_frame(self):
        if self.tally is not None and self.tally.cases and not self.cases:
            raise LookupError(f"this report kept none of its {self.tally.cases} cases (keep_cases=False): its "
                              f"comparisons are in the report files and its results store")
        return frame(self.rows)

    def summary(self, by=("op", "a")):
        """Verdict counts grouped by columns of ``to_pandas`` (default: op and side; e.g.
        ``("op", "dtype")``), worst verdicts first, with a total."""
        from parity.verdicts import SEVERITY

        df = self._frame()
        by = [by] if isinstance(by, str) else list(by)
        table = df.groupby(by, observed=True)["verdict"].value_counts().unstack(fill_value=0)
        table = table[[v for v in SEVERITY if v in table.columns and table[v].sum()]]
        table["total"] = table.sum(axis=1)
        return table

    def matrix(self, case: str, output: str | None = None, value: str = "max_abs"):
        """Side x side table of one case (frameworks, then the reference, golden values and
        baseline as columns): ``value`` is a column of ``to_pandas`` ("max_abs", "verdict",
        "max_ulp", ...) of the comparison of the two sides, for one ``output`` (default: the
        op's first). The worst verdict of a cell when ``value`` is "verdict"."""
        import pandas as pd

        from parity.sides import EXTRA
        from parity.verdicts import SEVERITY

        c = self.case(case)
        output = output or c.case.op.outputs[0]
        df = self._frame()
        df = df[(df["case"] == c.case.name) & (df["output"].isin([output, "*"]))]
        both = pd.concat([df, df.rename(columns={"a": "b", "b": "a"})], ignore_index=True)
        sides = [s for s in dict.fromkeys(list(df["a"]) + list(df["b"])) if s not in EXTRA]
        cols = sides + [s for s in EXTRA if s in set(df["a"]) | set(df["b"])]
        if value == "verdict":
            rank = both.assign(rank=both["verdict"].astype(str).map(SEVERITY.index))
            cell = rank.groupby(["a", "b"])["rank"].min().map(lambda i: SEVERITY[i])
        else:
            cell = both.groupby(["a", "b"])[value].max()
        return cell.unstack().reindex(index=sides, columns=cols)

    # --- arrays -------------------------------------------------------------------------
    def case(self, name: str) -> CaseReport:
        for c in self.cases:
            if c.case.name == name:
                return c
        raise KeyError(f"no case {name!r} in this report; it has: {', '.join(c.case.name for c in self.cases)}")

    def inputs(self, case: str) -> dict:
        """The input arrays of a case (from memory, or from the results store)."""
        c = self.case(case)
        if c.arrays is None:
            c.arrays = dict(self._stored(c).inputs)
        return c.arrays

    def outputs(self, case: str, side: str) -> dict:
        """The output arrays of one side of a case (``"torch"``, ``"tensorflow[tf220]"``, a side
        label as the comparisons name it): from memory, or read back from the results store."""
        c = self.case(case)
        labels = {label: r for r, label in _side_labels(c)}
        if side not in labels:
            raise KeyError(f"{c.case.name}: no side {side!r}; it has: {', '.join(labels)}")
        r = labels[side]
        if not r.outputs and r.status == "OK":
            sc = self._stored(c)
            key = (r.framework, r.device, r.dtype, r.variant, (r.host or {}).get("id"))
            for stored in sc.results:
                if (stored.framework, stored.device, stored.dtype, stored.variant,
                        (stored.host or {}).get("id")) == key:
                    return dict(stored.outputs)
        return dict(r.outputs)

    def reference(self, case: str, side: str | None = None) -> dict:
        """The float64 reference outputs of a case's own form, or (``side``) of the form of
        that side's call; computed again from the inputs when the report did not keep them."""
        from parity import runner

        c = self.case(case)
        form = c.case.form() if side is None else {label: r for r, label in _side_labels(c)}[side].form
        for ref in c.refs:
            if ref.form == form and ref.outputs:
                return dict(ref.outputs)
        inputs = self.inputs(case)
        digest = next((r.inputs_sha256 for r in c.results + c.refs if r.inputs_sha256), None)
        ref = runner.reference_results(c.case, [form], inputs, digest)
        return dict(next(r for r in ref if r.form == form).outputs)

    def _stored(self, c: CaseReport):
        from parity import store

        if self.results_dir is None:
            raise LookupError(f"{c.case.name}: this report keeps no arrays and has no results store to read them "
                              f"from (run with keep_outputs=True or results=DIR)")
        cache = self.__dict__.setdefault("_store_cache", {})
        if "store" not in cache:
            cache["store"] = store.load(self.results_dir)
        return cache["store"].cases[c.case.name]

    def write(self, report_dir, formats=None) -> list[Path]:
        """Write the report files (HTML, CSV, JSON, JUnit XML, Markdown) into ``report_dir``."""
        return write_all(self, Path(report_dir), formats or FORMATS)

    @property
    def exit_code(self) -> int:
        if self.stopped:
            return 130
        if self.interrupted:
            return 1
        return exit_code(self.rows) if self.tally is None else (1 if self.tally.not_ok else 0)

    def counts(self) -> dict[str, int]:
        return counts(self.rows) if self.tally is None else dict(self.tally.counts)

    def hosts(self) -> dict[str, dict]:
        """Every host a run of the report comes from, by id (one, unless stores were merged)."""
        return dict(self._tally().hosts)

    def across_hosts(self) -> list[dict]:
        """Where hosts disagree (see ``across_hosts``)."""
        return across_hosts(self)

    def versions(self) -> dict[str, str]:
        return dict(self._tally().versions)


def _side_labels(c: CaseReport):
    """(result, its side label as the case's comparisons name it) for the runs of a case."""
    from parity.compare import host_labels

    hosts = host_labels(c.results)
    return [(r, side_label(r.framework, r.device, r.variant, hosts.get(id(r)))) for r in c.results]


def host_info() -> dict:
    """This machine's fingerprint (parity.host)."""
    return host.fingerprint()


def across_hosts(report: Report) -> list[dict]:
    """The runs of one side (framework, device, variant) that ran on several hosts and did not
    do the same there: another status, another verdict against the reference, or other values
    (the max abs between the hosts' outputs, from the cross-host comparison). Each entry names
    the fingerprint attributes that separate the hosts."""
    return [e for c in report.cases for e in case_across_hosts(c)]


def case_across_hosts(c: CaseReport) -> list[dict]:
    """across_hosts for one case."""
    out = []
    groups: dict[tuple, dict] = {}
    for r in c.results:
        if r.host:
            groups.setdefault((r.framework, r.device, r.variant), {}).setdefault(r.host["id"], r)
    for (fw, device, variant), by_host in groups.items():
        if len(by_host) < 2:
            continue
        runs = list(by_host.values())
        ref_rows = [row for row in c.rows if row.kind == "reference" and row.a.framework == fw
                    and row.a.device == device and row.a.variant == variant]
        cross = [row for row in c.rows if row.kind == "pair" and row.a.framework == row.b.framework == fw
                 and row.a.device == row.b.device == device and row.a.variant == row.b.variant == variant
                 and row.metrics is not None]
        # a run that failed on one host and ran on another differs as a whole ("*"), else per output
        statuses = {r.status for r in runs}
        outputs = ["*"] if len(statuses) > 1 else sorted({row.output for row in ref_rows})
        for output in outputs:
            per_host = []
            for r in runs:
                row = next((x for x in ref_rows if x.a.host is r.host and (output == "*" or x.output == output)),
                           None)
                per_host.append({"host": r.host["label"], "host_id": r.host["id"], "status": r.status,
                                 "verdict": row.verdict if row else None,
                                 "max_abs": row.metrics.max_abs if row is not None and row.metrics else None,
                                 "message": (r.message.splitlines() or [""])[0][:200] if r.status != "OK" else ""})
            between = [row.metrics.max_abs for row in cross if row.output == output]
            differ_values = any(v != 0 for v in between)
            differ_verdicts = len({(h["status"], h["verdict"]) for h in per_host}) > 1
            if not (differ_values or differ_verdicts):
                continue
            if output == "*" and not differ_verdicts:
                continue
            out.append({
                "case": c.case.name, "side": side_label(fw, device, variant), "output": output,
                "hosts": per_host, "max_abs_between_hosts": max(between) if between else None,
                "verdicts_differ": differ_verdicts,
                "separated_by": host.differences(runs[0].host, runs[1].host),
                "worker_differences": worker_differences(runs[0], runs[1]),
            })
    return out


_VOLATILE = ("pid", "import_seconds", "executable")
#: values older stores recorded for a fact that newer ones spell otherwise
_LEGACY = {"default (on)": "default"}
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]+\b")


def _fact(value):
    """A worker fact as compared across runs: memory addresses in messages are not facts."""
    if isinstance(value, str):
        return _ADDRESS.sub("0x...", _LEGACY.get(value, value))
    return value


def worker_differences(a: Result, b: Result) -> list[str]:
    """The worker facts (framework build, threads, kernels in use, numeric environment
    variables) that differ between two runs: 'onednn_enabled: True vs False'."""
    def facts(r):
        w = r.worker or {}
        out = {k: v for k, v in w.items() if k not in _VOLATILE and k not in ("info", "env")}
        out.update(w.get("info") or {})
        out.update({f"${k}": v for k, v in (w.get("env") or {}).items()})
        return out

    fa, fb = facts(a), facts(b)
    return [f"{k}: {fa.get(k, '-')} vs {fb.get(k, '-')}" for k in sorted(set(fa) | set(fb))
            if k != "device" and _fact(fa.get(k)) != _fact(fb.get(k))]


def fmt(value, digits: int = 3) -> str:
    """Numbers for people: '-' for missing, compact scientific for small/large."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value == 0:
            return "0"
        if value.is_integer() and abs(value) < 1e9:
            return str(int(value))
        return f"{value:.{digits}g}"
    return str(value)


def semantic_text(row: Comparison) -> str:
    return "; ".join(f"{label}: {va} vs {vb}" for label, va, vb in row.semantic)


def frame(rows: list[Comparison]):
    """The table of Report.to_pandas for ``rows``: one row per comparison, the columns of
    parity.csv, numbers as numbers (missing ones NA), the verdict as a category."""
    return table([record(r) for r in rows])


def table(records: list[dict]):
    """frame() of the comparisons' records (``record``)."""
    import pandas as pd

    from parity.report.csv import COLUMNS
    from parity.verdicts import VERDICTS

    df = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    for col in _INT_COLUMNS:
        df[col] = df[col].astype("Int64")
    for col in _BOOL_COLUMNS:
        df[col] = df[col].astype("boolean")
    for col in _FLOAT_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    df["verdict"] = pd.Categorical(df["verdict"], categories=list(VERDICTS))
    return df


def record(row: Comparison) -> dict:
    """One flat record per comparison (CSV columns, JSON objects). Made by each format that
    needs it, not kept: 60,000 records would be 60 MB held until the last report is written."""
    m = row.metrics
    known = row.known
    return {
        "case": row.case.name,
        "op": row.case.op.name,
        "comparison": row.title,
        "kind": row.kind,
        "a": row.a.label,
        "b": row.b.label,
        "output": row.output,
        "dtype": row.dtype,
        "device_a": row.a.device,
        "device_b": row.b.device,
        "host_a": (row.a.host or {}).get("label", ""),
        "host_b": (row.b.host or {}).get("label", ""),
        "verdict": row.verdict,
        "ok": row.ok,
        "declared": row.declared,
        "max_abs": m.max_abs if m else None,
        "max_rel": m.max_rel if m else None,
        "mean_abs": m.mean_abs if m else None,
        "max_ulp": m.max_ulp if m else None,
        "mismatches": m.mismatches if m else None,
        "elements": m.n if m else None,
        "mismatch_fraction": m.mismatch_fraction if m else None,
        "nonfinite_mismatches": m.nonfinite_mismatches if m else None,
        "min_atol": m.min_atol if m else None,
        "atol": row.atol,
        "rtol": row.rtol,
        "worst_index": list(m.worst_index) if m else None,
        "worst_a": m.worst_a if m else None,
        "worst_b": m.worst_b if m else None,
        "cause": row.cause,
        "bound_ratio": m.bound_ratio if m else None,
        "semantic": semantic_text(row),
        "semantic_max_abs": row.semantic_max_abs,
        "message": row.message,
        "notes": " | ".join(row.notes),
        "known_reason": known.reason if known else "",
        "known_where": f"{row.case.path}:{known.line}" if known else "",
        "version_a": row.a.version or "",
        "version_b": row.b.version or "",
        "spelling_a": row.a.spelling or "",
        "spelling_b": row.b.spelling or "",
        "case_file": str(row.case.path),
    }


class _Sharing(threading.local):
    """The case stream.Writer.add is handing its sinks now in this thread (``case``), and its
    records once made (``records``); None outside that call: nothing stays shared once the
    case is written, and two threads writing reports share nothing."""

    case = None
    records = None


_SHARING = _Sharing()


def records(c: CaseReport) -> list[dict]:
    """``record`` of each of a judged case's rows. Made once per case for the formats that
    all write them (CSV, JSON, JUnit), while stream.Writer.add hands the case to its sinks:
    the records are then shared, and a format that changes one copies it first."""
    shared = _SHARING
    if shared.case is not c:
        return [record(r) for r in c.rows]
    if shared.records is None:
        shared.records = [record(r) for r in c.rows]
    return shared.records


def jsonable(value):
    """JSON-safe values: inf becomes the string 'inf', NaN null (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return jsonable(value.item())
    return value


def run_record(r: Result) -> dict:
    return {
        "framework": r.framework,
        "variant": r.variant,
        "python": r.python,
        "device": r.device,
        "dtype": r.dtype,
        "status": r.status,
        "message": r.message,
        "spelling": r.spelling,
        "attempts": r.attempts,
        "native": r.native,
        "form": r.form.describe() if r.form else None,
        "version": r.version,
        "seconds": r.seconds,
        "worker": r.worker,
        "inputs_sha256": r.inputs_sha256,
        "grad": r.grad,
        "env": r.env,
        "host": (r.host or {}).get("id"),
        "traceback": r.traceback,
        "log": r.log,
    }


def to_json(report: Report) -> str:
    from parity.report import jsondoc

    return jsondoc.Sink.text(report)


def sinks(formats=None) -> dict:
    """format -> its Sink class (parity.report.stream), for ``formats``."""
    from parity.report import csv, html, jsondoc, junit, markdown

    classes = {"csv": csv.Sink, "html": html.Sink, "json": jsondoc.Sink, "junit": junit.Sink, "md": markdown.Sink}
    formats = formats or FORMATS
    unknown = [f for f in formats if f not in classes]
    if unknown:
        raise ValueError(f"unknown report formats {unknown}; expected some of {', '.join(classes)}")
    return {f: classes[f] for f in formats}


def writer(out_dir, formats=None):
    """The report files of ``formats`` in ``out_dir``, written case by case
    (parity.report.stream.Writer): ``add`` each judged case, then ``close(report)``."""
    from parity.report import stream

    return stream.Writer(out_dir, sinks(formats))


#: a JSON string, or a non-finite number as Python's encoder writes it (NaN, Infinity, -Infinity)
_NONFINITE = re.compile(r'"(?:[^"\\]|\\.)*"|-?Infinity|NaN')
_NONFINITE_AS = {"NaN": "null", "Infinity": '"inf"', "-Infinity": '"-inf"'}


def _default(value):
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


#: json.dumps(doc, allow_nan=True, default=_default, separators=(",", ":")), made once (json.dumps
#: with arguments makes an encoder each call: a report makes seven a small case), and without the
#: cycle check (each document is a tree made fresh for it)
_ENCODER = json.JSONEncoder(allow_nan=True, default=_default, separators=(",", ":"), check_circular=False)


def dumps(doc) -> str:
    """JSON text of ``doc`` with the conventions of ``jsonable`` (inf as "inf", NaN as null),
    written by the C encoder: the non-finite numbers it spells NaN/Infinity are replaced in one
    pass over the text that leaves strings alone (a walk over every value in Python took
    most of the time of a large report). NumPy scalars and tuples are handled by ``default``."""
    text = _ENCODER.encode(doc)
    if "NaN" not in text and "Infinity" not in text:
        return text
    return _NONFINITE.sub(lambda m: _NONFINITE_AS.get(m.group(), m.group()), text)


FORMATS = ("csv", "html", "json", "junit", "md")


#: the formats a second process writes for a large report of write_set (parallel=None; `parity
#: report` hands its cases to a forked writer instead, as `parity run` does: parity.report.background).
#: Each process judges the cases itself (0.9 s for 2,000 small stored cases), and the parent has read the
#: store before it forks, so the halves are of about the same time: the parent writes the
#: HTML (0.8 s there), the JUnit (0.35 s) and the Markdown (whose text goes to
#: $GITHUB_STEP_SUMMARY), and the terminal's table; the child the JSON (0.6 s) and CSV (0.4 s),
#: each measured alone in one process on an Intel Xeon, 2026-12-02
CHILD_FORMATS = ("csv", "json")
#: the peak resident memory (KiB) of each forked writer this process waited for (bench/scale.py reports it)
WRITER_PEAK_KIB: list[int] = []
#: comparisons from which a second process pays for itself (forking a large parent costs milliseconds)
PARALLEL_ROWS = 2000


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _parallel(size: int, formats, parallel: bool | None) -> bool:
    """Whether write_set renders CHILD_FORMATS in a forked process (Linux, more than one CPU,
    ``size`` PARALLEL_ROWS comparisons or more), or as told."""
    split = any(f in CHILD_FORMATS for f in formats) and any(f not in CHILD_FORMATS for f in formats)
    if not split or not hasattr(os, "fork"):
        return False
    if parallel is not None:
        return parallel
    return sys.platform.startswith("linux") and _cpus() > 1 and size >= PARALLEL_ROWS


def _in_child(writer, theirs, cases, make_report, errors_fd: int) -> None:
    """The forked process: write its formats, say what failed on ``errors_fd``, and leave
    without running anything of the parent's (atexit, buffered output, finally blocks)."""
    code = 0
    try:
        writer.forget([f for f in writer.formats if f not in theirs])
        writer.finish(make_report(writer.tally, _feed(writer, cases)))
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent, which raises it
        code = 1
        with contextlib.suppress(BaseException):
            os.write(errors_fd, json.dumps([getattr(exc, "errno", None), getattr(exc, "filename", None),
                                            f"{type(exc).__name__}: {exc}"[:4000]], default=str).encode())
    finally:
        os._exit(code)


def _feed(files, cases, on_case=None) -> float:
    """Add each case ``cases()`` gives to ``files`` (``on_case`` sees it first); the seconds
    that took. A case whose parts could not be written (a full disk) ends it: no need to
    judge the rest."""
    t0 = time.perf_counter()
    for c in cases():
        if on_case is not None:
            on_case(c)
        files.add(c)
        if files.failed is not None:
            raise files.failed
    return time.perf_counter() - t0


def _child_error(names, status: int, text: bytes) -> BaseException:
    try:
        errno_, filename, message = json.loads(text.decode()) if text else (None, None, "")
    except (ValueError, TypeError):
        errno_, filename, message = None, None, text.decode(errors="replace")[:4000]
    if errno_ is not None:  # the filesystem's no (a full disk): the same OSError as in this process
        return OSError(errno_, os.strerror(errno_), filename)
    what = message or f"exit status {os.waitstatus_to_exitcode(status)}"
    return RuntimeError(f"writing {', '.join(names)} failed (in its own process): {what}")


def write_all(report: Report, out_dir: Path, formats=FORMATS, parallel: bool | None = None) -> list[Path]:
    """Write the report files of a report that holds its cases, as a set (see write_set)."""
    return write_set(out_dir, lambda: report.cases, lambda tally, seconds: report, formats=formats,
                     size=sum(len(c.rows) for c in report.cases), parallel=parallel)[1]


def write_set(out_dir: Path, cases, make_report, *, formats=FORMATS, size: int = 0, parallel: bool | None = None,
              on_case=None) -> tuple[Report, list[Path]]:
    """Write the report files of the CaseReports ``cases()`` gives (in order) as a set
    (``writer``, parity.report.stream.Writer: every format staged beside its destination, then all
    renamed into place, so a failure, or a Ctrl-C, leaves the previous set whole); append
    the Markdown summary to $GITHUB_STEP_SUMMARY when that is set. ``make_report(tally,
    seconds)`` gives the Report the files' heads are written from, once the cases are in;
    ``on_case(c)`` sees each case too (the terminal table). Returns that Report and the files.

    For ``size`` PARALLEL_ROWS comparisons or more (``parallel`` None: Linux, more than one
    CPU) a forked process writes CHILD_FORMATS meanwhile, from its own call of ``cases()``:
    what the cases are computed from is in both processes' memory already (copy-on-write; a
    report of a store judges its cases in both), and nothing comes back but its exit status.
    ``parallel`` True or False forces it on or off."""
    files = writer(out_dir, formats)
    theirs = [f for f in files.formats if f in CHILD_FORMATS] if _parallel(size, files.formats, parallel) else []
    child: tuple[int, int] | None = None  # (pid, read end of its error pipe)
    try:
        files.stage()  # both processes write into the same staged files
        if theirs:
            r, w = os.pipe()
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                _in_child(files, theirs, cases, make_report, w)
            os.close(w)
            child = (pid, r)
            files.forget(theirs)
        report = make_report(files.tally, _feed(files, cases, on_case))
        files.finish(report)
        if child is not None:
            pid, r = child
            with os.fdopen(r, "rb") as errors:
                said = errors.read()
            child = None
            _, status, usage = os.wait4(pid, 0)
            WRITER_PEAK_KIB.append(usage.ru_maxrss)
            if status != 0:
                raise _child_error([files.names[f] for f in theirs], status, said)
        return report, files.commit()
    except BaseException:
        if child is not None:
            pid, r = child
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.waitpid(pid, 0)
            with contextlib.suppress(OSError):
                os.close(r)
        files.abandon()
        raise
