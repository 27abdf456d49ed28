"""CSV: one row per comparison, every metric, versions, device, dtype, verdict."""

from __future__ import annotations

from parity.report import Report, record, table
from parity.report.escape import csv_cell
from parity.report.stream import Sink as _Sink

#: the columns, in order: the keys of ``record`` (tests/test_report_escaping.py checks they
#: agree), for the header of a report with no comparison
COLUMNS = (
    "case", "op", "comparison", "kind", "a", "b", "output", "dtype", "device_a", "device_b", "host_a", "host_b",
    "verdict", "ok", "declared", "max_abs", "max_rel", "mean_abs", "max_ulp", "mismatches", "elements",
    "mismatch_fraction", "nonfinite_mismatches", "min_atol", "atol", "rtol", "worst_index", "worst_a", "worst_b",
    "cause", "bound_ratio", "semantic", "semantic_max_abs", "message", "notes", "known_reason", "known_where",
    "version_a", "version_b", "spelling_a", "spelling_b", "case_file",
)


#: comparisons per piece: each piece is a pandas frame written by pandas and freed (its
#: records, about 2 KB each, are what the CSV holds while a suite runs)
PIECE = 2048


def render(report: Report) -> str:
    """The CSV text (see Sink)."""
    return Sink.text(report)


class Sink(_Sink):
    """A header line (also when there is no comparison, as after an early interrupt), then one
    line per comparison, spooled as the cases arrive: each piece of PIECE comparisons or more
    a parity.report.table (the table of Report.to_pandas) written by pandas. Text cells are
    escaped against formula injection (escape.csv_cell); numbers are written as numbers (an
    empty cell: none, or NaN, as null in parity.json)."""

    name = "parity.csv"

    def __init__(self, spool_dir):
        super().__init__(spool_dir)
        self.body = self.spool()
        self.records: list[dict] = []
        self.header = True

    def add(self, c, tally) -> None:
        self.records += [record(r) for r in c.rows]
        if len(self.records) >= PIECE:
            self._piece()

    def finish(self, out, report, tally) -> None:
        if self.records or self.header:
            self._piece()
        self.body.copy_to(out)

    def _piece(self) -> None:
        df = table(self.records)
        self.records = []
        for col in df.columns:
            if df[col].dtype == object or str(df[col].dtype) in ("str", "string"):
                # each distinct value escaped once (a column repeats a few values: names, labels,
                # verdicts); a column with nothing to escape, the usual case, is left as it is
                try:
                    escaped = {v: _cell(v) for v in df[col].dropna().unique()}
                except TypeError:  # lists (worst_index) are not hashable
                    df[col] = df[col].map(_cell, na_action="ignore")
                    continue
                if any(e != v for v, e in escaped.items()):
                    df[col] = df[col].map(escaped, na_action="ignore")
        self.body.write(df.to_csv(index=False, header=self.header, lineterminator="\n"), sep="")
        self.header = False
def _cell(value):
    if isinstance(value, (list, tuple)):
        return csv_cell(" ".join(map(str, value)))
    return csv_cell(value)
