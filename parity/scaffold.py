"""`parity new-case`: a ready regression case from stored results.

The case reproduces the stored calls exactly (each framework's native parameters and the
spelling that ran), reads the stored inputs from .npy files beside it, and declares every
gap and error the stored run showed, with the versions that showed them (``when:
versions:``) and a placeholder reason. Validation refuses a reason that still starts with
TODO, so the case cannot land until someone says why the outcome is expected.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import yaml

from parity import frameworks
from parity.cases import PLACEHOLDER, load_case, name_problem
from parity.declarations import headroom
from parity.errors import InputError
from parity.protocol import UPSTREAM



def _version(v: str | None) -> str | None:
    return v.split("+")[0] if v else None


def case_folder(out_dir: Path, name: str) -> Path:
    """The folder below ``out_dir`` a new case named ``name`` is written to: the name with every
    run of characters other than letters, digits, '.', '_' and '-' (a '/' included) made one '-'
    (``regression/lrn/foo`` -> ``regression-lrn-foo``). Raises InputError (exit 2) for a name that
    is not a valid case name, that uses '/' other than to separate group names (a leading '/',
    an empty, '.' or '..' part), or whose folder, resolved (symbolic links followed), is not
    strictly inside ``out_dir``."""
    problem = name_problem(name)
    if problem:
        raise InputError(f"--name {name!r}: not a valid case name: {problem}; a name is printable text with no "
                         "leading or trailing whitespace and no control, format (Cf), line/paragraph separator or "
                         "private-use characters")
    parts = name.split("/")
    if name.startswith("/") or any(part.strip() in ("", ".", "..") for part in parts):
        raise InputError(f"--name {name!r}: a name may use '/' to group cases (lrn/foo), but not as a leading '/' "
                         "or around an empty, '.' or '..' part")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")
    out = Path(out_dir).resolve()
    folder = (out / slug).resolve() if slug not in ("", ".", "..") else out
    if folder == out:
        raise InputError(f"--name {name!r}: names no folder below --out {out_dir} (the folder is named by the "
                         "name's letters, digits, '.', '_' and '-')")
    if not folder.is_relative_to(out):
        raise InputError(f"--name {name!r}: the case would be written to {folder} (through a symbolic link?), "
                         f"which is not inside --out {out_dir}")
    return folder


def _spec(spec) -> dict:
    """A seeded or literal input as the case file wrote it (parity.inputs draws the same bits)."""
    if spec.kind == "values":
        return {"values": spec.values, "dtype": spec.dtype}
    out = {"shape": list(spec.shape), "dtype": spec.dtype, "init": spec.init, "seed": spec.seed}
    out.update(spec.args)
    return out


def _inside(path: Path, folder: Path) -> Path:
    """``path``, after checking that it (resolved: an existing symbolic link followed) is in ``folder``."""
    if path.resolve().parent != folder:
        raise InputError(f"{path} leads outside {folder} (a symbolic link?); refusing to write through it")
    return path


def new_case(results: Path, case_name: str, out_dir: Path, between=None, name: str | None = None) -> Path:
    """Write the regression case; returns its path (``todo(path)`` counts what is left to explain)."""
    from parity import api

    stored = api.load(results)
    names = [c.case.name for c in stored.cases]
    if case_name not in names:
        raise InputError(f"{results}: no case {case_name!r}; it has: {', '.join(names)}")
    cr = stored.case(case_name)
    case = cr.case
    kept = [r for r in cr.results if not between or r.framework in between]
    if between and {r.framework for r in kept} != set(between):
        raise InputError(f"--between {between[0]} {between[1]}: the stored case ran {', '.join(r.framework for r in cr.results)}")
    rows = [row for row in cr.rows if all(s.framework not in frameworks.NAMES or s.framework in
                                          {r.framework for r in kept} for s in (row.a, row.b))]
    src_manifest = stored.manifest
    name = f"regression/{case.name}" if name is None else name
    folder = case_folder(Path(out_dir), name)
    folder.mkdir(parents=True, exist_ok=True)
    folder = case_folder(Path(out_dir), name)  # again: nothing raced a link into its place

    inputs = {}
    for key, arr in stored.inputs(case_name).items():
        if key == UPSTREAM:  # drawn again from grad: {seed} (the same values)
            continue
        spec = case.inputs.get(key)
        if spec is not None and spec.kind in ("random", "values"):  # drawn again, bit for bit, from its spec
            inputs[key] = _spec(spec)
            continue
        if arr.dtype.name == "bfloat16":  # .npy has no bfloat16: float32 holds every value exactly
            np.save(_inside(folder / f"{key}.npy", folder), arr.astype(np.float32), allow_pickle=False)
            inputs[key] = {"file": f"{key}.npy", "dtype": "bfloat16"}
            continue
        np.save(_inside(folder / f"{key}.npy", folder), arr, allow_pickle=False)
        inputs[key] = {"file": f"{key}.npy"}

    versions = {r.framework: _version(r.version) for r in kept if r.version}
    known = []
    for row in rows:
        if row.kind == "reference" and row.verdict in ("ERROR", "CRASH", "TIMEOUT"):
            fw = row.a.framework
            entry = {"framework": fw, "status": row.verdict}
            if row.verdict == "ERROR":
                first = row.message.split(":", 1)[-1].strip().splitlines()[0] if row.message else ""
                entry["error"] = first[:80] or "error"
            entry["when"] = {"versions": {fw: versions[fw]}} if fw in versions else {}
            entry["reason"] = (f"{PLACEHOLDER}: why {fw} {row.verdict.lower()}s here (seen with "
                               f"{fw} {versions.get(fw, '?')}: {row.message.splitlines()[0][:120] if row.message else ''})")
            known.append(entry)
        elif row.kind != "expected" and row.metrics is not None and row.metrics.mismatches:
            sides = [row.a.label, row.b.label]
            fws = [s for s in (row.a.framework, row.b.framework) if s in versions]
            entry = {"between": sides, "max_abs": headroom(row.metrics.max_abs)}
            if row.output != case.op.outputs[0] or len(case.outputs()) > 1:
                entry["output"] = row.output
            if fws:
                entry["when"] = {"versions": {fw: versions[fw] for fw in fws}}
            seen = ", ".join(f"{fw} {versions[fw]}" for fw in fws)
            entry["reason"] = (f"{PLACEHOLDER}: why {sides[0]} and {sides[1]} differ (seen with {seen}: max abs "
                               f"{row.metrics.max_abs:.3g}, {row.cause or 'cause unknown'})")
            known.append(entry)

    doc = {
        "name": name,
        "op": case.op.name,
        "description": (f"Regression case written by `parity new-case` from {results} "
                        f"({src_manifest.get('created', '')}) for {case.name}: the same calls on the same inputs."),
        "source": f"parity results {results}, run by: {src_manifest.get('command', '?')}; original case "
                  f"{next((c['file'] for c in src_manifest['cases'] if c['name'] == case.name), case.path)}",
        "params": case.params,
        "native": {r.framework: r.native for r in kept if r.native is not None},
        "spelling": {r.framework: r.spelling for r in kept if r.spelling},
        "inputs": inputs,
        "frameworks": sorted({r.framework for r in kept}, key=frameworks.NAMES.index),
        "devices": sorted({r.device for r in kept}),
    }
    if case.grad:
        doc["grad"] = dict(case.grad)
    if case.tolerance:
        doc["tolerance"] = case.tolerance
    if known:
        doc["known"] = known
    path = _inside(folder / "case.yaml", folder)
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100, default_flow_style=None))
    # it must load except for the placeholders
    from parity.errors import CaseErrors

    try:
        load_case(path)
    except CaseErrors as exc:
        others = [e for e in exc.errors if PLACEHOLDER not in e.message]
        if others:
            raise
    return path


def todo(path: Path) -> int:
    """The known entries of a written case whose reason is still the placeholder."""
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return sum(1 for k in doc.get("known") or [] if str(k.get("reason", "")).startswith(PLACEHOLDER))
