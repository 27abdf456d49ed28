"""Results on disk: what a run produced, portable between machines.

Layout of a results directory (schema ``parity-results/3``)::

    RESULTS/
      manifest.json                    the cases, runs and host (below)
      cases.yamls                      a copy of each case file, one after another; the
                                       manifest's case entry says where (``copy``: file,
                                       offset, size); a copy reads as RESULTS/cases.yamls/<case-id>.yaml
      cases/<case-id>/case.yaml        instead, for a case that reads other files (``file:``
                                       inputs, a case built in code): its copy, and theirs
      arrays.npys                      every array: the inputs as they were generated and each
                                       run's outputs (bit for bit), one whole .npy record after
                                       another; the manifest says where each is:
                                       {"file": "arrays.npys", "offset": BYTES, "size": BYTES}
                                       (and "bfloat16": true for bfloat16 bits kept as uint16)
      baseline.json                    only in a baseline: its name and where it came from

Stores of schema ``parity-results/1`` (written before 2026-12-02) keep every case copy in
``cases/<case-id>/case.yaml`` and each array in a file of its own, named in the manifest by
its path: ``cases/<case-id>/inputs/<x>.npy``,
``runs/<case-id>/<side>.<out>.npy`` (or ``runs/<case-id>/<side>/<out>.npy``; ``.bf16.npy``
for bfloat16 bits); they are read as they always were. One file for all arrays and one for
the case copies is what makes a store cheap to write: creating a file or a directory costs
40 to 600 microseconds of kernel time, by filesystem and machine, and a small case has a
copy and four arrays.

manifest.json holds ``schema``, ``created``, ``command``, ``host`` (the machine that wrote
it), ``hosts`` (every machine its runs come from, by id: parity.host fingerprints),
``workers`` (the facts of every worker process its runs come from: interpreter, framework
build, threads; by id), ``versions``, ``cases`` (name, id, op, file, dtype, inputs_sha256)
and ``runs`` (case, framework, device, dtype, variant, python, env, host (an id of
``hosts``), status, message, spelling, attempts, native, version, seconds, worker (an id of
``workers``), inputs_sha256, outputs: {name: where}). Stores written before hosts were
recorded per run have ``host`` only; their runs belong to it. Stores of schema 1 and 2 keep
each run's worker facts in the run, whole (a worker's thousands of runs repeated them: more
than half of a small case's manifest). Everything else (the float64 references, comparisons, reports) is derived from these
files: ``parity report RESULTS`` renders reports without running a framework; ``parity
merge`` combines stores made on different machines; ``parity baseline save`` keeps one as a
baseline.

Nothing is lost, nothing is written outside (parity.fsutil):

- A run writes its store beside the old one (``.RESULTS.parity-new-*``) and swaps it into
  place when it ends, so ``RESULTS`` is always a whole store, the old or the new one. Each
  finished case is appended to a journal there; a run that died (kill -9, OOM, a CI time
  limit) leaves its journal, and the next run into ``RESULTS`` turns it into a store of the
  cases it finished, ``RESULTS.died-TIME``, and says so (the arrays of a case are in the OS's
  hands before its journal line is).
- One process at a time writes a store (a lock file beside it, ``.RESULTS.lock``).
- A baseline is never written by a run, and replaced only when asked (``--replace``).
- A store is untrusted input, like a case file: the manifest is validated (one line per
  problem), every path in it must stay inside the store (symlinks resolved), and every
  ``.npy`` is checked before it is read (parity.npyio).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import itertools
import json
import os
import re
import shutil
import tempfile
from array import array as _ints
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from jsonschema import Draft202012Validator

from parity import fastschema, fsutil, jsonstream, npyio, sides
from parity import host as hosts_
from parity.cases import Case, expand_dtypes, load_case
from parity.errors import CaseError, CaseErrors, InputError
from parity.fsutil import atomic_write
from parity.report import dumps
from parity.runner import Result
from parity.verdicts import STATUSES

SCHEMA = "parity-results/3"
#: the schemas a store may have: the one written, and the older ones read
SCHEMAS = ("parity-results/1", "parity-results/2", SCHEMA)
JOURNAL = "journal.jsonl"
#: the store's arrays, one .npy record after another
PACK = "arrays.npys"
#: the store's case copies (of the cases that read no other file), one after another
CASE_PACK = "cases.yamls"
BASELINE_MARK = "baseline.json"


def case_id(name: str) -> str:
    """A directory name for a case: readable, and unique by a short hash of the name."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:80] or "case"
    return f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


@dataclass(frozen=True, slots=True)
class Packed:
    """Where an array of a store is in its pack (``path``, resolved inside the store): a whole
    .npy record of ``size`` bytes at ``offset``; ``bfloat16``: uint16 bits of bfloat16."""

    path: Path
    offset: int
    size: int
    bfloat16: bool = False

    def __str__(self) -> str:
        return f"{self.path} (bytes {self.offset}..{self.offset + self.size})"


def _is_bf16(where: Path | Packed) -> bool:
    return where.bfloat16 if isinstance(where, Packed) else where.name.endswith(".bf16.npy")


def _load_npy(where: Path | Packed, packs: npyio.Packs | None = None) -> np.ndarray:
    """A stored array (a file, or a record of the pack: read through ``packs``, where given,
    which opens each pack once), its header checked first (a store is untrusted input)."""
    try:
        if isinstance(where, Packed):
            arr = (packs.load if packs else npyio.load_at)(where.path, where.offset, where.size)
        else:
            arr = npyio.load(where)
    except npyio.NpyError as exc:
        raise InputError(f"{where}: {exc}") from None
    if _is_bf16(where):
        import ml_dtypes

        if arr.dtype != np.uint16:
            raise InputError(f"{where}: bfloat16 is stored as uint16 bits, not {arr.dtype}")
        return arr.view(ml_dtypes.bfloat16)
    return arr


def _check_npy(where: Path | Packed, packs: npyio.Packs | None = None) -> None:
    try:
        if isinstance(where, Packed):
            (packs.check if packs else npyio.check_at)(where.path, where.offset, where.size)
        else:
            npyio.check(where)
    except npyio.NpyError as exc:
        raise InputError(f"{where}: {exc}") from None


def _record(where: Path | Packed, packs: npyio.Packs | None = None) -> bytes:
    """The bytes of a stored array or case copy (checked when its store was loaded)."""
    if not isinstance(where, Packed):
        return where.read_bytes()
    if packs is None:
        with npyio.Packs() as packs:
            return _record(where, packs)
    try:
        data = packs.read(where.path, where.offset, where.size)
    except npyio.NpyError as exc:
        raise InputError(f"{where}: {exc}") from None
    if len(data) != where.size:
        raise InputError(f"{where}: the file changed while it was read (it holds {len(data)} of those bytes now)")
    return data


class _Pack:
    """A store's pack of arrays, written: each array appended as a whole .npy record (bfloat16
    as its uint16 bits); ``put`` says where, as the manifest does."""

    def __init__(self, path: Path):
        self.name = path.name
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o666)
        self.at = 0
        self.pending: list = []  # what ``put`` placed and ``flush`` writes

    def put(self, arr) -> dict:
        """Place ``arr`` at the end of the pack; it is written by ``flush`` (with the others put
        since: one writev for a case's arrays, not two writes for each)."""
        arr = np.asarray(arr)
        bf16 = arr.dtype.name == "bfloat16"  # .npy has no bfloat16: keep the bits
        parts = npyio.parts(arr.view(np.uint16) if bf16 else arr)
        self.pending += parts
        return self._placed(sum(memoryview(p).nbytes for p in parts), bf16)

    def flush(self) -> None:
        pending, self.pending = self.pending, []
        if pending:
            fsutil.writev_all(self.fd, pending)

    def put_record(self, data: bytes, bf16: bool = False) -> dict:
        self.flush()  # after what ``put`` placed before it
        return self._placed(fsutil.write_all(self.fd, data), bf16)

    def _placed(self, n: int, bf16: bool) -> dict:
        where = {"file": self.name, "offset": self.at, "size": n}
        if bf16:
            where["bfloat16"] = True
        self.at += n
        return where

    def cut(self, at: int) -> None:
        """Forget what was written from ``at`` on (a case that failed to be written whole: its
        space is free again for what comes next)."""
        self.pending = []
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, at)
            os.lseek(self.fd, at, os.SEEK_SET)
            self.at = at

    def close(self, sync: bool = False) -> None:
        """Close the file; ``sync``: on disk first (a finished store's manifest names it)."""
        if self.fd >= 0:
            try:
                self.flush()
                if sync:
                    os.fsync(self.fd)
            finally:
                os.close(self.fd)
                self.fd = -1


def array(root: Path, where) -> np.ndarray:
    """The array a store's manifest names (``where``: a path, or a record of its pack),
    checked as ``load`` checks it."""
    return _load_npy(_located(fsutil.Confined(Path(root)), where, f"{root}", {}))


def _case_copy(root: Path, confined: fsutil.Confined, entry: dict, what: str,
               sizes: dict, packs: npyio.Packs) -> tuple[Case, Packed | None]:
    """A stored case, loaded from its copy, and where that copy is: a record of the case pack
    (read as the file RESULTS/cases.yamls/<case-id>.yaml, so that a ``file:`` input it names is
    looked for inside the pack, where there is none), or cases/<case-id>/case.yaml (None)."""
    if "copy" not in entry:
        return load_case(confined.path(f"cases/{entry['id']}/case.yaml", what + ".id")), None
    where = _located(confined, entry["copy"], what + ".copy", sizes)
    raw = _record(where, packs)
    return dataclasses.replace(load_case(Path(root) / CASE_PACK / f"{entry['id']}.yaml", raw=raw), text=raw), where


def _located(confined: fsutil.Confined, ref, what: str, sizes: dict) -> Path | Packed:
    """Where a stored array is: a path inside the store, or a record of a pack inside it that
    lies within the file (``sizes``: each pack met, by the name the manifest gives it, found
    inside the store and its size taken once per load)."""
    if isinstance(ref, str):
        return confined.path(ref, what)
    found = sizes.get(ref["file"])
    if found is None:
        path = confined.path(ref["file"], what + ".file")
        found = sizes[ref["file"]] = (path, path.stat().st_size)
    path, size = found
    offset, n = ref["offset"], ref["size"]
    if offset + n > size:
        raise InputError(f"{what}: bytes {offset}..{offset + n} of {ref['file']!r}: past its end ({size} bytes)")
    return Packed(path, offset, n, bool(ref.get("bfloat16")))


_NATIVE_VALIDATORS: dict = {}


def _native_validator(op, fw: str) -> Draft202012Validator:
    key = (op.name, fw)
    if key not in _NATIVE_VALIDATORS:
        _NATIVE_VALIDATORS[key] = Draft202012Validator(op.native_schemas[fw])
    return _NATIVE_VALIDATORS[key]


def _referenced_files(case: Case) -> list[tuple[Path, Path]]:
    """(file, where the store keeps it relative to the case copy) of every file a case reads:
    where the case says it is (a symlink's name, not its target's), so the copy loads again."""
    specs = [s for s in case.inputs.values() if s.file is not None]
    specs += [e.spec for e in case.expected if e.spec.file is not None]
    if not specs:  # most cases: no resolve (a system call per directory of the path)
        return []
    base = case.path.parent.resolve()
    return [(s.file, s.file_as_written or Path(s.file).resolve().relative_to(base)) for s in specs]


def _write_document(case: Case, cdir: Path) -> None:
    """The copy of a case built in code (parity.case): its mapping as YAML, each array input
    saved beside it (bfloat16 as float32, which holds every value) and read as a file."""
    import yaml

    doc = dict(case.document)
    inputs = {}
    for key, spec in doc.get("inputs", {}).items():
        if isinstance(spec, dict) and isinstance(spec.get("array"), np.ndarray):
            arr = spec["array"]
            rel = f"in-code/{key}.npy"
            (cdir / "in-code").mkdir(exist_ok=True)
            np.save(cdir / rel, arr.astype(np.float32) if arr.dtype.name == "bfloat16" else arr, allow_pickle=False)
            spec = {"file": rel, "dtype": spec["dtype"]}
        inputs[key] = spec
    doc["inputs"] = inputs
    text = "# written by parity from a case built in code (parity.case)\n" + yaml.safe_dump(
        doc, sort_keys=False, allow_unicode=True, width=100, default_flow_style=None)
    (cdir / "case.yaml").write_text(text, encoding="utf-8")


def is_baseline(path: Path) -> bool:
    return (Path(path) / BASELINE_MARK).is_file()


class Writer:
    """Writes a results store as a whole or not at all: into a staging directory beside
    ``root``, swapped into place by ``close`` (see the module docstring). Holds ``root``'s
    lock from start to close; arrays are written as cases finish, not kept in memory."""

    def __init__(self, root: Path, command: str, host: dict):
        self.root = Path(root)
        what = f"--results {self.root}"
        fsutil.usable_dir(self.root.parent, what)
        self.lock = fsutil.lock_beside(self.root, what).acquire()
        try:
            fsutil.recover_swap(self.root)
            if self.root.exists():
                if not self.root.is_dir():
                    raise InputError(f"{what}: exists and is not a directory")
                if is_baseline(self.root):
                    raise InputError(f"{what}: is a baseline ({_baseline_name(self.root)!r}); a run never writes "
                                     f"into a baseline: give another --results")
                if not is_store(self.root) and any(self.root.iterdir()):
                    raise InputError(f"{what}: exists and is not a parity results directory")
            self.recovered = recover_died(self.root)
            self.stage = fsutil.staging_dir(self.root)
            # the manifest's head; its cases and runs are in the journal, and written from it by close
            self.manifest = {"schema": SCHEMA, "created": _now(), "command": command, "host": host,
                             "hosts": {host["id"]: host}, "workers": {}, "versions": {}}
            self._workers = _WorkerIds(self.manifest["workers"])
            self._cases: list[tuple[str, str, int]] = []  # (name, id, offset of its journal line)
            self._pack = _Pack(self.stage / PACK)
            self._copies = _Pack(self.stage / CASE_PACK)
            self._journal = open(self.stage / JOURNAL, "ab")
            self._log({"header": {k: self.manifest[k] for k in ("schema", "created", "command", "host")},
                       "pid": os.getpid()})
        except BaseException:
            self.lock.release()
            raise
        self.closed = False

    def _log(self, line: dict) -> int:
        """Append a line to the journal; its offset."""
        at = self._journal.tell()
        self._journal.write((dumps(line) + "\n").encode())
        self._journal.flush()  # in the OS's hands: a killed process loses nothing written
        return at

    def add(self, case: Case, results: list[Result], inputs: dict[str, np.ndarray], digest: str | None) -> None:
        """Store a judged case: its copy, then its arrays appended to the pack, then its journal
        line. A case that fails to be written (a full disk) leaves no bytes in the packs."""
        cid = case_id(case.name)
        referenced = [] if case.document is not None else _referenced_files(case)
        packed = case.document is None and not referenced  # its copy goes to the case pack
        copy = None
        if not packed:  # it reads other files (or is built in code): a directory of copies
            cdir = self.stage / "cases" / cid
            cdir.mkdir(parents=True, exist_ok=True)
            if case.document is not None:
                _write_document(case, cdir)
            else:
                shutil.copyfile(case.path, cdir / "case.yaml")
            for f, rel in referenced:
                (cdir / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, cdir / rel)
        start, copies_start = self._pack.at, self._copies.at
        try:
            if packed:
                copy = self._copies.put_record(case.text if case.text is not None else Path(case.path).read_bytes())
            stored_inputs = {name: self._pack.put(arr) for name, arr in inputs.items()}
            known = len(self.manifest["workers"])
            runs = [run_entry(r, {name: self._pack.put(arr) for name, arr in r.outputs.items()}, self._workers)
                    for r in results]
            self._pack.flush()
        except BaseException:
            self._pack.cut(start)
            self._copies.cut(copies_start)
            raise
        entry = {"name": case.name, "id": cid, "op": case.op.name, "file": str(case.path), "dtype": case.dtype,
                 "inputs": stored_inputs, "inputs_sha256": digest}
        if copy is not None:
            entry["copy"] = copy
        hosts, versions = {}, {}
        for r in results:
            if r.host and r.host.get("id") not in self.manifest["hosts"]:
                hosts[r.host["id"]] = r.host
            if r.version:
                versions.setdefault(r.framework + (f"[{r.variant}]" if r.variant else ""), r.version)
        self.manifest["hosts"].update(hosts)
        for k, v in versions.items():
            self.manifest["versions"].setdefault(k, v)
        workers = dict(list(self.manifest["workers"].items())[known:])  # met first in this case
        self._cases.append((case.name, cid, self._log({"case": entry, "runs": runs, "hosts": hosts,
                                                        "workers": workers, "versions": versions})))

    def abandon(self) -> None:
        """After a failure of the harness or the machine (a full disk): the old store stays in
        place; the cases this run finished become ``ROOT.died-TIME`` now, or, if even that
        cannot be written, at the next run into ``root``. Releases the lock."""
        if self.closed:
            return
        self.closed = True
        try:
            self._pack.close()
            self._copies.close()
            self._journal.close()
            _salvage(self.stage, self.root)
        except OSError:
            pass  # the journal stays: recover_died tries again next time
        finally:
            self.lock.release()

    def close(self, interrupted: bool = False) -> None:
        """Finish the store and put it in place of the old one; release the lock."""
        if self.closed:
            return
        try:
            self._pack.close(sync=True)
            self._copies.close(sync=True)
            self._journal.close()
            self._write_manifest(interrupted)
            os.unlink(self.stage / JOURNAL)
            keep = self._keep_previous()
            fsutil.swap_into_place(self.stage, self.root, keep)
        finally:
            self.closed = True
            self.lock.release()


    def _write_manifest(self, interrupted: bool) -> None:
        """manifest.json, in pieces: its cases and runs read back from the journal one case at
        a time, in the order of _finish_manifest (the same text as one dumps of the whole), so
        that a store of any size is finished in the memory of its largest case."""
        head = {**self.manifest}
        path = self.stage / "manifest.json"
        fd, tmp = tempfile.mkstemp(prefix=".manifest.json.", dir=self.stage)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out, \
                    tempfile.TemporaryFile("w+", encoding="utf-8", dir=self.stage) as runs, \
                    open(self.stage / JOURNAL, "rb") as journal:
                out.write(dumps(head)[:-1] + ',"cases":[')
                n_runs = 0
                for i, (_, _, at) in enumerate(sorted(self._cases)):  # by name, as _finish_manifest
                    journal.seek(at)
                    doc = json.loads(journal.readline())
                    out.write(("," if i else "") + dumps(doc["case"]))
                    for r in sorted(doc["runs"], key=_run_order):
                        runs.write(("," if n_runs else "") + dumps(r))
                        n_runs += 1
                out.write('],"runs":[')
                runs.seek(0)
                shutil.copyfileobj(runs, out)
                out.write('],"interrupted":' + dumps(interrupted) + "}")
                out.flush()
                os.fsync(out.fileno())
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _keep_previous(self) -> Path | None:
        """Where the store this run replaces is kept, when it has cases this run does not (a
        run of a subset never drops the last full results without a word): ROOT.previous.
        Its cases are those of its manifest (by case_id)."""
        import sys

        old_ids = _case_ids(self.root / "manifest.json")
        if old_ids is None:
            return None
        lost = old_ids - {cid for _, cid, _ in self._cases}
        if not lost:
            return None
        keep = self.root.parent / f"{self.root.name}.previous"
        print(f"note: {self.root} held {len(old_ids)} case(s), {len(lost)} of them not in this run; that store "
              f"is kept as {keep} (parity report {keep}), this run's is {self.root}", file=sys.stderr)
        return keep


def _case_ids(manifest: Path) -> set[str] | None:
    """The case ids of a store's manifest (None if it is not one that reads), its case entries
    decoded one at a time and the rest not at all (its runs come after its cases): at 10,000
    cases 0.4 s and 59 MiB at the peak, against 2.2 s and 131 MiB for json.loads of the whole."""
    try:
        text = manifest.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    decode, ws = json.JSONDecoder().raw_decode, re.compile(r"\s*")
    try:
        i = ws.match(text, 1).end() if text.startswith("{") else -1
        while 0 < i < len(text) and text[i] != "}":
            key, i = decode(text, i)
            i = ws.match(text, text.index(":", i) + 1).end()
            if key != "cases":
                _, i = decode(text, i)
            else:
                ids, i = set(), ws.match(text, text.index("[", i) + 1).end()
                while text[i] != "]":
                    entry, i = decode(text, i)
                    ids.add(str(entry.get("id")) if isinstance(entry, dict) else "")
                    i = ws.match(text, i).end()
                    i = ws.match(text, i + 1).end() if text[i] == "," else i
                return ids
            i = ws.match(text, i).end()
            i = ws.match(text, i + 1).end() if text[i] == "," else i
    except (ValueError, IndexError):
        pass
    return None


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _run_order(r: dict) -> tuple:
    return r["case"], r["framework"], r["device"], r["dtype"], r.get("variant") or ""


def _finish_manifest(manifest: dict, interrupted: bool) -> None:
    manifest["interrupted"] = interrupted
    manifest["cases"].sort(key=lambda c: c["name"])  # cases finish in any order
    manifest["runs"].sort(key=_run_order)


def recover_died(root: Path) -> list[tuple[Path, int]]:
    """Turn what runs into ``root`` that died left behind into stores of the cases they
    finished (``ROOT.died-TIME``, marked interrupted), and remove the rest; call with
    ``root``'s lock held. Returns [(store, number of cases)], also said on stderr."""
    out = []
    for stage in fsutil.stale_staging(root):
        saved = _salvage(stage, root, "an earlier run")
        if saved:
            out.append(saved)
    return out


def _salvage(stage: Path, root: Path, who: str = "this run") -> tuple[Path, int] | None:
    """A staging directory of ``root`` that did not become it: the cases its journal records
    become the store ``ROOT.died-TIME`` (marked interrupted, said on stderr); a staging
    directory without any is removed."""
    import sys

    journal = stage / JOURNAL
    manifest = _manifest_from_journal(journal) if journal.is_file() else None
    if manifest is None or not manifest["cases"]:
        shutil.rmtree(stage, ignore_errors=True)
        return None
    stamp = re.sub(r"[^0-9T]", "", str(manifest.get("created", "")))[:15] or "unknown"
    dest = root.parent / f"{root.name}.died-{stamp}"
    n = 1
    while dest.exists():
        n += 1
        dest = root.parent / f"{root.name}.died-{stamp}-{n}"
    count = len(manifest["cases"])
    manifest["recovered"] = f"a run into {root} that did not finish; its journal held {count} finished case(s)"
    _finish_manifest(manifest, True)
    atomic_write(stage / "manifest.json", dumps(manifest))
    os.unlink(journal)
    os.rename(stage, dest)
    print(f"note: {who} into {root} (started {manifest.get('created', '?')}) did not finish; the {count} "
          f"case(s) it finished are kept in {dest} (parity report {dest})", file=sys.stderr)
    return dest, count


def _manifest_from_journal(journal: Path) -> dict | None:
    """The manifest of the cases a journal records as finished (a torn last line is dropped)."""
    manifest = None
    with open(journal, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                doc = json.loads(line)
            except json.JSONDecodeError:
                break  # the line the process was writing when it died
            if not isinstance(doc, dict):
                break
            if "header" in doc and manifest is None:
                manifest = {**doc["header"], "hosts": {}, "workers": {}, "versions": {}, "cases": [], "runs": []}
                h = doc["header"].get("host") or {}
                if isinstance(h, dict) and "id" in h:
                    manifest["hosts"][h["id"]] = h
            elif manifest is not None and "case" in doc:
                manifest["cases"].append(doc["case"])
                manifest["runs"] += doc.get("runs", [])
                manifest["hosts"].update(doc.get("hosts") or {})
                manifest["workers"].update(doc.get("workers") or {})
                for k, v in (doc.get("versions") or {}).items():
                    manifest["versions"].setdefault(k, v)
    return manifest


class _WorkerIds:
    """The ids of a store's ``workers`` table (``table``: id -> facts, filled as workers are
    met): a worker's id is made from its facts, so the same facts have one entry however many
    runs, dicts or stores they come from."""

    def __init__(self, table: dict):
        self.table = table
        self._seen: dict[int, tuple[dict, str]] = {}  # id() of a facts dict met -> (it, its id)

    def __call__(self, facts: dict | None) -> str | None:
        if facts is None:
            return None
        hit = self._seen.get(id(facts))
        if hit is not None and hit[0] is facts:
            return hit[1]
        wid = "w-" + hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()[:16]
        self.table.setdefault(wid, facts)
        if len(self._seen) >= 1024:  # the runner hands one dict per worker; other callers may not
            self._seen.clear()
        self._seen[id(facts)] = (facts, wid)
        return wid


def run_entry(r: Result, outputs: dict, workers: _WorkerIds) -> dict:
    """A run's manifest entry; its worker's facts go to the ``workers`` table, the run names
    their id."""
    return {"case": r.case.name, "framework": r.framework, "device": r.device, "dtype": r.dtype,
            "variant": r.variant, "python": r.python, "status": r.status, "message": r.message,
            "spelling": r.spelling, "attempts": r.attempts, "native": r.native, "version": r.version,
            "seconds": r.seconds, "worker": workers(r.worker), "inputs_sha256": r.inputs_sha256, "outputs": outputs,
            "grad": r.grad, "env": r.env, "host": (r.host or {}).get("id"), "traceback": r.traceback, "log": r.log}


@dataclass
class StoredCase:
    case: Case
    inputs: dict[str, np.ndarray]
    digest: str | None
    results: list[Result] = field(default_factory=list)
    #: where each result's outputs are (parallel to ``results``): {output: a file or a Packed}
    output_paths: list[dict[str, Path | Packed]] = field(default_factory=list)
    #: the store this case was read from, and its manifest entry
    root: Path | None = None
    entry: dict = field(default_factory=dict)
    #: where the inputs are: read by ``read`` after a lazy load (load(lazy=True))
    input_paths: dict[str, Path | Packed] = field(default_factory=dict)
    #: where its case copy is in the case pack (None: in cases/<case-id>/)
    copy: Packed | None = None

    def read(self) -> None:
        """The arrays a lazy load left on disk (checked already): the inputs, and the outputs
        of each run that has a path for them (a run ``rejudge`` set aside has none)."""
        with npyio.Packs() as packs:
            if self.input_paths and not self.inputs:
                self.inputs = {k: _load_npy(p, packs) for k, p in self.input_paths.items()}
            for r, paths in zip(self.results, self.output_paths):
                if paths and not r.outputs:
                    r.outputs = {k: _load_npy(p, packs) for k, p in paths.items()}

    def drop(self) -> None:
        """Forget the arrays (``read`` reads them again)."""
        self.inputs = {}
        for r in self.results:
            r.outputs = {}


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


_TEXT = {"type": "string"}
_OPT_TEXT = {"type": ["string", "null"]}
#: a record of a pack (where a case copy or an array is), and where each array is: such a
#: record, or a path inside the store (schema 1)
_RECORD = {"type": "object", "required": ["file", "offset", "size"], "additionalProperties": False, "properties": {
    "file": {"type": "string", "minLength": 1}, "offset": {"type": "integer", "minimum": 0},
    "size": {"type": "integer", "minimum": 1, "maximum": 1 << 40}, "bfloat16": {"type": "boolean"}}}
_ARRAYS = {"type": "object", "additionalProperties": {"anyOf": [{"type": "string", "minLength": 1}, _RECORD]}}
_LABEL = {"type": ["string", "null"], "pattern": r"^[A-Za-z0-9._-]{1,64}$"}
MANIFEST_SCHEMA = {
    "type": "object",
    "required": ["schema", "cases", "runs"],
    "properties": {
        "schema": {"enum": list(SCHEMAS)},
        "created": _TEXT, "command": _TEXT, "interrupted": {"type": "boolean"},
        "host": {"type": ["object", "null"]},
        "hosts": {"type": "object", "additionalProperties": {"type": "object"}},
        "workers": {"type": "object", "additionalProperties": {"type": "object"}},
        "versions": {"type": "object", "additionalProperties": _TEXT},
        "cases": {"type": "array", "items": {
            "type": "object", "required": ["name", "id", "inputs"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 500},
                "id": {"type": "string", "pattern": r"^(?!\.\.?$)[A-Za-z0-9._-]{1,128}$"},
                "op": _TEXT, "file": _TEXT, "dtype": _TEXT, "inputs": _ARRAYS, "inputs_sha256": _OPT_TEXT,
                "copy": _RECORD,
            }}},
        "runs": {"type": "array", "items": {
            "type": "object", "required": ["case", "framework", "device", "dtype", "status", "outputs"],
            "properties": {
                "case": _TEXT, "framework": {"type": "string", "pattern": r"^[a-z0-9_]{1,32}$"},
                "device": {"type": "string", "pattern": r"^[a-z0-9]{1,16}$"}, "dtype": _TEXT,
                "variant": _LABEL, "python": _OPT_TEXT, "status": {"enum": list(STATUSES)}, "message": _OPT_TEXT,
                "spelling": _OPT_TEXT, "attempts": {"type": ["array", "null"]}, "native": {"type": ["object", "null"]},
                "version": _OPT_TEXT, "seconds": {"type": ["number", "null"]}, "worker": {"type": ["object", "string", "null"]},
                "inputs_sha256": _OPT_TEXT, "outputs": _ARRAYS, "grad": {"type": ["object", "null"]},
                "env": {"type": ["object", "null"], "additionalProperties": _TEXT}, "host": _OPT_TEXT,
                "traceback": _OPT_TEXT, "log": _OPT_TEXT,
            }}},
    },
}
_MANIFEST_VALIDATOR = Draft202012Validator(MANIFEST_SCHEMA)

_NATIVE_OK: dict = {}


def _native_ok(op, fw: str, native: dict) -> bool:
    """Stored natives repeat across a suite's cases: each distinct one is validated once."""
    try:
        key = (op.name, fw, json.dumps(native, sort_keys=True))
    except (TypeError, ValueError):
        return False
    if key not in _NATIVE_OK:
        _NATIVE_OK[key] = next(iter(_native_validator(op, fw).iter_errors(native)), None) is None
    return _NATIVE_OK[key]


def _manifest(root: Path) -> dict:
    """The manifest of a store, read and validated: one line per problem."""
    mpath = root / "manifest.json"
    if not mpath.is_file():
        raise InputError(f"{root}: not a parity results directory (no manifest.json)")
    if mpath.stat().st_size > 1 << 30:
        raise InputError(f"{mpath}: larger than 1 GiB")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"{mpath}: unreadable: {exc}") from None
    if isinstance(manifest, dict):
        _check_schema(mpath, manifest)
    if fastschema.valid(MANIFEST_SCHEMA, manifest) is True:  # a large store's manifest in a fraction of the time
        return manifest
    problems = sorted(_MANIFEST_VALIDATOR.iter_errors(manifest), key=lambda e: list(map(str, e.absolute_path)))
    if problems:
        raise _problems(mpath, [_problem(mpath, e.absolute_path, e) for e in problems[:_PROBLEMS_SHOWN]],
                        len(problems) - _PROBLEMS_SHOWN)
    return manifest


#: problems a manifest's check lists before it says "and N more"
_PROBLEMS_SHOWN = 20


def _check_schema(mpath: Path, head: dict) -> None:
    if head.get("schema") not in SCHEMAS and "schema" in head:
        raise InputError(f"{mpath}: schema {str(head.get('schema'))[:80]!r}, expected one of "
                         f"{', '.join(map(repr, SCHEMAS))} (a store written by a newer parity?)")


def _problem(mpath: Path, path, error) -> str:
    """The line that says one problem of a manifest: where, and what."""
    return f"{mpath}: {_where(path)}: {_what(error)}"


def _problems(mpath: Path, lines: list[str], more: int) -> InputError:
    """The error of a manifest's problems: ``lines``, and a last one for ``more`` not shown."""
    if more > 0:
        lines = [*lines, f"{mpath}: ... and {more} more problems"]
    return InputError("\n".join(lines))


def _where(path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _what(error) -> str:
    if error.validator == "required":
        return error.message.replace(" is a required property", " is missing")
    if error.validator == "type":
        return f"expected {error.validator_value if isinstance(error.validator_value, str) else ' or '.join(error.validator_value)}, got {type(error.instance).__name__}"
    return error.message[:200]


def load(root: Path, load_outputs: bool = True, lazy: bool = False) -> Store:
    """Read a results directory back: cases (from the stored copies), inputs and runs. The
    store is untrusted: see the module docstring; every problem is an InputError. ``lazy``:
    every array is checked but left on disk, for StoredCase.read (a report of a large store
    holds one case's arrays at a time)."""
    with npyio.Packs() as packs:  # each pack opened once for the whole load
        return _load(Path(root), load_outputs, lazy, packs)


def _load(root: Path, load_outputs: bool, lazy: bool, packs: npyio.Packs) -> Store:
    manifest = _manifest(root)
    ctx = _Reading(root, manifest, packs)
    cases: dict[str, StoredCase] = {}
    for i, entry in enumerate(manifest["cases"]):
        sc = ctx.case(entry, i, lazy)
        if sc.case.name in cases:
            raise InputError(f"{ctx.mpath}: cases[{i}]: case {sc.case.name!r} is listed twice")
        cases[sc.case.name] = sc
    for i, entry in enumerate(manifest["runs"]):
        sc = cases.get(entry["case"])
        if sc is None:
            raise InputError(f"{ctx.mpath}: runs[{i}]: run of unknown case {entry['case'][:200]!r}")
        ctx.run(sc, entry, i, load_outputs and not lazy)
    return Store(root, manifest, cases)


class _Reading:
    """What reading a store's cases and runs needs beside their manifest entries: the store,
    its packs (opened once), its hosts and workers tables."""

    def __init__(self, root: Path, head: dict, packs: npyio.Packs):
        self.root, self.packs = root, packs
        self.mpath = root / "manifest.json"
        self.confined = fsutil.Confined(root)
        self.sizes: dict = {}  # of the packs met
        self.default_host = hosts_.normalize(head.get("host"))
        self.known_hosts = {str(k): hosts_.normalize(v) for k, v in (head.get("hosts") or {}).items()}
        self.workers = head.get("workers") or {}

    def case(self, entry: dict, i: int, lazy: bool) -> StoredCase:
        """The stored case of manifest entry ``cases[i]`` (its copy loaded, its inputs checked;
        read too unless ``lazy``), without its runs."""
        where = f"{self.mpath}: cases[{i}]"
        root, confined, sizes, packs = self.root, self.confined, self.sizes, self.packs
        try:
            case, copy = _case_copy(root, confined, entry, where, sizes, packs)
        except (CaseError, CaseErrors) as exc:
            raise InputError(f"{where}: its stored case file does not load:\n{exc}") from None
        if case.dtypes:  # one case of a dtype sweep: NAME[dtype]
            sweep = {c.dtype: c for c in expand_dtypes(case)}
            m = re.search(r"\[(\w+)\]$", entry["name"])
            if not m or m.group(1) not in sweep:
                raise InputError(f"{where}: case {entry['name']!r} is not one of the dtypes of its sweep")
            case = sweep[m.group(1)]
        if case.name != entry["name"]:  # a default name came from the original path
            case = dataclasses.replace(case, name=entry["name"])
        input_paths = {k: _located(confined, p, f"{where}.inputs.{k}", sizes) for k, p in entry["inputs"].items()}
        if lazy:
            for p in input_paths.values():
                _check_npy(p, packs)
        inputs = {} if lazy else {k: _load_npy(p, packs) for k, p in input_paths.items()}
        return StoredCase(case, inputs, entry.get("inputs_sha256"), root=root, entry=entry,
                          input_paths=input_paths, copy=copy)

    def run(self, sc: StoredCase, entry: dict, i: int, load_outputs: bool) -> None:
        """Manifest entry ``runs[i]``, a run of ``sc``, added to it (its outputs read, with
        ``load_outputs``, else checked)."""
        where = f"{self.mpath}: runs[{i}]"
        packs = self.packs
        fw = entry["framework"]
        if fw not in sc.case.op.spellings:
            raise InputError(f"{where}: framework {fw!r} has no {sc.case.op.name} here (known: "
                             f"{', '.join(sc.case.op.spellings)})")
        paths = {k: _located(self.confined, p, f"{where}.outputs.{k}", self.sizes) for k, p in entry["outputs"].items()}
        outputs = {k: _load_npy(p, packs) for k, p in paths.items()} if load_outputs else {}
        if not outputs:  # still refuse what could not be read later (merge and baselines copy them)
            for p in paths.values():
                _check_npy(p, packs)
        worker = entry.get("worker")
        if isinstance(worker, str):  # an id of the workers table (schema 3)
            if worker not in self.workers:
                raise InputError(f"{where}.worker: {worker[:80]!r} is not in the manifest's workers")
            worker = self.workers[worker]
        native = entry.get("native")
        if native is not None and not _native_ok(sc.case.op, fw, native):
            problem = next(iter(_native_validator(sc.case.op, fw).iter_errors(native)), None)
            if problem is not None:
                raise InputError(f"{where}.native: {str(native)[:200]} is not a {fw} {sc.case.op.name} call parity "
                                 f"can read: {_where(problem.absolute_path)}: {problem.message[:200]}")
        r = Result(sc.case, fw, entry["device"], entry["dtype"], entry["status"], entry.get("message") or "",
                   outputs, native=entry.get("native"), spelling=entry.get("spelling"),
                   attempts=entry.get("attempts") or [], version=entry.get("version"), seconds=entry.get("seconds"),
                   worker=worker, inputs_sha256=entry.get("inputs_sha256"), variant=entry.get("variant"),
                   python=entry.get("python"), grad=entry.get("grad"), env=dict(entry.get("env") or {}),
                   host=self.known_hosts.get(entry.get("host")) or self.default_host,
                   traceback=entry.get("traceback") or "", log=entry.get("log") or "")
        if r.native is not None:
            names = [r.spelling] if r.spelling else [s.name for s in sc.case.op.spellings[fw]][:1]
            try:
                r.form = sc.case.op.form_from_native(fw, r.native, sc.case.shapes, names[0], sc.case.dtype)
            except Exception as exc:  # noqa: BLE001 - untrusted parameters: say which, never a traceback
                raise InputError(f"{where}: native {str(r.native)[:200]} is not a {fw} {sc.case.op.name} call parity "
                                 f"can read ({type(exc).__name__}: {exc})") from None
        sc.results.append(r)
        sc.output_paths.append(paths)


_CASE_ITEM = MANIFEST_SCHEMA["properties"]["cases"]["items"]
_RUN_ITEM = MANIFEST_SCHEMA["properties"]["runs"]["items"]
_ITEM_VALIDATORS = {"cases": Draft202012Validator(_CASE_ITEM), "runs": Draft202012Validator(_RUN_ITEM)}
class Streamed:
    """A results store read a case at a time (``stream``): its manifest read once, in pieces,
    and checked as ``load`` checks it, keeping of each case entry and run entry only where it
    is in the file; each StoredCase is built again from them when it is asked for (``get``,
    by name; ``names`` lists them in order), with its runs, and is the caller's to drop. What it holds is a few numbers
    per case and per run, and the case names; ``manifest`` is the manifest without its
    ``cases`` and ``runs``. Each case's problems (a case copy that does not load, an array
    that is not a .npy record) are found when it is built, and raised then (an InputError)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.mpath = self.root / "manifest.json"
        if not self.mpath.is_file():
            raise InputError(f"{self.root}: not a parity results directory (no manifest.json)")
        self._f = open(self.mpath, "rb")  # noqa: SIM115 - held for get(): read with pread, so a fork may share it
        try:
            if os.fstat(self._f.fileno()).st_size > 1 << 30:
                raise InputError(f"{self.mpath}: larger than 1 GiB")
            head = self._f.read(64).lstrip()
            self._f.seek(0)
            if not head.startswith(b"{"):
                _manifest(self.root)  # not an object: said as load says it
            self._names: dict[str, int] = {}
            self._cases = _ints("q")  # start, end, CRC-32 of each case entry
            self._runs = _ints("q")  # case index, start, end, CRC-32 of each run entry, in the file's order
            self._orphans: dict[int, str] = {}  # runs listed before their case: run index -> case name
            self._problems: list[tuple[list, str]] = []
            self._more = 0  # problems past _PROBLEMS_SHOWN
            try:
                self.manifest, self._arrays = jsonstream.read_object(
                    self._f, {"cases": self._case_entry, "runs": self._run_entry})
            except jsonstream.Unreadable as exc:
                raise InputError(f"{self.mpath}: unreadable: {exc}") from None
            self._check()
        except BaseException:
            self._f.close()
            raise
        self._group()

    # --- the first read -----------------------------------------------------------------
    def _problem(self, what: str, i: int, value) -> bool:
        """Whether manifest entry ``what[i]`` is as the schema says (else its problems are kept)."""
        if fastschema.valid(_CASE_ITEM if what == "cases" else _RUN_ITEM, value) is True:
            return False
        errors = list(_ITEM_VALIDATORS[what].iter_errors(value))
        for e in errors:
            if len(self._problems) < _PROBLEMS_SHOWN:
                path = [what, i, *e.absolute_path]
                self._problems.append((path, _problem(self.mpath, path, e)))
            else:
                self._more += 1
        return bool(errors)

    def _case_entry(self, i: int, entry, start: int, end: int, crc: int) -> None:
        self._cases.extend((start, end, crc))
        if self._problem("cases", i, entry):
            return
        if entry["name"] in self._names:
            raise InputError(f"{self.mpath}: cases[{i}]: case {entry['name'][:200]!r} is listed twice")
        self._names[entry["name"]] = i

    def _run_entry(self, i: int, entry, start: int, end: int, crc: int) -> None:
        at = -1
        if not self._problem("runs", i, entry):
            at = self._names.get(entry["case"], -1)
            if at < 0:
                self._orphans[i] = entry["case"]
        self._runs.extend((at, start, end, crc))

    def _check(self) -> None:
        head = self.manifest
        _check_schema(self.mpath, head)
        whole = {**head, **{k: [] for k in self._arrays}}  # the entries are checked already
        problems = list(self._problems)
        if fastschema.valid(MANIFEST_SCHEMA, whole) is not True:
            problems += [(list(e.absolute_path), _problem(self.mpath, e.absolute_path, e))
                         for e in _MANIFEST_VALIDATOR.iter_errors(whole)]
        if problems:
            problems.sort(key=lambda p: list(map(str, p[0])))
            lines = [line for _, line in problems[:_PROBLEMS_SHOWN]]
            raise _problems(self.mpath, lines, len(problems) - len(lines) + self._more)
        for i, name in self._orphans.items():
            at = self._names.get(name)
            if at is None:
                raise InputError(f"{self.mpath}: runs[{i}]: run of unknown case {name[:200]!r}")
            self._runs[4 * i] = at
        self._orphans = {}

    def _group(self) -> None:
        """Each case's runs, in the file's order: ``_order`` lists run indices by case, case
        ``i``'s from ``_first[i]`` to ``_first[i + 1]``."""
        self._reading: _Reading | None = None
        runs = self._runs
        n = len(runs) // 4
        self._order = _ints("q", sorted(range(n), key=lambda j: runs[4 * j]))
        counts = [0] * (len(self._cases) // 3 + 1)
        for j in range(n):
            counts[runs[4 * j] + 1] += 1
        self._first = _ints("q", itertools.accumulate(counts))

    # --- cases, one at a time -----------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """The case names, in the manifest's order."""
        return list(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name) -> bool:
        return name in self._names

    def runs(self) -> int:
        """How many runs the store has."""
        return len(self._runs) // 4

    def _entry(self, table, at: int, what: str, i: int) -> dict:
        """Entry ``what[i]`` (checked when the manifest was read: the same bytes, or an error)."""
        try:
            return jsonstream.element(self._f, table[at], table[at + 1], table[at + 2])
        except (OSError, jsonstream.Unreadable) as exc:
            raise InputError(f"{self.mpath}: {what}[{i}]: {exc}; the store changed while it was read") from None

    def get(self, name: str, packs: npyio.Packs, lazy: bool = True, load_outputs: bool = False) -> StoredCase:
        """Case ``name`` with its runs, read again from the manifest (its arrays checked, and read
        unless ``lazy``)."""
        i = self._names[name]
        if self._reading is None:
            self._reading = _Reading(self.root, self.manifest, packs)
        ctx = self._reading
        ctx.packs = packs
        sc = ctx.case(self._entry(self._cases, 3 * i, "cases", i), i, lazy)
        for k in range(self._first[i], self._first[i + 1]):
            j = self._order[k]
            ctx.run(sc, self._entry(self._runs, 4 * j + 1, "runs", j), j, load_outputs and not lazy)
        return sc

    def close(self) -> None:
        self._f.close()


def stream(root: Path) -> Streamed:
    """A store to read a case at a time (see Streamed): what ``parity report`` reads."""
    return Streamed(Path(root))


def run_key(r: Result) -> tuple:
    """What identifies a run in a store: case, side, dtype and host."""
    return (r.case.name, r.framework, r.device, r.dtype, r.variant or None, (r.host or {}).get("id"))


def load_many(roots: list[Path], load_outputs: bool = True, lazy: bool = False) -> Store:
    """Several stores as one (in memory, nothing copied): the cases of all of them, each case's
    runs from every store. Runs from different hosts stay apart (their host tells them apart);
    the same case must have the same inputs in every store, and the same run (case, side,
    dtype, host) may come from one store only."""
    stores = [load(r, load_outputs, lazy) for r in roots]
    if len(stores) == 1:
        return stores[0]
    cases: dict[str, StoredCase] = {}
    seen: dict[tuple, Path] = {}
    for st in stores:
        for name, sc in st.cases.items():
            first = cases.get(name)
            if first is None:
                first = cases[name] = StoredCase(sc.case, sc.inputs, sc.digest, root=sc.root, entry=sc.entry,
                                                 input_paths=sc.input_paths, copy=sc.copy)
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


def _copy_case_dir(sc: StoredCase, dest: Path) -> None:
    """A stored case's directory (case copy, the files it reads), every file resolved inside
    its store and copied as a regular file (no symlink is carried over); the inputs a store of
    schema 1 keeps there are not copied (they go to the new store's pack)."""
    cid = sc.entry["id"]
    src = fsutil.inside(sc.root, f"cases/{cid}/case.yaml", f"{sc.root}: cases/{cid}").parent
    stored_inputs = {str(p) for p in sc.input_paths.values() if isinstance(p, Path)}
    for dirpath, dirnames, filenames in os.walk(src):
        for name in filenames:
            rel = Path(dirpath, name).relative_to(src)
            real = fsutil.inside(sc.root, f"cases/{cid}/{rel.as_posix()}", f"{sc.root}: cases/{cid}")
            if str(real) in stored_inputs:
                continue
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(real, dest / rel)


def _write_store(src: Store, out: Path, command: str, extra: dict | None = None) -> None:
    """``src`` (loaded, paths validated) written as a new store in directory ``out``, of this
    schema whatever the schema of the stores it comes from (every array in its pack)."""
    manifest = {"schema": SCHEMA, "created": _now(), "command": command, "host": src.manifest.get("host"),
                "hosts": src.hosts(), "workers": {}, "versions": {}, "cases": [], "runs": [],
                "interrupted": bool(src.manifest.get("interrupted")), **(extra or {})}
    pack, copies, packs = _Pack(out / PACK), _Pack(out / CASE_PACK), npyio.Packs()
    workers = _WorkerIds(manifest["workers"])
    try:
        for sc in src.cases.values():
            entry = {**sc.entry, "inputs": {name: pack.put_record(_record(where, packs), _is_bf16(where))
                                            for name, where in sc.input_paths.items()}}
            if sc.copy is not None:
                entry["copy"] = copies.put_record(_record(sc.copy, packs))
            else:
                _copy_case_dir(sc, out / "cases" / sc.entry["id"])
            manifest["cases"].append(entry)
            for r, paths in zip(sc.results, sc.output_paths):
                manifest["runs"].append(run_entry(r, {
                    name: pack.put_record(_record(where, packs), _is_bf16(where)) for name, where in paths.items()},
                    workers))
                if r.version:
                    manifest["versions"].setdefault(r.framework + (f"[{r.variant}]" if r.variant else ""), r.version)
    finally:
        packs.close()
        pack.close(sync=True)
        copies.close(sync=True)
    atomic_write(out / "manifest.json", dumps(manifest))


def merge(stores: list[Path], out: Path) -> Path:
    """Combine result stores (e.g. from a CPU and a GPU machine, or from several hosts) into
    ``out``, which must not exist or be empty. Runs of the same side from different hosts are
    kept apart (by their host's id). Written beside ``out`` and
    renamed into place: a merge that fails leaves nothing behind."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"--out {out}: exists and is not an empty directory")
    fsutil.usable_dir(out.parent, "--out")
    with fsutil.lock_beside(out, f"--out {out}"):
        src = load_many(stores, load_outputs=False)
        stage = fsutil.staging_dir(out, "merge")
        try:
            _write_store(src, stage, "parity merge " + " ".join(map(str, stores)),
                         {"merged_from": [str(s) for s in stores]})
            if out.exists():
                out.rmdir()
            os.rename(stage, out)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
    return out


def save_baseline(results: Path, baselines: Path, name: str, replace: bool = False) -> Path:
    """Keep a results store as baseline ``name``: a copy of its files (validated), marked as a
    baseline, put in place in one step. An existing baseline is replaced only with
    ``replace``; a store is never saved over itself."""
    _check_baseline_name(name)
    dest = Path(baselines) / name
    results = Path(results)
    real_src, real_dest = results.resolve(), dest.resolve()
    if real_src == real_dest or real_src.is_relative_to(real_dest) or real_dest.is_relative_to(real_src):
        raise InputError(f"--results {results} is baseline {name!r} itself (or holds it): save another results "
                         f"store, e.g. --results reports/results")
    fsutil.usable_dir(Path(baselines), "--baselines")
    with fsutil.lock_beside(dest, f"baseline {name!r}"):
        fsutil.recover_swap(dest)
        src = load(results, load_outputs=False)  # it must be a valid store
        if dest.exists() and not replace:
            raise InputError(f"baseline {name!r} exists in {baselines} (saved {_baseline_saved(dest)}); give "
                             f"--replace to replace it")
        stage = fsutil.staging_dir(dest, "new")
        try:
            _write_store(src, stage, str(src.manifest.get("command", "")),
                         {"created": src.manifest.get("created", _now())})
            atomic_write(stage / BASELINE_MARK, json.dumps({"name": name, "saved": _now(), "from": str(results)}))
            fsutil.swap_into_place(stage, dest)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
    return dest


def _baseline_name(path: Path) -> str:
    try:
        return str(json.loads((Path(path) / BASELINE_MARK).read_text())["name"])[:64]
    except (OSError, ValueError, KeyError, TypeError):
        return Path(path).name


def _baseline_saved(path: Path) -> str:
    try:
        return str(json.loads((Path(path) / BASELINE_MARK).read_text())["saved"])[:40]
    except (OSError, ValueError, KeyError, TypeError):
        return "by an earlier version"


def _check_baseline_name(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
        raise InputError(f"baseline name {name!r}: use 1-64 letters, digits, '.', '_' and '-' (not starting with "
                         f"'.', '_' or '-')")


def baseline_path(baselines: Path, name: str) -> Path:
    _check_baseline_name(name)
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


