"""Each framework's LRN spellings against the float64 reference, through real workers."""

from __future__ import annotations

import pytest

from conftest import run_cli, write_case

SIZES = [1, 3, 5, 7, 11]
SPELLINGS = {
    "torch": ["nn.LocalResponseNorm", "F.local_response_norm"],
    "tensorflow": ["raw_ops.LRN", "nn.local_response_normalization"],
    "mindspore": ["nn.LRN", "ops.LRN"],
}


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    d = tmp_path_factory.mktemp("adapter-cases")
    for i, size in enumerate(SIZES):
        write_case(d, f"size-{size}", f"""
            name: size-{size}
            op: lrn
            params: {{size: {size}, alpha: 1.0e-3, beta: 0.75, k: 1.5}}
            inputs: {{x: {{shape: [2, {13 + i}, 5, 6], dtype: float32, init: normal, std: 3.0, seed: {i}}}}}
        """)
    for fw, names in SPELLINGS.items():
        for name in names:
            write_case(d, f"spelling-{fw}-{name}", f"""
                name: spelling-{fw}-{name}
                op: lrn
                params: {{size: 5, alpha: 2.0e-4, beta: 0.6, k: 2.0}}
                inputs: {{x: {{shape: [3, 9, 4, 4], dtype: float32, init: uniform, low: -4, high: 4, seed: 11}}}}
                frameworks: [{fw}]
                spelling: {{{fw}: {name}}}
            """)
    write_case(d, "native-radius-0", """
        name: native-radius-0
        op: lrn
        params: {size: 1, alpha: 1.0e-2, beta: 0.5, k: 1.0}
        native:
          tensorflow: {depth_radius: 0, bias: 1.0, alpha: 1.0e-2, beta: 0.5}
          mindspore: {depth_radius: 0, bias: 1.0, alpha: 1.0e-2, beta: 0.5}
        inputs: {x: {shape: [2, 4, 3, 3], dtype: float32, seed: 3}}
    """)
    write_case(d, "rank-3", """
        name: rank-3
        op: lrn
        params: {size: 3}
        inputs: {x: {shape: [2, 6, 10], dtype: float32, seed: 2}}
        frameworks: [torch, tensorflow, mindspore]
    """)
    write_case(d, "float16", """
        name: float16
        op: lrn
        params: {size: 3}
        inputs: {x: {shape: [2, 6, 4, 4], dtype: float16, seed: 2}}
        frameworks: [torch, tensorflow, mindspore]
    """)
    return run_cli("run", d, report_dir=d / "reports")


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("framework", ["torch", "tensorflow", "mindspore"])
def test_odd_sizes_match_the_reference(adapters, framework, size):
    row = adapters.row(f"size-{size}", f"{framework} vs reference")
    assert row["verdict"] == "PASS", row
    assert row["max_ulp"] <= 8, row


@pytest.mark.parametrize("size", SIZES)
def test_frameworks_agree_pairwise_with_exact_mapping(adapters, size):
    pairs = adapters.rows(f"size-{size}", kind="pair")
    ran = [x for x in adapters.rows(f"size-{size}", kind="reference") if x["verdict"] == "PASS"]
    # every installed framework with an LRN (jax has none: UNSUPPORTED), each pair once
    assert {x["a"] for x in ran} >= {"torch", "tensorflow", "mindspore"}
    assert len(pairs) == len(ran) * (len(ran) - 1) // 2
    for row in pairs:
        assert row["verdict"] == "PASS" and row["semantic"] == "", row


@pytest.mark.parametrize("framework,name", [(fw, n) for fw, ns in SPELLINGS.items() for n in ns])
def test_every_spelling_runs_and_matches(adapters, framework, name):
    case = f"spelling-{framework}-{name}"
    run = adapters.run(case, framework)
    assert run["status"] == "OK" and run["spelling"] == name, run
    assert adapters.row(case, f"{framework} vs reference")["verdict"] == "PASS"


def test_native_params_are_used_as_written(adapters):
    for fw in ("tensorflow", "mindspore"):
        run = adapters.run("native-radius-0", fw)
        assert run["native"]["depth_radius"] == 0
        assert run["form"].startswith("window [c, c]")
        assert adapters.row("native-radius-0", f"{fw} vs reference")["verdict"] == "PASS"
    # size 1 in torch is alpha/1 per element: the same computation
    assert adapters.row("native-radius-0", "torch vs tensorflow")["semantic"] == ""


def test_rank_3_is_unsupported_in_tf_and_mindspore_with_their_messages(adapters):
    assert adapters.row("rank-3", "torch vs reference")["verdict"] == "PASS"
    tf = adapters.run("rank-3", "tensorflow")
    assert tf["status"] == "UNSUPPORTED" and "must be 4-dimensional" in tf["message"]
    assert [a["spelling"] for a in tf["attempts"]] == SPELLINGS["tensorflow"]
    ms = adapters.run("rank-3", "mindspore")
    assert ms["status"] == "UNSUPPORTED" and "rank of input" in ms["message"]


def test_float16(adapters):
    torch = adapters.run("float16", "torch")
    assert torch["status"] == "UNSUPPORTED" and "not implemented for 'Half'" in torch["message"]
    for fw in ("tensorflow", "mindspore"):
        row = adapters.row("float16", f"{fw} vs reference")
        assert row["verdict"] == "PASS", row
        assert row["dtype"] == "float16"


def test_the_run_exits_0(adapters):
    assert adapters.code == 0, adapters.stdout + adapters.stderr
