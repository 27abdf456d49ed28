"""What the runtime ISA caps change, measured (`make isa-caps`): README, "Hosts".

Runs the default suite once with every framework also run under each cap below as an
environment variant (``parity run cases/ --env FW:LABEL=VAR=VALUE ...``), then compares, bit for
bit, every output of each variant with the plain run of the same framework on this machine,
and (with ``--against STORE``) every output of each run with the same run in a results store
made on another host. The float64 reference runs in the parent process, so its caps
(``NPY_DISABLE_CPU_FEATURES``) are measured by computing every reference of the stored runs
again in a subprocess with the variable set.

A cap that changes nothing is a finding too: the table says so. Prints a Markdown table and
writes OUT/isa-caps.json. Not a test: what it finds depends on the CPU.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: (framework, label, variable, value): each becomes ``--env FW:LABEL=VAR=VALUE``
CAPS = [
    ("torch", "aten-avx2", "ATEN_CPU_CAPABILITY", "avx2"),
    ("torch", "aten-default", "ATEN_CPU_CAPABILITY", "default"),
    ("torch", "onednn-avx2", "ONEDNN_MAX_CPU_ISA", "AVX2"),
    ("torch", "mkl-avx2", "MKL_ENABLE_INSTRUCTIONS", "AVX2"),
    ("tensorflow", "no-onednn", "TF_ENABLE_ONEDNN_OPTS", "0"),
    ("tensorflow", "onednn-avx2", "ONEDNN_MAX_CPU_ISA", "AVX2"),
    ("tensorflow", "onednn-sse41", "ONEDNN_MAX_CPU_ISA", "SSE41"),
    ("tensorflow", "mkl-avx2", "MKL_ENABLE_INSTRUCTIONS", "AVX2"),
    ("mindspore", "onednn-avx2", "ONEDNN_MAX_CPU_ISA", "AVX2"),
    ("mindspore", "dnnl-avx2", "DNNL_MAX_CPU_ISA", "AVX2"),
    ("mindspore", "onednn-sse41", "ONEDNN_MAX_CPU_ISA", "SSE41"),
    ("mindspore", "mkl-avx2", "MKL_ENABLE_INSTRUCTIONS", "AVX2"),
    ("jax", "xla-avx2", "XLA_FLAGS", "--xla_cpu_max_isa=AVX2"),
]
#: numpy 2.x names its dispatch targets X86_V3 (AVX2, FMA3) and X86_V4 (AVX-512); older names
#: such as AVX512F are ignored without a word, so the check below confirms the cap took effect
NPY_CAP = "X86_V3 X86_V4 AVX512_ICL AVX512_SPR"


def _bits(arr: np.ndarray) -> bytes:
    return np.ascontiguousarray(arr).tobytes()


def _key(r) -> tuple:
    return (r.case.name, r.framework, r.device, r.dtype)


def compare_runs(variant, plain) -> dict:
    """How a run differs from another of the same case and framework: status, outputs that
    differ bit for bit, and their max abs difference."""
    out = {"status": (plain.status, variant.status), "outputs": 0, "changed": 0, "max_abs": 0.0}
    if plain.status != variant.status:
        return out
    for name in plain.outputs.keys() & variant.outputs.keys():
        a, b = plain.outputs[name], variant.outputs[name]
        out["outputs"] += 1
        if a.shape != b.shape or _bits(a) != _bits(b):
            out["changed"] += 1
            if a.shape == b.shape:
                with np.errstate(invalid="ignore", over="ignore"):
                    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
                d = d[np.isfinite(d)]
                out["max_abs"] = max(out["max_abs"], float(d.max()) if d.size else 0.0)
    return out


def reference_digest(store_dir: Path) -> dict[str, str]:
    """{case: sha256 of every reference output} for the runs of a store, computed here."""
    from parity import runner, store

    src = store.load(store_dir)
    out = {}
    for name, sc in src.cases.items():
        h = hashlib.sha256()
        for ref in runner.reference_results(sc.case, [r.form for r in sc.results], sc.inputs, sc.digest):
            for k in sorted(ref.outputs):
                h.update(k.encode() + _bits(ref.outputs[k]))
        out[name] = h.hexdigest()
    return out


def summarize(store_dir: Path, against: Path | None) -> dict:
    from parity import store

    runs = [r for sc in store.load(store_dir).cases.values() for r in sc.results]
    plain = {_key(r): r for r in runs if not r.variant}
    rows = []
    for fw, label, var, value in CAPS:
        found = [(r, plain.get(_key(r))) for r in runs if r.framework == fw and r.variant == label]
        diffs = [compare_runs(v, p) for v, p in found if p is not None]
        status = sorted({f"{d['status'][0]} -> {d['status'][1]}" for d in diffs if d["status"][0] != d["status"][1]})
        rows.append({"framework": fw, "variable": f"{var}={value}", "runs": len(diffs),
                     "outputs": sum(d["outputs"] for d in diffs), "changed": sum(d["changed"] for d in diffs),
                     "max_abs": max((d["max_abs"] for d in diffs), default=0.0),
                     "status_changes": sum(d["status"][0] != d["status"][1] for d in diffs), "status": status,
                     "cases_with_status_change": sorted(v.case.name for (v, p), d in zip(
                         [f for f in found if f[1] is not None], diffs) if d["status"][0] != d["status"][1])})
    other = []
    if against is not None:
        theirs = {_key(r): r for sc in store.load(against).cases.values() for r in sc.results if not r.variant}
        sides = [(fw, None) for fw in dict.fromkeys(c[0] for c in CAPS)] + [(c[0], c[1]) for c in CAPS]
        for fw, label in sides:
            mine = [r for r in runs if r.framework == fw and r.variant == label and _key(r) in theirs]
            diffs = [compare_runs(r, theirs[_key(r)]) for r in mine]
            other.append({"framework": fw, "variant": label or "(none)", "runs": len(diffs),
                          "same_status": sum(d["status"][0] == d["status"][1] for d in diffs),
                          "outputs": sum(d["outputs"] for d in diffs),
                          "identical": sum(d["outputs"] - d["changed"] for d in diffs),
                          "max_abs": max((d["max_abs"] for d in diffs), default=0.0)})
    return {"caps": rows, "against": other}


def report_only(args) -> dict:
    """The summary of an earlier run's store (``--summarize``: nothing runs again)."""
    return summarize(args.out / "results", args.against if args.against and args.against.exists() else None)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=Path, default=ROOT / "cases")
    ap.add_argument("--against", type=Path, default=ROOT / "tests" / "data" / "hosts" / "amd-epyc-avx2" / "results",
                    help="a results store from another host to compare every run with (default: the AMD AVX2 one)")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "isa-caps")
    ap.add_argument("--reference-digest", type=Path, help=argparse.SUPPRESS)  # the subprocess's job
    args = ap.parse_args(argv)
    if args.reference_digest:
        from numpy._core._multiarray_umath import __cpu_features__ as features

        print(json.dumps({"digest": reference_digest(args.reference_digest),
                          "x86_v3": bool(features.get("X86_V3")), "x86_v4": bool(features.get("X86_V4"))}))
        return 0
    env_args = [a for fw, label, var, value in CAPS for a in ("--env", f"{fw}:{label}={var}={value}")]
    results = args.out / "results"
    cmd = [sys.executable, "-m", "parity", "run", str(args.cases), *env_args, "--results", str(results),
           "--report-dir", str(args.out), "-q", "--host-label", "isa-caps"]
    print("$ " + " ".join(cmd[2:]), file=sys.stderr)
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if not (results / "manifest.json").exists():
        print(p.stdout[-3000:] + p.stderr[-3000:], file=sys.stderr)
        return 1
    doc = summarize(results, args.against if args.against and args.against.exists() else None)
    refs = {}
    for env in ({}, {"NPY_DISABLE_CPU_FEATURES": NPY_CAP}):
        q = subprocess.run([sys.executable, __file__, "--reference-digest", str(results)], cwd=ROOT,
                           capture_output=True, text=True, env={**os.environ, **env}, check=True)
        refs["capped" if env else "plain"] = json.loads(q.stdout)
    changed = sorted(k for k in refs["plain"]["digest"] if refs["plain"]["digest"][k] != refs["capped"]["digest"][k])
    doc["reference"] = {"variable": f"NPY_DISABLE_CPU_FEATURES={NPY_CAP}", "cases": len(refs["plain"]["digest"]),
                        "changed": changed, "took_effect": refs["plain"]["x86_v3"] and not refs["capped"]["x86_v3"]}
    from parity import host

    doc["host"] = host.fingerprint()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "isa-caps.json").write_text(json.dumps(doc, indent=1))
    h = doc["host"]
    print(f"host: {h['cpu']}, flags {' '.join(h['flags'])}\n")
    print("| framework | variable | runs | outputs changed (of) | max abs | status changes |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in doc["caps"]:
        st = f"{r['status_changes']} ({'; '.join(r['status'])}: {', '.join(r['cases_with_status_change'][:4])})" \
            if r["status_changes"] else "0"
        print(f"| {r['framework']} | `{r['variable']}` | {r['runs']} | {r['changed']} ({r['outputs']}) | "
              f"{r['max_abs']:.3g} | {st} |")
    ref = doc["reference"]
    print(f"| reference | `{ref['variable']}` (took effect: {ref['took_effect']}) | {ref['cases']} cases | "
          f"{len(ref['changed'])} cases | | |")
    if doc["against"]:
        print(f"\nagainst {args.against}: outputs identical bit for bit")
        print("| framework | variant | runs | same status | identical outputs (of) | max abs |")
        print("| --- | --- | --- | --- | --- | --- |")
        for r in doc["against"]:
            print(f"| {r['framework']} | {r['variant']} | {r['runs']} | {r['same_status']} | {r['identical']} "
                  f"({r['outputs']}) | {r['max_abs']:.3g} |")
    print(f"\n{args.out / 'isa-caps.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
