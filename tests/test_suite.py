"""A suite held as CaseRefs (parity.load_suite, what `parity run` loads): each case file is
checked at the start and read again when the run reaches it, so the parent holds a few hundred
bytes a case, not the case. Real frameworks where anything runs."""

from __future__ import annotations

import sys

import pandas as pd

import parity
from parity import cases as cases_

from conftest import cli_in_process, write_case


def _suite(directory, n, frameworks="[torch]"):
    for i in range(n):
        write_case(directory, f"c{i:04d}", f"""
            name: suite/{i:04d}
            op: lrn
            params: {{size: {3 + 2 * (i % 2)}, alpha: 1.0e-4, beta: 0.75, k: 2.0}}
            inputs: {{x: {{shape: [1, {4 + i % 3}, 3, 3], dtype: float32, seed: {i}}}}}
            frameworks: {frameworks}
        """)
    return directory


def test_a_suite_is_held_as_references_of_a_few_hundred_bytes_a_case(tmp_path):
    directory = _suite(tmp_path / "cases", 400)
    refs = cases_.load_suite([directory], hold_bytes=0)
    cases = cases_.load_tree([directory])
    assert len(refs) == 400 and all(r.held is None for r in refs)
    # what the references hold: every object reachable from them, each counted once (the op's
    # name, the root and the framework and device tuples are one object for all of them)
    seen, held = set(), 0
    for r in refs:
        for obj in [r, *(getattr(r, f) for f in type(r).__slots__)]:
            if id(obj) not in seen:
                seen.add(id(obj))
                held += sys.getsizeof(obj)
    assert held / 400 < 600, f"{held / 400:.0f} bytes a case"  # about 330 to 380
    assert [r.open() for r in refs] == cases  # read again, the same cases
    kept = cases_.load_suite([directory])  # by default the first HOLD_BYTES of pickled cases are kept
    assert all(r.held for r in kept) and [r.open() for r in kept] == cases  # the cases as checked
    assert kept[0].open().op is cases[0].op  # the registry's op, not a copy
    kept[0].release()
    assert kept[0].held is None and kept[0].open() == cases[0]  # read again
    some = cases_.load_suite([directory], hold_bytes=20_000)  # kept while they fit, then read again
    n = sum(r.held is not None for r in some)
    assert 0 < n < 400 and all(r.held is not None for r in some[:n]) and sum(len(r.held) for r in some[:n]) <= 20_000
    assert [r.open() for r in some] == cases


def test_a_suite_of_references_runs_as_its_cases_and_lets_each_go(tmp_path):
    directory = _suite(tmp_path / "cases", 6)
    refs = parity.load_suite(directory)
    assert all(r.held is not None for r in refs)  # small suites: kept from the check
    by_ref = parity.run(refs, frameworks=["torch", "tensorflow"])
    by_case = parity.run(parity.load_cases(directory), frameworks=["torch", "tensorflow"])
    assert all(r.held is None for r in refs)  # each let go once judged
    columns = ["case", "comparison", "output", "verdict", "max_abs", "max_ulp"]
    pd.testing.assert_frame_equal(by_ref.to_pandas()[columns], by_case.to_pandas()[columns])
    assert by_ref.counts() == by_case.counts() and by_ref.exit_code == 0


def test_a_case_file_changed_during_the_run_stops_it_and_keeps_what_was_computed(tmp_path, monkeypatch, capsys):
    """The file is checked at the start and read again when the run reaches it: if its bytes
    changed, `parity run` stops as Ctrl-C stops it (the cases finished are stored), says so in
    one line and exits 2."""
    from parity import runner

    directory = _suite(tmp_path / "cases", 3)
    real = cases_.load_suite

    def then_edit(paths, strict=True, hold_bytes=None, on_first=None):
        refs = real(paths, strict, hold_bytes=0, on_first=on_first)
        (directory / "c0002.yaml").write_text((directory / "c0002.yaml").read_text().replace("seed: 2", "seed: 7"))
        return refs

    monkeypatch.setattr(cases_, "load_suite", then_edit)
    monkeypatch.setattr(runner, "WINDOW_BYTES", 1)  # case by case: two are judged before the third is read
    code = cli_in_process("run", directory, "-q", "--report-dir", tmp_path / "reports")
    _, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in err
    assert f"{directory / 'c0002.yaml'}: changed since the suite was checked" in err
    assert f"the cases finished before it are stored in {tmp_path / 'reports' / 'results'}" in err
    stored = parity.load(tmp_path / "reports" / "results")
    assert sorted(c.case.name for c in stored.cases) == ["suite/0000", "suite/0001"] and stored.interrupted
    assert not (tmp_path / "reports" / "parity.html").exists()


def test_a_reference_opens_its_checked_bytes_without_checking_them_again(tmp_path, monkeypatch):
    """CaseRef.open reads the file again and compares its digest: bytes that passed the schema
    checks at the start of the run are not checked again (a large suite read them twice)."""
    from parity import cases, fastschema

    write_case(tmp_path, "a", """
        name: a
        op: lrn
        params: {size: 3}
        inputs: {x: {shape: [1, 4, 2, 2], dtype: float32}}
    """)
    (ref,) = cases.load_suite([tmp_path], hold_bytes=0)
    assert ref.held is None
    checked = []
    real = fastschema.valid
    monkeypatch.setattr(fastschema, "valid", lambda *a, **k: checked.append(1) or real(*a, **k))
    case = ref.open()
    assert case.name == "a" and case.params == {"size": 3} and checked == []
    cases.load_case(tmp_path / "a.yaml")  # a file read without a digest is checked
    assert checked


def test_the_first_cases_workers_start_while_the_suite_is_checked_and_die_with_a_bad_suite(tmp_path, monkeypatch,
                                                                                            capsys):
    """parity run launches the workers of the first case that checks while the others are
    checked; a suite that then fails its check stops them (no worker is left behind)."""
    import os

    from parity import runner

    directory = _suite(tmp_path / "cases", 2)
    launched = []
    real = runner.Worker.launch

    def launch(self):
        real(self)
        launched.append(self)

    monkeypatch.setattr(runner.Worker, "launch", launch)
    (directory / "c0009.yaml").write_text("name: bad\nop: lrn\nparams: {size: 0}\n")
    code = cli_in_process("run", directory, "--frameworks", "torch", "-q", "--report-dir", tmp_path / "r")
    err = capsys.readouterr().err
    assert code == 2 and "c0009.yaml" in err
    assert [w.framework for w in launched] == ["torch"]
    pid = launched[0].proc.pid
    assert launched[0].proc.poll() is not None  # killed, and reaped
    if os.path.exists(f"/proc/{pid}"):  # gone, or a zombie its parent has not reaped
        with open(f"/proc/{pid}/stat") as f:
            assert f.read().rsplit(") ", 1)[1][0] == "Z"
    launched.clear()
    (directory / "c0009.yaml").unlink()
    code = cli_in_process("run", directory, "--frameworks", "torch", "-q", "--report-dir", tmp_path / "r")
    assert code == 0 and [w.framework for w in launched] == ["torch"]
    assert launched[0].starts == 1  # the run used the launched worker: it started no other
    launched.clear()
    assert cli_in_process("run", directory, "--frameworks", "torch", "--case", "suite/0001", "-q",
                          "--report-dir", tmp_path / "r") == 0
    assert launched == []  # --case: the first file may not be one that runs


def test_the_results_store_copies_the_case_as_it_was_checked_not_the_file_as_it_is_now(tmp_path):
    """A case kept from the check (held) runs as it was checked; its copy in the results store
    is those bytes too (CaseRef.open gives them as Case.text), not the file read again at the
    end of the case: an edit made meanwhile is neither run nor stored."""
    directory = _suite(tmp_path / "cases", 2)
    before = (directory / "c0001.yaml").read_bytes()
    refs = parity.load_suite(directory)
    assert all(r.held is not None for r in refs)
    assert refs[1].open().text == before and cases_.load_suite([directory], hold_bytes=0)[1].open().text == before
    (directory / "c0001.yaml").write_bytes(before.replace(b"seed: 1", b"seed: 9"))
    parity.run(refs, frameworks=["torch"], results=tmp_path / "res")
    stored = parity.load(tmp_path / "res")
    assert [c.case.text for c in stored.cases] == [(directory / "c0000.yaml").read_bytes(), before]
    assert stored.cases[1].case.inputs["x"].seed == 1
