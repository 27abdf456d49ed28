"""Framework upgrades: stored results, reports from them, baselines, version against version,
regression-case scaffolding, shards, merges and the pytest plugin. Real frameworks throughout."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from parity import store

from conftest import ROOT, run_cli, write_case

LRN = ROOT / "cases" / "lrn"


def verdicts(result) -> list:
    return sorted((r["case"], r["comparison"], r["output"], r["verdict"], r["max_abs"]) for r in
                  result.json["comparisons"] if r["kind"] != "baseline")


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    d = tmp_path_factory.mktemp("stored")
    r = run_cli("run", LRN / "mindspore-doc-example.yaml", LRN / "alexnet-96-channels.yaml", LRN / "even-size.yaml",
                "--results", d / "results", report_dir=d / "reports")
    assert r.code == 0, r.stdout + r.stderr
    r.results = d / "results"
    return r


def test_results_layout_is_the_documented_one(stored):
    root = stored.results
    m = json.loads((root / "manifest.json").read_text())
    assert m["schema"] == "parity-results/3" and m["versions"]["torch"].startswith("2.13")
    names = [c["name"] for c in m["cases"]]
    assert names == ["lrn/alexnet-96-channels", "lrn/even-size", "lrn/mindspore-doc-example"]  # sorted
    doc = m["cases"][2]
    # each case copy is a record of cases.yamls and every array a whole .npy record of
    # arrays.npys, where the manifest says (read here with numpy alone): no file per case or array
    assert sorted(p.name for p in root.iterdir()) == ["arrays.npys", "cases.yamls", "manifest.json"]
    copies = (root / "cases.yamls").read_bytes()
    at = doc["copy"]
    assert at["file"] == "cases.yamls"
    assert copies[at["offset"]:at["offset"] + at["size"]] == (LRN / "mindspore-doc-example.yaml").read_bytes()
    assert sum(c["copy"]["size"] for c in m["cases"]) == len(copies)
    pack = (root / "arrays.npys").read_bytes()

    def record(where):
        assert where["file"] == "arrays.npys"
        return np.load(io.BytesIO(pack[where["offset"]:where["offset"] + where["size"]]), allow_pickle=False)

    x = record(doc["inputs"]["x"])
    assert x.dtype == np.float32 and x.shape == (1, 2, 2, 1)
    runs = [r for r in m["runs"] if r["case"] == doc["name"]]
    assert {r["framework"] for r in runs} == {"torch", "tensorflow", "mindspore"}
    for r in runs:
        y = record(r["outputs"]["y"])
        assert y.shape == (1, 2, 2, 1) and r["version"] and r["spelling"] and m["workers"][r["worker"]]["info"]
    # each worker's facts once, in the workers table: one entry per worker process, named by every run it made
    assert sorted(m["workers"]) == sorted({r["worker"] for r in m["runs"]})
    assert len({json.dumps(w, sort_keys=True) for w in m["workers"].values()}) == len(m["workers"]) < len(m["runs"])
    wheres = [w for c in m["cases"] for w in c["inputs"].values()] + [w for r in m["runs"] for w in r["outputs"].values()]
    records = sorted((w["offset"], w["size"]) for w in wheres)
    assert records[0][0] == 0 and all(a + n == b for (a, n), (b, _) in zip(records, records[1:]))
    assert records[-1][0] + records[-1][1] == len(pack)  # back to back, nothing else in the pack
    failed = next(r for r in m["runs"] if r["case"] == "lrn/alexnet-96-channels" and r["framework"] == "mindspore")
    assert failed["status"] == "ERROR" and failed["outputs"] == {} and "could not execute a primitive" in failed["message"]


def test_report_from_stored_results_runs_nothing_and_matches(stored, tmp_path):
    r = run_cli("report", stored.results, report_dir=tmp_path)
    assert r.code == 0, r.stderr
    assert verdicts(r) == verdicts(stored)
    assert "parity report" in r.json["command"] and (tmp_path / "parity.html").exists()


def test_baseline_catches_a_numerical_change_frameworks_agree_on(stored, tmp_path):
    saved = run_cli("baseline", "save", "before", "--results", stored.results, "--baselines", tmp_path / "bl")
    assert saved.code == 0, saved.stderr
    listed = run_cli("baseline", "list", "--baselines", tmp_path / "bl")
    assert listed.stdout.startswith("before\t") and "torch 2.13" in listed.stdout
    # the same run: every framework matches its own baseline bit for bit
    same = run_cli("run", LRN / "mindspore-doc-example.yaml", "--baseline", "before", "--baselines", tmp_path / "bl",
                   "--no-results", report_dir=tmp_path / "same")
    rows = same.rows("lrn/mindspore-doc-example", kind="baseline")
    assert {r["comparison"] for r in rows} == {"torch vs baseline", "tensorflow vs baseline", "mindspore vs baseline"}
    assert all(r["verdict"] == "PASS" and r["max_abs"] == 0 for r in rows)
    # "an upgrade": every framework now computes something else (alpha 1e-4 -> 1.5e-4) and
    # they still agree with each other; the baseline comparison shows it
    changed = write_case(tmp_path / "c", "changed", """
        name: lrn/mindspore-doc-example
        op: lrn
        params: {size: 2, alpha: 1.5e-4, beta: 0.75, k: 1.0}
        native:
          mindspore: {depth_radius: 1, bias: 1.0, alpha: 1.5e-4, beta: 0.75}
          tensorflow: {depth_radius: 1, bias: 1.0, alpha: 1.5e-4, beta: 0.75}
        inputs:
          x: {values: [[[[2.4], [3.51]], [[1.3], [-4.4]]]], dtype: float32}
        frameworks: [torch, tensorflow, mindspore]
        known:
          - between: [torch, "*"]
            reason: torch's size-2 window differs from depth_radius 1 (see the shipped case)
    """)
    moved = run_cli("run", changed, "--baseline", "before", "--baselines", tmp_path / "bl", "--no-results",
                    report_dir=tmp_path / "moved")
    assert moved.code == 1
    assert moved.row("lrn/mindspore-doc-example", "tensorflow vs mindspore")["verdict"] == "PASS"
    for r in moved.rows(kind="baseline"):
        assert r["verdict"] == "FAIL" and "against its own output in baseline 'before' (same version" in r["message"]


@pytest.fixture(scope="module")
def second_env(tmp_path_factory):
    """A second Python environment: numpy 1.26 (from PyPI) in front of this venv's packages."""
    d = tmp_path_factory.mktemp("venv-numpy1")
    subprocess.run([sys.executable, "-m", "venv", str(d)], check=True)
    py = d / "bin" / "python"
    p = subprocess.run([str(py), "-m", "pip", "install", "-q", "numpy==1.26.4"], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.fail(f"cannot install numpy 1.26.4 for the second environment:\n{p.stderr[-2000:]}")
    site = subprocess.run([str(py), "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True,
                          text=True, check=True).stdout.strip()
    ours = subprocess.run([sys.executable, "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True,
                          text=True, check=True).stdout.strip()
    Path(site, "parity-main-venv.pth").write_text(ours + "\n")
    return py


def test_version_against_version_side_by_side(second_env, tmp_path):
    r = run_cli("run", LRN / "mindspore-doc-exact-mapping.yaml", "--frameworks", "torch",
                "--python", f"torch:numpy1={second_env}", "--no-results", report_dir=tmp_path)
    assert r.code == 0, r.stdout + r.stderr
    runs = r.json["cases"][0]["runs"]
    assert [(x["framework"], x["variant"], x["worker"]["numpy"][:2]) for x in runs] == [("torch", None, "2."),
                                                                                       ("torch", "numpy1", "1.")]
    row = r.row("lrn/mindspore-doc-exact-mapping", "torch vs torch[numpy1]")
    assert row["verdict"] == "PASS" and row["kind"] == "pair"
    assert r.row("lrn/mindspore-doc-exact-mapping", "torch[numpy1] vs expected")["verdict"] == "PASS"


def test_new_case_scaffold_round_trip(stored, tmp_path):
    r = run_cli("new-case", "--from", stored.results, "--case", "lrn/alexnet-96-channels", "--out", tmp_path / "cases")
    assert r.code == 0, r.stderr
    path = next((tmp_path / "cases").rglob("case.yaml"))
    text = path.read_text()
    assert "framework: mindspore" in text and "could not execute a primitive" in text and "versions: {mindspore: 2.10.0}" in text
    # the input was seeded: it stays a seed (not a 37 MB x.npy), drawn again bit for bit
    assert not (path.parent / "x.npy").exists() and "seed: 0" in text and "init: normal" in text
    refused = run_cli("validate", path)
    assert refused.code == 2 and "known[0].reason: is still a placeholder (TODO)" in refused.stderr
    path.write_text(text.replace("reason: 'TODO:", "reason: '"))
    ok = run_cli("run", path, "--no-results", report_dir=tmp_path / "r")
    assert ok.code == 0, ok.stdout + ok.stderr
    row = ok.row("regression/lrn/alexnet-96-channels", "mindspore vs reference")
    assert row["verdict"] == "ERROR" and row["declared"]
    # inputs bit-identical to the stored ones
    assert ok.json["cases"][0]["runs"][0]["inputs_sha256"] == stored.json["cases"][1]["runs"][0]["inputs_sha256"]


def test_shards_and_merge_make_the_whole(stored, tmp_path):
    parts = []
    for k in (1, 2):
        r = run_cli("run", LRN / "mindspore-doc-example.yaml", LRN / "alexnet-96-channels.yaml", LRN / "even-size.yaml",
                    "--shard", f"{k}/2", "--results", tmp_path / f"r{k}", report_dir=tmp_path / f"rep{k}")
        assert r.code == 0
        parts.append({c["name"] for c in r.json["cases"]})
    assert parts[0].isdisjoint(parts[1]) and parts[0] | parts[1] == {c["name"] for c in stored.json["cases"]}
    merged = run_cli("merge", tmp_path / "r1", tmp_path / "r2", "--out", tmp_path / "merged")
    assert merged.code == 0, merged.stderr
    r = run_cli("report", tmp_path / "merged", report_dir=tmp_path / "rep")
    assert verdicts(r) == verdicts(stored)
    twice = run_cli("merge", tmp_path / "r1", tmp_path / "r1", "--out", tmp_path / "twice")
    assert twice.code == 2 and "is also in" in twice.stderr
    assert store.load(tmp_path / "merged").manifest["merged_from"] == [str(tmp_path / "r1"), str(tmp_path / "r2")]


def test_bad_shard_and_missing_baseline_are_exit_2(tmp_path):
    assert "expected K/N" in run_cli("run", "--shard", "3/2").stderr
    r = run_cli("run", LRN / "even-size.yaml", "--baseline", "nope", "--baselines", tmp_path)
    assert r.code == 2 and "no baseline 'nope'" in r.stderr


def test_pytest_plugin_with_xdist_and_junit(tmp_path):
    cmd = [sys.executable, "-m", "pytest", str(LRN / "mindspore-doc-example.yaml"), str(LRN / "even-size.yaml"),
           str(LRN / "alexnet-96-channels.yaml"), "-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider",
           f"--junitxml={tmp_path / 'junit.xml'}", "-q", "-o", "addopts="]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    root = ET.parse(tmp_path / "junit.xml").getroot()
    cases = root.findall(".//testcase")
    names = {c.get("name") for c in cases}
    assert "torch vs mindspore [y]" in names and "mindspore vs reference [y]" in names
    skipped = [c.find("skipped").get("message") for c in cases if c.find("skipped") is not None]
    assert any(m.startswith("KNOWN_GAP (declared)") for m in skipped)
    assert any(m.startswith("UNSUPPORTED") for m in skipped)
    assert any(m.startswith("ERROR (declared)") for m in skipped)  # mindspore on 96 channels
    assert root.find("testsuite").get("failures") == "0"


def test_pytest_plugin_reports_a_failure_with_the_metrics(tmp_path):
    write_case(tmp_path / "cases", "gap", """
        name: gap
        op: lrn
        params: {size: 2}
        native: {mindspore: {depth_radius: 1, bias: 1.0, alpha: 1.0e-4, beta: 0.75}}
        inputs: {x: {shape: [1, 4, 2, 2], dtype: float32}}
        frameworks: [torch, mindspore]
    """)
    p = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "cases"), "-p", "no:cacheprovider", "-q",
                        "-o", "addopts="], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 1
    assert "gap: torch vs mindspore [y]" in p.stdout and "FAIL: max abs" in p.stdout
    assert "1 failed, 2 passed" in p.stdout


def test_case_copies_inside_a_results_store_are_not_collected(tmp_path):
    """`parity run DIR` and the pytest plugin skip the case copies a results store keeps
    (results/cases/<id>/case.yaml): they are records of a run, not cases."""
    (tmp_path / "cases").mkdir()
    shutil.copy(LRN / "mindspore-doc-example.yaml", tmp_path / "cases" / "doc.yaml")
    amd = ROOT / "tests" / "data" / "hosts" / "amd-epyc-avx2" / "results"
    shutil.copytree(amd, tmp_path / "cases" / "old-results")
    listed = run_cli("list", tmp_path / "cases")
    lines = listed.stdout.splitlines()
    assert listed.code == 0 and len(lines) == 1 and lines[0].endswith("doc.yaml"), listed.stdout
    p = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-o",
                        "addopts=", str(tmp_path / "cases")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    collected = [ln for ln in p.stdout.splitlines() if "::" in ln]
    assert collected and all("doc.yaml::" in ln for ln in collected), p.stdout
    # a file named explicitly is still taken
    copy = next((amd / "cases").glob("*/case.yaml"))
    assert run_cli("validate", copy).code == 0


def test_report_against_a_baseline_reads_both_stores_a_case_at_a_time(stored, tmp_path):
    """`parity report STORE --baseline NAME` streams the baseline too (each baseline case
    built when its case is judged): the same verdicts as parity.load, which reads both whole;
    a baseline without some case is an ERROR for that case's runs, unless --baseline-partial."""
    import parity

    bl = tmp_path / "baselines"
    assert run_cli("baseline", "save", "v1", "--results", stored.results, "--baselines", bl).code == 0
    r = run_cli("report", stored.results, "--baseline", "v1", "--baselines", bl, report_dir=tmp_path / "r")
    rows = [x for x in r.json["comparisons"] if x["kind"] == "baseline"]
    assert rows and all(x["verdict"] == "PASS" for x in rows), r.stdout
    whole = parity.load(stored.results, baseline="v1", baselines=bl)
    table = whole.to_pandas()
    assert sorted((x["case"], x["comparison"], x["output"], x["verdict"]) for x in r.json["comparisons"]) == \
        sorted(zip(table["case"], table["comparison"], table["output"], table["verdict"]))
    # a baseline of one case only
    one = tmp_path / "one"
    assert run_cli("run", LRN / "even-size.yaml", "--results", one, "--no-report").code == 0
    assert run_cli("baseline", "save", "v0", "--results", one, "--baselines", bl).code == 0
    r = run_cli("report", stored.results, "--baseline", "v0", "--baselines", bl, report_dir=tmp_path / "r0")
    missing = [x for x in r.json["comparisons"] if x["kind"] == "baseline" and x["verdict"] == "ERROR"]
    assert r.code != 0 and missing and {x["case"] for x in missing} == {"lrn/alexnet-96-channels",
                                                                       "lrn/mindspore-doc-example"}
    r = run_cli("report", stored.results, "--baseline", "v0", "--baselines", bl, "--baseline-partial",
                report_dir=tmp_path / "rp")
    assert not [x for x in r.json["comparisons"] if x["kind"] == "baseline" and x["verdict"] == "ERROR"]
