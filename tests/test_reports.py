"""CSV, JSON, JUnit XML and Markdown reports, and the progress display."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET

import pytest

from parity.report.terminal import Progress

from conftest import ROOT, cli_in_process, run_cli, write_case


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("reports")
    write_case(d / "cases", "fail", """
        name: undeclared-gap
        op: lrn
        params: {size: 2}
        native: {mindspore: {depth_radius: 1, bias: 1.0, alpha: 1.0e-4, beta: 0.75}}
        inputs: {x: {shape: [1, 4, 2, 2], dtype: float32}}
        frameworks: [torch, mindspore]
    """)
    summary = d / "step-summary.md"
    summary.write_text("earlier step\n")
    r = run_cli("run", ROOT / "cases/lrn/mindspore-doc-example.yaml", ROOT / "cases/lrn/even-size.yaml", d / "cases",
                report_dir=d / "out", env={"GITHUB_STEP_SUMMARY": str(summary)})
    r.summary = summary
    return r


def test_all_reports_are_written(run):
    assert run.code == 1
    for name in ("parity.html", "parity.csv", "parity.json", "parity.junit.xml", "parity.md"):
        assert (run.report_dir / name).stat().st_size > 0, name


def test_junit_has_one_testcase_per_comparison(run):
    root = ET.parse(run.report_dir / "parity.junit.xml").getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == len(run.json["comparisons"]) == int(root.get("tests"))
    failures = root.findall(".//testcase/failure")
    assert len(failures) == int(root.get("failures")) == 1
    assert failures[0].get("type") == "FAIL"
    skipped = {c.get("name"): c.find("skipped").get("message") for c in cases if c.find("skipped") is not None}
    gap = skipped["lrn/mindspore-doc-example: torch vs mindspore [y]"]
    assert gap.startswith("KNOWN_GAP") and "(declared)" in gap
    assert any(m.startswith("UNSUPPORTED") for m in skipped.values())
    props = {p.get("name"): p.get("value") for p in cases[0].find("properties")}
    assert {"verdict", "max_abs", "max_ulp", "atol"} <= set(props)


def test_markdown_summary_and_github_step_summary(run):
    md = (run.report_dir / "parity.md").read_text()
    assert md.startswith("## parity: failed")
    assert "| undeclared-gap | torch vs mindspore [y] | FAIL |" in md
    assert "declared gaps (2 semantic, 0 numeric)" in md
    assert run.summary.read_text() == "earlier step\n" + md + "\n"


def test_json_is_strict_and_documented_fields_are_there(run):
    text = (run.report_dir / "parity.json").read_text()
    assert "Infinity" not in text and "NaN" not in text
    doc = json.loads(text)
    assert doc["schema"] == "parity-report/1"
    assert set(doc) >= {"started", "seconds", "command", "interrupted", "exit_code", "host", "versions", "counts",
                        "cases", "comparisons"}
    row = next(r for r in doc["comparisons"] if r["verdict"] == "FAIL")
    assert set(row["details"]) == {"histogram", "worst", "per_channel_max_abs"}
    assert row["details"]["worst"][0]["abs"] == row["max_abs"]
    assert len(row["details"]["per_channel_max_abs"]) == 4
    assert sum(b["count"] for b in row["details"]["histogram"]) == row["elements"]


def test_progress_bar_on_a_terminal_and_lines_elsewhere():
    class R:
        def __init__(self, i):
            self.case = type("C", (), {"name": f"case-{i}"})()
            self.framework, self.device, self.dtype, self.status, self.seconds = "torch", "cpu", "float32", "OK", 0.5

    from parity.runner import Plan

    out = io.StringIO()
    p = Progress(0, out, bar=False)
    p.start(Plan(3, 2, lambda case: 2 if case.name == "case-1" else 1))  # case-1 has two runs: one line when both are in
    p.update(R(1))
    assert out.getvalue() == ""
    p.update(R(1))
    p.update(R(2))
    assert out.getvalue() == "[1/2] case-1: 2 OK (1.00 s)\n[2/2] case-2: 1 OK (0.50 s)\n"
    out = io.StringIO()
    p = Progress(2, out, bar=True, width=4)
    p.update(R(1))
    assert out.getvalue().startswith("\r[##..] 1/2  case-1")
    p.update(R(2))
    assert "[####] 2/2  case-2" in out.getvalue() and out.getvalue().endswith("\n")


def _files(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


def test_reports_written_in_two_processes_or_one_are_the_same_files(run, tmp_path):
    """write_all's forked writer (large reports) changes nothing in the files."""
    import parity
    from parity import report

    rep = parity.load(run.report_dir / "results")
    one = report.write_all(rep, tmp_path / "one", parallel=False)
    two = report.write_all(rep, tmp_path / "two", parallel=True)
    assert [p.name for p in one] == [p.name for p in two] == ["parity.csv", "parity.html", "parity.json",
                                                             "parity.junit.xml", "parity.md"]
    assert _files(tmp_path / "one") == _files(tmp_path / "two")
    assert len(rep.rows) > 2


@pytest.mark.parametrize("failure, raised", [
    (OSError(28, "No space left on device"), OSError), (ValueError("a renderer's bug"), RuntimeError)])
def test_a_format_that_fails_in_the_forked_writer_fails_the_set(run, tmp_path, monkeypatch, failure, raised):
    """The child's failure comes back as the parent's (a full disk as the same OSError, for the
    CLI's one-line message); the previous set stays whole and no temporary file is left."""
    import parity
    from parity import report
    from parity.report import csv

    assert "csv" in report.CHILD_FORMATS  # written by the forked writer
    rep = parity.load(run.report_dir / "results")
    out = tmp_path / "out"
    report.write_all(rep, out, parallel=False)
    before = _files(out)

    def broken(self, out, _report, _tally):
        out.write("case,")
        raise failure

    monkeypatch.setattr(csv.Sink, "finish", broken)
    with pytest.raises(raised) as exc:
        report.write_all(rep, out, parallel=True)
    if raised is OSError:
        assert exc.value.errno == 28
    else:
        assert "parity.csv" in str(exc.value) and "a renderer's bug" in str(exc.value)
    assert _files(out) == before and sorted(p.name for p in out.iterdir()) == sorted(before)


def test_a_store_judged_in_two_processes_or_one_writes_the_same_files(run, tmp_path):
    """A store read a case at a time (api.Stored(lazy=True): parity.store.Streamed) and judged
    in each process that writes (write_set's cases() is called in the forked writer too,
    which shares the manifest's file), or in one: the same files, but for the time each
    process measured; the same as `parity report` writes (the parent judges, a forked writer
    writes every file); and the verdicts of the Report that kept them."""
    import re

    import parity
    from parity import api, report

    results = run.report_dir / "results"
    kept = parity.load(results)
    out = {}

    def texts(files):
        return {p.name: re.sub(r'(time="|"seconds":|, |&middot; )[0-9.e-]+( s)?', "T", p.read_text()) for p in files}

    for parallel in (False, True):
        stored = api.Stored(results, lazy=True)
        # the store's entries are not held: only where each one is in the manifest
        assert stored.streamed and len(stored.src) == len(kept.cases)
        assert "cases" not in stored.src.manifest and "runs" not in stored.src.manifest
        rep, files = report.write_set(tmp_path / str(parallel), lambda: stored.judged(keep_arrays=False),
                                      lambda tally, seconds: stored.report([], seconds, tally),
                                      size=2 * stored.size(), parallel=parallel)
        assert rep.cases == [] and rep.counts() == kept.counts() and rep.exit_code == kept.exit_code
        out[parallel] = texts(files)
    assert out[False] == out[True]
    r = run_cli("report", results, report_dir=tmp_path / "cli")
    assert r.code == kept.exit_code, r.stderr
    assert texts(sorted((tmp_path / "cli").glob("parity.*"))) == out[True]
    rows = json.loads((tmp_path / "True" / "parity.json").read_text())["comparisons"]
    assert [r["verdict"] for r in rows] == [r.verdict for r in kept.rows]


def _tiny_case(directory):
    """A case file of one small torch LRN run."""
    return write_case(directory, "tiny", """
        name: tiny
        op: lrn
        params: {size: 3}
        inputs: {x: {shape: [1, 4, 2, 2], dtype: float32}}
        frameworks: [torch]
    """)


def _full_disk(self, c, tally):
    """A report sink's add on a full disk."""
    raise OSError(28, "No space left on device")


def test_parity_run_whose_reports_cannot_be_written_says_so_and_keeps_its_results(tmp_path, monkeypatch, capsys):
    """The CLI as a user meets a full disk in the report directory: one line that says it,
    exit status 2, the results store whole (and named), no report file and no temporary
    file left."""
    import parity
    from parity.report import junit

    case = _tiny_case(tmp_path / "cases")

    monkeypatch.setattr(junit.Sink, "add", _full_disk)
    code = cli_in_process("run", case, "-q", "--report-dir", tmp_path / "reports")
    out, err = capsys.readouterr()
    assert code == 2 and "No space left on device" in err and "Traceback" not in err
    assert f"results: {tmp_path / 'reports' / 'results'} (written; the report files were not)" in out
    assert parity.load(tmp_path / "reports" / "results").counts()["PASS"] == 1
    left = sorted(p.name for p in (tmp_path / "reports").iterdir())
    assert left == ["logs", "results"] or left == ["results"], left


def test_parity_report_whose_files_cannot_be_written_says_so_and_keeps_the_previous_ones(tmp_path, monkeypatch,
                                                                                         capsys):
    """`parity report` hands its judged cases to the same forked writer as `parity run`: a full
    disk there is one line, exit status 2, and the previous report files stay as they were,
    with nothing staged left beside them."""
    from parity.report import junit

    case = _tiny_case(tmp_path / "cases")
    assert cli_in_process("run", case, "-q", "--results", tmp_path / "store", "--no-report") == 0
    reports = tmp_path / "reports"
    assert cli_in_process("report", tmp_path / "store", "--report-dir", reports) == 0
    before = {p.name: p.read_bytes() for p in reports.iterdir()}
    capsys.readouterr()

    monkeypatch.setattr(junit.Sink, "add", _full_disk)
    code = cli_in_process("report", tmp_path / "store", "--report-dir", reports)
    _, err = capsys.readouterr()
    assert code == 2 and "No space left on device" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in reports.iterdir()} == before


def test_the_background_writer_writes_the_files_the_parent_would(run, tmp_path):
    """parity run's report files come from a forked writer fed the judged cases through a pipe
    (parity.report.background): the same bytes as the in-process writer fed the same cases."""
    import parity
    from parity import report
    from parity.report import background

    import os
    import signal

    rep = parity.load(run.report_dir / "results")
    here, there = report.writer(tmp_path / "here"), background.writer(tmp_path / "there", background=True)
    assert isinstance(there, background.Background)
    for c in rep.cases:
        here.add(c)
        there.add(c)
        os.kill(there.pid, signal.SIGINT)  # a Ctrl-C reaches the whole process group: the writer ignores it
    assert [p.name for p in here.close(rep)] == [p.name for p in there.close(rep)]
    assert _files(tmp_path / "here") == _files(tmp_path / "there")
    assert there.pid is None  # waited for


def test_a_background_writer_that_dies_fails_the_set_and_leaves_the_old_one(run, tmp_path):
    import os
    import signal

    import parity
    from parity.report import background

    rep = parity.load(run.report_dir / "results")
    out = tmp_path / "out"
    parity.report.write_all(rep, out)
    before = _files(out)
    w = background.writer(out, background=True)
    w.add(rep.cases[0])
    os.kill(w.pid, signal.SIGKILL)
    for c in rep.cases:
        w.add(c)  # a broken pipe is kept, not raised: the run goes on
    with pytest.raises(RuntimeError, match="the report writer process stopped .*the report files were not written"):
        w.close(rep)
    assert _files(out) == before and sorted(p.name for p in out.iterdir()) == sorted(before)  # nothing staged left


def test_a_background_writer_leaves_with_its_parent_and_leaves_nothing(run, tmp_path):
    """The parent killed mid-run (kill -9): the writer sees its pipe close, removes what it
    staged (spools are unnamed files) and exits."""
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    script = (f"import os, sys, parity\nfrom parity.report import background\n"
              f"rep = parity.load({str(run.report_dir / 'results')!r})\n"
              f"w = background.writer({str(out)!r}, background=True)\n"
              f"for c in rep.cases: w.add(c)\n"
              f"print(w.pid, flush=True)\nos.kill(os.getpid(), 9)\n")
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == -9, p.stderr
    pid = int(p.stdout.split()[0])
    deadline = time.monotonic() + 10
    while not _gone(pid):
        assert time.monotonic() < deadline, f"the writer {pid} outlived its parent"
        time.sleep(0.1)
    assert sorted(p.name for p in out.iterdir()) == []


def _gone(pid: int) -> bool:
    """Whether process ``pid`` has exited (a zombie that init has not reaped yet counts)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1].startswith("Z")
    except (FileNotFoundError, ProcessLookupError):
        return True


def test_a_case_the_background_writer_cannot_take_fails_the_set_not_the_run(run, tmp_path):
    """An object pickle cannot carry (here a lambda in a case's notes) is kept and raised by
    close, as a failed add of the in-process writer is: the run itself goes on."""
    import parity
    from parity.report import background

    rep = parity.load(run.report_dir / "results")
    out = tmp_path / "out"
    parity.report.write_all(rep, out)
    before = _files(out)
    w = background.writer(out, background=True)
    rep.cases[0].rows[0].notes.append(lambda: None)
    for c in rep.cases:
        w.add(c)  # not raised here
    with pytest.raises(RuntimeError, match="a case could not be handed to the report writer"):
        w.close(rep)
    assert _files(out) == before and sorted(p.name for p in out.iterdir()) == sorted(before)
    assert w.pid is None


def test_without_a_second_process_the_parent_writes_the_reports(run, tmp_path, monkeypatch):
    """fork refused (EAGAIN, as under a process limit): a note, and the in-process writer."""
    import os

    import parity
    from parity.report import background, stream

    def refused():
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", refused)
    w = background.writer(tmp_path / "out", background=True)
    assert isinstance(w, stream.Writer)
    rep = parity.load(run.report_dir / "results")
    for c in rep.cases:
        w.add(c)
    assert [p.name for p in w.close(rep)][0] == "parity.csv"
    assert (tmp_path / "out" / "parity.html").stat().st_size > 0


def test_the_report_writer_is_handed_cases_through_a_megabyte_pipe(tmp_path):
    """The parent of `parity run` waits for its report writer only when the writer is a
    megabyte of cases behind (about 180 small ones), not 64 KiB: at 10,000 small cases on a
    2-core machine, the parent was blocked 11.4 s handing cases over with the default pipe,
    5.0 s with this one. Where the OS caps pipes lower, the cap."""
    import fcntl
    from pathlib import Path

    from parity import fsutil
    from parity.report import background

    w = background.writer(tmp_path / "out", background=True)
    try:
        cap = int(Path("/proc/sys/fs/pipe-max-size").read_text())
        assert fcntl.fcntl(w.fd, fcntl.F_GETPIPE_SZ) >= min(fsutil.PIPE_WANTED, cap)
    finally:
        w.abandon()
    assert not (tmp_path / "out" / "parity.html").exists()


def test_the_formats_share_a_cases_records_and_write_what_each_writes_alone(run, tmp_path, monkeypatch):
    """stream.Writer.add makes each row's record once for the CSV, JSON and JUnit
    (report.records); each file is the text its format makes on its own, and outside
    Writer.add nothing is shared."""
    import parity
    from parity import report
    from parity.report import csv, junit

    rep = parity.load(run.report_dir / "results")
    made = []
    real = report.record
    monkeypatch.setattr(report, "record", lambda row: made.append(row) or real(row))
    w = report.writer(tmp_path / "set", ["csv", "json", "junit"])
    for c in rep.cases:
        w.add(c)
    w.close(rep)
    assert len(made) == len(rep.rows) > 2
    monkeypatch.setattr(report, "record", real)
    files = _files(tmp_path / "set")
    assert files["parity.csv"].decode() == csv.render(rep)
    assert files["parity.junit.xml"].decode() == junit.render(rep)
    assert json.loads(files["parity.json"])["comparisons"] == json.loads(report.to_json(rep))["comparisons"]
    c = rep.cases[0]
    assert report.records(c) is not report.records(c) and report.records(c) == report.records(c)


def test_two_threads_writing_reports_share_no_records(run, tmp_path):
    """The records a case's formats share (report.records) are the thread's own: two writers
    in two threads at once write what each writes alone."""
    import threading

    import parity
    from parity import report

    rep = parity.load(run.report_dir / "results")
    alone = report.writer(tmp_path / "alone", ["csv", "junit"])
    for c in rep.cases:
        alone.add(c)
    alone.close(rep)

    def write(name, cases):
        w = report.writer(tmp_path / name, ["csv", "junit"])
        for _ in range(20):  # interleave with the other thread as much as the GIL lets them
            for c in cases:
                w.add(c)
        w.close(rep)

    threads = [threading.Thread(target=write, args=(n, rep.cases)) for n in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name in ("one", "two"):
        csv_text = (tmp_path / name / "parity.csv").read_text().splitlines()
        header, *rows = (tmp_path / "alone" / "parity.csv").read_text().splitlines()
        assert csv_text == [header] + rows * 20
