"""CSV: one row per comparison, every metric, versions, device, dtype, verdict."""

from __future__ import annotations

from parity.report import Report
from parity.report.escape import csv_cell

#: the columns, in order: the keys of ``record`` (tests/test_report_escaping.py checks they
#: agree), for the header of a report with no comparison
COLUMNS = (
    "case", "op", "comparison", "kind", "a", "b", "output", "dtype", "device_a", "device_b", "host_a", "host_b",
    "verdict", "ok", "declared", "max_abs", "max_rel", "mean_abs", "max_ulp", "mismatches", "elements",
    "mismatch_fraction", "nonfinite_mismatches", "min_atol", "atol", "rtol", "worst_index", "worst_a", "worst_b",
    "cause", "bound_ratio", "semantic", "semantic_max_abs", "message", "notes", "known_reason", "known_where",
    "version_a", "version_b", "spelling_a", "spelling_b", "case_file",
)


def render(report: Report) -> str:
    """The CSV text: Report.to_pandas() written by pandas, a header line (also when there is
    no comparison, as after an early interrupt), then one line per comparison. Text cells are
    escaped against formula injection (escape.csv_cell); numbers are written as numbers (an
    empty cell: none, or NaN, as null in parity.json)."""
    df = report.to_pandas()
    for col in df.columns:
        if df[col].dtype == object or str(df[col].dtype) in ("str", "string"):
            df[col] = df[col].map(_cell, na_action="ignore")
    return df.to_csv(index=False, lineterminator="\n")


def _cell(value):
    if isinstance(value, (list, tuple)):
        return csv_cell(" ".join(map(str, value)))
    return csv_cell(value)
