"""`parity fuzz`: a hypothesis search in the real frameworks whose findings round-trip as cases."""

from __future__ import annotations

import json

import pytest
import yaml

from parity import fuzz
from parity.cases import load_case

from conftest import run_cli


@pytest.fixture(scope="module")
def lrn50(tmp_path_factory):
    out = tmp_path_factory.mktemp("fuzz")
    r = run_cli("fuzz", "lrn", "--max-examples", "50", "--out", out)
    assert r.code in (0, 1), r.stdout[-2000:] + r.stderr[-3000:]
    report = json.loads((out / "fuzz-lrn.json").read_text())
    assert r.code == (1 if report["findings"] else 0)
    return r, report, out


def test_it_searches_what_the_issue_names(lrn50):
    r, report, _ = lrn50
    assert report["generated"] == 50 and report["executed"] >= 50
    searched = report["searched"]
    assert set(searched["dtype"]) == {"float16", "bfloat16", "float32", "float64"}
    assert set(searched["regime"]) == set(fuzz.REGIMES)  # tiny/huge (scaled), large means, constant channels
    assert set(searched["grad"]) == {"True", "False"}
    assert len(report["params"]["size"]) >= 4 and len(report["params"]["alpha"]) >= 3
    assert set(report["frameworks"]) == {"torch", "tensorflow", "mindspore", "onnxruntime", "jax"}
    assert "searched lrn in torch, tensorflow, mindspore, onnxruntime, jax: 50 examples generated" in r.stdout


def test_every_finding_is_written_as_a_case_that_reproduces(lrn50, tmp_path):
    r, report, out = lrn50
    for f in report["findings"]:
        assert f["reproduced"] is True, f
        assert f["case"] in r.stdout and "reproduces from the file" in r.stdout
        case = load_case(f["case"])  # a valid case file, named and sourced
        assert case.name.startswith("fuzz/lrn-") and case.source.startswith("parity fuzz lrn --seed 0")
        # run it as a user would: the same disagreement, from the file alone
        again = run_cli("run", f["case"], "--no-results", report_dir=tmp_path / case.name.replace("/", "_"))
        assert again.code == 1
        a, b, verdict, part, _ = f["signature"]
        rows = [x for x in again.json["comparisons"] if x["a"] == a and x["b"] == b and x["verdict"] == verdict
                and x["output"].startswith("grad_") == (part == "gradient")]
        assert rows, (f, again.stdout)


def test_a_constant_channel_finding_carries_its_npy(tmp_path):
    ex = fuzz.Example("group_norm", (2, 4, 3), {"num_groups": 2, "eps": 1e-5, "affine": False}, "float16",
                      "constant-channel", seed=3, std=1.0, mean=100.0, channel=1)
    path = fuzz.write_case(ex, tmp_path, "gn", "fuzz/gn")
    doc = yaml.safe_load(path.read_text())
    assert doc["inputs"]["x"] == {"file": "gn.x.npy", "dtype": "float16"}
    x = load_case(path).inputs["x"].materialize()
    assert x.dtype.name == "float16" and (x[:, 1] == 100).all() and x[:, 0].std() > 0


def test_the_same_seed_searches_the_same_examples(tmp_path):
    for i in range(2):
        r = run_cli("fuzz", "rms_norm", "--max-examples", "8", "--seed", "3", "--frameworks", "torch",
                    "--out", tmp_path / str(i))
        assert r.code in (0, 1), r.stderr[-2000:]
    reports = [json.loads((tmp_path / str(i) / "fuzz-rms_norm.json").read_text()) for i in range(2)]
    assert reports[0]["searched"] == reports[1]["searched"] and reports[0]["params"] == reports[1]["params"]
    assert [f["example"] for f in reports[0]["findings"]] == [f["example"] for f in reports[1]["findings"]]
    assert reports[0]["frameworks"] == ["torch"]


@pytest.mark.parametrize("args,text", [
    (["nosuch"], "unknown op 'nosuch'"),
    (["lrn", "--max-examples", "0"], "--max-examples: expected a number >= 1"),
    (["lrn", "--dtypes", "float8"], "--dtypes: expected names from"),
    (["lrn", "--frameworks", "paddle"], "--frameworks: unknown paddle"),
])
def test_bad_options_are_exit_2(args, text, tmp_path):
    r = run_cli("fuzz", *args, "--out", tmp_path)
    assert r.code == 2 and text in r.stderr and "Traceback" not in r.stderr
