"""A short Markdown summary (for CI: written to $GITHUB_STEP_SUMMARY when that is set).

Every piece of text that is not parity's own (case names, messages, notes, versions, the
command) is escaped for the place it goes: escape.markdown_cell in table cells and prose,
a code span that no backtick in the text can close for the command.
"""

from __future__ import annotations

import re

from parity.report import Report, fmt
from parity.report.escape import markdown_cell, terminal

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
    counts = {k: v for k, v in report.counts().items() if v}
    status = "interrupted" if report.interrupted else ("passed" if report.exit_code == 0 else "failed")
    lines = [f"## parity: {status}", "",
             (f"{len(report.rows)} comparisons in {len(report.cases)} cases, {report.seconds:.1f} s "
              f"({_code(report.command)})"), ""]
    if counts:
        lines += [_row(*counts), "|" + " --- |" * len(counts), _row(*map(str, counts.values())), ""]
    else:  # a table needs a column: say it in words (an interrupt before the first comparison)
        lines += ["No comparisons" + (": the run was interrupted before the first one finished."
                                      if report.interrupted else "."), ""]
    bad = [r for r in report.rows if not r.ok]
    if bad:
        lines += [f"### Needs attention ({len(bad)})", "", "| case | comparison | verdict | max abs | why |",
                  "| --- | --- | --- | --- | --- |"]
        for r in bad[:MAX_LISTED]:
            why = "; ".join([r.message.splitlines()[0] if r.message else ""] + r.notes).strip("; ")
            # the brackets around the output are parity's own; no "(" follows them
            lines.append(_row(markdown_cell(r.case.name), f"{markdown_cell(r.title)} [{markdown_cell(r.output)}]",
                              markdown_cell(r.verdict), markdown_cell(fmt(r.metrics.max_abs if r.metrics else None)),
                              markdown_cell(why)))
        if len(bad) > MAX_LISTED:
            lines.append(f"\n... and {len(bad) - MAX_LISTED} more: see parity.html")
        lines.append("")
    gaps = [r for r in report.rows if r.verdict == "KNOWN_GAP"]
    if gaps:
        semantic = sum(1 for r in gaps if r.cause == "semantic")
        lines.append(f"{len(gaps)} declared gaps ({semantic} semantic, {len(gaps) - semantic} numeric).")
    versions = ", ".join(f"{k} {v}" for k, v in report.versions().items())
    lines += ["", f"Versions: {markdown_cell(versions)}", ""]
    return "\n".join(lines)
