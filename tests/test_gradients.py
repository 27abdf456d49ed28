"""Gradient parity: the float64 reference gradients, and gradients taken in the real frameworks.

The reference vector-Jacobian products (Op.reference_vjp, analytic) are checked against
central differences of the float64 forward reference, element by element:

    L(inputs) = sum(upstream * y(inputs)),  dL/dv_i ~ R(h) = (4 D(h/2) - D(h)) / 3,
    D(h) = (L(v + h e_i) - L(v - h e_i)) / (2 h)   (Richardson-extrapolated central difference)

Error bound of R(h): truncation h^4 |L^(5)| / 480 plus rounding about 3 eps |L| / h (the two
central differences, each carrying float64 rounding of L). With h = 1e-3 and |L|, |L^(5)| of
order 10 here, that is below 1e-10; the tests allow 1e-8 * max(1, |gradient|), far below any
real mistake in a gradient formula (which is of the order of the gradient itself).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from parity import ops
from parity.cases import GRAD_STREAM, load_case
from parity.compare import default_tolerance, output_tolerance
from parity.protocol import UPSTREAM
from parity.runner import reference_results
from parity.ops.layer_norm import LayerNormForm

from conftest import ROOT, run_cli, write_case

H = 1e-3
BOUND = 1e-8


def loss(op, inputs, form, upstream) -> float:
    y = op.reference({k: np.asarray(v, np.float64) for k, v in inputs.items()}, form)[op.outputs[0]]
    return math.fsum((np.asarray(upstream) * y).ravel())


def central_difference(op, inputs, form, upstream, name) -> np.ndarray:
    v = inputs[name]
    out = np.empty(v.shape)
    for i in np.ndindex(v.shape):
        def d(h):
            plus, minus = dict(inputs), dict(inputs)
            plus[name], minus[name] = v.copy(), v.copy()
            plus[name][i] += h
            minus[name][i] -= h
            return (loss(op, plus, form, upstream) - loss(op, minus, form, upstream)) / (2 * h)
        out[i] = (4 * d(H / 2) - d(H)) / 3
    return out


def draw(shapes: dict, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    out = {k: rng.standard_normal(s) for k, s in shapes.items()}
    if "running_var" in out:
        out["running_var"] = rng.uniform(0.5, 2.0, shapes["running_var"])
    return out


CASES = [
    # op, params, input shapes
    ("lrn", {"size": 5, "alpha": 0.05, "beta": 0.75, "k": 2.0}, {"x": (2, 7, 2, 2)}),
    ("lrn", {"size": 4, "alpha": 0.5, "beta": 0.6, "k": 1.0}, {"x": (1, 6, 3)}),  # asymmetric window
    ("group_norm", {"num_groups": 2, "eps": 1e-3}, {"x": (2, 4, 3), "weight": (4,), "bias": (4,)}),
    ("group_norm", {"num_groups": 2, "affine": False}, {"x": (2, 4, 3), "weight": (4,), "bias": (4,)}),
    ("instance_norm", {"affine": True}, {"x": (2, 3, 2, 2), "weight": (3,), "bias": (3,)}),
    ("batch_norm", {"training": True, "eps": 1e-2}, {"x": (3, 2, 4), "weight": (2,), "bias": (2,)}),
    ("batch_norm", {"training": False}, {"x": (3, 2, 4), "weight": (2,), "bias": (2,), "running_mean": (2,),
                                         "running_var": (2,)}),
    ("layer_norm", {"normalized_shape": [3, 4]}, {"x": (2, 3, 4), "weight": (3, 4), "bias": (3, 4)}),
    ("layer_norm", {"normalized_shape": [5], "bias": False}, {"x": (3, 5), "weight": (5,), "bias": (5,)}),
    ("rms_norm", {"normalized_shape": [5], "eps": 1e-2}, {"x": (3, 5), "weight": (5,)}),
    ("rms_norm", {"normalized_shape": [2, 3]}, {"x": (2, 2, 3), "weight": (2, 3)}),
]


def check(op, form, inputs, upstream):
    analytic, magnitudes = op.reference_vjp({k: np.asarray(v, np.float64) for k, v in inputs.items()}, form,
                                            upstream)
    names = op.grad_inputs(inputs)
    assert sorted(analytic) == sorted(magnitudes) == sorted(f"grad_{k}" for k in names)
    for name in names:
        numeric = central_difference(op, inputs, form, upstream, name)
        got = analytic[f"grad_{name}"]
        assert got.shape == inputs[name].shape == magnitudes[f"grad_{name}"].shape
        err = np.max(np.abs(got - numeric))
        assert err <= BOUND * max(1.0, float(np.max(np.abs(numeric)))), (name, err)
        # the sum of the absolute values of the terms bounds the sum
        assert (np.abs(got) <= magnitudes[f"grad_{name}"] * (1 + 1e-12) + 1e-300).all(), name


@pytest.mark.parametrize("op_name,params,shapes", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_reference_gradient_matches_central_differences(op_name, params, shapes):
    op = ops.get(op_name)
    inputs = draw(shapes, seed=len(str(params)))
    form = op.form(params, shapes, "float64")
    check(op, form, inputs, np.random.default_rng(7).standard_normal(shapes["x"]))


def test_layer_norm_gradient_with_parameter_axes_narrower_than_the_normalized_axes():
    """mindspore's begin_params_axis > begin_norm_axis: weight over the last dim only."""
    op = ops.get("layer_norm")
    form = LayerNormForm(axes=(1, 2), params_axes=(2,), eps=1e-5, scale=True, shift=True)
    inputs = draw({"x": (2, 3, 4), "weight": (4,), "bias": (4,)}, seed=3)
    check(op, form, inputs, np.random.default_rng(8).standard_normal((2, 3, 4)))


def test_a_weight_the_form_does_not_apply_has_a_zero_gradient():
    op = ops.get("group_norm")
    shapes = {"x": (2, 4, 3), "weight": (4,), "bias": (4,)}
    g, m = op.reference_vjp(draw(shapes, 1), op.form({"num_groups": 2, "affine": False}, shapes),
                            np.ones((2, 4, 3)))
    assert not g["grad_weight"].any() and not g["grad_bias"].any() and not m["grad_weight"].any()


def test_upstream_is_seeded_in_the_case_dtype_and_not_an_input_stream(tmp_path):
    path = write_case(tmp_path, "c", """
        op: lrn
        params: {size: 3}
        grad: {seed: 5}
        inputs: {x: {shape: [2, 3, 4, 4], dtype: float16, seed: 5}}
    """)
    case = load_case(path)
    u = case.upstream()
    assert u.dtype == np.float16 and u.shape == (2, 3, 4, 4)
    assert (u == load_case(path).upstream()).all()  # reproducible
    x = case.inputs["x"].materialize()
    assert not (u == x).all()  # seed 5 for x and for the upstream gradient: different streams
    want = np.random.Generator(np.random.PCG64([GRAD_STREAM, 5])).standard_normal(96).reshape(2, 3, 4, 4)
    assert (u == want.astype(np.float16)).all()
    assert case.outputs() == ["y", "grad_x"]


def test_gradient_tolerance_is_normwise_in_the_magnitude_of_the_terms(tmp_path):
    path = write_case(tmp_path, "ln", """
        op: layer_norm
        params: {normalized_shape: [2], elementwise_affine: false}
        grad: true
        inputs:
          x: {shape: [64, 2], dtype: float32}
    """)
    case = load_case(path)
    (ref,) = reference_results(case, [], {"x": case.inputs["x"].materialize(), UPSTREAM: case.upstream()}, None)
    atol, rtol = default_tolerance(case.op, "float32")
    assert output_tolerance(case, "y", ref) == (atol, rtol)
    # normalized over two values, grad_x cancels to nearly nothing; its terms are |g|/s in size
    grad_x, mag = ref.outputs["grad_x"], ref.magnitudes["grad_x"]
    assert np.sqrt(np.mean(grad_x**2)) < 1e-2 * np.sqrt(np.mean(mag**2))
    assert output_tolerance(case, "grad_x", ref) == (pytest.approx(atol * np.sqrt(np.mean(mag**2))), rtol)
    # a tolerance the case sets is used as written
    explicit = load_case(write_case(tmp_path, "ln2", path.read_text() + "tolerance: {atol: 1.0e-3}\n"))
    assert output_tolerance(explicit, "grad_x", ref) == (1e-3, rtol)


# --- end to end, real frameworks ------------------------------------------------------------

FAMILIES = ["lrn", "instance_norm", "group_norm", "batch_norm", "layer_norm", "rms_norm"]
FRAMEWORKS = ["torch", "tensorflow", "mindspore", "jax"]
#: frameworks whose gradient rows are UNSUPPORTED: onnxruntime runs inference only, and jax has no LRN
NO_GRADIENTS = {"onnxruntime": "inference only", "jax": "have no local response normalization"}


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    d = tmp_path_factory.mktemp("gradients")
    r = run_cli("run", ROOT / "cases" / "gradients", "--results", d / "results", report_dir=d)
    assert r.code == 0, r.stdout[-3000:] + r.stderr[-2000:]
    return r


@pytest.mark.parametrize("op", FAMILIES)
def test_every_op_has_float32_gradients_that_pass_in_every_framework(shipped, op):
    rows = [r for r in shipped.json["comparisons"] if r["op"] == op and r["case"].endswith("[float32]")
            and r["output"].startswith("grad_") and r["kind"] == "reference"]
    without = {"onnxruntime"} | ({"jax"} if op == "lrn" else set())
    for r in (r for r in rows if r["a"] in without):
        assert r["verdict"] == "UNSUPPORTED" and NO_GRADIENTS[r["a"]] in r["message"], r
    rows = [r for r in rows if r["a"] not in without]
    assert {r["a"] for r in rows} == set(FRAMEWORKS) - (without - {"onnxruntime"})
    assert {r["verdict"] for r in rows} == {"PASS"}
    wanted = {"grad_x"} | ({"grad_weight"} if op not in ("lrn",) else set()) | (
        {"grad_bias"} if op not in ("lrn", "rms_norm") else set())
    assert {r["output"] for r in rows} == wanted


def test_gradient_rows_name_the_call_the_gradient_went_through(shipped):
    row = shipped.row("gradients/rms_norm[float32]", "mindspore vs reference", "grad_x")
    assert row["spelling_a"].startswith("composite:")
    run = shipped.run("gradients/rms_norm[float32]", "mindspore")
    assert run["grad"]["status"] == "OK" and run["grad"]["spelling"].startswith("composite:")
    assert shipped.row("gradients/lrn[float32]", "tensorflow vs reference", "grad_x")["spelling_a"] == \
        "nn.local_response_normalization"


def test_mindspore_float64_layer_norm_gradients_are_float32_precision(shipped):
    row = shipped.row("gradients/layer_norm[float64]", "mindspore vs reference", "grad_weight")
    assert row["verdict"] == "KNOWN_GAP" and 1e-8 < row["max_abs"] < 2e-5
    assert shipped.row("gradients/layer_norm[float64]", "torch vs reference", "grad_weight")["max_abs"] < 1e-12


def test_report_from_stored_results_recomputes_the_gradient_rows(shipped, tmp_path):
    r = run_cli("report", shipped.report_dir / "results", report_dir=tmp_path)
    assert r.code == 0, r.stderr[-2000:]
    key = ("case", "comparison", "output", "verdict", "max_abs")
    before = sorted(tuple(x[k] for k in key) for x in shipped.json["comparisons"])
    assert sorted(tuple(x[k] for k in key) for x in r.json["comparisons"]) == before


def test_a_semantic_difference_shows_in_the_gradients(tmp_path):
    write_case(tmp_path, "eps", """
        name: keras-eps-default
        op: layer_norm
        params: {normalized_shape: [16]}
        native: {tensorflow: {epsilon: 0.001}}
        grad: true
        inputs:
          x: {shape: [4, 16], dtype: float32, seed: 3, std: 0.1}
          weight: {shape: [16], dtype: float32, seed: 4}
        frameworks: [torch, tensorflow]
    """)
    r = run_cli("run", tmp_path, "--no-results", report_dir=tmp_path / "rep")
    assert r.code == 1
    for out in ("grad_x", "grad_weight"):
        row = r.row("keras-eps-default", "torch vs tensorflow", out)
        assert row["verdict"] == "FAIL" and row["cause"] == "semantic" and "eps" in row["semantic"]
        # each computes its own form correctly
        assert r.row("keras-eps-default", "tensorflow vs reference", out)["verdict"] == "PASS"


ENV = {"PARITY_TEST_OPS": "1"}


def test_a_gradient_that_fails_is_reported_per_output_and_can_be_declared(tmp_path):
    for mode in ("raise", "unsupported"):
        write_case(tmp_path, mode, f"""
            name: grad-{mode}
            op: fault
            grad: true
            native: {{torch: {{grad_mode: {mode}}}}}
            inputs: {{x: {{shape: [2, 3], dtype: float32, seed: 1}}}}
            frameworks: [torch, tensorflow]
        """)
    r = run_cli("run", tmp_path, "--no-results", report_dir=tmp_path / "rep", env=ENV)
    assert r.code == 1  # the undeclared ERROR
    assert r.row("grad-raise", "torch vs reference", "y")["verdict"] == "PASS"  # the forward output is kept
    row = r.row("grad-raise", "torch vs reference", "grad_x")
    assert row["verdict"] == "ERROR" and "injected failure: the gradient raised" in row["message"]
    assert r.row("grad-unsupported", "torch vs reference", "grad_x")["verdict"] == "UNSUPPORTED"
    assert r.row("grad-raise", "tensorflow vs reference", "grad_x")["verdict"] == "PASS"
    assert not r.rows("grad-raise", comparison="torch vs tensorflow", output="grad_x")
    # declared: exit 0
    (tmp_path / "unsupported.yaml").unlink()
    path = tmp_path / "raise.yaml"
    path.write_text(path.read_text() + "known:\n  - framework: torch\n    output: grad_x\n"
                                       "    error: injected failure\n    reason: the test op's injected fault\n")
    r = run_cli("run", tmp_path, "--no-results", report_dir=tmp_path / "rep", env=ENV)
    assert r.code == 0, r.stdout[-2000:]
    row = r.row("grad-raise", "torch vs reference", "grad_x")
    assert row["verdict"] == "ERROR" and row["declared"]


def test_new_case_from_stored_gradient_results_reproduces_them(shipped, tmp_path):
    case = "gradients/layer_norm[bfloat16]"
    r = run_cli("new-case", "--from", shipped.report_dir / "results", "--case", case, "--out", tmp_path / "cases")
    assert r.code == 0, r.stderr[-2000:]
    (path,) = (tmp_path / "cases").rglob("case.yaml")
    written = load_case(path)
    assert written.grad == {"seed": 0} and written.dtype == "bfloat16" and "upstream" not in written.inputs
    again = run_cli("run", path, "--no-results", report_dir=tmp_path / "rep")
    key = ("comparison", "output", "verdict", "max_abs")
    before = sorted(tuple(x[k] for k in key) for x in shipped.rows(case))
    assert sorted(tuple(x[k] for k in key) for x in again.json["comparisons"]) == before
