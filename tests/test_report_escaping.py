"""Every piece of text from a case file is escaped for the syntax of each output: the HTML
report, the terminal, parity.csv, parity.junit.xml and parity.md (parity/report/escape.py)."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import xml.etree.ElementTree as ET

import pytest

from parity.report import escape

from conftest import CliResult, run_cli, write_case


def test_script_in_case_text_renders_as_text(tmp_path):
    write_case(tmp_path, "xss", """
        name: "<script>alert(1)</script>"
        op: lrn
        description: "<img src=x onerror=alert(2)> & friends"
        source: "<b>bold</b>"
        params: {size: 3}
        inputs: {x: {shape: [1, 3, 2, 2], dtype: float32}}
        frameworks: [torch]
        known:
          - framework: torch
            status: UNSUPPORTED
            reason: "</li><script>alert(3)</script>"
    """)
    r = run_cli("run", tmp_path, report_dir=tmp_path / "r")
    html = r.html
    for raw in ("<script>alert(1)</script>", "<img src=x", "<script>alert(3)", "<b>bold</b>"):
        assert raw not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt; &amp; friends" in html
    assert html.lower().count("<script") == 3  # the page's own: its data, Chart.js, its code


# --- the hostile-text corpus, through the real command line -------------------------------

CORPUS = [
    "\x1b]0;pwned\x07",  # OSC: retitles the terminal window
    "\x1b[2J",  # CSI: clears the screen
    "\x9b2J",  # the same with the one-byte C1 CSI
    "\x00",
    "nul \x00 inside",
    "\x01",
    "\u202eevil",  # right-to-left override
    '=HYPERLINK("http://evil/","x")',
    "+1",
    "-2+3",
    "@SUM(A1)",
    "\t=1",
    "a|b",
    "<img src=x onerror=alert(1)>",
    "[x](javascript:alert(1))",
    "![i](http://x/y.png)",
    "line one\nline two",  # a one-line place (a table cell, a recap line) gets it on one line
]
#: what no output may contain (newline aside): C0 controls, DEL, C1 controls, bidi overrides
RAW_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
FORMULA = ("=", "+", "-", "@", "\t", "\r")
#: the numeric columns of parity.csv (empty where there is no value)
NUMERIC = ("max_abs", "max_rel", "mean_abs", "max_ulp", "mismatches", "elements", "mismatch_fraction",
           "nonfinite_mismatches", "min_atol", "atol", "rtol", "worst_a", "worst_b", "bound_ratio",
           "semantic_max_abs")
#: a case file name with an ESC sequence in it: its path reaches the reports through messages
HOSTILE_FILE = "file\x1b[2J=x"


def _name(i: int, text: str) -> str:
    """The case name for corpus entry ``i``: the text itself where a name may hold it (a name
    is printable, with no control or format character: parity.cases.name_problem)."""
    return text if text.isprintable() and text == text.strip() else f"ctl-{i}"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    for i, text in enumerate(CORPUS):
        s = json.dumps(text)  # a JSON string is a YAML double-quoted scalar
        write_case(d / "cases", HOSTILE_FILE if i == 1 else f"c{i:02d}", f"""
            name: {json.dumps(_name(i, text))}
            op: lrn
            description: {s}
            source: {s}
            params: {{size: 3}}
            inputs: {{x: {{shape: [1, 3, 2, 2], dtype: float32, init: normal, seed: {i}}}}}
            frameworks: [torch]
            known:
              - framework: torch
                status: UNSUPPORTED
                reason: {s}
        """)
    # torch runs: each declaration is FIXED, so the reason reaches every output
    r = run_cli("run", d / "cases", "--no-results", report_dir=d / "out", env={"GITHUB_STEP_SUMMARY": ""})
    assert r.code == 1, r.stdout + r.stderr
    assert len(r.json["comparisons"]) == len(CORPUS)
    r.cases_dir = d / "cases"
    return r


@pytest.fixture(scope="module")
def renamed(hostile, tmp_path_factory):
    """The hostile cases run again in this process (real torch worker), each renamed to its
    corpus entry, controls included (as a case built in Python, or a store made before
    names were checked, may hold them), and the report written by the real writers.
    Returns the report's terminal text, its progress lines and its directory."""
    import dataclasses

    from parity import compare, report, runner
    from parity.cases import load_tree
    from parity.report import terminal

    index = {_name(i, text): i for i, text in enumerate(CORPUS)}
    cases = [dataclasses.replace(c, name=CORPUS[index[c.name]]) for c in load_tree([hostile.cases_dir])]
    planner = runner.Planner()
    lines = io.StringIO()
    progress = terminal.Progress(0, lines, bar=False)
    progress.start(planner.summary(cases))
    done = []

    def on_case_done(i, case, results, refs, summary, arrays):
        done.append(report.CaseReport(case, results, refs, compare.evaluate(case, results, refs), summary))

    runner.execute(cases, planner, timeout=300, on_result=progress.update, on_case_done=on_case_done)
    rep = report.Report(done, "2025-01-01T00:00:00+00:00", 1.0, "parity run (renamed)", report.host_info())
    assert len(rep.rows) == len(CORPUS)
    out = tmp_path_factory.mktemp("renamed")
    report.write_all(rep, out)
    return terminal.render(rep, width=200, tty=False), lines.getvalue(), out


def _no_raw_control(text: str, where: str, allowed: str = "\n") -> None:
    raw = [c for c in RAW_CONTROL.findall(text) if c not in allowed]
    assert not raw, f"raw control characters in {where}: {raw}"


def test_terminal_output_has_no_raw_control_characters(hostile):
    _no_raw_control(hostile.stdout, "stdout")
    _no_raw_control(hostile.stderr, "stderr (the progress lines)")
    out = hostile.stdout
    for shown in ("\\x1b]0;pwned\\x07", "\\x1b[2J", "\\x9b2J", "\\x00", "nul \\x00 inside", "\\x01", "\\u202eevil",
                  f"{HOSTILE_FILE}.yaml".replace("\x1b", "\\x1b")):
        assert shown in out, shown
    assert '=HYPERLINK("http://evil/","x")' in out  # a terminal is no spreadsheet: kept as written
    assert any(line.startswith("    declared: ") and line.endswith(": line one line two") for line in out.splitlines())


def test_terminal_table_columns_line_up_with_escaped_names(renamed):
    text, _, _ = renamed
    _no_raw_control(text, "the terminal table")
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("case "))
    col = lines[header].index("comparison")
    rows = lines[header + 2: header + 2 + len(CORPUS)]
    for line in rows:  # the widths are those of the text as shown
        assert line[col:].startswith("torch vs reference"), (col, line)
    starts = {line[:col].rstrip() for line in rows}
    assert {"\\x1b]0;pwned\\x07", "\\x1b[2J", "\\x9b2J", "\\x00", "\\x01", "\\u202eevil", "a|b"} <= starts
    assert "FIXED \\x1b[2J: torch vs reference [y]" in text  # the recap


def test_progress_lines_of_a_real_run_show_control_characters_escaped(renamed):
    _, lines, _ = renamed
    _no_raw_control(lines, "progress lines")
    assert lines.count("\n") == len(CORPUS)
    for shown in ("\\x1b]0;pwned\\x07", "\\x1b[2J", "\\x9b2J", "nul \\x00 inside", "\\u202eevil"):
        assert f"] {shown}: 1 OK" in lines, shown  # one line per finished case


def test_progress_lines_show_control_characters_escaped():
    from parity.report.terminal import Progress
    from parity.runner import Plan

    class R:
        def __init__(self, name):
            self.case = type("C", (), {"name": name})()
            self.framework, self.device, self.dtype, self.status, self.seconds = "torch", "cpu", "float32", "OK", 0.5

    for bar in (False, True):
        out = io.StringIO()
        p = Progress(len(CORPUS), out, bar=bar)
        p.start(Plan(len(CORPUS), len(CORPUS), lambda case: 1))  # one run per case
        for text in CORPUS:
            p.update(R(text))
        _no_raw_control(out.getvalue().replace("\r", ""), f"progress (bar={bar})")
        assert out.getvalue().count("\n") == (1 if bar else len(CORPUS))
        sep = "  torch@cpu" if bar else ": 1 OK"
        assert f"\\x1b]0;pwned\\x07{sep}" in out.getvalue() and f"\\u202eevil{sep}" in out.getvalue()


def test_differs_across_hosts_lines_are_escaped():
    """Host fingerprints come from merged stores of other machines: their text is escaped too."""
    from parity.report.terminal import across_hosts

    class Merged:  # what across_hosts reads of a Report whose runs come from two hosts
        def hosts(self):
            return {"a": {"id": "a", "label": "h1\x1b[2J", "cpu": "CPU \x9b2J", "cpus": 2, "flags": ["avx2"]},
                    "b": {"id": "b", "label": "h2", "cpu": "CPU \u202eevil", "cpus": 2, "flags": ["avx2"]}}

        def across_hosts(self):
            return [{"case": "\x1b]0;pwned\x07", "side": "torch", "output": "y", "max_abs_between_hosts": 0.5,
                     "hosts": [{"host": "h1\x1b[2J", "verdict": "PASS", "status": "OK", "max_abs": 0.1},
                               {"host": "h2", "verdict": None, "status": "ERROR\x00", "max_abs": None}],
                     "worker_differences": ["onednn: \x01 vs \x7f"]}]

    lines = across_hosts(Merged())
    text = "\n".join(lines)
    _no_raw_control(text, "the differs-across-hosts lines")
    for shown in ("h1\\x1b[2J: CPU \\x9b2J", "CPU \\u202eevil", "\\x1b]0;pwned\\x07  torch [y]", "ERROR\\x00",
                  "onednn: \\x01 vs \\x7f"):
        assert shown in text, shown


@pytest.fixture(params=["cli", "renamed"])
def reports(request, hostile, renamed):
    """The report directory of either run: the command line's, or the renamed report's."""
    return (hostile.report_dir if request.param == "cli" else renamed[2]), request.param


def test_junit_is_well_formed_and_shows_what_was_there(reports):
    out, which = reports
    path = out / "parity.junit.xml"
    root = ET.parse(path).getroot()  # raises on a forbidden character
    assert len(root.findall(".//testcase")) == len(CORPUS)
    _no_raw_control(path.read_text(encoding="utf-8"), "parity.junit.xml")
    failures = " ".join(f.text for f in root.iter("failure"))
    for shown in ("known: \\x00", "known: \\x01", "known: nul \\x00 inside", "known: \\x1b]0;pwned\\x07",
                  "known: \\x9b2J", "known: \\u202eevil", HOSTILE_FILE.replace("\x1b", "\\x1b")):
        assert shown in failures, shown
    names = {s.get("name") for s in root.iter("testsuite")}
    assert {"<img src=x onerror=alert(1)>", "a|b"} <= names
    if which == "renamed":
        assert {"\\x1b]0;pwned\\x07", "\\x00", "nul \\x00 inside", "\\x01", "\\x9b2J", "\\u202eevil"} <= names


def test_csv_text_cells_are_not_formulas_and_numbers_stay_numbers(reports):
    from parity.report.csv import COLUMNS

    out, which = reports
    text = (out / "parity.csv").read_text(encoding="utf-8")
    _no_raw_control(text, "parity.csv", allowed="\n\t")  # tab is data in a cell ("'\t=1")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == len(CORPUS)
    assert tuple(rows[0]) == COLUMNS  # the header an empty report gets is this one
    for row in rows:
        for key, cell in row.items():
            if key in NUMERIC:
                if cell != "":
                    float(cell)  # a number, never prefixed
            else:
                assert not cell.startswith(FORMULA), (key, cell)
    assert all(float(row["max_abs"]) > 0 and int(row["elements"]) == 12 for row in rows)
    names = {row["case"] for row in rows}
    assert {"'=HYPERLINK(\"http://evil/\",\"x\")", "'+1", "'-2+3", "'@SUM(A1)", "a|b"} <= names
    reasons = {row["known_reason"] for row in rows}
    assert {"'=HYPERLINK(\"http://evil/\",\"x\")", "'+1", "'-2+3", "'@SUM(A1)", "'=1"} <= reasons
    assert {"\\x00", "\\x01", "\\x1b[2J", "\\x9b2J", "\\u202eevil"} <= reasons
    if which == "renamed":
        assert {"\\x1b]0;pwned\\x07", "\\x00", "'\t=1", "\\u202eevil"} <= names


def _cells(line: str) -> list[str]:
    """The cells of one GFM table row: split at every pipe that no backslash escapes."""
    cells, cell, i = [], "", 0
    body = line.strip()
    assert body.startswith("|") and body.endswith("|") and not body.endswith("\\|"), line
    body = body[1:-1]
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            cell += body[i:i + 2]
            i += 2
            continue
        if body[i] == "|":
            cells.append(cell)
            cell = ""
        else:
            cell += body[i]
        i += 1
    return cells + [cell]


def _tables(md: str) -> list[list[list[str]]]:
    """Every table of a Markdown text, checked to be well-formed: a header, a delimiter row,
    at least one body row, the same number of cells on every row."""
    tables, current = [], []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            current.append(_cells(line))
        elif current:
            tables.append(current)
            current = []
    for t in tables:
        assert len(t) >= 3, t
        assert all(re.fullmatch(r"\s*-{3,}\s*", c) for c in t[1]), t[1]
        assert len({len(row) for row in t}) == 1, t
    return tables


def test_csv_lines_are_the_ones_pandas_writes_for_the_table(hostile):
    """parity.csv is written by the csv module, cell by cell; its text is the one pandas writes
    for Report.to_pandas' table with the text cells escaped (what it was made with before),
    for hostile text, numbers that are NaN, inf, -0.0, tiny or huge, and missing values."""
    import dataclasses

    import parity
    from parity.cases import load_tree
    from parity.report import frame
    from parity.report.csv import _cell, render

    rep = parity.run(load_tree([hostile.cases_dir]), frameworks=["torch"])
    odd = [math.nan, math.inf, -math.inf, -0.0, 5e-324, 1.7976931348623157e308, 1e16, 1e-5, 0.1, 2.0]
    for i, row in enumerate(rep.rows):
        v = odd[i % len(odd)]
        row.metrics = dataclasses.replace(row.metrics, max_abs=v, max_rel=odd[(i + 1) % len(odd)], max_ulp=None,
                                          worst_a=odd[(i + 2) % len(odd)], bound_ratio=None if i % 2 else v)
        row.semantic_max_abs = None if i % 3 else v
        row.notes = ["a \"quoted\", comma", "=1+1"] if i % 2 else []
    df = frame(rep.rows)
    for col in df.columns:
        if df[col].dtype == object or str(df[col].dtype) in ("str", "string"):
            df[col] = df[col].map(_cell, na_action="ignore")
    assert render(rep) == df.to_csv(index=False, lineterminator="\n")


def test_markdown_table_cells_stay_cells_and_text_stays_text(reports):
    out, which = reports
    md = (out / "parity.md").read_text(encoding="utf-8")
    _no_raw_control(md, "parity.md")
    attention = _tables(md)[-1]
    assert len(attention) == 2 + len(CORPUS) and len(attention[0]) == 5
    for raw in ("<img", "](javascript:", "![", "<", "javascript:alert(1))"):
        assert raw not in md, raw
    names = {row[0].strip() for row in attention[2:]}
    assert {"a\\|b", "&lt;img src=x onerror=alert\\(1\\)&gt;", "\\[x\\]\\(javascript:alert\\(1\\)\\)",
            "\\!\\[i\\]\\(http://x/y.png\\)", "=HYPERLINK\\(\"http://evil/\",\"x\"\\)"} <= names
    assert "\\x1b\\[2J=x.yaml" in md  # the hostile file name, in the why of its row
    if which == "renamed":
        assert {"\\x1b\\]0;pwned\\x07", "\\x00", "\\x9b2J", "\\u202eevil"} <= names


def test_html_embedded_json_survives_control_characters(reports):
    out, which = reports
    page = CliResult(0, "", "", out)
    drill = page.drill  # the page's <script type="application/json">: it parses
    assert set(CORPUS) - {"\t=1"} <= {d["known"] for d in drill.values()}  # reasons are stripped
    if which == "renamed":
        assert set(CORPUS) <= {d["title"].split(": torch vs")[0] for d in drill.values()}
    html = page.html
    start = html.index('id="drill-data">')
    data = html[start:html.index("</script>", start)]
    assert not RAW_CONTROL.search(data) and "<img" not in data


# --- a report with no comparison -----------------------------------------------------------

def test_report_with_no_comparison_has_a_csv_header_and_valid_markdown(tmp_path, monkeypatch):
    from parity import report
    from parity.report import terminal
    from parity.report.csv import COLUMNS

    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    rep = report.Report([], "2025-01-01T00:00:00+00:00", 0.4, "parity run cases/", report.host_info(),
                        interrupted=True)
    written = report.write_all(rep, tmp_path)
    assert {p.name for p in written} == {"parity.csv", "parity.html", "parity.json", "parity.junit.xml", "parity.md"}
    text = (tmp_path / "parity.csv").read_text()
    assert text == ",".join(COLUMNS) + "\n"
    reader = csv.DictReader(io.StringIO(text))
    assert list(reader) == [] and tuple(reader.fieldnames) == COLUMNS
    md = (tmp_path / "parity.md").read_text()
    assert md.startswith("## parity: interrupted")
    assert "no comparisons" in md.lower()
    _tables(md)  # any table there is well-formed
    assert not re.search(r"^\|\s*\|$|^\|$", md, re.MULTILINE)  # no table of no column
    ET.parse(tmp_path / "parity.junit.xml")
    assert terminal.render(rep, tty=False) == "no comparisons\n"


# --- the escape functions ------------------------------------------------------------------

ORDINARY = ["torch vs reference", "1e-3", "café", "数据", "lrn/mindspore-doc-example", "max abs 0.0067",
            "window: torch [c-1, c], mindspore [c-1, c+1]", "a\nb", "x\ty", ""]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_text_is_unchanged(text):
    assert escape.terminal(text) == text
    assert escape.xml_text(text) == text
    if not text.startswith(FORMULA):
        assert escape.csv_cell(text) == text
    if not re.search(r"[\[\]\n\t]", text):
        assert escape.markdown_cell(text) == text


@pytest.mark.parametrize("raw, shown", [
    ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),
    ("\x1b[2J", "\\x1b[2J"),
    ("\x00", "\\x00"),
    ("a\rb", "a\\x0db"),
    ("\x7f", "\\x7f"),
    ("\x9b2J", "\\x9b2J"),
    ("\x80\x9f", "\\x80\\x9f"),
    ("\u202eevil", "\\u202eevil"),
    ("\u202a\u202b\u202c\u202d", "\\u202a\\u202b\\u202c\\u202d"),
    ("\u2066\u2067\u2068\u2069", "\\u2066\\u2067\\u2068\\u2069"),
    ("lone \ud800", "lone \\ud800"),
    ("line\nnext\ttab", "line\nnext\ttab"),
    ("\xa0é\u2028\u200b", "\xa0é\u2028\u200b"),  # other Unicode is kept
])
def test_terminal(raw, shown):
    assert escape.terminal(raw) == shown


@pytest.mark.parametrize("raw, cell", [
    ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
    ("+1", "'+1"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"),
    ("\r=1", "'\\x0d=1"),
    ("a=1", "a=1"),
    ("x\x1b[2J", "x\\x1b[2J"),
    ("\x00", "\\x00"),
    ("two\nlines", "two\nlines"),
])
def test_csv_cell_text(raw, cell):
    assert escape.csv_cell(raw) == cell


@pytest.mark.parametrize("value", [-0.5, -2, 0, 3, 1e-3, float("-inf"), True, None])
def test_csv_cell_leaves_numbers_alone(value):
    assert escape.csv_cell(value) is value


def test_csv_writer_keeps_negative_numbers_numeric():
    import csv as csv_module
    import io

    import numpy as np

    import parity
    from parity.report.csv import _cell, render

    assert _cell("-0.5") == "'-0.5" and _cell(["-1", "2"]) == "'-1 2"
    x = -np.abs(np.random.default_rng(0).standard_normal((1, 3, 2, 2))).astype(np.float32)  # negative outputs
    report = parity.run([parity.case(op="lrn", params={"size": 3}, inputs={"x": x}, name="-neg")],
                        frameworks=["torch"])
    row = next(csv_module.DictReader(io.StringIO(render(report))))
    assert row["case"] == "'-neg" and float(row["worst_a"]) < 0 and row["worst_a"].startswith("-")


@pytest.mark.parametrize("raw, shown", [
    ("\x00", "\\x00"), ("\x01", "\\x01"), ("\x08", "\\x08"), ("\x0b\x0c", "\\x0b\\x0c"),
    ("\x0e\x1b\x1f", "\\x0e\\x1b\\x1f"), ("\ufffe\uffff", "\\ufffe\\uffff"), ("\ud800 \udfff", "\\ud800 \\udfff"),
    ("tab\tnl\ncr\r", "tab\tnl\ncr\r"), ("\x7f\x85\u202e", "\x7f\x85\u202e"), ("<&>\"", "<&>\""),
    ("\U0001f600", "\U0001f600"),
])
def test_xml_text(raw, shown):
    assert escape.xml_text(raw) == shown
    ET.fromstring(ET.tostring(ET.Element("e", a=escape.xml_text(raw)), encoding="unicode"))


@pytest.mark.parametrize("raw, cell", [
    ("a|b", "a\\|b"),
    ("back\\slash", "back\\\\slash"),
    ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert\\(1\\)&gt;"),
    ("a & b", "a &amp; b"),
    ("&lt;", "&amp;lt;"),
    ("[x](javascript:alert(1))", "\\[x\\]\\(javascript:alert\\(1\\)\\)"),
    ("![i](http://x/y.png)", "\\!\\[i\\]\\(http://x/y.png\\)"),
    ("*em* _em_ ~~del~~ `code`", "\\*em\\* \\_em\\_ \\~\\~del\\~\\~ \\`code\\`"),
    ("# heading", "\\# heading"),
    ("not # heading", "not # heading"),
    ("two\nlines\r\nand\rmore\ttab", "two lines and more tab"),
    ("\x1b[2J", "\\x1b\\[2J"),
    ("\x9b\u202e", "\\x9b\\u202e"),
])
def test_markdown_cell(raw, cell):
    assert escape.markdown_cell(raw) == cell
