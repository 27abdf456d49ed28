"""Results stores under faults and hostile input: written whole or not at all, recovered after
a run that died, locked against a second writer, baselines never overwritten by accident,
and every store read as untrusted input (the damaged-store corpus). Real runs throughout."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, run_cli, write_case

DOC = ROOT / "cases" / "lrn" / "mindspore-doc-example.yaml"


def manifest(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text())


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A small real store (torch and tensorflow, two cases)."""
    d = tmp_path_factory.mktemp("good")
    r = run_cli("run", DOC, ROOT / "cases" / "lrn" / "rank-5.yaml", "--frameworks", "torch,tensorflow",
                "--results", d / "results", "--no-report")
    assert r.code == 0, r.stdout + r.stderr
    return d / "results"


#: a store of schema 1 (each array a file of its own, as stores written before 2026-12-02):
#: read as it always was, and refused as it always was when damaged
OLD = ROOT / "tests" / "data" / "hosts" / "amd-epyc-avx512" / "results"


def _outputs(m: dict) -> list[tuple[int, str, object]]:
    return [(i, k, p) for i, run in enumerate(m["runs"]) for k, p in run["outputs"].items()]


# --- the damaged-store corpus: each store gets one problem; each is one clear error, exit 2 ----------

def _edit_manifest(fn):
    """A damage that edits the manifest in place (fn's return value is ignored)."""
    def damage(root: Path):
        m = manifest(root)
        fn(m, root)
        (root / "manifest.json").write_text(json.dumps(m))
    return damage


def _manifest_as_list(root: Path):
    (root / "manifest.json").write_text(json.dumps([manifest(root)]))


def _first_output(root: Path) -> Path:
    """The file of the first output of a schema-1 store."""
    i, k, p = _outputs(manifest(root))[0]
    return root / p


def _set_output(value):
    def fn(m, root):
        m["runs"][0]["outputs"]["y"] = value
    return _edit_manifest(fn)


def _symlink_out(root: Path):
    target = root.parent / "outside-secret.npy"
    np.save(target, np.zeros((1, 2, 2, 1), np.float32))
    p = _first_output(root)
    p.unlink()
    p.symlink_to(target)


def _write(path_fn, data: bytes):
    def damage(root: Path):
        path_fn(root).write_bytes(data)
    return damage


def _truncate(root: Path):
    p = _first_output(root)
    p.write_bytes(p.read_bytes()[:-3])


def _pickled(root: Path):
    p = _first_output(root)
    p.unlink()
    np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)


def _case_copy(root: Path):
    """A schema-1 store's first case copy, broken."""
    cid = manifest(root)["cases"][0]["id"]
    (root / "cases" / cid / "case.yaml").write_text("name: [unclosed\n")


def _copy_record(text: str, outside: bool = False):
    """A damage that appends ``text`` to the case pack as the first case's copy (``outside``:
    with a real .npy beside the store, where OUTSIDE_INPUT points)."""
    def fn(m, root):
        if outside:
            np.save(root.parent / "outside-secret.npy", np.zeros((1, 2, 2, 1), np.float32))
        pack = root / "cases.yamls"
        at = pack.stat().st_size
        with open(pack, "ab") as f:
            f.write(text.encode())
        m["cases"][0]["copy"] = {"file": "cases.yamls", "offset": at, "size": len(text.encode())}
    return _edit_manifest(fn)


OUTSIDE_INPUT = """name: lrn/mindspore-doc-example
op: lrn
params: {size: 3}
inputs: {x: {file: ../../outside-secret.npy}}
"""


def _first_record(root: Path) -> dict:
    """Where the first output of a store of this schema is in its pack."""
    return _outputs(manifest(root))[0][2]


def _garbage_record(root: Path):
    where = _first_record(root)
    with open(root / where["file"], "r+b") as f:
        f.seek(where["offset"])
        f.write(b"garbage!" * (where["size"] // 8))


def _append_record(data: bytes):
    """A damage that appends ``data`` to the pack and points the first output at it."""
    def fn(m, root):
        pack = root / m["runs"][0]["outputs"]["y"]["file"]
        at = pack.stat().st_size
        with open(pack, "ab") as f:
            f.write(data)
        m["runs"][0]["outputs"]["y"] = {"file": pack.name, "offset": at, "size": len(data)}
    return _edit_manifest(fn)


def _pickled_bytes() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return buf.getvalue()


def _shrink_record(m, root):
    m["runs"][0]["outputs"]["y"]["size"] -= 3


def _symlink_pack_out(root: Path):
    target = root.parent / "outside-secret.npys"
    shutil.copy(root / "arrays.npys", target)
    (root / "arrays.npys").unlink()
    (root / "arrays.npys").symlink_to(target)


#: damages of a store as this parity writes it (its arrays in one pack)
DAMAGES = {
    "no manifest": (lambda root: (root / "manifest.json").unlink(), "not a parity results directory"),
    "manifest not JSON": (_write(lambda r: r / "manifest.json", b"{not json"), "unreadable"),
    "manifest a list": (_manifest_as_list, "(top level): expected object, got list"),
    "manifest without cases": (_edit_manifest(lambda m, r: m.pop("cases")), "'cases' is missing"),
    "cases not a list": (_edit_manifest(lambda m, r: m.update(cases={"a": 1})), "cases: expected array"),
    "another schema": (_edit_manifest(lambda m, r: m.update(schema="parity-results/9")),
                       "expected one of 'parity-results/1', 'parity-results/2', 'parity-results/3'"),
    "absolute output path": (_set_output("/etc/passwd"), "leaves the store (absolute paths and '..' are refused)"),
    "pack outside the store": (_set_output({"file": "/etc/passwd", "offset": 0, "size": 8}), "leaves the store"),
    "dot-dot pack": (_set_output({"file": "../arrays.npys", "offset": 0, "size": 8}), "leaves the store"),
    "output neither path nor record": (_set_output(7), "runs[0].outputs.y"),
    "negative offset": (_set_output({"file": "arrays.npys", "offset": -1, "size": 8}), "runs[0].outputs.y"),
    "record with an unknown key": (_set_output({"file": "arrays.npys", "offset": 0, "size": 8, "pickle": True}),
                                   "runs[0].outputs.y"),
    "record past the end": (_set_output({"file": "arrays.npys", "offset": 1 << 40, "size": 8}), "past its end"),
    "deleted pack": (lambda root: (root / "arrays.npys").unlink(), "does not exist in the store"),
    "pack through a symlink out": (_symlink_pack_out, "leads outside the store (through a symlink)"),
    "garbage record": (_garbage_record, "not a .npy file"),
    "record cut short": (_edit_manifest(_shrink_record), "truncated: the header declares"),
    "pickled record": (_append_record(_pickled_bytes()), "dtype object is not supported"),
    "case id with a path": (_edit_manifest(lambda m, r: m["cases"][0].update(id="../../x")), "cases[0].id"),
    "unknown status": (_edit_manifest(lambda m, r: m["runs"][0].update(status="BOGUS")), "runs[0].status"),
    "unknown framework": (_edit_manifest(lambda m, r: m["runs"][0].update(framework="paddle")), "framework 'paddle' has no lrn"),
    "run of an unknown case": (_edit_manifest(lambda m, r: m["runs"][0].update(case="nope")), "run of unknown case 'nope'"),
    "stored case copy broken": (_copy_record("name: [unclosed\n"), "its stored case file does not load"),
    "case copy reading a file outside": (_copy_record(OUTSIDE_INPUT, outside=True),
                                         "input files must live beside the case or below it"),
    "case copy past the end": (_edit_manifest(lambda m, r: m["cases"][0].update(
        copy={"file": "cases.yamls", "offset": 1 << 30, "size": 10})), "past its end"),
    "case copy outside": (_edit_manifest(lambda m, r: m["cases"][0].update(
        copy={"file": "/etc/passwd", "offset": 0, "size": 10})), "leaves the store"),
    "case copy deleted": (lambda root: (root / "cases.yamls").unlink(), "does not exist in the store"),
    "native not a call": (_edit_manifest(lambda m, r: m["runs"][0].update(native={"size": "x"})),
                          "is not a tensorflow lrn call parity can read"),
    "run of an unknown worker": (_edit_manifest(lambda m, r: m["runs"][0].update(worker="w-nope")),
                                 "runs[0].worker: 'w-nope' is not in the manifest's workers"),
    "worker facts not an object": (_edit_manifest(lambda m, r: m["workers"].update({m["runs"][0]["worker"]: 7})),
                                   "expected object, got int"),
}
#: damages of a store of schema 1 (an array per file)
OLD_DAMAGES = {
    "absolute output path": (_set_output("/etc/passwd"), "leaves the store (absolute paths and '..' are refused)"),
    "dot-dot output path": (_set_output("runs/../../../outside.npy"), "leaves the store"),
    "output path not a string": (_set_output(7), "runs[0].outputs.y"),
    "symlink out of the store": (_symlink_out, "leads outside the store (through a symlink)"),
    "deleted .npy": (lambda root: _first_output(root).unlink(), "does not exist in the store"),
    "garbage .npy": (_write(_first_output, b"garbage"), "not a .npy file"),
    "truncated .npy": (_truncate, "truncated: the header declares"),
    "pickled .npy": (_pickled, "dtype object is not supported"),
    "stored case file broken": (_case_copy, "its stored case file does not load"),
}


@pytest.mark.parametrize("kind", [f"new: {k}" for k in DAMAGES] + [f"schema 1: {k}" for k in OLD_DAMAGES])
def test_damaged_store_is_one_clear_error(good, tmp_path, kind):
    layout, _, name = kind.partition(": ")
    damage, expected = (DAMAGES if layout == "new" else OLD_DAMAGES)[name]
    store = tmp_path / "store"
    shutil.copytree(good if layout == "new" else OLD, store, symlinks=True)
    assert manifest(store)["schema"] == ("parity-results/3" if layout == "new" else "parity-results/1")
    damage(store)
    for args in (("report", store), ("merge", store, "--out", tmp_path / "merged"), ("baseline", "save", "b",
                                                                                      "--results", store,
                                                                                      "--baselines", tmp_path / "bl")):
        r = run_cli(*args, report_dir=tmp_path / "reports")
        assert r.code == 2, (args, r.stdout, r.stderr)
        assert expected in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr
    # nothing was written where the failed commands would have written
    assert not (tmp_path / "merged").exists() and not (tmp_path / "bl" / "b").exists()
    assert not (tmp_path / "reports" / "parity.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_damage_in_the_last_case_stops_the_report_and_keeps_the_previous_one(good, tmp_path):
    """parity report reads a store a case at a time (parity.store.Streamed): a problem that
    only building a later case finds (an output record that is not a .npy, in the last run
    of the last case) is one clear error, exit 2, found after the first case was judged and
    handed to the report writer; the report files of the last good report stay as they were,
    and nothing staged is left."""
    store = tmp_path / "store"
    shutil.copytree(good, store)
    reports = tmp_path / "reports"
    assert run_cli("report", store, report_dir=reports).code == 0
    before = {p.name: p.read_bytes() for p in reports.iterdir()}
    m = manifest(store)
    last = len(m["runs"]) - 1
    assert m["runs"][last]["case"] == m["cases"][-1]["name"] != m["cases"][0]["name"]
    out = next(iter(m["runs"][last]["outputs"]))
    m["runs"][last]["outputs"][out] = {"file": "cases.yamls", "offset": 0, "size": 16}
    (store / "manifest.json").write_text(json.dumps(m))
    r = run_cli("report", store, report_dir=reports)
    assert r.code == 2, r.stdout + r.stderr
    assert "not a .npy file" in r.stderr and "Traceback" not in r.stderr
    assert {p.name: p.read_bytes() for p in reports.iterdir()} == before


def test_a_manifest_changed_in_place_while_it_is_read_is_refused(good, tmp_path):
    """The entries of a streamed store are read again when each case is built: bytes changed
    since the manifest was checked are an InputError that says so, never what they say now."""
    from parity import npyio
    from parity import store as store_
    from parity.errors import InputError

    store = tmp_path / "store"
    shutil.copytree(good, store)
    st = store_.stream(store)
    names = st.names
    text = (store / "manifest.json").read_bytes()
    at = text.rindex(b'"seconds":') + len(b'"seconds":')
    with open(store / "manifest.json", "r+b") as f:  # the same file, edited in place
        f.seek(at)
        f.write(b"9" if text[at:at + 1] != b"9" else b"8")
    with npyio.Packs() as packs:
        assert st.get(names[0], packs).case.name == names[0]
        with pytest.raises(InputError, match=r"runs\[\d+\]: bytes \d+\.\.\d+ changed since they were read; "
                                             r"the store changed while it was read"):
            st.get(names[-1], packs)
    st.close()


def test_a_streamed_store_builds_what_load_reads(good, tmp_path):
    """Each case of a store read a case at a time is the one load() reads whole: the case,
    its arrays' places, every run. Stores of schema 1 (two hosts' default suites), one this
    parity writes, and that one with its runs listed first and in reverse order (a manifest
    is untrusted: nothing in it is read in the order parity writes)."""
    import dataclasses

    from parity import npyio
    from parity import store as store_

    def fields(r):
        return {f.name: getattr(r, f.name) for f in dataclasses.fields(r)}

    shuffled = tmp_path / "shuffled"
    shutil.copytree(good, shuffled)
    m = manifest(shuffled)
    runs = m.pop("runs")[::-1]
    (shuffled / "manifest.json").write_text(json.dumps({"runs": runs, **m}, indent=1))
    for root in (OLD, ROOT / "tests" / "data" / "hosts" / "intel-xeon-avx512" / "results", good, shuffled):
        whole = store_.load(root, lazy=True)
        st = store_.stream(root)
        assert st.names == list(whole.cases) and st.runs() == sum(len(sc.results) for sc in whole.cases.values())
        assert st.manifest == {k: v for k, v in whole.manifest.items() if k not in ("cases", "runs")}
        with npyio.Packs() as packs:
            for name, a in whole.cases.items():
                b = st.get(name, packs)
                assert (a.case, a.entry, a.input_paths, a.copy, a.digest) == (b.case, b.entry, b.input_paths, b.copy,
                                                                              b.digest)
                assert [fields(r) for r in a.results] == [fields(r) for r in b.results]
                assert a.output_paths == b.output_paths
        st.close()


def test_a_symlink_in_a_store_never_makes_merge_write_outside(tmp_path):
    """runs/<case>/<side> of a schema-1 store as a symlink to a directory outside: reading
    through it is refused, and merge writes only under --out."""
    store = tmp_path / "store"
    shutil.copytree(OLD, store)
    outside = tmp_path / "outside"
    outside.mkdir()
    i, k, p = _outputs(manifest(store))[0]
    side = (store / p).parent
    for f in side.iterdir():
        shutil.copy(f, outside / f.name)
    shutil.rmtree(side)
    side.symlink_to(outside)
    before = sorted(outside.iterdir())
    r = run_cli("merge", store, "--out", tmp_path / "m")
    assert r.code == 2 and "through a symlink" in r.stderr
    assert sorted(outside.iterdir()) == before and not (tmp_path / "m").exists()


def test_report_of_several_stores_copies_nothing(good, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    r = run_cli("report", good, good, report_dir=tmp_path / "r", env={"TMPDIR": str(tmp)})
    assert r.code == 2 and "is also in" in r.stderr  # the same runs twice: refused, and nothing copied
    other = tmp_path / "other"
    assert run_cli("run", DOC, "--frameworks", "mindspore", "--results", other, "--no-report").code == 0
    r = run_cli("report", good, other, report_dir=tmp_path / "r", env={"TMPDIR": str(tmp)})
    assert r.code == 0, r.stderr
    assert list(tmp.iterdir()) == []


def test_a_store_whose_case_reads_a_symlinked_file_loads_again(tmp_path):
    cases = tmp_path / "cases"
    (cases / "data").mkdir(parents=True)
    np.save(cases / "data" / "real.npy", np.random.default_rng(1).standard_normal((1, 3, 2, 2)).astype(np.float32))
    (cases / "x.npy").symlink_to("data/real.npy")
    write_case(cases, "sym", """
        name: sym
        op: lrn
        params: {size: 3}
        inputs: {x: {file: x.npy}}
        frameworks: [torch]
    """)
    r = run_cli("run", cases / "sym.yaml", "--results", tmp_path / "res", "--no-report")
    assert r.code == 0, r.stderr
    again = run_cli("report", tmp_path / "res", report_dir=tmp_path / "r")
    assert again.code == 0, again.stderr
    copy = tmp_path / "res" / "cases" / manifest(tmp_path / "res")["cases"][0]["id"] / "x.npy"
    assert copy.is_file() and not copy.is_symlink()


# --- written whole or not at all; recovered after a run that died --------------------------

def _slow_case(directory: Path) -> Path:
    write_case(directory, "a-quick", """
        name: a-quick
        op: fault
        inputs: {x: {shape: [3], dtype: float32}}
        frameworks: [torch]
    """)
    return write_case(directory, "b-hangs", """
        name: b-hangs
        op: fault
        native: {torch: {mode: hang}}
        inputs: {x: {shape: [3], dtype: float32}}
        frameworks: [torch]
    """)


def _start(args, **popen):
    return subprocess.Popen([sys.executable, "-m", "parity", *map(str, args)], cwd=ROOT,
                            env={**os.environ, "PARITY_TEST_OPS": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=lambda: signal.signal(signal.SIGINT,
                                                                                                 signal.SIG_DFL),
                            **popen)


def _wait_for(proc, text: str, timeout: float = 120) -> str:
    seen, deadline = "", time.monotonic() + timeout
    while text not in seen and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        seen += line
    assert text in seen, seen
    return seen


def test_kill_9_of_the_parent_loses_nothing(tmp_path):
    cases = tmp_path / "cases"
    _slow_case(cases)
    reports = tmp_path / "reports"
    first = run_cli("run", cases / "a-quick.yaml", report_dir=reports, env={"PARITY_TEST_OPS": "1"})
    assert first.code == 0
    old = (reports / "results" / "manifest.json").read_text()
    old_html = (reports / "parity.html").read_text()
    proc = _start(["run", cases, "--report-dir", reports, "--timeout", "600"])
    _wait_for(proc, "a-quick")
    time.sleep(1.0)  # a-quick is finished and journaled; b-hangs hangs
    proc.kill()
    proc.communicate(timeout=30)
    # the old store and reports are whole and unchanged
    assert (reports / "results" / "manifest.json").read_text() == old
    assert (reports / "parity.html").read_text() == old_html
    assert run_cli("report", reports / "results", report_dir=tmp_path / "r", env={"PARITY_TEST_OPS": "1"}).code == 0
    # the workers went with their parent
    time.sleep(3)
    assert "b-hangs" not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    # the next run into the same directory works, and keeps what the dead run finished
    again = run_cli("run", cases / "a-quick.yaml", report_dir=reports, env={"PARITY_TEST_OPS": "1"})
    assert again.code == 0, again.stderr
    died = [p for p in reports.iterdir() if p.name.startswith("results.died-")]
    assert len(died) == 1 and f"kept in {died[0]}" in again.stderr
    m = manifest(died[0])
    assert m["interrupted"] is True and [c["name"] for c in m["cases"]] == ["a-quick"]
    r = run_cli("report", died[0], report_dir=tmp_path / "r2", env={"PARITY_TEST_OPS": "1"})
    assert r.code == 1 and r.json["interrupted"] is True and r.rows("a-quick")[0]["verdict"] == "PASS"
    assert not [p for p in reports.iterdir() if p.name.startswith(".")], "staging or lock files left behind"


def test_two_runs_into_one_directory(tmp_path):
    cases = tmp_path / "cases"
    _slow_case(cases)
    reports = tmp_path / "reports"
    proc = _start(["run", cases, "--report-dir", reports, "--timeout", "600"])
    try:
        _wait_for(proc, "a-quick")
        second = run_cli("run", DOC, "--frameworks", "torch", report_dir=reports)
        assert second.code == 2 and "another parity process is writing it (pid" in second.stderr
        assert "Traceback" not in second.stderr
        # another results directory under the same reports is refused too; elsewhere is fine
        third = run_cli("run", DOC, "--frameworks", "torch", "--results", reports / "results", "--no-report")
        assert third.code == 2 and "another parity process" in third.stderr
        fourth = run_cli("run", DOC, "--frameworks", "torch", report_dir=tmp_path / "elsewhere")
        assert fourth.code == 0
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    assert proc.returncode == 130


def test_second_ctrl_c_waits_for_whole_reports(tmp_path):
    cases = tmp_path / "cases"
    _slow_case(cases)
    reports = tmp_path / "reports"
    proc = _start(["run", cases, "--report-dir", reports, "--timeout", "600"])
    _wait_for(proc, "a-quick")
    time.sleep(0.5)
    for _ in range(20):  # Ctrl-C, then more while it writes
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    doc = json.loads((reports / "parity.json").read_text())
    assert doc["interrupted"] is True and doc["exit_code"] == 130
    csv_rows = (reports / "parity.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + len(doc["comparisons"])
    assert manifest(reports / "results")["interrupted"] is True


# --- baselines -----------------------------------------------------------------------------

def test_baselines_are_never_overwritten_by_accident(good, tmp_path):
    bl = tmp_path / "bl"
    assert run_cli("baseline", "save", "v1", "--results", good, "--baselines", bl).code == 0
    saved = manifest(bl / "v1")
    assert (bl / "v1" / "baseline.json").is_file()
    # saving it over itself: refused, and the baseline is intact
    r = run_cli("baseline", "save", "v1", "--results", bl / "v1", "--baselines", bl)
    assert r.code == 2 and "is baseline 'v1' itself" in r.stderr and "Traceback" not in r.stderr
    assert manifest(bl / "v1") == saved
    # a run never writes into a baseline
    r = run_cli("run", DOC, "--frameworks", "torch", "--baseline", "v1", "--baselines", bl, "--results", bl / "v1",
                "--no-report")
    assert r.code == 2 and "a run never writes into a baseline" in r.stderr
    assert manifest(bl / "v1") == saved
    # an existing baseline is replaced only when asked
    r = run_cli("baseline", "save", "v1", "--results", good, "--baselines", bl)
    assert r.code == 2 and "--replace" in r.stderr
    r = run_cli("baseline", "save", "v1", "--results", good, "--baselines", bl, "--replace")
    assert r.code == 0 and manifest(bl / "v1")["cases"] == saved["cases"]
    for bad in ("..", "../x", ".hidden", "a/b"):
        r = run_cli("baseline", "save", bad, "--results", good, "--baselines", bl)
        assert r.code == 2 and "baseline name" in r.stderr, bad
    assert sorted(p.name for p in bl.iterdir()) == ["v1"]


# --- unusable directories and options -------------------------------------------------------

def test_unusable_output_directories_are_one_line_and_exit_2(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for args in (("--report-dir", a_file), ("--report-dir", "/dev/null"), ("--report-dir", "/proc/parity-x"),
                 ("--results", a_file, "--no-report"), ("--results", "/proc/parity-x", "--no-report"),
                 ("--report-dir", a_file / "sub")):
        r = run_cli("run", DOC, "--frameworks", "torch", *args)
        assert r.code == 2, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, (args, r.stderr)
        assert "no parity run" not in r.stderr
    if os.geteuid() != 0:  # root may write anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        r = run_cli("run", DOC, "--frameworks", "torch", "--report-dir", ro / "reports")
        assert r.code == 2 and "not writable" in r.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "soon", "1e10"])
def test_timeout_must_be_a_finite_positive_number(value):
    r = run_cli("run", DOC, "--timeout", value)
    assert r.code == 2 and "expected a finite number of seconds > 0" in r.stderr


def test_staging_and_lock_files_do_not_stay(tmp_path):
    r = run_cli("run", DOC, "--frameworks", "torch", report_dir=tmp_path / "reports")
    assert r.code == 0
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [
        "logs", "parity.csv", "parity.html", "parity.json", "parity.junit.xml", "parity.md", "results"]
    assert oct((tmp_path / "reports" / "results").stat().st_mode & 0o777) != "0o700"


def test_tempdir_is_left_as_it_was(tmp_path):
    tmp = Path(tempfile.mkdtemp(dir=tmp_path))
    r = run_cli("run", DOC, "--frameworks", "torch", report_dir=tmp_path / "reports", env={"TMPDIR": str(tmp)})
    assert r.code == 0 and list(tmp.iterdir()) == []


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB filesystem (tmpfs), where mounting one is allowed."""
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_full_disk_loses_nothing_and_is_one_line(small_disk):
    reports = small_disk / "reports"
    first = run_cli("run", DOC, "--frameworks", "torch", report_dir=reports)
    assert first.code == 0, first.stderr
    old = (reports / "results" / "manifest.json").read_text()
    old_json = (reports / "parity.json").read_text()
    big = run_cli("run", DOC, ROOT / "cases" / "lrn" / "alexnet-95-channels.yaml", "--frameworks", "torch",
                  report_dir=reports)  # 37 MB of inputs: no room
    assert big.code == 2, big.stdout + big.stderr
    assert "Traceback" not in big.stderr and big.stderr.strip().splitlines()[-1].startswith("parity: error:")
    assert (reports / "results" / "manifest.json").read_text() == old
    assert (reports / "parity.json").read_text() == old_json
    assert not [p for p in reports.iterdir() if p.name.startswith(".")]


def test_confined_paths_resolve_links_inside_and_refuse_links_out(tmp_path):
    """fsutil.Confined (a store's loader): one lstat per file once its directory is known, the
    full realpath where a link is on the way; a directory swapped for a link is seen by the
    next load (the directories are remembered for one load only)."""
    from parity import fsutil
    from parity.errors import InputError

    root, outside = tmp_path / "store", tmp_path / "outside"
    (root / "runs" / "a").mkdir(parents=True)
    (root / "runs" / "a" / "y.npy").write_bytes(b"x")
    (root / "runs" / "b").symlink_to("a")  # a link that stays inside
    outside.mkdir()
    (outside / "y.npy").write_bytes(b"x")
    first = fsutil.Confined(root)
    real = os.path.realpath(root)
    assert str(first.path("runs/a/y.npy", "w")) == os.path.join(real, "runs", "a", "y.npy")
    assert str(first.path("runs/./b//y.npy", "w")) == os.path.join(real, "runs", "a", "y.npy")
    for rel, why in [("runs/a/y.npy/z", "does not exist"), ("runs/a", "not a regular file"), (".", "not a regular file"),
                     ("runs/c/y.npy", "does not exist"), ("/etc/passwd", "leaves the store"),
                     ("runs/../runs/a/y.npy", "leaves the store")]:
        with pytest.raises(InputError, match=why):
            first.path(rel, "w")
    shutil.rmtree(root / "runs" / "a")
    (root / "runs" / "a").symlink_to(outside)
    with pytest.raises(InputError, match="through a symlink"):
        fsutil.Confined(root).path("runs/a/y.npy", "w")
    with pytest.raises(InputError, match="through a symlink"):
        fsutil.inside(root, "runs/b/y.npy", "w")


def test_the_manifest_written_from_the_journal_is_the_manifest_of_the_whole(tmp_path):
    """store.Writer keeps no case in memory: close() writes manifest.json from the journal,
    one case at a time, and it is the text one dumps() of the sorted whole gives."""
    import parity
    from parity import host, store
    from parity.report import dumps

    x = np.random.default_rng(0).standard_normal((1, 4, 3, 3)).astype(np.float32)
    cases = [parity.case("lrn", params={"size": 3}, inputs={"x": x}, name=n) for n in ("m/c", "m/a", "m/b")]
    rep = parity.run(cases, frameworks=["torch", "tensorflow"])
    w = store.Writer(tmp_path / "results", "test", host.fingerprint())
    for c in reversed(rep.cases):  # in any order: the manifest is sorted
        w.add(c.case, c.results, c.arrays, c.results[0].inputs_sha256)
    whole = store._manifest_from_journal(w.stage / store.JOURNAL)
    store._finish_manifest(whole, False)
    w.close()
    text = (tmp_path / "results" / "manifest.json").read_text()
    assert text == dumps(whole)
    m = json.loads(text)
    assert [c["name"] for c in m["cases"]] == ["m/a", "m/b", "m/c"] and len(m["runs"]) == 6
    # each worker's facts once (the journal line of the case that met it first carries them)
    assert sorted(m["workers"]) == sorted({r["worker"] for r in m["runs"]}) and len(m["workers"]) == 2
    back = parity.load(tmp_path / "results")
    assert [c.case.name for c in back.cases] == ["m/a", "m/b", "m/c"]
    facts = {r.framework: r.worker for c in rep.cases for r in c.results}
    assert all(r.worker == facts[r.framework] and r.worker["pid"] for c in back.cases for r in c.results)


def test_a_store_of_schema_2_keeps_its_worker_facts_in_each_run(good, tmp_path):
    """Stores of schema 2 (written until 2026-12-02) repeat each worker's facts in every run,
    with no workers table: they are read as they always were, to the same facts."""
    import parity

    old = tmp_path / "old"
    shutil.copytree(good, old)
    m = manifest(old)
    workers = m.pop("workers")
    for r in m["runs"]:
        r["worker"] = workers[r["worker"]]
    m["schema"] = "parity-results/2"
    (old / "manifest.json").write_text(json.dumps(m))
    now, then = parity.load(good), parity.load(old)
    assert [r.worker for c in then.cases for r in c.results] == [r.worker for c in now.cases for r in c.results]
    assert all(r.worker["info"] for c in then.cases for r in c.results)


def test_a_case_that_fails_to_be_stored_leaves_no_bytes_in_the_pack(tmp_path, monkeypatch):
    """A full disk in the middle of a case's arrays: the packs are cut back to where that case
    began (its space is free again), the case is not journaled, and the cases stored before it
    are kept whole: the store a failed run leaves (ROOT.died-TIME) reads them back bit for bit."""
    import parity
    from parity import host, store

    report = parity.run([DOC, ROOT / "cases" / "lrn" / "rank-5.yaml"], frameworks=["torch"], keep_outputs=True)
    first, second = report.cases
    w = store.Writer(tmp_path / "res", "test", host.fingerprint())
    w.add(first.case, first.results, first.arrays, None)
    stored = (w.stage / store.PACK).stat().st_size
    assert stored > 0
    real_write = os.write

    def full(fd, buffers):  # the case's arrays (one writev) find the disk full, after 10 bytes
        real_write(fd, bytes(buffers[0])[:10])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "writev", full)
    with pytest.raises(OSError, match="No space"):
        w.add(second.case, second.results, second.arrays, None)
    monkeypatch.undo()
    assert (w.stage / store.PACK).stat().st_size == stored
    assert (w.stage / store.CASE_PACK).read_bytes() == DOC.read_bytes()  # the second case's copy is cut too
    w.abandon()
    (died,) = tmp_path.glob("res.died-*")
    back = store.load(died)
    assert list(back.cases) == [first.case.name] and back.manifest["interrupted"] is True
    sc = back.cases[first.case.name]
    assert np.array_equal(sc.inputs["x"], first.arrays["x"])
    for r, again in zip(first.results, sc.results):
        assert {k: v.tobytes() for k, v in r.outputs.items()} == {k: v.tobytes() for k, v in again.outputs.items()}


def test_a_case_read_from_a_store_runs_into_another_store(good, tmp_path):
    """A case loaded from a store's cases.yamls names no file of its own (its path is inside
    the pack): run again through the API, its copy in the new store is the same bytes."""
    import parity
    from parity import store

    sc = store.load(good).cases["lrn/mindspore-doc-example"]
    assert not sc.case.path.exists() and sc.case.text == DOC.read_bytes()
    report = parity.run([sc.case], frameworks=["torch"], results=tmp_path / "again")
    assert report.exit_code == 0
    m = manifest(tmp_path / "again")
    at = m["cases"][0]["copy"]
    assert (tmp_path / "again" / "cases.yamls").read_bytes()[at["offset"]:at["offset"] + at["size"]] == DOC.read_bytes()


def test_writev_all_writes_every_buffer_in_order_however_the_os_splits_it(tmp_path, monkeypatch):
    """fsutil.writev_all (a case's arrays go to the pack in one writev): more buffers than one
    writev takes, empty ones, and an OS that writes only part of what it is given each time
    (7 bytes, ending anywhere in a buffer): the file holds the buffers' bytes, in order."""
    from parity import fsutil

    rng = np.random.default_rng(0)
    buffers = [rng.bytes(int(n)) for n in rng.integers(0, 40, 2500)]
    buffers[3] = memoryview(np.arange(12, dtype=np.float32)).cast("B")  # an array's data, as the pack writes it
    want = b"".join(bytes(b) for b in buffers)
    real, calls = os.writev, []

    def short(fd, views):
        calls.append(len(views))
        assert len(views) <= fsutil._IOV_MAX
        return os.write(fd, b"".join(bytes(v) for v in views)[:7])

    for writev, path in ((real, tmp_path / "whole"), (short, tmp_path / "split")):
        monkeypatch.setattr(os, "writev", writev)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT)
        try:
            assert fsutil.writev_all(fd, buffers) == len(want)
        finally:
            os.close(fd)
        assert path.read_bytes() == want
    assert len(calls) == -(-len(want) // 7)
