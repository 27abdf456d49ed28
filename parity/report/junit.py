"""JUnit XML: one testcase per comparison, for CI user interfaces.

FAIL and FIXED are failures; an undeclared ERROR, CRASH or TIMEOUT is an error; PASS
passes; UNSUPPORTED, KNOWN_GAP and declared errors are skipped with their reason (as
pytest reports an expected failure). Metrics travel as testcase properties.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from parity.report import Report, fmt, record


def _kind(row) -> str:
    if row.verdict in ("FAIL", "FIXED"):
        return "failure"
    if row.verdict in ("ERROR", "CRASH", "TIMEOUT"):
        return "skipped" if row.declared else "error"
    if row.verdict in ("UNSUPPORTED", "KNOWN_GAP"):
        return "skipped"
    return "pass"


def render(report: Report) -> str:
    root = ET.Element("testsuites", name="parity", time=f"{report.seconds:.3f}")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for c in report.cases:
        suite = ET.SubElement(root, "testsuite", name=c.case.name, file=str(c.case.path))
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for row in c.rows:
            rec = record(row)
            case = ET.SubElement(suite, "testcase", classname=f"parity.{c.case.op.name}",
                                 name=f"{c.case.name}: {row.title} [{row.output}]", file=str(c.case.path))
            props = ET.SubElement(case, "properties")
            for key in ("verdict", "cause", "max_abs", "max_rel", "max_ulp", "mismatches", "elements", "min_atol",
                        "atol", "rtol", "bound_ratio", "semantic", "version_a", "version_b", "dtype"):
                if rec.get(key) not in (None, ""):
                    ET.SubElement(props, "property", name=key, value=str(rec[key]))
            counts["tests"] += 1
            kind = _kind(row)
            text = "\n".join([row.message or ""] + row.notes).strip()
            if row.known is not None:
                text = f"known: {row.known.reason}\n{text}".strip()
            summary = f"{row.verdict}: max abs {fmt(rec['max_abs'])}, {fmt(rec['max_ulp'])} ulp" \
                if rec["max_abs"] is not None else row.verdict
            if kind == "failure":
                ET.SubElement(case, "failure", message=summary, type=row.verdict).text = text
                counts["failures"] += 1
            elif kind == "error":
                ET.SubElement(case, "error", message=summary, type=row.verdict).text = text
                counts["errors"] += 1
            elif kind == "skipped":
                ET.SubElement(case, "skipped", message=f"{summary}{' (declared)' if row.declared else ''}: "
                                                       f"{(row.known.reason if row.known else text)[:500]}")
                counts["skipped"] += 1
        for k, v in counts.items():
            suite.set(k, str(v))
            totals[k] += v
    for k, v in totals.items():
        root.set(k, str(v))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
