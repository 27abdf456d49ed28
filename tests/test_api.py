"""The Python API (parity.case / load_cases / run / load, Report) and the one pipeline behind
every front end: the command line's verdicts are the API's. Real frameworks throughout."""

from __future__ import annotations

import time

import json
import re
import subprocess
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import pandas as pd
import pytest

import parity
from parity.errors import CaseErrors
from parity.report.csv import COLUMNS

from conftest import ROOT, run_cli, write_case

LRN = ROOT / "cases" / "lrn"


def _x(shape=(2, 8, 5, 5), seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.fixture(scope="module")
def ran():
    case = parity.case(op="lrn", params={"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}, inputs={"x": _x()},
                       name="api/lrn")
    return case, parity.run([case], frameworks=["torch", "tensorflow", "mindspore"])


def test_a_case_built_in_code_runs_everywhere_and_its_report_is_a_dataframe(ran):
    case, report = ran
    assert report.exit_code == 0 and not report.interrupted
    df = report.to_pandas()
    assert list(df.columns) == list(COLUMNS)
    assert set(df["comparison"]) == {"torch vs reference", "tensorflow vs reference", "mindspore vs reference",
                                     "torch vs tensorflow", "torch vs mindspore", "tensorflow vs mindspore"}
    assert (df["verdict"] == "PASS").all() and df["max_abs"].dtype == np.float64
    assert str(df["mismatches"].dtype) == "Int64" and isinstance(df["verdict"].dtype, pd.CategoricalDtype)
    # the arrays: each side's, and the float64 reference (computed here, the case's form)
    y = report.outputs("api/lrn", "torch")["y"]
    ref = report.reference("api/lrn")["y"]
    assert y.dtype == np.float32 and ref.dtype == np.float64 and y.shape == (2, 8, 5, 5)
    row = df[df["comparison"] == "torch vs reference"].iloc[0]
    assert np.max(np.abs(y.astype(np.float64) - ref)) == row["max_abs"]
    tf = report.outputs("api/lrn", "tensorflow")["y"]
    assert np.max(np.abs(y.astype(np.float64) - tf)) == df[df["comparison"] == "torch vs tensorflow"].iloc[0]["max_abs"]
    # the input given is the input used, bit for bit
    assert np.array_equal(report.inputs("api/lrn")["x"], _x())


def test_summary_and_matrix_are_pandas_tables(ran):
    _, report = ran
    summary = report.summary(by=("op", "dtype"))
    assert summary.loc[("lrn", "float32"), "PASS"] == 6 and summary.loc[("lrn", "float32"), "total"] == 6
    m = report.matrix("api/lrn")
    assert list(m.index) == ["torch", "tensorflow", "mindspore"]
    assert list(m.columns) == ["torch", "tensorflow", "mindspore", "reference"]
    df = report.to_pandas()
    pair = df[df["comparison"] == "tensorflow vs mindspore"].iloc[0]["max_abs"]
    assert m.loc["tensorflow", "mindspore"] == m.loc["mindspore", "tensorflow"] == pair
    assert np.isnan(m.loc["torch", "torch"])
    assert (report.matrix("api/lrn", value="verdict").loc["torch", "reference"]) == "PASS"


def test_case_in_code_is_validated_like_a_file(tmp_path):
    path = write_case(tmp_path, "bad", """
        name: bad
        op: lrn
        params: {size: 3}
        inputs: {x: {shape: [1, 3, 2, 2], dtype: float64, seed: -1}}
        frameworks: [torch, paddle]
        timeout: -1
        colour: blue
    """)
    with pytest.raises(CaseErrors) as from_file:
        parity.load_cases([path])
    with pytest.raises(CaseErrors) as in_code:
        parity.case(op="lrn", name="bad", params={"size": 3}, colour="blue", timeout=-1,
                    inputs={"x": {"shape": [1, 3, 2, 2], "dtype": "float64", "seed": -1}}, frameworks=["torch", "paddle"])

    def fields(exc):
        return sorted((e.field, e.message) for e in exc.value.errors)

    assert fields(in_code) == fields(from_file) and len(fields(in_code)) >= 3, fields(in_code)
    assert all(e.line is None for e in in_code.value.errors)
    assert str(in_code.value.errors[0]).startswith(str(Path.cwd() / "<parity.case>") + ": ")
    with pytest.raises(CaseErrors, match="inputs.x.dtype: must be one of"):
        parity.case(op="lrn", params={"size": 3}, inputs={"x": _x().astype(np.int32)})


def test_run_with_a_store_reads_arrays_back_and_load_rebuilds_the_same_report(tmp_path):
    bf16 = _x((1, 4, 3, 3), seed=3).astype(ml_dtypes.bfloat16)
    cases = [parity.case(op="lrn", params={"size": 3}, inputs={"x": _x((1, 4, 3, 3))}, name="api/stored"),
             parity.case(op="lrn", params={"size": 3}, inputs={"x": bf16}, name="api/bf16", frameworks=["tensorflow"]),
             *parity.load_cases([LRN / "mindspore-doc-example.yaml"])]
    report = parity.run(cases, frameworks=["torch", "tensorflow"], results=tmp_path / "res")
    assert report.results_dir == tmp_path / "res"
    # not kept in memory: read back from the store
    assert report.cases[0].results[0].outputs == {}
    assert report.outputs("api/stored", "torch")["y"].shape == (1, 4, 3, 3)
    # the store holds the in-code cases as YAML copies with their arrays; it loads on its own
    again = parity.load(tmp_path / "res")
    cols = ["case", "comparison", "output", "verdict", "max_abs"]
    key = lambda df: df[cols].sort_values(cols[:3]).reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(key(again.to_pandas()), key(report.to_pandas()))
    assert np.array_equal(again.inputs("api/bf16")["x"].astype(np.float32), bf16.astype(np.float32))
    assert again.inputs("api/bf16")["x"].dtype == bf16.dtype
    # and the command line reads the same store
    r = run_cli("report", tmp_path / "res", report_dir=tmp_path / "r")
    assert r.code == 0, r.stderr
    assert sorted((x["case"], x["comparison"], x["output"], x["verdict"]) for x in r.json["comparisons"]) == \
        sorted(map(tuple, again.to_pandas()[cols[:4]].astype(str).values.tolist()))


def test_the_command_line_is_a_front_end_of_the_api(tmp_path):
    """parity run and parity.run give the same verdicts and numbers for the same cases."""
    files = [LRN / "mindspore-doc-example.yaml", LRN / "even-size.yaml", ROOT / "cases" / "batch_norm" / "large-mean.yaml"]
    cli = run_cli("run", *files, report_dir=tmp_path / "cli")
    api = parity.run(files)
    assert cli.code == api.exit_code == 0
    cols = ["case", "comparison", "output", "verdict", "max_abs"]
    from_cli = sorted((x["case"], x["comparison"], x["output"], x["verdict"], x["max_abs"]) for x in cli.json["comparisons"])
    from_api = sorted(tuple(r) for r in api.to_pandas()[cols].astype(object).where(
        api.to_pandas()[cols].notna(), None).values.tolist())
    assert from_cli == from_api
    # and the CSV the command line wrote is Report.to_pandas() as CSV
    csv = pd.read_csv(tmp_path / "cli" / "parity.csv")
    assert list(csv.columns) == list(COLUMNS) and len(csv) == len(api.rows)


def test_load_under_todays_cases_is_parity_report_cases(tmp_path):
    amd = ROOT / "tests" / "data" / "hosts" / "amd-epyc-avx2" / "results"
    report = parity.load(amd, cases=ROOT / "cases", quiet=True)
    assert report.exit_code == 0 and report.manifest["host"]["cpu"] == "AMD EPYC"
    row = report.to_pandas().query("case == 'batch_norm/large-mean' and comparison == 'tensorflow vs reference' "
                                   "and output == 'y'").iloc[0]
    assert row["verdict"] == "KNOWN_GAP" and row["max_abs"] == pytest.approx(0.0106467, rel=1e-5)


def test_readme_python_example_runs_as_written(tmp_path):
    """The README's notebook example, executed as it stands (cases/ from this repository)."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Python API.*?```python\n(.*?)```", text, re.S).group(1)
    (tmp_path / "cases").symlink_to(ROOT / "cases")
    script = block + "\nimport json\nprint(json.dumps({'exit': report.exit_code, 'again': again.exit_code, " \
                     "'rows': df[['comparison', 'output', 'max_abs', 'max_ulp', 'verdict']].astype(str).values.tolist()}))\n"
    p = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["exit"] == 0 and out["again"] == 0
    # the table the README shows is the table it computes
    shown = re.findall(r"^# \d+\s+(.+?)\s+(y)\s+(\S+)\s+(\S+)\s+(\w+)$", block, re.M)
    assert len(shown) == 3
    for (comparison, output, max_abs, ulp, verdict), row in zip(shown, out["rows"]):
        assert [comparison.strip(), output, verdict] == [row[0], row[1], row[4]]
        assert float(max_abs) == pytest.approx(float(row[2]), rel=1e-6) and float(ulp) == float(row[3])
    assert (tmp_path / "reports" / "parity.html").is_file() and (tmp_path / "my-results" / "manifest.json").is_file()


def test_no_thread_runs_ahead_beyond_the_memory_window(monkeypatch):
    """runner.WINDOW_BYTES bounds what the open cases hold: with a budget of one byte only the
    oldest unfinished case may begin, so the workers and the reference thread go in lockstep,
    and every case is still judged exactly as without the window."""
    from parity import runner

    cases = [parity.case("lrn", params={"size": 3}, inputs={"x": _x((1, 4, 3, 3), seed=i)}, name=f"w/{i}")
             for i in range(6)]
    free = parity.run(cases, frameworks=["torch", "tensorflow"])
    spans = []
    enter = runner._Window.enter

    def recording(self, i, stop):
        enter(self, i, stop)
        spans.append(i - self.oldest)

    monkeypatch.setattr(runner, "WINDOW_BYTES", 1)
    monkeypatch.setattr(runner._Window, "enter", recording)
    tight = parity.run(cases, frameworks=["torch", "tensorflow"])
    assert len(spans) == 6 * 3 and max(spans) == 0  # two workers and the reference thread, never ahead
    columns = ["case", "comparison", "output", "verdict", "max_abs"]
    pd.testing.assert_frame_equal(tight.to_pandas()[columns], free.to_pandas()[columns])


def test_the_window_lets_small_cases_run_ahead_and_large_ones_not():
    from parity import runner

    small = [parity.case("lrn", params={"size": 3}, inputs={"x": {"shape": [2, 8, 6, 6], "dtype": "float32"}},
                         name=f"s/{i}") for i in range(1000)]
    w = runner._Window([runner._case_bytes(c.elements, 3) for c in small], runner.WINDOW_BYTES)
    assert w._may(999, w.budget)  # a thousand small cases fit: nobody waits
    large = [parity.case("lrn", params={"size": 3}, inputs={"x": {"shape": [32, 96, 55, 55], "dtype": "float32"}},
                         name=f"l/{i}") for i in range(4)]
    w = runner._Window([runner._case_bytes(c.elements, 3) for c in large], runner.WINDOW_BYTES)
    assert w._may(0, w.budget) and not w._may(1, w.budget)  # AlexNet-sized: one case open at a time
    w.finish(0)
    assert w._may(1, w.budget) and not w._may(2, w.budget)


def test_a_thread_the_window_stopped_goes_on_when_half_of_it_is_free():
    """A thread that had to wait runs ahead again in a burst, not case by case."""
    import threading

    from parity import runner

    cases = [parity.case("lrn", params={"size": 3}, inputs={"x": {"shape": [2, 8, 6, 6], "dtype": "float32"}},
                         name=f"h/{i}") for i in range(8)]
    each = runner._case_bytes(cases[0].elements, 3)
    w = runner._Window([each] * len(cases), 4 * each)  # four open cases fit
    assert w._may(3, w.budget) and not w._may(4, w.budget)
    woken = []

    class Counting(threading.Condition):
        def notify_all(self):
            woken.append(w.oldest)
            super().notify_all()

    w.cond = Counting()
    entered = threading.Event()
    t = threading.Thread(target=lambda: (w.enter(4, threading.Event()), entered.set()), daemon=True)
    t.start()
    while not w.waiting:
        time.sleep(0.01)
    w.finish(0)  # cases 1..4 would fit, but a stopped thread waits for half the budget
    assert not entered.wait(0.6)
    w.finish(1)
    w.finish(2)  # cases 3..4: half the budget
    assert entered.wait(5)
    t.join(5)
    assert woken == [3]  # woken once, when it could go on (each finish woke it before)


def _suite(n=6):
    return [parity.case("lrn", params={"size": 3 + 2 * (i % 2)}, inputs={"x": _x((2, 4 + i, 3, 3), seed=i)},
                        name=f"stream/{i}") for i in range(n)]


def test_a_run_that_keeps_no_case_hands_each_on_in_order_and_its_files_are_the_kept_reports(tmp_path):
    """parity.run(on_case=..., keep_cases=False), as `parity run` does: every case reaches
    on_case once, in suite order, however the workers finished; the Report keeps none of them
    but still has its counts and exit status; the report files written case by case are the
    files of the kept report (CSV byte for byte: it has no timing)."""
    from parity import report

    cases = _suite()
    kept = parity.run(cases, frameworks=["torch", "tensorflow"])
    seen = []
    writer = report.writer(tmp_path / "streamed")

    def on_case(c):
        seen.append(c.case.name)
        writer.add(c)

    light = parity.run(cases, frameworks=["torch", "tensorflow"], on_case=on_case, keep_cases=False)
    streamed = writer.close(light)
    assert seen == [c.name for c in cases]
    assert light.cases == [] and light.counts() == kept.counts() and light.exit_code == kept.exit_code == 0
    assert light.tally.rows == len(kept.rows) > 0 and set(light.versions()) == set(kept.versions())
    with pytest.raises(LookupError, match="kept none of its 6 cases"):
        light.to_pandas()
    written = kept.write(tmp_path / "kept")
    assert [p.name for p in streamed] == [p.name for p in written]
    assert (tmp_path / "streamed" / "parity.csv").read_bytes() == (tmp_path / "kept" / "parity.csv").read_bytes()
    one, two = (json.loads((tmp_path / d / "parity.json").read_text()) for d in ("streamed", "kept"))
    assert [r["verdict"] for r in one["comparisons"]] == [r["verdict"] for r in two["comparisons"]]
    assert one["counts"] == two["counts"] and [c["name"] for c in one["cases"]] == [c.name for c in cases]
    assert not [p for p in (tmp_path / "streamed").iterdir() if p.name.startswith(".")]


def test_a_report_that_cannot_be_written_loses_no_result(tmp_path, monkeypatch):
    """A full disk while a case's report parts are written stops the report files, not the
    run: every case is judged and stored, close() raises the error, and the previous report
    files stay as they were, with no temporary file left."""
    from parity import report
    from parity.report import junit

    cases = _suite(4)
    out = tmp_path / "reports"
    parity.run(cases[:1], frameworks=["torch"]).write(out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    calls = []

    def full(self, c, tally):
        calls.append(c.case.name)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(junit.Sink, "add", full)
    writer = report.writer(out)
    rep = parity.run(cases, frameworks=["torch"], results=tmp_path / "results", on_case=writer.add, keep_cases=False)
    assert calls == ["stream/0"]  # the writer stopped at the first failure
    with pytest.raises(OSError) as exc:
        writer.close(rep)
    assert exc.value.errno == 28
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert rep.exit_code == 0 and rep.tally.cases == 4
    assert [c.case.name for c in parity.load(tmp_path / "results").cases] == [c.name for c in cases]


def test_a_store_loaded_one_case_at_a_time_gives_the_same_verdicts(tmp_path):
    """parity.load(keep_cases=False): each case reaches on_case with its arrays read for it
    and not kept; the verdicts and counts are those of the Report that keeps every case."""
    cases = _suite(4)
    parity.run(cases, frameworks=["torch", "tensorflow"], results=tmp_path / "r")
    kept = parity.load(tmp_path / "r")
    seen = []
    light = parity.load(tmp_path / "r", on_case=lambda c: seen.append((c.case.name, [r.verdict for r in c.rows],
                                                                        c.arrays)), keep_cases=False)
    assert [name for name, _, _ in seen] == [c.case.name for c in kept.cases] == [c.name for c in cases]
    assert [v for _, v, _ in seen] == [[r.verdict for r in c.rows] for c in kept.cases]
    assert all(arrays is None for _, _, arrays in seen)
    assert light.counts() == kept.counts() and light.exit_code == kept.exit_code and light.cases == []
