"""JUnit XML: one testcase per comparison, for CI user interfaces.

FAIL and FIXED are failures; an undeclared ERROR, CRASH or TIMEOUT is an error; PASS
passes; UNSUPPORTED, KNOWN_GAP and declared errors are skipped with their reason (as
pytest reports an expected failure). Metrics travel as testcase properties.

Every attribute value and text goes through escape.xml_text, so that a control character
in a case's text (which XML 1.0 forbids even as a character reference) is written as a
visible escape and the file stays well-formed; and through escape.terminal first, so that
the C1 controls and bidi overrides XML allows are visible too (CI test views show this
text, and some print it to a log).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from parity.report import Report, fmt, record
from parity.report.escape import terminal, xml_text


def _kind(row) -> str:
    if row.verdict in ("FAIL", "FIXED"):
        return "failure"
    if row.verdict in ("ERROR", "CRASH", "TIMEOUT"):
        return "skipped" if row.declared else "error"
    if row.verdict in ("UNSUPPORTED", "KNOWN_GAP"):
        return "skipped"
    return "pass"


def _escape(root: ET.Element) -> None:
    """Make every attribute value and text of the tree safe for XML 1.0 (tags and attribute
    names are parity's own); C1 controls and bidi overrides are made visible as well."""
    for el in root.iter():
        for key, value in list(el.attrib.items()):
            el.set(key, xml_text(terminal(value)))
        if el.text:
            el.text = xml_text(terminal(el.text))
        if el.tail:
            el.tail = xml_text(terminal(el.tail))


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
    _escape(root)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
