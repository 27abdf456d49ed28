"""`parity accept`: update a case file in place to declare what its stored results show.

After an upgrade (or on a new host) a run ends with FAIL, FIXED or undeclared ERRORs. For
each case whose stored comparisons are not ok, ``accept`` edits the case file itself (not a
copy beside it), keeping its comments, formatting and inputs:

- a FIXED row proves its declaration stale: the entry is removed;
- a FAIL row that a declaration covers but whose bound it exceeds widens that bound
  (``max_abs``, ``max_bound_ratio``) to the observed value with headroom;
- a FAIL row nothing covers gets a new ``known:`` entry: one ``between: [FW, "*"]`` for a
  framework whose own reference row fails (it covers that framework against every side),
  else one per pair; bounded by the rounding bound (``max_bound_ratio``) when rounding
  explains the gap, which holds on every host, else by ``max_abs``;
- an undeclared ERROR, CRASH or TIMEOUT gets a ``framework:`` entry with a piece of the
  message.

New entries say which versions showed them (``when: versions:``) and carry a reason that
starts with TODO and names the host and figures: the case does not run until someone
writes why (only that case: the rest of the suite runs). ``accept`` prints a unified diff
and writes it only with ``--write``, like a snapshot-review tool.
"""

from __future__ import annotations

import difflib
import io
from dataclasses import dataclass
from pathlib import Path

from parity.cases import PLACEHOLDER
from parity.declarations import headroom
from parity.errors import InputError


def _version(v: str | None) -> str | None:
    """A version as a when: prefix: major.minor ("2.13.0+cpu" -> "2.13")."""
    return ".".join(v.split("+")[0].split(".")[:2]) if v else None


@dataclass
class Edit:
    case: str
    path: Path
    before: str
    after: str
    summary: list[str]

    @property
    def diff(self) -> str:
        return "".join(difflib.unified_diff(self.before.splitlines(True), self.after.splitlines(True),
                                            f"a/{self.path}", f"b/{self.path}"))


def _yaml():
    from ruamel.yaml import YAML

    y = YAML()  # round trip: comments, key order, quotes and flow style are kept
    y.preserve_quotes = True
    y.width = 4096  # never re-wrap a line the file already has
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def _flow(items):
    from ruamel.yaml.comments import CommentedSeq

    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq


def _map(pairs: dict, flow: bool = False):
    from ruamel.yaml.comments import CommentedMap

    m = CommentedMap(pairs)
    if flow:
        m.fa.set_flow_style()
    return m


def plan_edit(case_reports: list, path: Path) -> Edit | None:
    """The edit of one case file that declares what its ``case_reports`` (the cases of a Report
    of stored results judged under this file: one, or one per dtype of a sweep) show; None
    when every comparison is ok."""
    rows = [r for c in case_reports for r in c.rows if not r.ok]
    if not rows:
        return None
    y = _yaml()
    before = path.read_text(encoding="utf-8")
    doc = y.load(before)
    known = doc.get("known")
    if known is None:
        from ruamel.yaml.comments import CommentedSeq

        known = doc["known"] = CommentedSeq()
    first = case_reports[0]
    versions = {r.framework: _version(r.version) for c in case_reports for r in c.results if r.version and not r.variant}
    host = next((r.host for c in case_reports for r in c.results if r.host), {}) or {}
    where = f"on host {host.get('label', '?')} ({host.get('cpu', '?')})"
    sweep = bool(doc.get("dtypes"))
    summary: list[str] = []
    drop: set[int] = set()

    def when(fws, dtypes) -> dict:
        out = {}
        seen = {fw: versions[fw] for fw in fws if versions.get(fw)}
        if seen:
            out["versions"] = _map(seen, flow=True)
        if sweep and dtypes:
            out["dtype"] = dtypes[0] if len(dtypes) == 1 else _flow(sorted(dtypes))
        return out

    # FIXED: the declaration is stale
    for row in rows:
        if row.verdict == "FIXED" and row.known is not None:
            drop.add(row.known.index)
    # ERROR / CRASH / TIMEOUT nobody declared
    errors: dict[tuple, list] = {}
    for row in rows:
        if row.kind == "reference" and row.verdict in ("ERROR", "CRASH", "TIMEOUT") and row.known is None \
                and not row.message.startswith("not run: "):
            errors.setdefault((row.a.label, row.verdict), []).append(row)
    for (side, verdict), group in errors.items():
        row, fw = group[0], group[0].a.framework
        entry = _map({"framework": side, "status": verdict})
        if verdict == "ERROR":
            piece = (row.message.split(":", 1)[-1].strip().splitlines() or [""])[0]
            entry["error"] = piece[:80] or "error"
        w = when([fw], sorted({r.dtype for r in group}))
        if w:
            entry["when"] = _map(w, flow=True)
        entry["reason"] = (f"{PLACEHOLDER}: why {fw} {verdict.lower()}s here (seen {where} with {fw} "
                           f"{versions.get(fw, '?')}: {(row.message.splitlines() or [''])[0][:120]})")
        known.append(entry)
        summary.append(f"declare {side} {verdict}")
    # FAIL: widen what covers it, or declare it
    widened: dict[int, tuple[float, float | None]] = {}
    uncovered = []
    for row in rows:
        if row.verdict != "FAIL" or row.metrics is None:
            continue
        if row.known is not None and row.known.between:
            top = widened.get(row.known.index, (0.0, None))
            ratio = row.metrics.bound_ratio
            widened[row.known.index] = (max(top[0], row.metrics.max_abs),
                                        max(top[1] or 0.0, ratio) if ratio is not None else top[1])
        else:
            uncovered.append(row)
    for index, (max_abs, ratio) in widened.items():
        entry = known[index]
        if "max_abs" in entry:
            entry["max_abs"] = headroom(max_abs)
        if "max_bound_ratio" in entry and ratio is not None:
            entry["max_bound_ratio"] = headroom(ratio)
        entry["reason"] = (f"{str(entry.get('reason', '')).rstrip()} (widened by parity accept: max abs "
                           f"{max_abs:.3g}{'' if ratio is None else f', {ratio:.3g}x the rounding bound'} {where})")
        summary.append(f"widen known[{index}]")
    failing_sides = {r.a.label for r in uncovered if r.kind == "reference"}
    groups: dict[tuple, list] = {}
    for row in uncovered:
        sides = {row.a.label, row.b.label} & failing_sides
        key = (sorted(sides)[0], "*") if sides else (row.a.label, row.b.label)
        groups.setdefault(key, []).append(row)
    for (a, b), group in groups.items():
        outputs = sorted({r.output for r in group})
        within = all(r.metrics.bound_ratio is not None and r.metrics.bound_ratio <= 1 for r in group)
        entry = _map({"between": _flow([a, b])})
        if len(outputs) == 1 and len(first.case.outputs()) > 1:
            entry["output"] = outputs[0]
        worst = max(r.metrics.max_abs for r in group)
        if within:
            entry["max_bound_ratio"] = 1
        else:
            entry["max_abs"] = headroom(worst)
        named = {side.split("@")[0].split("[")[0].split("/")[0] for side in (a, b) if side != "*"}
        fws = sorted(fw for fw in named if fw in versions)
        w = when(fws, sorted({r.dtype for r in group}))
        if w:
            entry["when"] = _map(w, flow=True)
        seen = ", ".join(f"{fw} {versions[fw]}" for fw in fws)
        entry["reason"] = (f"{PLACEHOLDER}: why {a} and {b} differ (seen {where} with {seen}: max abs {worst:.3g}, "
                           f"{group[0].cause or 'cause unknown'})")
        known.append(entry)
        summary.append(f"declare a gap {a} vs {b}")
    for index in sorted(drop, reverse=True):
        summary.append(f"remove known[{index}]: it no longer happens")
        del known[index]
    if not len(known):
        del doc["known"]
    buf = io.StringIO()
    y.dump(doc, buf)
    after = buf.getvalue()
    if after == before:
        return None
    return Edit(first.case.name.split("[")[0] if sweep else first.case.name, path, before, after, summary)


def accept(results: Path, only: list[str] | None = None, write: bool = False) -> list[Edit]:
    """The edits (written with ``write``) that make each stored case with comparisons that
    are not ok declare what it shows, judged under today's version of its case file."""
    from parity import api, store

    manifest = store.load(results, load_outputs=False).manifest
    files = {}
    for entry in manifest["cases"]:
        name = entry["name"]
        if only and not any(k in name for k in only):
            continue
        path = Path(entry.get("file", ""))
        if not path.is_file():
            raise InputError(f"{name}: its case file {path} is not here (run parity accept where the run was made)")
        files[name] = path
    if not files:
        raise InputError(f"{results}: no stored case" + (f" whose name contains {' or '.join(only)}" if only else ""))
    report = api.load(results, cases=sorted(set(files.values())), quiet=True)
    by_file: dict[Path, list] = {}
    for c in report.cases:  # the dtypes of a sweep are one file: one edit
        if c.case.name in files:
            by_file.setdefault(files[c.case.name], []).append(c)
    edits: dict[Path, Edit] = {}
    for path, group in by_file.items():
        edit = plan_edit(group, path)
        if edit is not None:
            edits[path] = edit
    if write:
        from parity.fsutil import atomic_write

        for edit in edits.values():
            atomic_write(edit.path, edit.after)
    return list(edits.values())
