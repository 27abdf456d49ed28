"""A self-contained interactive HTML report, rendered with Jinja2 (autoescape on).

One file, no network: inline CSS, one inline script (Chart.js, vendored in
parity/report/vendor, then the page's own code) and two JSON data elements. Every piece of
text from a case file is escaped: by Jinja2's autoescape in the HTML, and by ``tojson``'s
encoder (``jinja2.utils.htmlsafe_json_dumps``: HTML-safe, ASCII-only JSON) in the data; the page's script only ever sets text
(``textContent``), never markup, from the data.

The page, top to bottom:

* the status and the verdict counts (badges that filter the table);
* **not ok**: every comparison that makes the exit status non-zero (FAIL, FIXED, undeclared
  ERROR/CRASH/TIMEOUT), with its why, the declaration it was held to and the case file and
  line to edit (server-rendered: it is on the first screen);
* what the declarations accept (collapsed);
* a matrix per op: side x side, the worst verdict and worst max abs over the op's cases
  (counted as the cases arrive, _Matrices);
* the comparison table: rendered by the script from compact JSON (``table-data``), one line
  per row, virtualized (only the rows in view are in the DOM), filtered and sorted on the
  data; a drill-down per row;
* what differs across hosts, the environment, and one collapsed section per case whose
  body is rendered when opened.

Size: the full drill-down data (``drill-data``: histogram, worst elements, error per channel,
traceback and log) is written for the comparisons that are not PASS; a PASS row carries its
worst element (and its histogram, where the comparison kept one) in its table row. Texts (names, whys, spellings, versions) are
written once each, in a string table the rows index.

ULP rule. parity.metrics counts the max ULP over the elements where the tolerance is
relative, max(|a|, |b|) >= atol/rtol (below that atol governs); it is None when no element is
that large, and the table shows a grey "–". On top of that (``ulp_rule``) the page marks, in
grey, a max ULP that is still not information: "near 0" when the worst element (the one with
the largest |a-b|) is within the comparison's atol of zero (or within 2**12 smallest normals
of the dtype: a tolerance with atol 0 counts every element); "≈N" when the max ULP is more
than 16 times the ULP distance N at the worst element, so that it sits at an element far
smaller than the worst one, near or across zero (a sign change alone is ~2e9 float32 ULPs):
the table then shows N. The raw max ULP stays in the tooltip, the drill-down, parity.csv and
parity.json; the page's legend says the same.
"""

from __future__ import annotations

import json
import math
from importlib import resources

import jinja2
import markupsafe
import numpy as np
from jinja2.utils import htmlsafe_json_dumps

from parity.compare import side_label
from parity.host import describe
from parity.report import Report, _side_labels, case_across_hosts, fmt, jsonable, semantic_text
from parity.report.stream import Sink as _Sink
from parity.sides import EXTRA
from parity.verdicts import (
    CRASH,
    ERROR,
    KNOWN_GAP,
    PASS,
    SEVERITY,
    TIMEOUT,
    UNSUPPORTED,
)

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("parity.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
# compact JSON in the page (tojson is HTML-safe: <, >, & and ' are \u-escaped; ASCII only)
_ENV.policies["json.dumps_kwargs"] = {"sort_keys": False, "separators": (",", ":"), "ensure_ascii": True,
                                      "allow_nan": False}
_ENV.filters["fmt"] = fmt
_ENV.filters["semantic"] = semantic_text
_ENV.filters["compact_json"] = lambda v: json.dumps(v, sort_keys=True, default=str)

VERDICT_ORDER = list(SEVERITY)
#: verdicts a case may declare; the page tells "ERROR (declared)" from an undeclared ERROR
_DECLARABLE = (ERROR, CRASH, TIMEOUT, UNSUPPORTED)
#: run statuses whose drill-down shows the traceback and the run's log lines
_FAILED = (ERROR, CRASH, TIMEOUT)
#: the smallest normal number of each dtype
_TINY = {"float16": 2.0**-14, "bfloat16": 2.0**-126, "float32": 2.0**-126, "float64": 2.0**-1022}
#: the ULP rule's factors (module docstring)
ULP_FAR = 16
ULP_TINY_FACTOR = 2.0**12

# row flags in the table data
F_DECLARED, F_OK, F_DRILL, F_ULP_FAR, F_ULP_ZERO = 1, 2, 4, 8, 16


def _chart_js() -> str:
    return resources.files("parity.report").joinpath("vendor/chart.umd.min.js").read_text()


def verdict_key(row) -> str:
    """The verdict as the page shows and filters it: 'ERROR (declared)' apart from 'ERROR'."""
    return row.verdict + (" (declared)" if row.declared and row.verdict in _DECLARABLE else "")


def _rank(verdict: str, ok: bool) -> int:
    """Worst first: what is not ok before everything that is (a declared ERROR is ok)."""
    return SEVERITY.index(verdict) + (0 if not ok else len(SEVERITY))


def _key_rank(key: str) -> int:
    verdict, declared = key.split(" ")[0], key.endswith("(declared)")
    return _rank(verdict, verdict not in ("FAIL", "FIXED", ERROR, CRASH, TIMEOUT) or declared)


def _num(v, digits: int = 4):
    """A number for the page's table: 4 significant digits (parity.json has them all)."""
    if v is None:
        return None
    v = float(v)
    if not math.isfinite(v):
        return jsonable(v)
    if v == 0 or (v.is_integer() and abs(v) < 1e15):
        return int(v) if v.is_integer() else v
    return float(f"{v:.{digits}g}")


def _full(v):
    """A value at full precision (the worst elements: |a-b| is computed from them)."""
    v = float(v)
    return v if math.isfinite(v) else jsonable(v)


def ulp_rule(rows) -> list[tuple[float | None, int]]:
    """Per row: (the ULP distance at the worst element, flags F_ULP_ZERO / F_ULP_FAR when the
    max ULP is not information; see the module docstring)."""
    from parity.metrics import ulp_distance

    out: list[tuple[float | None, int]] = [(None, 0)] * len(rows)
    by_dtype: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        m = row.metrics
        if m is not None and row.dtype in _TINY and math.isfinite(m.worst_a) and math.isfinite(m.worst_b):
            by_dtype.setdefault(row.dtype, []).append(i)
    for dtype, idx in by_dtype.items():
        wa = np.array([rows[i].metrics.worst_a for i in idx], np.float64)
        wb = np.array([rows[i].metrics.worst_b for i in idx], np.float64)
        with np.errstate(all="ignore"):
            dist = ulp_distance(wa, wb, dtype)
        tiny = _TINY[dtype] * ULP_TINY_FACTOR
        for j, i in enumerate(idx):
            row, m = rows[i], rows[i].metrics
            at_worst = float(dist[j])
            flags = 0
            if m.max_ulp is not None and math.isfinite(m.max_ulp) and m.max_ulp > ULP_FAR:
                if max(abs(m.worst_a), abs(m.worst_b)) < max(row.atol, tiny):
                    flags = F_ULP_ZERO
                elif m.max_ulp > ULP_FAR * max(1.0, at_worst):
                    flags = F_ULP_FAR
            out[i] = (at_worst, flags)
    return out


def _ulp_note(row, at_worst, flags) -> str:
    m = row.metrics
    if m is None:
        return ""
    if flags & F_ULP_ZERO:
        return (f"max ULP {fmt(m.max_ulp)} is not information: the worst element "
                f"({fmt(m.worst_a)} vs {fmt(m.worst_b)}) is within atol {fmt(row.atol)} of zero")
    if flags & F_ULP_FAR:
        return (f"max ULP {fmt(m.max_ulp)} sits at an element near or across zero, not information; "
                f"at the worst element the gap is {fmt(at_worst)} ULP")
    return ""


def _why(row) -> str:
    """The why of a row as one text: the declaration it is held to, its message, its notes."""
    parts = []
    if row.known is not None and (row.declared or row.verdict == KNOWN_GAP):
        parts.append(f"known: {row.known.reason}")
    if row.message:
        parts.append(row.message)
    parts += row.notes
    return "\n".join(parts)


def _failed_runs(row, runs_by_label: dict, s) -> list[dict]:
    """The runs of a row's sides that raised, crashed or hung (or whose gradients did), with
    their traceback and log lines (as indices into the string table: the case's runs hold
    the same texts)."""
    out = []
    for label in (row.a.label, row.b.label):
        r = runs_by_label.get(label)
        if r is None:
            continue
        grad = r.grad or {}
        if r.status in _FAILED:
            status, message = r.status, r.message
        elif grad.get("status") in _FAILED:
            status, message = f"gradient {grad.get('status')}", grad.get("message", "")
        else:
            continue
        out.append({"side": label, "status": status, "message": message or "", "traceback": s(r.traceback),
                    "log": s(r.log)})
    return out


def _drill(row, own: dict, runs_by_label: dict, at_worst, ulp_flags, s) -> dict:
    """What the drill-down of one comparison shows (JSON for the page's script). Compact:
    the histogram as [exponent field, count, ...], the worst elements as [index, a, b], the
    error per channel to 3 digits."""
    m = row.metrics
    k = row.known
    out = {
        "title": f"{row.case.name}: {row.title} [{row.output}]",
        "verdict": row.verdict,
        "declared": row.declared,
        "ok": row.ok,
        "cause": row.cause,
        "message": row.message,
        "notes": list(row.notes),
        "known": k.reason if k else "",
        "known_label": k.label() if k else "",
        "known_describe": k.describe() if k else "",
        "known_where": f"{row.case.path}:{k.line}" if k else "",
        "where": f"{row.case.path}:{k.line if k and k.line else row.case.line}",
        "semantic": [list(d) for d in row.semantic],
        "semantic_max_abs": row.semantic_max_abs,
        "numeric": [],
        "failed_runs": _failed_runs(row, runs_by_label, s),
    }
    if m is not None:
        d = m.details
        out.update(min_atol=m.min_atol, bound_ratio=m.bound_ratio, max_abs=m.max_abs, max_rel=m.max_rel,
                   max_ulp=m.max_ulp, ulp_at_worst=at_worst, ulp_note=_ulp_note(row, at_worst, ulp_flags),
                   mismatches=m.mismatches, n=m.n, histogram=_histogram(m))
        worst = d.get("worst") or ([{"index": list(m.worst_index), "a": m.worst_a, "b": m.worst_b}] if m.n else [])
        out["worst"] = [[list(w["index"]), _full(w["a"]), _full(w["b"])] for w in worst]
        if d.get("per_channel_max_abs"):
            out["per_channel_max_abs"] = [_num(v, 3) for v in d["per_channel_max_abs"]]
    if row.kind == "pair":  # the numeric part: each side against its own reference
        for side in (row.a.label, row.b.label):
            ref_row = own.get((side, row.output))
            if ref_row is not None and ref_row.metrics is not None:
                rm = ref_row.metrics
                out["numeric"].append({"side": side, "max_abs": rm.max_abs, "max_ulp": rm.max_ulp,
                                       "bound_ratio": rm.bound_ratio})
    return out


def _histogram(m) -> list | None:
    """[exponent field, count, ...]: the |a-b| histogram (binary orders of magnitude), flat."""
    hist = m.details.get("histogram") if m is not None else None
    if not hist:
        return None
    out = []
    for b in hist:
        lo = b["lo"]
        e = 0 if lo == 0 else (2047 if math.isinf(lo) else math.frexp(lo)[1] + 1022)
        out += [e, b["count"]]
    return out


class _Strings:
    """Each text once: rows and cases index this table."""

    def __init__(self):
        self.index: dict[str, int] = {}
        self.items: list[str] = []

    def __call__(self, text) -> int:
        text = "" if text is None else str(text)
        i = self.index.get(text)
        if i is None:
            i = self.index[text] = len(self.items)
            self.items.append(text)
        return i


class _Matrices:
    """Per op, side x side: the worst verdict over its cases and outputs, the worst max abs,
    how many comparisons and how many are not ok; counted as the cases arrive. Each cell
    counts the comparisons of its two sides in either order (like Report.matrix)."""

    def __init__(self):
        self.ops: dict[str, dict] = {}  # op -> {"a": sides first seen as a, "b": as b, "cells", "cases"}

    def add(self, c) -> None:
        if not c.rows:
            return
        op = self.ops.setdefault(c.case.op.name, {"a": {}, "b": {}, "cells": {}, "cases": 0})
        op["cases"] += 1
        cells = op["cells"]
        for r in c.rows:
            a, b = r.a.label, r.b.label
            op["a"].setdefault(a, None)
            op["b"].setdefault(b, None)
            rank = _rank(r.verdict, r.ok)
            v = r.metrics.max_abs if r.metrics else None
            v = None if v is None or math.isnan(v) else v
            for key in ((a, b), (b, a)):
                cell = cells.get(key)
                if cell is None:
                    cells[key] = [rank, v, 1, 0 if r.ok else 1]
                    continue
                cell[0] = min(cell[0], rank)
                if v is not None and (cell[1] is None or v > cell[1]):
                    cell[1] = v
                cell[2] += 1
                cell[3] += 0 if r.ok else 1

    def result(self) -> list[dict]:
        out = []
        for name, op in self.ops.items():
            seen = list(op["a"]) + [s for s in op["b"] if s not in op["a"]]
            sides = [s for s in seen if s not in EXTRA]
            cols = sides + [s for s in EXTRA if s in seen]
            grid = []
            for a in sides:
                line = []
                for b in cols:
                    cell = op["cells"].get((a, b))
                    if cell is None:
                        line.append(None)
                        continue
                    rank, max_abs, n, bad = cell
                    verdict = SEVERITY[rank % len(SEVERITY)]
                    ok = rank >= len(SEVERITY)
                    line.append({"b": b, "verdict": verdict, "ok": ok, "max_abs": None if max_abs is None else float(max_abs),
                                 "n": n, "bad": bad, "declared": ok and verdict in _DECLARABLE})
                grid.append((a, line))
            out.append({"op": name, "cols": cols, "grid": grid, "cases": op["cases"]})
        return out


class _Environment:
    """Per side (framework, variant, and host where there are several): version, python,
    numpy, the worker's settings (threads, kernels, build) and numeric environment variables;
    the first run of each side gives them."""

    def __init__(self):
        self.first: dict[tuple, dict] = {}  # (framework, device, variant, host label) -> its settings

    def add(self, c) -> None:
        for r in c.results:
            key = (r.framework, r.device, r.variant, (r.host or {}).get("label"))
            if r.worker and key not in self.first:
                self.first[key] = {"version": r.version,
                                   **{k: v for k, v in r.worker.items() if k not in ("info", "env")},
                                   **(r.worker.get("info") or {}),
                                   **{f"${k}": v for k, v in (r.worker.get("env") or {}).items()},
                                   **{f"${k} (--env)": v for k, v in r.env.items()}}

    def result(self, several_hosts: bool) -> dict:
        out = {}
        for (fw, device, variant, label), info in self.first.items():
            out.setdefault(side_label(fw, device, variant, label if several_hosts else None), info)
        return out


def _metrics_text(row) -> str:
    m = row.metrics
    if m is None:
        return ""
    return (f"max abs {fmt(m.max_abs)}, {m.mismatches}/{m.n} beyond atol {fmt(row.atol)} rtol {fmt(row.rtol)}"
            + (f", {fmt(m.bound_ratio)}\u00d7 the rounding bound" if m.bound_ratio is not None else ""))


def render(report: Report) -> str:
    """The page's text (see Sink)."""
    return Sink.text(report)


class Sink(_Sink):
    """The page, made as the cases arrive: each case's table rows, case data and drill-downs
    (JSON), and its not-ok group, accepted rows and collapsed section (HTML, from the macros
    of parts.html.j2) go to spools; what the page's head and its indexes need (counts, the
    string table, tolerances, filters, the op matrices, the environment) is counted. At the
    end report.html.j2 is rendered around the spooled parts, in the pieces Jinja2 renders it
    in."""

    name = "parity.html"

    def __init__(self, spool_dir):
        super().__init__(spool_dir)
        self.s = _Strings()
        self.tols: dict[tuple, int] = {}
        self.keys_seen: dict[str, int] = {}
        self.filters = {"op": set(), "framework": set(), "device": set(), "dtype": set()}
        self.ops: dict[str, dict] = {}
        self.matrices, self.environment = _Matrices(), _Environment()
        self.across: list[dict] = []
        self.gi = self.ci = 0
        self.bad_total = self.bad_cases = self.n_accepted = 0
        self.rows, self.cases, self.drill = self.spool(), self.spool(), self.spool()
        self.bad_html, self.accepted_html, self.cases_html = self.spool(), self.spool(), self.spool()
        self.parts = _ENV.get_template("parts.html.j2").module

    def add(self, c, tally) -> None:
        s, ci, case = self.s, self.ci, c.case
        verdicts = VERDICT_ORDER
        ulp = ulp_rule(c.rows)
        own = {(r.a.label, r.output): r for r in c.rows if r.kind == "reference"}
        labelled = _side_labels(c)
        runs_by_label = {label: r for r, label in labelled}
        first = self.gi
        bad_items, accepted, table_rows, drill = [], {}, [], {}
        for j, row in enumerate(c.rows):
            rid = f"r{self.gi}"
            m = row.metrics
            at_worst, uflags = ulp[j]
            key = verdict_key(row)
            self.keys_seen[key] = self.keys_seen.get(key, 0) + 1
            flags = (F_DECLARED if row.declared else 0) | (F_OK if row.ok else 0) | uflags
            needs_drill = row.verdict != PASS
            if needs_drill:
                flags |= F_DRILL
                drill[rid] = _drill(row, own, runs_by_label, at_worst, uflags, s)
            fws = [x for x in (row.a.framework, row.b.framework) if x not in EXTRA]
            devices = sorted({row.a.device, row.b.device} - {""})
            tol = self.tols.setdefault((row.atol, row.rtol), len(self.tols))
            why = _why(row)
            table_rows.append([
                ci, s(row.a.label), s(row.b.label), s(row.output), s(row.dtype), verdicts.index(row.verdict), flags,
                _num(m.max_abs) if m else None, _num(m.max_rel) if m else None, _num(m.max_ulp) if m else None,
                _num(at_worst) if at_worst is not None else None,
                m.mismatches if m else None, m.n if m else None, _num(m.min_atol) if m else None, tol,
                _num(m.bound_ratio) if m and m.bound_ratio is not None else None,
                s(row.cause), s(why) if why else -1, s(row.kind), s(" ".join(devices)), s(" ".join(fws)),
                None if needs_drill else _histogram(m),
                None if needs_drill or m is None or not m.n else
                [list(m.worst_index), _full(m.worst_a), _full(m.worst_b)],
            ])
            self.filters["op"].add(case.op.name)
            self.filters["framework"].update(fws)
            self.filters["device"].update(devices)
            self.filters["dtype"].add(row.dtype)
            if not row.ok:
                prev = bad_items[-1]["why"] if bad_items else None
                bad_items.append({"id": rid, "row": row, "key": key, "metrics": _metrics_text(row),
                                  "why": row.message, "same_why": bool(row.message) and row.message == prev,
                                  "where": case.where(row.known.line if row.known else None)})
            elif row.verdict != PASS:
                group = accepted.setdefault((row.known.index if row.known else -1, key), {
                    "case": case, "ci": ci, "key": key, "known": row.known, "rows": [], "causes": [],
                    "max_abs": None, "message": row.message, "first": rid})
                group["rows"].append((rid, row))
                if row.cause and row.cause not in group["causes"]:
                    group["causes"].append(row.cause)
                if m is not None and (group["max_abs"] is None or m.max_abs > group["max_abs"]):
                    group["max_abs"] = m.max_abs
            self.gi += 1
        if table_rows:
            self.rows.write(_json(table_rows)[1:-1])
        if drill:
            self.drill.write(_json(jsonable(drill))[1:-1])
        if bad_items:
            self.bad_total += len(bad_items)
            self.bad_cases += 1
            self.bad_html.write(self.parts.bad_group({"case": case, "ci": ci, "entries": bad_items}), sep="")
        for group in accepted.values():
            self.n_accepted += 1
            self.accepted_html.write(self.parts.accepted_row(group), sep="")
        worst = min(c.rows, key=lambda r: _rank(r.verdict, r.ok)) if c.rows else None
        self.cases.write(_json([
            s(case.name), s(case.op.name), s(case.path), case.line, 0, s(case.source),  # description: in the HTML
            s(json.dumps(case.params, sort_keys=True, default=str)), s(_form(case)),
            [[name, list(x.get("shape", [])), x.get("dtype"), _num(x.get("min")), _num(x.get("max")),
              _num(x.get("mean")), _num(x.get("std")), x.get("nonfinite") or 0, (x.get("sha256") or "")[:16]]
             for name, x in (c.inputs or {}).items()],
            [[s(label), s(r.status), s(r.spelling or ""),
              [[s(a.get("spelling")), s(a.get("status")), s(a.get("message", ""))] for a in r.attempts or []],
              s(json.dumps(r.native, sort_keys=True, default=str) if r.native else ""),
              s(r.form.describe() if r.form else ""), s(r.version or ""),
              _num(r.seconds, 3) if r.seconds is not None else None, s(r.message or ""),
              s(r.traceback or ""), s(r.log or "")] for r, label in labelled],
            [[k.index, s(k.describe()), s(json.dumps(k.when, sort_keys=True) if k.when else ""), s(k.reason), k.line]
             for k in case.known],
            first, self.gi - first,
        ]))
        self.cases_html.write(self.parts.case_summary(ci, c, verdict_key(worst) if worst else ""), sep="")
        self.ops[case.op.name] = case.op.summary
        self.matrices.add(c)
        self.environment.add(c)
        self.across += case_across_hosts(c)
        self.ci += 1

    def finish(self, out, report, tally) -> None:
        keys = sorted(self.keys_seen, key=_key_rank)
        hosts = list(tally.hosts.values())
        data = [_json({"s": self.s.items, "verdicts": VERDICT_ORDER, "tols": [list(t) for t in self.tols]})[:-1],
                markupsafe.Markup(',"rows":['), _chunks(self.rows), markupsafe.Markup('],"cases":['),
                _chunks(self.cases), markupsafe.Markup("],") + _json(
                    {"ops": self.ops, "ulp": {"far": ULP_FAR, "tiny_factor": ULP_TINY_FACTOR}})[1:]]
        self.s = None  # its text is in ``data``
        drill = [markupsafe.Markup("{"), _chunks(self.drill), markupsafe.Markup("}")]
        template = _ENV.get_template("report.html.j2")
        for piece in template.generate(
                report=report, n_cases=tally.cases, counts=dict(tally.counts), keys=[(k, self.keys_seen[k]) for k in keys],
                versions=dict(tally.versions), n_rows=tally.rows, bad_html=_chunks(self.bad_html),
                bad_total=self.bad_total, bad_cases=self.bad_cases, accepted=self.n_accepted,
                accepted_html=_chunks(self.accepted_html), matrices=self.matrices.result(),
                filters={k: sorted(v) for k, v in self.filters.items()}, data=_Lazy(data), drill=_Lazy(drill),
                environment=self.environment.result(len(hosts) > 1), hosts=[(h, describe(h)) for h in hosts],
                across_hosts=self.across, chart_js=_chart_js(), cases_html=_chunks(self.cases_html),
                verdicts=VERDICT_ORDER, ulp_far=ULP_FAR,
                accepted_counts=[(k, self.keys_seen[k]) for k in keys
                                 if k != PASS and _key_rank(k) >= len(SEVERITY)]):
            out.write(piece)


class _Lazy:
    """Pieces of markup, some of them generators (spools read back), iterated once when the
    template reaches them."""

    def __init__(self, parts):
        self.parts = parts

    def __iter__(self):
        for part in self.parts:
            if isinstance(part, str):
                yield part
            else:
                yield from part


def _chunks(spool):
    """A spool's text as markup (it was escaped when it was written), read when iterated."""
    for chunk in spool.chunks():
        yield markupsafe.Markup(chunk)


def _json(data) -> markupsafe.Markup:
    """HTML-safe, ASCII, compact JSON for a data element (what ``tojson`` writes). The table
    data's numbers went through _num already; should anything else be a NaN or an infinity,
    ``jsonable`` (a walk of the data) makes it JSON-safe."""
    try:
        return htmlsafe_json_dumps(data, **_ENV.policies["json.dumps_kwargs"])
    except ValueError:
        return htmlsafe_json_dumps(jsonable(data), **_ENV.policies["json.dumps_kwargs"])


def _form(case) -> str:
    try:
        return case.form().describe()
    except Exception as exc:  # noqa: BLE001 -- a case that cannot form (blocked, bad params) still gets a section
        return f"(no canonical form: {exc})"
