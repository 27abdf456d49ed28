"""Hosts: the fingerprint every result carries, re-judging stored results from another machine
under today's cases, several hosts in one report, declarations that hold across hosts, and
environment variants (ISA caps). The other host is real: tests/data/hosts/amd-epyc-avx2 is a
results store made on an AMD EPYC (AVX2, no AVX-512) with the pinned frameworks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from parity import store

from conftest import ROOT, run_cli

AMD = ROOT / "tests" / "data" / "hosts" / "amd-epyc-avx2" / "results"
AVX512 = ROOT / "tests" / "data" / "hosts" / "amd-epyc-avx512" / "results"
INTEL = ROOT / "tests" / "data" / "hosts" / "intel-xeon-avx512" / "results"
CASES = ROOT / "cases"


def manifest(path: Path) -> dict:
    """A store's manifest, each run's worker (an id of its workers table, schema 3) as its facts."""
    m = json.loads((path / "manifest.json").read_text())
    for run in m["runs"]:
        if isinstance(run.get("worker"), str):
            run["worker"] = m["workers"][run["worker"]]
    return m


def cpu_flags() -> set[str]:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def copy_case(name: str, dest: Path, edit=None) -> Path:
    """cases/NAME.yaml copied under dest (same relative path, so the same default name), edited."""
    src = CASES / f"{name}.yaml"
    doc = yaml.safe_load(src.read_text())
    if edit:
        edit(doc)
    path = dest / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """This machine's store of three cases, named test-host (so that it never has the AMD
    store's host id, whatever this machine is)."""
    d = tmp_path_factory.mktemp("own")
    r = run_cli("run", CASES / "batch_norm" / "large-mean.yaml", CASES / "lrn" / "mindspore-one-channel.yaml",
                CASES / "layer_norm" / "random-last-1.yaml", "--results", d / "results", "--host-label", "test-host",
                report_dir=d / "reports")
    assert r.code == 0, r.stdout + r.stderr
    r.results = d / "results"
    return r


# --- the fingerprint -------------------------------------------------------------------

def test_every_result_carries_this_hosts_fingerprint(own):
    m = manifest(own.results)
    host = m["host"]
    assert host["label"] == "test-host" and host["id"].startswith("test-host-") and m["hosts"] == {host["id"]: host}
    prefixes = ("sse4", "avx", "amx", "fma")
    assert host["flags"] == sorted(f for f in cpu_flags() if f.startswith(prefixes))
    assert host["cpus"] == os.cpu_count() and host["machine"] and host["cpu"] and host["vendor"]
    assert {run["host"] for run in m["runs"]} == {host["id"]}
    # and the report says it
    assert own.json["hosts"] == [host]
    assert "host test-host" in own.html


def test_workers_record_the_build_facts_that_change_numerics(own):
    info = {r["framework"]: r["worker"]["info"] for r in manifest(own.results)["runs"] if "info" in r.get("worker", {})}
    assert info["torch"]["cpu_capability"] in ("DEFAULT", "AVX2", "AVX512", "ZVECTOR", "VSX", "SVE256")
    assert info["torch"]["onednn"].startswith(("Intel(R) MKL-DNN", "oneDNN"))
    assert isinstance(info["tensorflow"]["onednn_enabled"], bool)
    assert info["mindspore"]["device"] == "CPU" and info["mindspore"]["onednn"].startswith("3.")
    assert info["mindspore"]["onednn_isa"] in ("sse41", "avx", "avx2", "avx2_vnni", "avx2_vnni_2", "avx512_core",
                                               "avx512_core_vnni", "avx512_core_bf16", "avx10_1_512",
                                               "avx10_1_512_amx", "avx10_1_512_amx_fp16")
    assert info["mindspore"]["commit"] and info["mindspore"]["runtime_num_threads"] >= 1
    # mindspore's kernels are launched synchronously, as read back from its runtime config
    assert info["mindspore"]["launch_blocking"] is True


def test_numeric_environment_variables_are_recorded(tmp_path):
    r = run_cli("run", CASES / "lrn" / "mindspore-doc-example.yaml", "--frameworks", "torch",
                "--results", tmp_path / "res", report_dir=tmp_path, env={"OMP_NUM_THREADS": "1"})
    assert r.code == 0, r.stderr
    run = manifest(tmp_path / "res")["runs"][0]
    assert run["worker"]["env"]["OMP_NUM_THREADS"] == "1" and run["worker"]["info"]["threads"] == 1


# --- re-judging another host's store -------------------------------------------------------

def test_the_amd_store_under_its_own_case_copies_shows_what_that_host_saw(tmp_path):
    """The declarations the AMD host ran with (its stored case copies) failed there: 6 FAIL,
    1 FIXED. Judged here from its stored outputs, the same verdicts come back."""
    r = run_cli("report", AMD, report_dir=tmp_path)
    assert r.code == 1
    bad = sorted((x["case"], x["comparison"], x["output"], x["verdict"]) for x in r.json["comparisons"] if not x["ok"])
    assert [b[3] for b in bad].count("FAIL") == 6 and [b[3] for b in bad].count("FIXED") == 1
    assert ("lrn/mindspore-one-channel", "mindspore vs reference", "y", "FIXED") in bad
    assert ("batch_norm/large-mean", "tensorflow vs reference", "running_var", "FAIL") in bad


def test_the_shipped_cases_hold_on_the_amd_store(tmp_path):
    r = run_cli("report", AMD, "--cases", CASES, report_dir=tmp_path)
    assert r.code == 0, r.stdout[-3000:] + r.stderr
    assert "are not in the store and are not judged: jax/" in r.stderr  # cases the store does not have are named
    assert r.json["hosts"][0]["label"] == "amd-avx2" and "avx512f" not in r.json["hosts"][0]["flags"]
    row = r.row("batch_norm/large-mean", "tensorflow vs reference", "y")
    assert row["verdict"] == "KNOWN_GAP" and row["max_abs"] == pytest.approx(0.0106467, rel=1e-5)
    assert row["known_where"].startswith(str(CASES / "batch_norm" / "large-mean.yaml"))
    # the host-dependent error did not happen there: PASS, and it says so
    row = r.row("lrn/mindspore-one-channel", "mindspore vs reference", "y")
    assert row["verdict"] == "PASS" and "did not happen on host amd-avx2" in row["notes"]


@pytest.mark.parametrize("store, label, flags, message", [
    (AVX512, "amd-avx512", {"avx512f"}, "Unknown Error"),
    (INTEL, "intel-avx512", {"avx512f", "avx512_fp16", "amx_tile"}, "could not execute a primitive"),
], ids=["amd-epyc-avx512", "intel-xeon-avx512"])
def test_the_shipped_cases_hold_on_the_avx512_stores(tmp_path, store, label, flags, message):
    """The other kinds of host, whichever this one is: an AMD EPYC with AVX-512, and an Intel
    Xeon (Sapphire Rapids: AVX-512 with FP16, and AMX). On both mindspore's single-channel LRN
    fails (the AMD store was made before the synchronous launch, hence its older message) and
    tensorflow, with oneDNN, is as far from the large-mean batch norm's reference."""
    r = run_cli("report", store, "--cases", CASES, report_dir=tmp_path)
    assert r.code == 0, r.stdout[-3000:] + r.stderr
    host = r.json["hosts"][0]
    assert host["label"] == label and flags <= set(host["flags"])
    row = r.row("lrn/mindspore-one-channel", "mindspore vs reference")
    assert row["verdict"] == "ERROR" and row["declared"] and message in row["message"]
    assert f"it happened on host {label}" in row["notes"]
    row = r.row("batch_norm/large-mean", "tensorflow vs reference", "y")
    assert row["verdict"] == "KNOWN_GAP" and row["max_abs"] == pytest.approx(4.146e-3, rel=1e-3)


def test_the_amd_and_intel_avx512_hosts_differ_in_two_outputs(tmp_path):
    """The AMD and the Intel AVX-512 stores, merged: of the cases both hold (those where the
    AMD AVX-512 host differs from the AVX2 one), only tensorflow's float16 batch-norm running
    statistics differ, and the view lists exactly those (computed here from the files)."""
    out = tmp_path / "merged"
    assert run_cli("merge", AVX512, INTEL, "--out", out).code == 0
    r = run_cli("report", out, "--cases", CASES, report_dir=tmp_path / "r")
    assert r.code == 0, r.stdout[-3000:]
    listed = {(e["case"], e["side"], e["output"]) for e in r.json["across_hosts"]}
    assert listed == _differing_outputs(AVX512, INTEL) == {("dtypes/batch_norm[float16]", "tensorflow", "running_mean"),
                                                          ("dtypes/batch_norm[float16]", "tensorflow", "running_var")}


def test_two_stored_hosts_merged_list_exactly_what_differs(tmp_path):
    """The AVX2 and the AVX-512 store, merged: the view lists the outputs whose stored arrays
    or statuses differ (computed here from the files), and what separates the two hosts."""
    out = tmp_path / "merged"
    assert run_cli("merge", AMD, AVX512, "--out", out).code == 0
    r = run_cli("report", out, "--cases", CASES, report_dir=tmp_path / "r")
    assert r.code == 0, r.stdout[-3000:]
    shared = {c["name"] for c in manifest(AVX512)["cases"]}
    expected = {k for k in _differing_outputs(AMD, AVX512) if k[0] in shared}
    listed = {(e["case"], e["side"], e["output"]) for e in r.json["across_hosts"]}
    assert listed == expected and len(listed) == 25
    one = next(e for e in r.json["across_hosts"] if e["case"] == "lrn/mindspore-one-channel")
    assert one["output"] == "*" and {h["host"]: h["status"] for h in one["hosts"]} == {"amd-avx2": "OK",
                                                                                       "amd-avx512": "ERROR"}
    assert any(d.startswith("avx512") and d.endswith("only on amd-avx512") for d in one["separated_by"])
    assert not any("0x" in d for d in one["worker_differences"])  # addresses in messages are not facts
    bn = next(e for e in r.json["across_hosts"] if e["case"] == "batch_norm/large-mean" and e["output"] == "y")
    assert "onednn_enabled: - vs True" in bn["worker_differences"]
    assert bn["max_abs_between_hosts"] == pytest.approx(7.64e-3, rel=1e-3)


def test_when_is_judged_against_the_host_that_made_the_store(tmp_path):
    def avx512_only(doc):
        doc["known"][1].update(max_abs=1.0e-2, when={"cpu_flags": ["avx512f"]})
        doc["known"][1].pop("max_bound_ratio")

    copy_case("batch_norm/large-mean", tmp_path / "cases", avx512_only)
    r = run_cli("report", AMD, "--cases", tmp_path / "cases", report_dir=tmp_path / "r")
    assert r.code == 1
    row = r.row("batch_norm/large-mean", "tensorflow vs reference", "y")
    assert row["verdict"] == "FAIL"
    note = "known[1] (gap tensorflow vs * up to max_abs 0.01) does not apply: it is declared for CPUs with " \
           "avx512f; host amd-avx2 lacks avx512f"
    assert note in row["notes"]
    assert note in r.stdout and note in (tmp_path / "r" / "parity.csv").read_text()
    assert "does not apply" in (tmp_path / "r" / "parity.junit.xml").read_text()
    # the other way round: a declaration for hosts without AVX-512 applies to that store
    copy_case("lrn/mindspore-one-channel", tmp_path / "c2", lambda d: d["known"][0].update(
        host_dependent=False, when={"without_cpu_flags": ["avx512f"]}))
    r = run_cli("report", AMD, "--cases", tmp_path / "c2", report_dir=tmp_path / "r2")
    row = r.row("lrn/mindspore-one-channel", "mindspore vs reference", "y")
    assert r.code == 1 and row["verdict"] == "FIXED" and "update or remove" in row["message"]


def test_a_gap_bounded_by_the_rounding_bound(tmp_path):
    copy_case("batch_norm/large-mean", tmp_path / "cases",
              lambda d: d["known"][1].update(max_bound_ratio=0.001))
    r = run_cli("report", AMD, "--cases", tmp_path / "cases", report_dir=tmp_path / "r")
    row = r.row("batch_norm/large-mean", "tensorflow vs reference", "y")
    assert row["verdict"] == "FAIL" and "more than the declared 0.001x" in row["message"]
    assert row["bound_ratio"] == pytest.approx(0.0169, rel=0.01)


def test_stored_runs_of_another_call_are_not_judged(tmp_path):
    copy_case("lrn/mindspore-doc-exact-mapping", tmp_path / "cases", lambda d: d["params"].update(alpha=4.0e-4))
    copy_case("layer_norm/random-last-1", tmp_path / "cases", lambda d: d["inputs"]["x"].update(seed=999))
    r = run_cli("report", AMD, "--cases", tmp_path / "cases", report_dir=tmp_path / "r")
    assert r.code == 1
    row = r.row("lrn/mindspore-doc-exact-mapping", "tensorflow vs reference")
    assert row["verdict"] == "ERROR" and "stored run not judged: the case now asks tensorflow for" in row["message"]
    row = r.row("layer_norm/random-last-1", "torch vs reference")
    assert row["verdict"] == "ERROR" and "inputs changed since this store was made" in row["message"]


# --- several hosts in one report -----------------------------------------------------------

def _differing_outputs(a: Path, b: Path) -> set[tuple]:
    """(case, framework, output) whose stored arrays are not bit-identical, or whose run
    status differs, between two stores (computed here from the files alone)."""
    def runs(root):
        return {(r["case"], r["framework"]): r for r in manifest(root)["runs"]}

    ra, rb = runs(a), runs(b)
    out = set()
    for key in ra.keys() & rb.keys():
        x, y = ra[key], rb[key]
        if x["status"] != y["status"]:
            out.add(key + ("*",))
            continue
        for name in x["outputs"].keys() & y["outputs"].keys():
            if store.array(a, x["outputs"][name]).tobytes() != store.array(b, y["outputs"][name]).tobytes():
                out.add(key + (name,))
    return out


def test_merged_report_of_two_hosts_lists_hosts_and_what_differs(own, tmp_path):
    out = tmp_path / "merged"
    m = run_cli("merge", own.results, AMD, "--out", out)
    assert m.code == 0, m.stderr
    merged = manifest(out)
    labels = {h["label"] for h in merged["hosts"].values()}
    assert labels == {"test-host", "amd-avx2"}
    assert {r["host"] for r in merged["runs"]} == set(merged["hosts"])
    r = run_cli("report", out, report_dir=tmp_path / "r")
    assert [h["label"] for h in r.json["hosts"]] == ["test-host", "amd-avx2"]
    # torch here vs torch there is a comparison like any other
    titles = {x["comparison"] for x in r.rows("batch_norm/large-mean")}
    assert "tensorflow/test-host vs tensorflow/amd-avx2" in titles
    # the "differs across hosts" view lists exactly the outputs whose values or status differ
    shared = {c["name"] for c in manifest(own.results)["cases"]}
    expected = {k for k in _differing_outputs(own.results, AMD) if k[0] in shared}
    listed = {(e["case"], e["side"], e["output"]) for e in r.json["across_hosts"]}
    assert listed == expected
    if expected:
        assert "differs across hosts" in r.stdout and "Differs across hosts" in r.html
    for e in r.json["across_hosts"]:
        assert any("only on" in d or "vs" in d for d in e["separated_by"]), e
    # under the shipped cases, both hosts' runs hold
    r = run_cli("report", out, "--cases", CASES, report_dir=tmp_path / "r2")
    assert r.code == 0, r.stdout[-3000:]


def test_the_same_run_from_the_same_host_twice_is_refused(own, tmp_path):
    r = run_cli("merge", own.results, own.results, "--out", tmp_path / "m")
    assert r.code == 2 and "is also in" in r.stderr and "Traceback" not in r.stderr


# --- environment variants: another ISA from this machine -----------------------------------

def test_env_variants_run_beside_the_plain_run_and_record_their_environment(tmp_path):
    r = run_cli("run", CASES / "lrn" / "mindspore-one-channel.yaml", CASES / "batch_norm" / "large-mean.yaml",
                "--env", "mindspore:avx2=ONEDNN_MAX_CPU_ISA=AVX2", "--env", "tensorflow:noonednn=TF_ENABLE_ONEDNN_OPTS=0",
                "--results", tmp_path / "res", report_dir=tmp_path)
    assert r.code == 0, r.stdout + r.stderr
    runs = {(x["case"], x["framework"], x["variant"]): x for x in manifest(tmp_path / "res")["runs"]}
    ms = runs[("lrn/mindspore-one-channel", "mindspore", "avx2")]
    assert ms["env"] == {"ONEDNN_MAX_CPU_ISA": "AVX2"} and ms["worker"]["env"]["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    # the cap takes effect: mindspore's oneDNN runs its AVX2 kernels (or narrower ones, on a CPU without AVX2)
    assert ms["worker"]["info"]["onednn_isa"] in ("sse41", "avx", "avx2")
    tf = runs[("batch_norm/large-mean", "tensorflow", "noonednn")]
    assert tf["worker"]["info"]["onednn_enabled"] is False
    assert "tensorflow vs tensorflow[noonednn]" in {x["comparison"] for x in r.rows("batch_norm/large-mean")}
    # the measured finding (README, "Hosts"): on a CPU where tensorflow turns oneDNN on, switching
    # it off gives FusedBatchNormV3 the AMD AVX2 host's outputs, bit for bit
    plain = runs[("batch_norm/large-mean", "tensorflow", None)]
    if not plain["worker"]["info"]["onednn_enabled"]:
        pytest.skip("tensorflow does not use oneDNN on this CPU: nothing to switch off")
    amd = {(x["case"], x["framework"]): x for x in manifest(AMD)["runs"]}[("batch_norm/large-mean", "tensorflow")]
    for name in ("y", "running_mean", "running_var"):
        ours = store.array(tmp_path / "res", tf["outputs"][name])
        theirs = store.array(AMD, amd["outputs"][name])
        assert ours.tobytes() == theirs.tobytes(), name


def test_env_option_is_checked(tmp_path):
    for bad in ("mindspore=ONEDNN_MAX_CPU_ISA=AVX2", "mindspore:avx2=1X=2", "paddle:a=X=1", "torch:a b=X=1"):
        r = run_cli("run", CASES / "lrn" / "mindspore-doc-example.yaml", "--env", bad, report_dir=tmp_path)
        assert r.code == 2 and "--env: expected FRAMEWORK:LABEL=VARIABLE=VALUE" in r.stderr, (bad, r.stderr)


# --- a second environment: when: versions is judged per side -----------------------------

TF220 = ROOT / ".venv-tf220" / "bin" / "python"


@pytest.mark.skipif(not TF220.exists() and not os.environ.get("CI"),
                    reason="no .venv-tf220 (`make second-env` installs tensorflow-cpu 2.20.0 there; CI requires it)")
def test_versions_in_when_are_judged_per_side(tmp_path):
    """`lrn/tensorflow-float16-square-overflow` declares tensorflow's overflow for 2.21. With
    tensorflow 2.20 run beside it, the 2.21 row stays KNOWN_GAP; the 2.20 row is judged by its
    own version, to which the declaration does not apply."""
    case = CASES / "lrn" / "tensorflow-float16-square-overflow.yaml"
    r = run_cli("run", case, "--python", f"tensorflow:tf220={TF220}", report_dir=tmp_path)
    assert r.run("lrn/tensorflow-float16-square-overflow", "tensorflow")["version"].startswith("2.21")
    old = [x for c in r.json["cases"] for x in c["runs"] if x["variant"] == "tf220"]
    assert len(old) == 1 and old[0]["version"].startswith("2.20"), r.stdout + r.stderr
    name = "lrn/tensorflow-float16-square-overflow"
    assert r.row(name, "tensorflow vs reference", "y")["verdict"] == "KNOWN_GAP"
    row = r.row(name, "tensorflow[tf220] vs reference", "y")
    assert row["verdict"] != "KNOWN_GAP"
    if row["verdict"] == "FAIL":  # 2.20 overflows too: undeclared there, and the row says why
        assert r.code == 1
        assert "it is declared for tensorflow 2.21; tensorflow[tf220] has tensorflow 2.20" in row["notes"]


# --- the CI fleet workflow the README documents -------------------------------------------

def test_the_documented_ci_workflow_runs_real_parity_commands():
    """docs/ci/github-actions-fleet.yml: shards per runner type, each uploads its store, a last
    job merges them and judges them under cases/. Every parity command it runs parses with the
    real command line (the merge and the report themselves are tested above on real stores)."""
    import shlex

    from parity.cli import build_parser

    wf = yaml.safe_load((ROOT / "docs" / "ci" / "github-actions-fleet.yml").read_text())
    jobs = wf["jobs"]
    assert jobs["report"]["needs"] == "shard" and jobs["report"]["if"] == "always()"
    assert len(jobs["shard"]["strategy"]["matrix"]["runner"]) >= 2
    uses = [s.get("uses", "") for j in jobs.values() for s in j["steps"]]
    assert any(u.startswith("actions/upload-artifact") for u in uses)
    assert any(u.startswith("actions/download-artifact") for u in uses)
    commands = [s["run"] for j in jobs.values() for s in j["steps"] if "parity " in s.get("run", "")]
    verbs = []
    for cmd in commands:
        cmd = cmd.replace("${{ matrix.shard }}", "2").replace("${{ matrix.runner }}", "ubuntu-24.04")
        argv = shlex.split(cmd.split("||")[0])[1:]
        argv = [a for a in argv if a != "stores/*"] + (["stores/a", "stores/b"] if "stores/*" in cmd else [])
        args = build_parser().parse_args(argv)
        verbs.append(args.command)
    assert verbs == ["run", "merge", "report"]


def _row_facts(row) -> tuple:
    """Everything a report shows of a comparison, as text (NaN equals NaN)."""
    def side(s):
        return s.label, s.framework, s.device, s.version, s.spelling, s.variant

    return (row.case.name, row.kind, side(row.a), side(row.b), row.output, row.dtype, row.verdict, row.atol, row.rtol,
            repr(row.metrics), row.message, row.declared, repr(row.known), row.semantic, repr(row.semantic_max_abs),
            row.notes)


def test_cases_judged_together_get_the_rows_each_gets_alone():
    """compare.evaluate_many (parity run judges the cases that finish together in one metrics
    pass) gives every row that evaluate gives one case at a time: on the real outputs of three
    hosts (five ops, three dtypes, FAILs with drill-down data, errors and UNSUPPORTED runs),
    with each case's own stored runs as its baseline in every other case."""
    from parity import compare, runner

    items = []
    for root in (AMD, AVX512, INTEL):
        for k, sc in enumerate(store.load(root).cases.values()):
            sc.read()
            refs = runner.reference_results(sc.case, [r.form for r in sc.results], sc.inputs, sc.digest)
            items.append((sc.case, sc.results, refs) + ((sc.results, "self", k % 4 == 1) if k % 2 else ()))
    alone = [[_row_facts(r) for r in compare.evaluate(*item)] for item in items]
    assert len(items) > 150 and len({item[0].dtype for item in items}) >= 3
    assert {row[6] for rows in alone for row in rows} >= {"PASS", "FAIL", "KNOWN_GAP", "ERROR", "UNSUPPORTED"}
    for size in (1, 7, len(items)):
        together = [[_row_facts(r) for r in rows] for j in range(0, len(items), size)
                    for rows in compare.evaluate_many(items[j:j + size])]
        assert together == alone, size
