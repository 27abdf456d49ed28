"""`parity run` exit status: 0 pass/declared, 1 FAIL/FIXED/undeclared error, 2 bad input."""

from __future__ import annotations

from conftest import run_cli, write_case

X = "inputs: {x: {values: [[[[2.4], [3.51]], [[1.3], [-4.4]]]], dtype: float32}}"


def run(tmp_path, text, *extra):
    write_case(tmp_path, "case", text)
    return run_cli("run", tmp_path / "case.yaml", "--frameworks", "torch,mindspore", *extra,
                   report_dir=tmp_path / "reports")


def test_pass_is_0(tmp_path):
    r = run(tmp_path, f"""
        name: pass
        op: lrn
        params: {{size: 3, alpha: 3.0e-4}}
        {X}
    """)
    assert r.code == 0, r.stdout + r.stderr
    assert {row["verdict"] for row in r.json["comparisons"]} == {"PASS"}


def test_undeclared_gap_is_fail_1_and_says_why(tmp_path):
    r = run(tmp_path, f"""
        name: undeclared
        op: lrn
        params: {{size: 2}}
        native: {{mindspore: {{depth_radius: 1, bias: 1.0, alpha: 1.0e-4, beta: 0.75}}}}
        {X}
    """)
    assert r.code == 1
    row = r.row("undeclared", "torch vs mindspore")
    assert row["verdict"] == "FAIL" and not row["ok"]
    assert row["message"].startswith(
        "different computations: window: torch [c-1, c] (2 channels), mindspore [c-1, c+1] (3 channels)")


def test_gap_beyond_declared_max_abs_is_fail(tmp_path):
    r = run(tmp_path, f"""
        name: grew
        op: lrn
        params: {{size: 2}}
        native: {{mindspore: {{depth_radius: 1, bias: 1.0, alpha: 1.0e-4, beta: 0.75}}}}
        {X}
        known:
          - between: [mindspore, torch]
            max_abs: 1.0e-3
            reason: the page says 1e-3
    """)
    assert r.code == 1
    row = r.row("grew", "torch vs mindspore")
    assert row["verdict"] == "FAIL" and "exceeds the declared max_abs 0.001" in row["message"]


def test_declared_gap_that_no_longer_happens_is_fixed_1(tmp_path):
    r = run(tmp_path, f"""
        name: fixed
        op: lrn
        params: {{size: 3, alpha: 3.0e-4}}
        {X}
        known:
          - between: [torch, mindspore]
            reason: we thought these differed
    """)
    assert r.code == 1
    row = r.row("fixed", "torch vs mindspore")
    assert row["verdict"] == "FIXED"
    assert "no comparison it covers shows one any more: update or remove" in row["message"]
    assert "case.yaml:6 (known[0])" in row["message"]  # the line of the `- between:` entry


def test_declared_error_that_no_longer_happens_is_fixed_1(tmp_path):
    r = run(tmp_path, f"""
        name: error-fixed
        op: lrn
        params: {{size: 3}}
        {X}
        known:
          - framework: mindspore
            error: Unknown Error
            reason: used to fail
    """)
    assert r.code == 1
    row = r.row("error-fixed", "mindspore vs reference")
    assert row["verdict"] == "FIXED" and "declares mindspore ERROR ('Unknown Error') but mindspore ran" in row["message"]


def test_wrong_golden_value_is_fail(tmp_path):
    r = run(tmp_path, f"""
        name: golden
        op: lrn
        params: {{size: 3, alpha: 3.0e-4}}
        {X}
        expected:
          torch: {{values: [[[[2.39866], [3.5016835]], [[1.2992741], [-4.3]]]]}}
    """)
    assert r.code == 1
    row = r.row("golden", "torch vs expected")
    assert row["verdict"] == "FAIL" and row["mismatches"] == 1 and row["worst_index"] == [0, 1, 1, 0]


def test_undeclared_error_is_1_and_declared_error_is_0(tmp_path):
    text = """
        name: ms-error
        op: lrn
        params: {size: 5}
        inputs: {x: {shape: [1, 16, 2, 2], dtype: float32}}
    """
    r = run(tmp_path, text)
    assert r.code == 1
    assert r.row("ms-error", "mindspore vs reference")["verdict"] == "ERROR"
    declared = text + """
        known:
          - framework: mindspore
            error: could not execute a primitive
            reason: mindspore 2.10 CPU LRN, 16 channels, depth_radius 2
    """
    r = run(tmp_path, declared)
    assert r.code == 0, r.stdout
    assert r.row("ms-error", "mindspore vs reference")["declared"]


def test_explicit_framework_that_cannot_load_is_error(tmp_path):
    write_case(tmp_path, "case", f"""
        name: missing-python
        op: lrn
        params: {{size: 3}}
        {X}
        frameworks: [torch]
    """)
    r = run_cli("run", tmp_path / "case.yaml", "--python", "torch=/nonexistent/python",
                report_dir=tmp_path / "reports")
    assert r.code == 1
    row = r.row("missing-python", "torch vs reference")
    assert row["verdict"] == "ERROR" and "cannot start /nonexistent/python" in row["message"]


def test_bad_input_is_2(tmp_path):
    r = run(tmp_path, """
        op: lrn
        params: {size: 3}
        inputs: {x: {shape: [1, 3], dtype: float32}}
    """)
    assert r.code == 2 and "rank >= 3" in r.stderr and "Traceback" not in r.stderr
