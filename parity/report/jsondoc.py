"""parity.json: the run (host, versions, counts), every case with its runs, every comparison
with its details, and what differs across hosts. Written in pieces (one per case and per
comparison) as the cases arrive: the same text as one ``dumps`` of the whole document."""

from __future__ import annotations

from parity.report import CaseReport, case_across_hosts, dumps, records, run_record
from parity.report.stream import Sink as _Sink


def case_doc(c: CaseReport) -> dict:
    return {
        "name": c.case.name,
        "file": str(c.case.path),
        "op": c.case.op.name,
        "description": c.case.description,
        "source": c.case.source,
        "params": c.case.params,
        "inputs": c.inputs,
        "runs": [run_record(r) for r in c.results],
        "references": [run_record(r) for r in c.refs],
        "known": [{"between": k.between, "framework": k.framework, "output": k.output, "status": k.status,
                   "error": k.error, "max_abs": k.max_abs, "max_bound_ratio": k.max_bound_ratio,
                   "host_dependent": k.host_dependent, "when": k.when, "reason": k.reason, "line": k.line}
                  for k in c.case.known],
    }


class Sink(_Sink):
    """The cases and the comparisons are spooled; the head (counts, hosts, versions, exit
    status) and what differs across hosts are written at the end."""

    name = "parity.json"

    def __init__(self, spool_dir):
        super().__init__(spool_dir)
        self.cases, self.comparisons = self.spool(), self.spool()
        self.across: list[dict] = []

    def add(self, c, tally) -> None:
        self.cases.write(dumps(case_doc(c)))
        for r, rec in zip(c.rows, records(c)):
            self.comparisons.write(dumps({**rec, "details": r.metrics.details if r.metrics else {}}))
        self.across += case_across_hosts(c)

    def finish(self, out, report, tally) -> None:
        head = {"schema": "parity-report/1", "started": report.started, "seconds": report.seconds,
                "command": report.command, "interrupted": report.interrupted, "exit_code": report.exit_code,
                "host": report.host, "hosts": list(tally.hosts.values()), "versions": dict(tally.versions),
                "counts": dict(tally.counts)}
        out.write(dumps(head)[:-1] + ',"cases":[')
        self.cases.copy_to(out)
        out.write('],"comparisons":[')
        self.comparisons.copy_to(out)
        out.write('],"across_hosts":' + dumps(self.across) + "}")
