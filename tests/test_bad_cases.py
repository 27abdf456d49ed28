"""The malformed-case corpus: every file gives one clear error naming file, line and field."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from parity.cases import load_case, load_tree
from parity.errors import CaseError, CaseErrors

from conftest import ROOT, run_cli, write_case

CORPUS = Path(__file__).parent / "data" / "bad_cases"
FILES = sorted(CORPUS.glob("*.yaml"))


def expectation(path: Path) -> tuple[int | None, str | None, str]:
    first = path.read_bytes().split(b"\n", 1)[0].decode()
    m = re.match(r"# expect: (\S+) (\S+): (.*)$", first)
    assert m, f"{path.name}: first line must be '# expect: LINE FIELD: MESSAGE'"
    line, field, message = m.groups()
    return (None if line == "-" else int(line)), (None if field == "-" else field), message


def test_the_corpus_has_at_least_30_kinds():
    assert len(FILES) >= 30


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_bad_case_is_reported_with_file_line_and_field(path):
    line, field, message = expectation(path)
    with pytest.raises((CaseError, CaseErrors)) as info:
        load_case(path)
    errors = info.value.errors if isinstance(info.value, CaseErrors) else [info.value]
    assert len(errors) == 1, "\n".join(map(str, errors))
    err = errors[0]
    assert (err.file, err.line, err.field) == (str(path), line, field), str(err)
    assert message in err.message, str(err)
    # the one-line form a user sees
    where = f"{path}:{line}" if line else str(path)
    assert str(err).startswith(f"{where}: {field + ': ' if field else ''}")


def test_nothing_from_a_bad_file_is_ever_executed():
    for marker in ("/tmp/parity-pwned-by-yaml", "/tmp/parity-pwned-by-npy"):
        if os.path.exists(marker):
            os.unlink(marker)
    result = run_cli("validate", CORPUS)
    assert result.code == 2
    assert not os.path.exists("/tmp/parity-pwned-by-yaml")
    assert not os.path.exists("/tmp/parity-pwned-by-npy")


def test_validate_reports_every_bad_file_with_exit_2_and_no_traceback():
    result = run_cli("validate", CORPUS)
    assert result.code == 2
    assert "Traceback" not in result.stderr
    for path in FILES:
        assert str(path.relative_to(ROOT)) in result.stderr or str(path) in result.stderr, path.name
    assert result.stdout == ""


def test_run_refuses_bad_input_before_running_anything(tmp_path):
    bad = write_case(tmp_path, "bad", """
        op: lrn
        params: {size: -3}
        inputs: {x: {shape: [1, 3, 2, 2], dtype: float32}}
    """)
    result = run_cli("run", bad, report_dir=tmp_path / "reports")
    assert result.code == 2
    assert f"{bad}:2: params.size: must be a positive integer, got -3" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "reports").exists()


def test_duplicate_names_across_files(tmp_path):
    text = """
        name: same
        op: lrn
        params: {size: 3}
        inputs: {x: {shape: [1, 3, 2, 2], dtype: float32}}
    """
    write_case(tmp_path, "a", text)
    b = write_case(tmp_path, "b", text)
    with pytest.raises(CaseErrors) as info:
        load_tree([tmp_path])
    (err,) = info.value.errors
    assert str(err) == f"{b}:1: name: duplicate case name 'same' (also in {tmp_path / 'a.yaml'}:1)"


def test_yaml_12_floats_and_defaults(tmp_path):
    path = write_case(tmp_path, "ok", """
        op: lrn
        params: {size: 3, alpha: 1e-4}
        inputs: {x: {shape: [1, 3, 2, 2], dtype: float32}}
        tolerance: {atol: 1e-6}
    """)
    case = load_case(path)
    assert case.params["alpha"] == 1e-4 and case.tolerance["atol"] == 1e-6
    assert case.name == "ok" and case.devices == ("cpu",) and case.frameworks is None


def test_unknown_op_on_the_command_line_is_exit_2(tmp_path):
    result = run_cli("run", "--frameworks", "torch,paddle", tmp_path)
    assert result.code == 2 and "--frameworks: unknown paddle" in result.stderr
    result = run_cli("run", "--bogus")
    assert result.code == 2 and "unrecognized arguments: --bogus" in result.stderr
    result = run_cli("run", tmp_path / "missing")
    assert result.code == 2 and "no such file or directory" in result.stderr


#: kinds added with the limits on numbers, names, nesting and .npy files: each must be refused by
#: `parity validate` alone, with exit 2 and one line, never a traceback
LIMIT_KINDS = [
    "size-huge-integer", "integer-5000-digits", "size-beyond-32-bit", "seed-huge-integer", "grad-seed-huge-integer",
    "tolerance-huge-integer", "alpha-float-overflow", "timeout-too-long", "uniform-range-overflow",
    "values-huge-integer", "values-float-overflow", "values-null", "values-quoted-number", "values-boolean",
    "values-nested-too-deep", "shape-too-many-dims", "shape-dimension-huge-integer", "shape-dimension-over-limit",
    "name-blank", "name-zero-width", "name-line-separator", "name-paragraph-separator", "name-control-escape",
    "name-trailing-space", "name-private-use", "name-bidi-override",
    "npy-truncated", "npy-negative-shape", "npy-version-9", "npy-gib-header", "npy-unhashable-header",
    "npy-nine-dims", "npy-scalar",
]


@pytest.mark.parametrize("stem", LIMIT_KINDS)
def test_validate_refuses_each_limit_kind_with_one_line_and_exit_2(stem):
    path = CORPUS / f"{stem}.yaml"
    line, field, message = expectation(path)
    result = run_cli("validate", path)
    assert result.code == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.splitlines()  # splitlines: a raw U+2028 or U+0085 in the message would break a line too
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"parity: error: {path}:{line}: {field}: ") and message in lines[0], lines[0]


def test_run_refuses_a_damaged_npy_before_running_anything(tmp_path):
    path = CORPUS / "npy-truncated.yaml"
    result = run_cli("run", path, "--frameworks", "torch", report_dir=tmp_path / "reports")
    assert result.code == 2, result.stdout + result.stderr
    assert f"{path}:5: inputs.x.file: not a readable .npy file: truncated" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "reports").exists()
