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

import re
from xml.sax import saxutils as _xml

from parity.report import Report, fmt, records
from parity.report.escape import _CONTROL_RANGES, _class, terminal, xml_text
from parity.report.stream import Sink as _Sink

#: anything _attr or _text would change: markup, quotes, tab/newline/CR and every character
#: escape.terminal or escape.xml_text replaces (a superset of both: a hit takes the full path)
_SPECIAL = re.compile("[&<>\"'\t\n\r" + _class(*_CONTROL_RANGES, (0x0B, 0x0C), (0x0E, 0x1F), (0xFFFE, 0xFFFF)) + "]")


def _kind(row) -> str:
    if row.verdict in ("FAIL", "FIXED"):
        return "failure"
    if row.verdict in ("ERROR", "CRASH", "TIMEOUT"):
        return "skipped" if row.declared else "error"
    if row.verdict in ("UNSUPPORTED", "KNOWN_GAP"):
        return "skipped"
    return "pass"


def _text(value) -> str:
    """Character data: escaped for XML 1.0 (forbidden characters made visible) and for markup."""
    value = value if isinstance(value, str) else str(value)
    if not _SPECIAL.search(value):  # the usual text: nothing to escape
        return value
    return _xml.escape(xml_text(terminal(value)))


def _attr(value) -> str:
    """An attribute value, quoted (newlines and tabs as character references, as
    ElementTree writes them)."""
    value = value if isinstance(value, str) else str(value)
    if not _SPECIAL.search(value):  # the usual value: quoted as it is
        return f'"{value}"'
    return _xml.quoteattr(xml_text(terminal(str(value))), {"\n": "&#10;", "\t": "&#09;", "\r": "&#13;"})


_PROPERTIES = ("verdict", "cause", "max_abs", "max_rel", "max_ulp", "mismatches", "elements", "min_atol", "atol",
               "rtol", "bound_ratio", "semantic", "version_a", "version_b", "dtype")


def _testcase(c, row, rec: dict, counts: dict) -> str:
    props = "".join(f'\n      <property name="{key}" value={_attr(rec[key])} />' for key in _PROPERTIES
                    if rec.get(key) not in (None, ""))
    out = [f'\n    <testcase classname={_attr(f"parity.{c.case.op.name}")} '
           f'name={_attr(f"{c.case.name}: {row.title} [{row.output}]")} file={_attr(c.case.path)}>',
           f"\n      <properties>{props}\n      </properties>" if props else "\n      <properties />"]
    counts["tests"] += 1
    kind = _kind(row)
    text = "\n".join([row.message or ""] + row.notes).strip()
    if row.known is not None:
        text = f"known: {row.known.reason}\n{text}".strip()
    summary = f"{row.verdict}: max abs {fmt(rec['max_abs'])}, {fmt(rec['max_ulp'])} ulp" \
        if rec["max_abs"] is not None else row.verdict
    if kind in ("failure", "error"):
        out.append(f"\n      <{kind} message={_attr(summary)} type={_attr(row.verdict)}>{_text(text)}</{kind}>")
        counts["failures" if kind == "failure" else "errors"] += 1
    elif kind == "skipped":
        message = f"{summary}{' (declared)' if row.declared else ''}: {(row.known.reason if row.known else text)[:500]}"
        out.append(f"\n      <skipped message={_attr(message)} />")
        counts["skipped"] += 1
    out.append("\n    </testcase>")
    return "".join(out)


def render(report: Report) -> str:
    """The XML text (see Sink)."""
    return Sink.text(report)


class Sink(_Sink):
    """The XML written directly (ElementTree's tree, indent and serialization took seconds
    on a large suite), every attribute value and text escaped by _attr/_text: one testsuite
    per case, spooled as the cases arrive; the root element, which carries the totals, at
    the end."""

    name = "parity.junit.xml"

    def __init__(self, spool_dir):
        super().__init__(spool_dir)
        self.body = self.spool()
        self.totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}

    def add(self, c, tally) -> None:
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        cases = "".join(_testcase(c, row, rec, counts) for row, rec in zip(c.rows, records(c)))
        for k, v in counts.items():
            self.totals[k] += v
        attrs = " ".join(f'{k}="{v}"' for k, v in counts.items())
        self.body.write(f"\n  <testsuite name={_attr(c.case.name)} file={_attr(c.case.path)} {attrs}>{cases}"
                        f"\n  </testsuite>" if cases else f"\n  <testsuite name={_attr(c.case.name)} "
                        f"file={_attr(c.case.path)} {attrs} />", sep="")

    def finish(self, out, report, tally) -> None:
        attrs = " ".join(f'{k}="{v}"' for k, v in self.totals.items())
        head = f'<?xml version="1.0" encoding="utf-8"?>\n<testsuites name="parity" time="{report.seconds:.3f}" {attrs}'
        if not tally.cases:
            out.write(head + " />\n")
            return
        out.write(head + ">")
        self.body.copy_to(out)
        out.write("\n</testsuites>\n")
