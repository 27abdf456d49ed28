"""Results on disk: what a run produced, portable between machines.

Layout of a results directory (schema ``parity-results/1``)::

    RESULTS/
      manifest.json                    the cases, runs and host (below)
      cases/<case-id>/case.yaml        a copy of the case file, and of every file it reads
      cases/<case-id>/inputs/<x>.npy   the inputs as they were generated (bit for bit)
      runs/<case-id>/<side>/<out>.npy  each run's outputs (side: framework[@device][[variant]])

manifest.json holds ``schema``, ``created``, ``command``, ``host`` (the machine that wrote
it), ``hosts`` (every machine its runs come from, by id: parity.host fingerprints),
``versions``, ``cases`` (name, id, op, file, dtype, inputs_sha256) and ``runs`` (case,
framework, device, dtype, variant, python, env, host (an id of ``hosts``), status, message,
spelling, attempts, native, version, seconds, worker, inputs_sha256, outputs: {name: path}).
Stores written before hosts were recorded per run have ``host`` only; their runs belong to it. Everything else (the float64
references, comparisons, reports) is derived from these files: ``parity report RESULTS``
renders reports without running a framework; ``parity merge`` combines stores made on
different machines; ``parity baseline save`` keeps one as a baseline.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from parity import host as hosts_
from parity.cases import Case, expand_dtypes, load_case
from parity.errors import InputError
from parity.report import atomic_write, jsonable
from parity import sides
from parity.runner import Result

SCHEMA = "parity-results/1"


def case_id(name: str) -> str:
    """A directory name for a case: readable, and unique by a short hash of the name."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:80] or "case"
    return f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def side_dir(r: Result, host_id: str | None = None) -> str:
    """The run's directory name: its side label, and the host's id where a merged store holds
    the same side from several hosts."""
    label = sides.label(r.framework, r.device, r.variant) + (f"~{host_id}" if host_id else "")
    return re.sub(r"[^A-Za-z0-9@\[\]~._-]+", "_", label)


def _save_npy(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(arr)
    if arr.dtype.name == "bfloat16":  # .npy has no bfloat16: keep the bits
        np.save(path.with_suffix(".bf16.npy"), arr.view(np.uint16), allow_pickle=False)
    else:
        np.save(path, arr, allow_pickle=False)


def _load_npy(path: Path) -> np.ndarray:
    if path.name.endswith(".bf16.npy"):
        import ml_dtypes

        return np.load(path, allow_pickle=False).view(ml_dtypes.bfloat16)
    return np.load(path, allow_pickle=False)


def _npy_name(base: str, arr) -> str:
    return base + (".bf16.npy" if np.asarray(arr).dtype.name == "bfloat16" else ".npy")


def _referenced_files(case: Case) -> list[Path]:
    files = [s.file for s in case.inputs.values() if s.file is not None]
    files += [e.spec.file for e in case.expected if e.spec.file is not None]
    return files


class Writer:
    """Writes a results directory as cases finish (arrays are not kept in memory)."""

    def __init__(self, root: Path, command: str, host: dict):
        self.root = Path(root)
        if self.root.exists() and not (self.root / "manifest.json").exists() and any(self.root.iterdir()):
            raise InputError(f"--results {self.root}: exists and is not a parity results directory")
        if (self.root / "manifest.json").exists():  # a new run replaces the old results
            for sub in ("cases", "runs"):
                shutil.rmtree(self.root / sub, ignore_errors=True)
            (self.root / "manifest.json").unlink()
        self.root.mkdir(parents=True, exist_ok=True)
        self.manifest = {"schema": SCHEMA, "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                         "command": command, "host": host, "hosts": {host["id"]: host}, "versions": {}, "cases": [],
                         "runs": []}

    def add(self, case: Case, results: list[Result], inputs: dict[str, np.ndarray], digest: str | None) -> None:
        cid = case_id(case.name)
        cdir = self.root / "cases" / cid
        cdir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(case.path, cdir / "case.yaml")
        for f in _referenced_files(case):
            rel = Path(f).resolve().relative_to(case.path.parent.resolve())
            (cdir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, cdir / rel)
        stored_inputs = {}
        for name, arr in inputs.items():
            _save_npy(cdir / "inputs" / f"{name}.npy", arr)
            stored_inputs[name] = f"cases/{cid}/inputs/{_npy_name(name, arr)}"
        self.manifest["cases"].append({"name": case.name, "id": cid, "op": case.op.name, "file": str(case.path),
                                       "dtype": case.dtype, "inputs": stored_inputs, "inputs_sha256": digest})
        for r in results:
            outputs = {}
            for name, arr in r.outputs.items():
                path = self.root / "runs" / cid / side_dir(r) / f"{name}.npy"
                _save_npy(path, arr)
                outputs[name] = f"runs/{cid}/{side_dir(r)}/{_npy_name(name, arr)}"
            self.manifest["runs"].append(run_entry(r, outputs))
            if r.host and r.host.get("id") not in self.manifest["hosts"]:
                self.manifest["hosts"][r.host["id"]] = r.host
            if r.version:
                self.manifest["versions"].setdefault(r.framework + (f"[{r.variant}]" if r.variant else ""), r.version)

    def close(self, interrupted: bool = False) -> None:
        self.manifest["interrupted"] = interrupted
        self.manifest["cases"].sort(key=lambda c: c["name"])  # cases finish in any order
        self.manifest["runs"].sort(key=lambda r: (r["case"], r["framework"], r["device"], r["dtype"],
                                                  r.get("variant") or ""))
        atomic_write(self.root / "manifest.json", json.dumps(jsonable(self.manifest), indent=1))


def run_entry(r: Result, outputs: dict) -> dict:
    return {"case": r.case.name, "framework": r.framework, "device": r.device, "dtype": r.dtype,
            "variant": r.variant, "python": r.python, "status": r.status, "message": r.message,
            "spelling": r.spelling, "attempts": r.attempts, "native": r.native, "version": r.version,
            "seconds": r.seconds, "worker": r.worker, "inputs_sha256": r.inputs_sha256, "outputs": outputs,
            "grad": r.grad, "env": r.env, "host": (r.host or {}).get("id")}


@dataclass
class StoredCase:
    case: Case
    inputs: dict[str, np.ndarray]
    digest: str | None
    results: list[Result] = field(default_factory=list)
    #: where each result's outputs are (parallel to ``results``): {output: path}
    output_paths: list[dict[str, Path]] = field(default_factory=list)
    #: the store this case was read from, and its manifest entry
    root: Path | None = None
    entry: dict = field(default_factory=dict)


@dataclass
class Store:
    root: Path
    manifest: dict
    cases: dict[str, StoredCase]  # by case name, in manifest order

    def hosts(self) -> dict[str, dict]:
        """Every host the runs come from, by id, in the order they first appear."""
        out: dict[str, dict] = {}
        for sc in self.cases.values():
            for r in sc.results:
                if r.host:
                    out.setdefault(r.host["id"], r.host)
        return out


def load(root: Path, load_outputs: bool = True) -> Store:
    """Read a results directory back: cases (from the stored copies), inputs and runs."""
    root = Path(root)
    mpath = root / "manifest.json"
    if not mpath.is_file():
        raise InputError(f"{root}: not a parity results directory (no manifest.json)")
    try:
        manifest = json.loads(mpath.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{mpath}: unreadable: {exc}") from None
    if manifest.get("schema") != SCHEMA:
        raise InputError(f"{mpath}: schema {manifest.get('schema')!r}, expected {SCHEMA!r}")
    cases: dict[str, StoredCase] = {}
    default_host = hosts_.normalize(manifest.get("host"))
    known_hosts = {str(k): hosts_.normalize(v) for k, v in (manifest.get("hosts") or {}).items()}
    for entry in manifest["cases"]:
        case = load_case(root / "cases" / entry["id"] / "case.yaml")
        if case.dtypes:  # one case of a dtype sweep: NAME[dtype]
            sweep = {c.dtype: c for c in expand_dtypes(case)}
            m = re.search(r"\[(\w+)\]$", entry["name"])
            if not m or m.group(1) not in sweep:
                raise InputError(f"{mpath}: case {entry['name']!r} is not one of the dtypes of its sweep")
            case = sweep[m.group(1)]
        if case.name != entry["name"]:  # a default name came from the original path
            case = _renamed(case, entry["name"])
        inputs = {k: _load_npy(root / p) for k, p in entry["inputs"].items()}
        cases[case.name] = StoredCase(case, inputs, entry.get("inputs_sha256"), root=root, entry=entry)
    for entry in manifest["runs"]:
        sc = cases.get(entry["case"])
        if sc is None:
            raise InputError(f"{mpath}: run of unknown case {entry['case']!r}")
        paths = {k: root / p for k, p in entry["outputs"].items()}
        outputs = {k: _load_npy(p) for k, p in paths.items()} if load_outputs else {}
        r = Result(sc.case, entry["framework"], entry["device"], entry["dtype"], entry["status"], entry["message"],
                   outputs, native=entry["native"], spelling=entry["spelling"], attempts=entry["attempts"],
                   version=entry["version"], seconds=entry["seconds"], worker=entry["worker"],
                   inputs_sha256=entry["inputs_sha256"], variant=entry.get("variant"), python=entry.get("python"),
                   grad=entry.get("grad"), env=dict(entry.get("env") or {}),
                   host=known_hosts.get(entry.get("host")) or default_host)
        if r.native is not None:
            names = [r.spelling] if r.spelling else [s.name for s in sc.case.op.spellings[r.framework]][:1]
            r.form = sc.case.op.form_from_native(r.framework, r.native, sc.case.shapes, names[0], sc.case.dtype)
        sc.results.append(r)
        sc.output_paths.append(paths)
    return Store(root, manifest, cases)


def _renamed(case: Case, name: str) -> Case:
    import dataclasses

    return dataclasses.replace(case, name=name)


def run_key(r: Result) -> tuple:
    """What identifies a run in a store: case, side, dtype and host."""
    return (r.case.name, r.framework, r.device, r.dtype, r.variant or None, (r.host or {}).get("id"))


def load_many(roots: list[Path], load_outputs: bool = True) -> Store:
    """Several stores as one (in memory, nothing copied): the cases of all of them, each case's
    runs from every store. Runs from different hosts stay apart (their host tells them apart);
    the same case must have the same inputs in every store, and the same run (case, side,
    dtype, host) may come from one store only."""
    stores = [load(r, load_outputs) for r in roots]
    if len(stores) == 1:
        return stores[0]
    cases: dict[str, StoredCase] = {}
    seen: dict[tuple, Path] = {}
    for st in stores:
        for name, sc in st.cases.items():
            first = cases.get(name)
            if first is None:
                first = cases[name] = StoredCase(sc.case, sc.inputs, sc.digest, root=sc.root, entry=sc.entry)
            elif first.digest != sc.digest:
                raise InputError(f"{st.root}: case {name!r} has other inputs than in {first.root} (sha256 "
                                 f"{sc.digest} vs {first.digest}): not the same case")
            for r, paths in zip(sc.results, sc.output_paths):
                key = run_key(r)
                if key in seen:
                    side = sides.label(r.framework, r.device, r.variant)
                    raise InputError(f"{st.root}: {name}: {side} {r.dtype} from host {key[-1]} is also in "
                                     f"{seen[key]}: give one of them a variant label (--python or --env "
                                     f"FW:LABEL=...) or leave one store out")
                seen[key] = st.root
                r.case = first.case
                first.results.append(r)
                first.output_paths.append(paths)
    manifest = {
        "schema": SCHEMA, "created": min(str(st.manifest.get("created", "")) for st in stores),
        "command": " + ".join(str(st.manifest.get("command", "?")) for st in stores),
        "host": stores[0].manifest.get("host"), "interrupted": any(st.manifest.get("interrupted") for st in stores),
        "merged_from": [str(st.root) for st in stores],
    }
    merged = Store(stores[0].root, manifest, cases)
    manifest["hosts"] = merged.hosts()
    return merged


def merge(stores: list[Path], out: Path) -> Path:
    """Combine result stores (e.g. from a CPU and a GPU machine, or from several hosts) into
    ``out``. Runs of the same side from different hosts are kept apart (their directories
    are named with the host's id)."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise InputError(f"{out}: exists and is not empty")
    src = load_many(stores, load_outputs=False)
    multi = len(src.hosts()) > 1
    merged = {"schema": SCHEMA, "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "command": "parity merge " + " ".join(map(str, stores)), "host": src.manifest.get("host"),
              "hosts": src.hosts(), "versions": {}, "cases": [], "runs": [], "merged_from": [str(s) for s in stores],
              "interrupted": bool(src.manifest.get("interrupted"))}
    for sc in src.cases.values():
        cid = sc.entry["id"]
        shutil.copytree(sc.root / "cases" / cid, out / "cases" / cid)
        merged["cases"].append(sc.entry)
        for r, paths in zip(sc.results, sc.output_paths):
            rels = {}
            for name, path in paths.items():
                rel = f"runs/{cid}/{side_dir(r, r.host['id'] if multi else None)}/{path.name}"
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, out / rel)
                rels[name] = rel
            merged["runs"].append(run_entry(r, rels))
            if r.version:
                merged["versions"].setdefault(r.framework + (f"[{r.variant}]" if r.variant else ""), r.version)
    atomic_write(out / "manifest.json", json.dumps(jsonable(merged), indent=1))
    return out


def save_baseline(results: Path, baselines: Path, name: str) -> Path:
    """Keep a results store as baseline ``name`` (outputs, inputs, versions)."""
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise InputError(f"baseline name {name!r}: use letters, digits, '.', '_' and '-'")
    load(results, load_outputs=False)  # it must be a valid store
    dest = Path(baselines) / name
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(results, dest, ignore=shutil.ignore_patterns("logs"))
    return dest


def baseline_path(baselines: Path, name: str) -> Path:
    path = Path(baselines) / name
    if not (path / "manifest.json").is_file():
        known = sorted(p.name for p in Path(baselines).glob("*") if (p / "manifest.json").is_file()) \
            if Path(baselines).is_dir() else []
        raise InputError(f"no baseline {name!r} in {baselines}" + (f"; there are: {', '.join(known)}" if known else
                                                                    "; make one with `parity baseline save NAME`"))
    return path


def default_results_dir(report_dir: Path) -> Path:
    return Path(report_dir) / "results"


def is_store(path: Path) -> bool:
    return (Path(path) / "manifest.json").is_file()


