"""CSV: one row per comparison, every metric, versions, device, dtype, verdict."""

from __future__ import annotations

import csv as _csv
import math

from parity.report import _BOOL_COLUMNS, _FLOAT_COLUMNS, _INT_COLUMNS, Report, records
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


#: the columns written as float64 numbers (repr: the shortest text that reads back the same;
#: empty for none or NaN), integers and booleans: those parity.report.table types so
_FLOATS = frozenset(_FLOAT_COLUMNS)
_INTS = frozenset(_INT_COLUMNS)
_BOOLS = frozenset(_BOOL_COLUMNS)


def render(report: Report) -> str:
    """The CSV text (see Sink)."""
    return Sink.text(report)


class Sink(_Sink):
    """A header line (also when there is no comparison, as after an early interrupt), then one
    line per comparison, spooled as the cases arrive by the csv module. The cells are those
    pandas writes for parity.report.table (the table of Report.to_pandas); tests check the
    two agree. Text cells are escaped against formula injection (escape.csv_cell); numbers
    are written as numbers (an empty cell: none, or NaN, as null in parity.json)."""

    name = "parity.csv"

    def __init__(self, spool_dir):
        super().__init__(spool_dir)
        self.body = self.spool()
        # made at the first case, not here: a Writer's sinks are made before write_set forks, and
        # text buffered before the fork would be written by both processes
        self.out = None
        self.cells: dict[str, str] = {}  # short text -> its escaped cell: names and labels repeat

    def _writer(self):
        if self.out is None:
            self.out = _csv.writer(self.body.file, lineterminator="\n")
            self.out.writerow(COLUMNS)
        return self.out

    def add(self, c, tally) -> None:
        self._writer().writerows([self._line(rec) for rec in records(c)])

    def finish(self, out, report, tally) -> None:
        self._writer()
        self.body.copy_to(out)

    def _line(self, rec: dict) -> list:
        line = []
        cells = self.cells
        for col in COLUMNS:
            v = rec[col]
            if v is None:
                line.append("")
            elif col in _FLOATS:
                v = float(v)
                line.append("" if math.isnan(v) else repr(v))
            elif col in _INTS:
                line.append(int(v))
            elif col in _BOOLS:
                line.append(bool(v))
            elif isinstance(v, str):
                cell = cells.get(v)
                if cell is None:
                    cell = _cell(v)
                    if len(v) <= 256:  # names, labels, verdicts; not every long message
                        if len(cells) >= 4096:
                            cells.clear()
                        cells[v] = cell
                line.append(cell)
            else:
                line.append(_cell(v))
        return line


def _cell(value):
    if isinstance(value, (list, tuple)):
        return csv_cell(" ".join(map(str, value)))
    return csv_cell(value)
