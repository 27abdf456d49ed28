"""A short Markdown summary (for CI: written to $GITHUB_STEP_SUMMARY when that is set).

Every piece of text that is not parity's own (case names, messages, notes, versions, the
command) is escaped for the place it goes: escape.markdown_cell in table cells and prose,
a code span that no backtick in the text can close for the command.
"""

from __future__ import annotations

import re

from parity.report import Report, fmt
from parity.report.escape import markdown_cell, terminal
from parity.report.stream import Sink as _Sink

MAX_LISTED = 25


def _code(text: str) -> str:
    """``text`` as an inline code span (GFM): one line, control characters visible, fenced
    by a run of backticks longer than any in it, padded where it starts or ends with one.
    A code span shows its text literally; ``<`` or ``[`` in it are not markup."""
    text = terminal(" ".join(text.splitlines())).replace("\t", " ")
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _row(*cells) -> str:
    return "| " + " | ".join(cells) + " |"


def render(report: Report) -> str:
    return Sink.text(report)


def _bad_line(r) -> str:
    why = "; ".join([r.message.splitlines()[0] if r.message else ""] + r.notes).strip("; ")
    # the brackets around the output are parity's own; no "(" follows them
    return _row(markdown_cell(r.case.name), f"{markdown_cell(r.title)} [{markdown_cell(r.output)}]",
                markdown_cell(r.verdict), markdown_cell(fmt(r.metrics.max_abs if r.metrics else None)),
                markdown_cell(why))


class Sink(_Sink):
    """The status, the counts, the first MAX_LISTED comparisons that are not ok and the
    versions: counted as the cases arrive, written at the end (``summary`` keeps it, for
    $GITHUB_STEP_SUMMARY)."""

    name = "parity.md"

    def __init__(self, spool_dir):
        super().__init__(spool_dir)
        self.bad: list[str] = []
        self.n_bad = self.gaps = self.semantic = 0
        self.summary: str | None = None

    def add(self, c, tally) -> None:
        for r in c.rows:
            if not r.ok:
                self.n_bad += 1
                if len(self.bad) < MAX_LISTED:
                    self.bad.append(_bad_line(r))
            if r.verdict == "KNOWN_GAP":
                self.gaps += 1
                self.semantic += r.cause == "semantic"

    def finish(self, out, report, tally) -> None:
        counts = {k: v for k, v in tally.counts.items() if v}
        status = "interrupted" if report.interrupted else ("passed" if report.exit_code == 0 else "failed")
        lines = [f"## parity: {status}", "",
                 (f"{tally.rows} comparisons in {tally.cases} cases, {report.seconds:.1f} s "
                  f"({_code(report.command)})"), ""]
        if counts:
            lines += [_row(*counts), "|" + " --- |" * len(counts), _row(*map(str, counts.values())), ""]
        else:  # a table needs a column: say it in words (an interrupt before the first comparison)
            lines += ["No comparisons" + (": the run was interrupted before the first one finished."
                                          if report.interrupted else "."), ""]
        if self.n_bad:
            lines += [f"### Needs attention ({self.n_bad})", "", "| case | comparison | verdict | max abs | why |",
                      "| --- | --- | --- | --- | --- |"]
            lines += self.bad
            if self.n_bad > MAX_LISTED:
                lines.append(f"\n... and {self.n_bad - MAX_LISTED} more: see parity.html")
            lines.append("")
        if self.gaps:
            lines.append(f"{self.gaps} declared gaps ({self.semantic} semantic, {self.gaps - self.semantic} numeric).")
        versions = ", ".join(f"{k} {v}" for k, v in tally.versions.items())
        lines += ["", f"Versions: {markdown_cell(versions)}", ""]
        self.summary = "\n".join(lines)
        out.write(self.summary)
