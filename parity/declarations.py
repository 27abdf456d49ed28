"""What a case declares (``known:``) and how it turns a row's verdict.

A row beyond tolerance that a ``between:`` entry covers is KNOWN_GAP, unless it exceeds the
entry's bound (``max_abs``, ``max_bound_ratio``): then FAIL. A run whose status a
``framework:`` entry declares is a declared ERROR/CRASH/TIMEOUT/UNSUPPORTED (ok). A declared
outcome that no longer happens is FIXED, except for ``host_dependent`` entries, which accept
either outcome and say which one happened.

``when:`` is a property of each side's own run: its device, dtype, versions and the host it
ran on (the fingerprint it carries, parity.host), not of the machine that judges it. For a
``between: [A, B]`` entry the sides that A and B name (not ``*`` or the reference) must
satisfy it. A declaration whose sides match a row but whose ``when:`` does not is reported
on the row (``Comparison.notes``) when the row is not PASS, with the condition that failed.
"""

from __future__ import annotations

import math

from parity import host as hosts
from parity import sides
from parity.cases import Case, Known, version_matches
from parity.verdicts import FAIL, FIXED, KNOWN_GAP, OK, PASS, UNSUPPORTED


class Declarations:
    """The known entries of one case, applied to its rows. ``versions``: {host id: {framework:
    version}} of the case's runs (for a ``versions:`` condition on a framework that is not a
    side of the row)."""

    def __init__(self, case: Case, versions: dict[str | None, dict[str, str]]):
        self.case = case
        self.versions = versions
        self.gap_rows: dict[int, list] = {}  # known-entry index -> the rows it covers
        self.misses: list[tuple] = []  # (row, entry, why its when: does not hold)

    def where(self, k: Known) -> str:
        return f"{self.case.path}:{k.line} ({k.label()})"

    # --- when: ------------------------------------------------------------------------
    def mismatch(self, when: dict, side, dtype: str) -> str | None:
        """Why ``when`` does not hold for ``side`` (None when it holds)."""
        if "device" in when and side.device not in when["device"]:
            return f"it is declared for device {', '.join(when['device'])}; {side.label} ran on {side.device}"
        if "dtype" in when and dtype not in when["dtype"]:
            return f"it is declared for dtype {', '.join(when['dtype'])}; this comparison is {dtype}"
        for fw, prefix in when.get("versions", {}).items():
            have = side.version if side.framework == fw else \
                self.versions.get((side.host or {}).get("id"), {}).get(fw)
            if have is None or not version_matches(have, prefix):
                return f"it is declared for {fw} {prefix}; {side.label} has {fw} {have or '(not run)'}"
        host = side.host or {}
        name = host.get("label", "this host")
        have = hosts.flags(host)
        lacking = [f for f in when.get("cpu_flags", ()) if f not in have]
        if lacking:
            return f"it is declared for CPUs with {', '.join(when['cpu_flags'])}; host {name} lacks {', '.join(lacking)}"
        present = [f for f in when.get("without_cpu_flags", ()) if f in have]
        if present:
            return f"it is declared for CPUs without {', '.join(when['without_cpu_flags'])}; host {name} has " \
                   f"{', '.join(present)}"
        if "cpu_vendor" in when and host.get("vendor") not in when["cpu_vendor"]:
            return f"it is declared for {', '.join(when['cpu_vendor'])} CPUs; host {name} is {host.get('vendor')}"
        return None

    def gap_match(self, k: Known, row) -> tuple[bool, str | None]:
        """(covers, why not): whether a between: entry covers the row: its sides name the row's in
        one order or the other, and its when: holds for the sides it names. ``why`` is set when
        the sides match and only when: keeps the entry off."""
        reasons = []
        for pa, pb in ((k.between[0], k.between[1]), (k.between[1], k.between[0])):
            if not (sides.matches(pa, row.a.label) and sides.matches(pb, row.b.label)):
                continue
            named = [s for p, s in ((pa, row.a), (pb, row.b)) if p != sides.ANY and p not in sides.EXTRA]
            concerned = named or [s for s in (row.a, row.b) if s.framework not in sides.EXTRA] or [row.a]
            why = next((w for w in (self.mismatch(k.when, s, row.dtype) for s in concerned) if w), None)
            if why is None:
                return True, None
            reasons.append(why)
        return False, (reasons[0] if reasons else None)

    # --- applying ---------------------------------------------------------------------
    def apply_status(self, row, status: str, message: str) -> None:
        """A row of a run against the reference: a declared status, or FIXED when the run went
        through (``status``/``message``: the row's; a gradient row has its own). A case that
        did not run (Case.blocked) declares nothing: its rows stay ERROR."""
        if self.case.blocked:
            return
        entries = []
        for k in self.case.known:
            if k.framework and sides.matches(k.framework, row.a.label) and k.output in (None, row.output):
                why = self.mismatch(k.when, row.a, row.dtype)
                if why:
                    self.misses.append((row, k, why))
                else:
                    entries.append(k)
        if not entries:
            return
        host = (row.a.host or {}).get("label", "this host")
        if status != OK:
            for k in entries:
                if k.status == status and (k.error is None or k.error in message):
                    row.declared, row.known = True, k
                    if k.host_dependent:
                        row.notes.append(f"{k.label()} declares this outcome as host-dependent: it happened "
                                         f"on host {host}")
                    return
            for k in entries:
                self.misses.append((row, k, f"it declares {k.status}"
                                            + (f" with {k.error!r} in the message" if k.error else "")
                                            + f"; this run gave {status}"))
            return
        fixed = [k for k in entries if not k.host_dependent]
        if not fixed:
            k = entries[0]
            row.notes.append(f"{k.label()} declares {k.describe()} on some hosts; it did not happen on host {host}")
            return
        k = fixed[0]
        row.known = k
        ran = f"{row.a.label} ran ({row.verdict} against the reference)"
        row.verdict = FIXED
        row.message = (f"the case declares {row.a.label} {k.status}"
                       f"{f' ({k.error!r})' if k.error else ''} but {ran}: update or remove {self.where(k)}")

    def apply_gap(self, row) -> None:
        """A row beyond tolerance that a between: entry covers is KNOWN_GAP (or FAIL, when it
        exceeds the entry's bound). Rows within tolerance are only recorded here; see
        mark_fixed."""
        if row.metrics is None and row.verdict not in (PASS, FAIL):
            return
        entries = []
        for k in self.case.known:
            if not k.between or k.output not in (None, row.output):
                continue
            if row.kind == "baseline" and sides.BASELINE not in k.between:
                continue  # '*' does not cover baselines
            covers, why = self.gap_match(k, row)
            if covers:
                entries.append(k)
            elif why:
                self.misses.append((row, k, why))
        if not entries:
            return
        for k in entries:
            self.gap_rows.setdefault(k.index, []).append(row)
        if row.verdict != FAIL:
            return
        verdicts = [(k, _beyond(k, row)) for k in entries]
        held = next((k for k, why in verdicts if why is None), None)  # several may cover a row: any that holds
        if held is not None:
            row.verdict, row.declared, row.known = KNOWN_GAP, True, held
            return
        row.known = entries[0]
        row.message = "; ".join(f"{why} ({self.where(k)})" for k, why in verdicts) + \
            (f"; {row.message}" if row.message else "")

    def mark_fixed(self) -> None:
        """A declared gap that none of the rows it covers shows any more is FIXED on those rows
        (a host-dependent one is noted instead)."""
        for index, rows in self.gap_rows.items():
            if any(r.verdict != PASS for r in rows):
                continue
            k = self.case.known[index]
            for row in rows:
                row.known = k
                if k.host_dependent:
                    row.notes.append(f"{k.label()} declares a host-dependent gap {k.between[0]} vs {k.between[1]}; "
                                     f"it did not show here")
                    continue
                row.verdict = FIXED
                row.message = (f"the case declares a gap between {k.between[0]} and {k.between[1]} but no "
                               f"comparison it covers shows one any more: update or remove {self.where(k)}")

    def note_misses(self) -> None:
        """Every declaration kept off a row that is not PASS by its when: (or another status),
        said on that row."""
        for row, k, why in self.misses:
            if row.verdict in (PASS, UNSUPPORTED) or row.known is k:
                continue
            note = f"{k.label()} ({k.describe()}) does not apply: {why}"
            if note not in row.notes:
                row.notes.append(note)


def headroom(value: float) -> float:
    """A bound to declare for an observed gap: 50% more, rounded up to two significant digits
    (parity new-case and parity accept write it)."""
    if not math.isfinite(value) or value <= 0:
        return value
    scaled = value * 1.5
    exp = math.floor(math.log10(scaled)) - 1
    return float(f"{math.ceil(scaled / 10**exp) * 10**exp:.2g}")


def _beyond(k: Known, row) -> str | None:
    """Why the row's gap exceeds entry ``k``'s bounds (None when it is within them)."""
    m = row.metrics
    if m is None:
        return None
    if k.max_abs is not None and m.max_abs > k.max_abs:
        return f"gap {m.max_abs:.3g} exceeds the declared max_abs {k.max_abs:g}"
    if k.max_bound_ratio is not None:
        if m.bound_ratio is None:
            return (f"{k.label()} bounds the gap by the rounding bound, and this comparison has none (the sides "
                    f"compute different forms, or the op has no derived bound)")
        if m.bound_ratio > k.max_bound_ratio:
            return f"gap is {m.bound_ratio:.3g}x the rounding bound, more than the declared {k.max_bound_ratio:g}x"
    return None



