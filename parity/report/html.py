"""A self-contained interactive HTML report, rendered with Jinja2 (autoescape on).

One file, no network: inline CSS, a small inline script for filtering, sorting and the
drill-downs, and Chart.js (vendored, parity/report/vendor) for the histograms and
per-channel charts. Every piece of text from a case file is escaped by Jinja2; data for
the script travels as JSON through Jinja2's ``tojson`` (HTML-safe).
"""

from __future__ import annotations

import json
from importlib import resources

import jinja2

from parity.compare import side_label
from parity.host import describe
from parity.report import Report, fmt, jsonable, record, run_record, semantic_text

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("parity.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["fmt"] = fmt
_ENV.filters["semantic"] = semantic_text
_ENV.filters["compact_json"] = lambda v: json.dumps(v, sort_keys=True, default=str)

VERDICT_ORDER = ["FAIL", "FIXED", "CRASH", "TIMEOUT", "ERROR", "KNOWN_GAP", "UNSUPPORTED", "PASS"]


def _chart_js() -> str:
    return resources.files("parity.report").joinpath("vendor/chart.umd.min.js").read_text()


def _drill(row, rec: dict, own: dict) -> dict:
    """What the drill-down of one comparison shows (JSON for the page's script)."""
    m = row.metrics
    out = {
        "title": f"{row.case.name}: {row.title} [{row.output}]",
        "verdict": row.verdict,
        "cause": row.cause,
        "message": row.message,
        "known": row.known.reason if row.known else "",
        "atol": row.atol,
        "rtol": row.rtol,
        "semantic": [list(d) for d in row.semantic],
        "semantic_max_abs": row.semantic_max_abs,
        "numeric": [],
    }
    if m is not None:
        out.update(min_atol=m.min_atol, bound_ratio=m.bound_ratio, max_abs=m.max_abs, max_ulp=m.max_ulp,
                   mismatches=m.mismatches, n=m.n, **m.details)
    if row.kind == "pair":  # the numeric part: each side against its own reference
        for side in (row.a.label, row.b.label):
            ref_row = own.get((side, row.output))
            if ref_row is not None and ref_row.metrics is not None:
                rm = ref_row.metrics
                out["numeric"].append({"side": side, "max_abs": rm.max_abs, "max_ulp": rm.max_ulp,
                                       "bound_ratio": rm.bound_ratio})
    return out


def _matrix(case_report) -> dict:
    """Framework x framework (+ reference, expected) cells of one case."""
    rows = case_report.rows
    sides = []
    for r in rows:
        for s in (r.a.label, r.b.label):
            if s not in sides and s not in ("reference", "expected", "baseline"):
                sides.append(s)
    cols = sides + [s for s in ("reference", "expected", "baseline") if any(s in (r.a.label, r.b.label) for r in rows)]
    cells: dict = {}
    for r in rows:
        for a, b in ((r.a.label, r.b.label), (r.b.label, r.a.label)):
            cells.setdefault((a, b), []).append(r)
    grid = []
    for a in sides:
        line = []
        for b in cols:
            found = cells.get((a, b), [])
            if not found:
                line.append(None)
                continue
            worst = min(found, key=lambda r: VERDICT_ORDER.index(r.verdict))
            line.append({"verdict": worst.verdict, "rows": found})
        grid.append((a, line))
    return {"cols": cols, "grid": grid}


def environment(report: Report) -> dict:
    """Per side (framework, variant, and host where there are several): version, python,
    numpy, the worker's settings (threads, kernels, build) and numeric environment variables."""
    out = {}
    several = len(report.hosts()) > 1
    for c in report.cases:
        for r in c.results:
            key = side_label(r.framework, r.device, r.variant, (r.host or {}).get("label") if several else None)
            if r.worker and key not in out:
                out[key] = {"version": r.version, **{k: v for k, v in r.worker.items() if k not in ("info", "env")},
                            **(r.worker.get("info") or {}),
                            **{f"${k}": v for k, v in (r.worker.get("env") or {}).items()},
                            **{f"${k} (--env)": v for k, v in r.env.items()}}
    return out


def render(report: Report) -> str:
    template = _ENV.get_template("report.html.j2")
    cases, rows, drill = [], [], {}
    filters = {"op": set(), "verdict": set(), "framework": set(), "device": set(), "dtype": set()}
    for i, c in enumerate(report.cases):
        own = {(r.a.label, r.output): r for r in c.rows if r.kind == "reference"}
        case_rows = []
        for j, row in enumerate(c.rows):
            rid = f"c{i}r{j}"
            rec = record(row)
            fws = [s for s in (row.a.framework, row.b.framework) if s not in ("reference", "expected", "baseline")]
            devices = sorted({row.a.device, row.b.device} - {""})
            item = {"id": rid, "row": row, "rec": rec, "frameworks": " ".join(fws), "devices": " ".join(devices)}
            case_rows.append(item)
            rows.append(item)
            drill[rid] = _drill(row, rec, own)
            filters["op"].add(c.case.op.name)
            filters["verdict"].add(row.verdict)
            filters["framework"].update(fws)
            filters["device"].update(devices)
            filters["dtype"].add(row.dtype)
        cases.append({
            "id": f"case-{i}",
            "report": c,
            "rows": case_rows,
            "runs": [run_record(r) for r in c.results],
            "form": c.case.form().describe(),
            "matrix": _matrix(c),
        })
    return template.render(
        report=report, cases=cases, rows=rows, counts=report.counts(), versions=report.versions(),
        filters={k: sorted(v) for k, v in filters.items()}, drill=jsonable(drill), environment=environment(report),
        hosts=[(h, describe(h)) for h in report.hosts().values()], across_hosts=report.across_hosts(),
        chart_js=_chart_js(),
    )
