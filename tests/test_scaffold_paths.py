"""`parity new-case` writes only inside --out: a name may group cases with '/', never climb out."""

from __future__ import annotations

import pytest
from conftest import ROOT, run_cli


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    d = tmp_path_factory.mktemp("scaffold")
    r = run_cli("run", ROOT / "cases" / "lrn" / "even-size.yaml", "--results", d / "results", "--frameworks", "torch",
                report_dir=d / "reports")
    assert r.code == 0, r.stdout + r.stderr
    return d / "results"


def new_case(results, out, name):
    return run_cli("new-case", "--from", results, "--case", "lrn/even-size", "--out", out, "--name", name)


def files_under(path):
    return sorted(p for p in path.rglob("*") if not p.is_dir())


@pytest.mark.parametrize("name", ["..", "../x", "/abs", "a/../../b", ".", "a/./b", "a//b", "lrn/", "-", "",
                                  "  ", " x", "a\nb", "a\u2028b", "\u200b"])
def test_names_that_leave_out_or_are_not_names_are_refused(results, tmp_path, name):
    out = tmp_path / "box" / "out"
    r = new_case(results, out, name)
    assert r.code == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and r.stderr.startswith(f"parity: error: --name {name!r}: ")
    assert files_under(tmp_path) == []  # nothing written, inside --out or out of it


def test_a_group_name_stays_inside_out(results, tmp_path):
    out = tmp_path / "out"
    r = new_case(results, out, "lrn/my-regression")
    assert r.code == 0, r.stderr
    assert files_under(tmp_path) == [out / "lrn-my-regression" / "case.yaml"]  # the seeded input stays a seed
    assert "name: lrn/my-regression" in (out / "lrn-my-regression" / "case.yaml").read_text()


def test_a_symbolic_link_out_of_out_is_not_followed(results, tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "lrn-linked").symlink_to(elsewhere)
    r = new_case(results, out, "lrn/linked")
    assert r.code == 2 and "which is not inside --out" in r.stderr and "Traceback" not in r.stderr, r.stderr
    (out / "lrn-file").mkdir()
    (out / "lrn-file" / "case.yaml").symlink_to(elsewhere / "case.yaml")
    r = new_case(results, out, "lrn/file")
    assert r.code == 2 and "refusing to write through it" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert list(elsewhere.iterdir()) == []
