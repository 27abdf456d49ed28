"""A short Markdown summary (for CI: written to $GITHUB_STEP_SUMMARY when that is set)."""

from __future__ import annotations

from parity.report import Report, fmt

MAX_LISTED = 25


def render(report: Report) -> str:
    counts = {k: v for k, v in report.counts().items() if v}
    status = "interrupted" if report.interrupted else ("passed" if report.exit_code == 0 else "failed")
    lines = [f"## parity: {status}", "",
             f"{len(report.rows)} comparisons in {len(report.cases)} cases, {report.seconds:.1f} s "
             f"(`{report.command}`)", "",
             "| " + " | ".join(counts) + " |", "|" + " --- |" * len(counts), "| " + " | ".join(map(str, counts.values())) + " |",
             ""]
    bad = [r for r in report.rows if not r.ok]
    if bad:
        lines += [f"### Needs attention ({len(bad)})", "", "| case | comparison | verdict | max abs | why |",
                  "| --- | --- | --- | --- | --- |"]
        for r in bad[:MAX_LISTED]:
            why = "; ".join([r.message.splitlines()[0] if r.message else ""] + r.notes).strip("; ").replace("|", "\\|")
            lines.append(f"| {r.case.name} | {r.title} [{r.output}] | {r.verdict} | "
                         f"{fmt(r.metrics.max_abs if r.metrics else None)} | {why} |")
        if len(bad) > MAX_LISTED:
            lines.append(f"\n... and {len(bad) - MAX_LISTED} more: see parity.html")
        lines.append("")
    gaps = [r for r in report.rows if r.verdict == "KNOWN_GAP"]
    if gaps:
        semantic = sum(1 for r in gaps if r.cause == "semantic")
        lines.append(f"{len(gaps)} declared gaps ({semantic} semantic, {len(gaps) - semantic} numeric).")
    versions = ", ".join(f"{k} {v}" for k, v in report.versions().items())
    lines += ["", f"Versions: {versions}", ""]
    return "\n".join(lines)
