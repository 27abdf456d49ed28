"""The normalization-family cases shipped in cases/, run end to end through real workers."""

from __future__ import annotations

import pytest

from conftest import ROOT, run_cli

FAMILIES = ["instance_norm", "group_norm", "batch_norm", "layer_norm", "rms_norm"]
FRAMEWORKS = ["torch", "tensorflow", "mindspore"]


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    return run_cli("run", *(ROOT / "cases" / f for f in FAMILIES), report_dir=out)


def test_exit_status_is_0(suite):
    assert suite.code == 0, suite.stdout[-3000:] + suite.stderr[-3000:]


@pytest.mark.parametrize("family", FAMILIES)
def test_every_op_runs_in_every_framework(suite, family):
    cases = [c for c in suite.json["cases"] if c["op"] == family]
    assert len(cases) >= 5
    for fw in FRAMEWORKS:
        ran = [r for c in cases for r in c["runs"] if r["framework"] == fw and r["status"] == "OK"]
        assert len(ran) >= 3, (family, fw)


@pytest.mark.parametrize("family", FAMILIES)
def test_random_shapes_pass_in_every_framework(suite, family):
    rows = [r for r in suite.json["comparisons"] if r["case"].startswith(f"{family}/random-")]
    assert len({r["case"] for r in rows}) >= 3
    # batch_norm's random cases train: flax and ONNX update running_var with the biased batch
    # variance, so neither has an exact spelling of torch's form (UNSUPPORTED, with that reason)
    biased = {"onnxruntime", "jax"} if family == "batch_norm" else set()
    for r in rows:
        assert r["verdict"] == ("UNSUPPORTED" if r["a"] in biased else "PASS"), r
    assert {r["a"] for r in rows if r["kind"] == "reference"} == set(FRAMEWORKS) | {"onnxruntime", "jax"}


def test_mindspore_instance_norm_falls_back_to_group_norm_with_the_message(suite):
    run = suite.run("instance_norm/affine-exact", "mindspore")
    assert run["spelling"] == "nn.GroupNorm(num_groups=C)"
    (attempt,) = run["attempts"]
    assert attempt["spelling"] == "nn.InstanceNormNd" and attempt["status"] == "UNSUPPORTED"
    assert "Unsupported op [InstanceNorm] on CPU" in attempt["message"]


def test_mindspore_rms_norm_falls_back_to_the_composite(suite):
    run = suite.run("rms_norm/eps-exact", "mindspore")
    assert run["spelling"].startswith("composite:")
    assert "RmsNorm unregistered" in run["attempts"][0]["message"]
    assert suite.row("rms_norm/eps-exact", "mindspore vs reference")["verdict"] == "PASS"


@pytest.mark.parametrize("case,fw", [("instance_norm/mindspore-doc-affine-false", "torch"),
                                     ("instance_norm/mindspore-doc-affine-false", "mindspore"),
                                     ("batch_norm/mindspore-doc-training", "torch"),
                                     ("batch_norm/mindspore-doc-training", "mindspore")])
def test_doc_examples_reproduced(suite, case, fw):
    row = suite.row(case, f"{fw} vs expected", "y")
    assert row["verdict"] == "PASS" and row["max_abs"] < 2e-6, row


def test_group_norm_doc_example_is_exactly_zero(suite):
    rows = suite.rows("group_norm/mindspore-doc-ones", kind="expected")
    assert len(rows) == 6 and all(r["max_abs"] == 0 and r["atol"] == 0 for r in rows)  # reference and 5 frameworks


@pytest.mark.parametrize("case,pair,field", [
    ("instance_norm/affine-defaults", "torch vs mindspore", "multiplies by the case's weight: no vs yes"),
    ("group_norm/keras-eps-default", "torch vs tensorflow", "eps: 1e-05 vs 0.001"),
    ("layer_norm/eps-defaults", "torch vs mindspore", "eps: 1e-05 vs 1e-07"),
    ("layer_norm/eps-defaults", "torch vs tensorflow", "eps: 1e-05 vs 0.001"),
    ("batch_norm/momentum-as-written", "torch vs mindspore", "momentum (weight of the new statistic): 0.1 vs 0.9"),
    ("batch_norm/keras-biased-running-var", "torch vs tensorflow",
     "running_var update uses the: unbiased batch variance vs biased batch variance"),
    ("batch_norm/defaults-as-is", "torch vs mindspore", "normalizes with: batch statistics (training) vs running"),
    ("rms_norm/eps-defaults", "torch vs tensorflow", "eps: 1.19209e-07 vs 1e-06"),
])
def test_default_differences_are_known_semantic_gaps(suite, case, pair, field):
    rows = suite.rows(case, comparison=pair)
    assert any(r["verdict"] == "KNOWN_GAP" for r in rows), rows
    assert all(field in r["semantic"] for r in rows), rows[0]["semantic"]
    gap = next(r for r in rows if r["verdict"] == "KNOWN_GAP")
    assert gap["semantic_max_abs"] == pytest.approx(gap["max_abs"], rel=0.05, abs=1e-5)


@pytest.mark.parametrize("twin", ["instance_norm/affine-exact", "group_norm/keras-eps-exact",
                                  "layer_norm/eps-exact", "batch_norm/momentum-exact", "rms_norm/eps-exact"])
def test_exact_mapping_twins_pass(suite, twin):
    rows = suite.rows(twin)
    assert rows and {r["verdict"] for r in rows} == {"PASS"}
    assert all(r["semantic"] == "" for r in rows)


def test_batch_norm_exact_twin_runs_the_fused_op_for_tensorflow(suite):
    run = suite.run("batch_norm/momentum-exact", "tensorflow")
    assert run["spelling"] == "raw_ops.FusedBatchNormV3"
    assert suite.run("batch_norm/momentum-exact", "mindspore")["native"]["momentum"] == 0.9


def test_keras_running_var_gap_is_only_in_running_var(suite):
    verdicts = {r["output"]: r["verdict"] for r in suite.rows("batch_norm/keras-biased-running-var",
                                                             comparison="torch vs tensorflow")}
    assert verdicts == {"y": "PASS", "running_mean": "PASS", "running_var": "KNOWN_GAP"}


def test_one_value_per_channel(suite):
    torch = suite.row("batch_norm/one-value-per-channel", "torch vs reference")
    assert torch["verdict"] == "ERROR" and torch["declared"]
    assert suite.row("batch_norm/one-value-per-channel", "mindspore vs reference", "running_var")["verdict"] == "PASS"


@pytest.mark.parametrize("case", ["group_norm/near-1e30", "layer_norm/near-1e30"])
def test_near_1e30_overflow_is_declared_and_mindspore_group_norm_survives(suite, case):
    row = suite.row(case, "torch vs reference")
    assert row["verdict"] == "KNOWN_GAP" and "162489" in row["known_reason"]
    if case.startswith("group_norm"):
        assert suite.row(case, "mindspore vs reference")["verdict"] == "PASS"
