"""The tolerance table printed at the end of `parity run`, and the progress display.

Text from case files and frameworks (names, reasons, messages, labels) goes through
escape.terminal: an ESC, CSI or bidi override in it is shown as ``\\x1b`` or ``\\u202e``
instead of being acted on by the terminal. Table cells are escaped before their widths
are measured, and each rendered line is escaped once more as a whole.
"""

from __future__ import annotations

import shutil
import sys

from parity.host import describe, differences
from parity.report import Report, fmt
from parity.report.escape import terminal

COLUMNS = ("case", "comparison", "out", "max abs", "max rel", "ulp", "mismatch", "verdict", "note")


def _one_line(text) -> str:
    """``text`` escaped for the terminal, on one line (a table cell, a progress line)."""
    return terminal(text).replace("\r\n", " ").replace("\n", " ").replace("\t", " ")


def _note(row) -> str:
    cause = {"semantic": "semantic"}.get(row.cause, "beyond rounding bound" if "beyond" in row.cause else "")
    if row.verdict == "KNOWN_GAP" and row.known:
        parts = [cause, "known: " + row.known.reason]
    elif row.known and row.declared:
        parts = ["declared: " + row.known.reason]
    else:
        parts = [cause, row.message.splitlines()[0] if row.message else ""]
    return "; ".join(p for p in parts + row.notes if p)


def across_hosts(report: Report) -> list[str]:
    """Lines for the hosts of a report of several, and the runs whose outcome or values differ
    between them (one line each; what separates the hosts is said once)."""
    return _across_lines(list(report.hosts().values()), report.across_hosts())


def _across_lines(hosts: list[dict], entries: list[dict]) -> list[str]:
    if len(hosts) < 2:
        return []
    out = ["", f"hosts: {len(hosts)}"] + [f"  {_one_line(describe(h))}" for h in hosts]
    for other in hosts[1:]:
        out.append(_one_line(f"  {hosts[0]['label']} vs {other['label']}: "
                             f"{'; '.join(differences(hosts[0], other)) or 'no difference'}"))
    out.append(f"differs across hosts: {len(entries)} output(s) of {len({e['case'] for e in entries})} case(s)"
               + (" (parity.json: across_hosts)" if entries else ""))
    for e in entries:
        seen = ", ".join(f"{h['host']} {h['verdict'] or h['status']}"
                         + (f" {fmt(h['max_abs'])}" if h["max_abs"] is not None else "") for h in e["hosts"])
        between = f"; between hosts {fmt(e['max_abs_between_hosts'])}" if e["max_abs_between_hosts"] is not None else ""
        worker = f" ({'; '.join(e['worker_differences'])})" if e["worker_differences"] else ""
        out.append(_one_line(f"  {e['case']}  {e['side']} [{e['output']}]: {seen}{between}{worker}"))
    return out


def _metrics_text(row) -> str:
    m = row.metrics
    if m is None:
        return ""
    return (f"max abs {fmt(m.max_abs)}, {m.mismatches}/{m.n} beyond atol {fmt(row.atol)} rtol {fmt(row.rtol)}"
            + (f", {m.bound_ratio:.3g}x the rounding bound" if m.bound_ratio is not None else ""))


def _recap(row) -> list[str]:
    """A comparison that makes the exit status non-zero, with its why unabridged, the
    declarations it was checked against and the case file and line to edit."""
    head = f"{row.verdict} {row.case.name}: {row.title} [{row.output}]"
    metrics = _metrics_text(row)
    out = [_one_line(head + (f": {metrics}" if metrics else ""))]
    for i, line in enumerate((row.message or "").splitlines()):
        out.append(("    why: " if i == 0 else "         ") + _one_line(line))
    if row.known is not None:
        k = row.known
        out.append(_one_line(f"    declared: {k.label()} {k.describe()} at {row.case.path}:{k.line}: {k.reason}"))
    for note in row.notes:
        out.append(_one_line(f"    note: {note}"))
    out.append(_one_line(f"    case: {row.case.path}:{row.known.line if row.known else row.case.line}"))
    return out


def render(report: Report, width: int | None = None, verbose: bool = False, tty: bool | None = None) -> str:
    """The table of a report that holds its cases (see Table)."""
    table = Table(verbose)
    for c in report.cases:
        table.add(c)
    return table.render(report, width, tty)


class Table:
    """What `parity run` prints at the end: the table (every row that is not PASS; with
    ``verbose`` every row), what differs across hosts, a recap of what is not ok and the
    counts. Fed one case at a time (``add``), as the report files are: it keeps the lines it
    will print, not the cases."""

    def __init__(self, verbose: bool = False):
        self.verbose = verbose
        self.table: list[tuple] = []
        self.hidden = 0
        self.recap: list[str] = []
        self.n_bad = 0
        self.across: list[dict] = []
        self.tally = None

    def add(self, c) -> None:
        from parity.report import Tally, case_across_hosts

        if self.tally is None:
            self.tally = Tally()
        self.tally.add(c)
        for row in c.rows:
            if not row.ok:
                self.n_bad += 1
                self.recap += _recap(row)
            if not self.verbose and row.verdict == "PASS":
                self.hidden += 1
                continue
            m = row.metrics
            mism = f"{m.mismatches}/{m.n}" if m else "-"
            self.table.append(tuple(map(_one_line, (
                c.case.name, row.title, row.output, fmt(m.max_abs if m else None), fmt(m.max_rel if m else None),
                fmt(m.max_ulp if m else None), mism, row.verdict + ("" if row.ok else " !"), _note(row)))))
        self.across += case_across_hosts(c)

    def render(self, report: Report, width: int | None = None, tty: bool | None = None) -> str:
        """The text. On a terminal the notes are cut to the window's width; elsewhere (CI
        logs, pipes) nothing is cut."""
        from parity.report import Tally

        tally = self.tally or Tally()
        tty = sys.stdout.isatty() if tty is None else tty
        width = width or shutil.get_terminal_size((160, 20)).columns
        table = self.table
        out = []
        if table:
            widths = [max(len(COLUMNS[i]), *(len(r[i]) for r in table)) for i in range(len(COLUMNS) - 1)]
            widths = [min(w, 44) for w in widths]
            note_width = max(20, width - sum(widths) - 2 * len(widths))

            def line(cells):
                parts = [str(c)[:w].ljust(w) for c, w in zip(cells, widths)]
                note = str(cells[-1])
                if tty and len(note) > note_width:
                    note = note[: note_width - 3] + "..."
                return "  ".join(parts + [note]).rstrip()

            out += [line(COLUMNS), line(["-" * w for w in widths] + ["-" * min(note_width, 40)])]
            last = None
            for r in table:
                out.append(line(r if r[0] != last else ("",) + r[1:]))
                last = r[0]
        elif not tally.rows:
            return "no comparisons\n"
        out += _across_lines(list(tally.hosts.values()), self.across)
        if self.n_bad:
            out += ["", f"not ok ({self.n_bad}):"] + self.recap
        counts = {k: v for k, v in tally.counts.items() if v}
        summary = ", ".join(f"{v} {k}" for k, v in counts.items())
        status = "OK" if report.exit_code == 0 else "FAILED"
        out.append("")
        n_cases = tally.cases
        out.append(f"{tally.rows} comparisons in {n_cases} case{'s' if n_cases != 1 else ''}: {summary} -> {status}"
                   f" ({report.seconds:.1f} s)" + (f"; {self.hidden} PASS rows not shown (-v shows every row)"
                                                    if self.hidden else ""))
        return terminal("\n".join(out)) + "\n"


class Progress:
    """Progress while a run goes on: one self-updating bar on a terminal; elsewhere (CI logs,
    pipes) one line per finished case, with its runs' statuses (not one per run)."""

    def __init__(self, total: int, stream=None, bar: bool | None = None, width: int = 28):
        import os
        import sys

        self.total, self.done = total, 0
        self.stream = stream or sys.stderr
        if bar is None:
            bar = self.stream.isatty() and not os.environ.get("CI")
        self.bar, self.width = bar, width
        self.cases_total = 0
        self.cases_done = 0
        self._runs_of = lambda case: 1
        self._left: dict[str, int] = {}  # of the cases begun and not finished
        self._seen: dict[str, list] = {}

    def start(self, plan) -> None:
        """What the run will make (parity.run's on_start, a runner.Plan): the totals, and how
        many runs each case has."""
        self.total, self.cases_total, self._runs_of = plan.runs, plan.cases, plan.runs_of

    def update(self, result) -> None:
        self.done += 1
        if self.bar:
            what = _one_line(f"{result.case.name}  {result.framework}@{result.device} {result.dtype}  {result.status}")
            filled = int(self.width * self.done / max(self.total, 1))
            line = f"[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total}  {what}"
            cols = shutil.get_terminal_size((120, 20)).columns
            self.stream.write("\r" + line[: cols - 1].ljust(cols - 1))
            if self.done == self.total:
                self.stream.write("\n")
            self.stream.flush()
            return
        name = result.case.name
        self._seen.setdefault(name, []).append(result)
        left = self._left.pop(name, None) or self._runs_of(result.case)
        if left > 1:
            self._left[name] = left - 1
            return
        self.cases_done += 1
        runs = self._seen.pop(name)
        statuses: dict[str, int] = {}
        for r in runs:
            statuses[r.status] = statuses.get(r.status, 0) + 1
        text = ", ".join(f"{n} {k}" for k, n in sorted(statuses.items(), key=lambda kv: kv[0] != "OK"))
        secs = sum(r.seconds or 0 for r in runs)
        width = len(str(self.cases_total or 1))
        self.stream.write(_one_line(f"[{self.cases_done:>{width}}/{self.cases_total}] {name}: {text} "
                                    f"({secs:.2f} s)") + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.bar and self.done < self.total:
            self.stream.write("\n")
            self.stream.flush()
