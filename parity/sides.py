"""Side labels: who a comparison compares.

A side is a framework run in an environment, written ``framework[@device][[variant]][/host]``:
``torch``, ``torch@gpu``, ``tensorflow[tf220]`` (a second run from another Python or with other
environment variables), ``mindspore/amd-avx2`` (a run from another host, named where a report
holds the same framework from several hosts). The other sides are the float64 ``reference``,
golden values (``expected``) and a stored ``baseline``.

A case names sides in ``known: between:`` with the same syntax, where every part left out
matches anything: ``torch`` is torch on any device, variant or host; ``torch@gpu`` torch on a
GPU; ``torch/amd-avx2`` torch on that host; ``*`` any side.
"""

from __future__ import annotations

import re

REFERENCE, EXPECTED, BASELINE = "reference", "expected", "baseline"
EXTRA = (REFERENCE, EXPECTED, BASELINE)
ANY = "*"

_PART = r"[A-Za-z0-9._-]+"
_LABEL = re.compile(rf"(?P<fw>{_PART}?)(?:@(?P<device>{_PART}))?(?:\[(?P<variant>{_PART})\])?(?:/(?P<host>{_PART}))?")


def label(framework: str, device: str = "cpu", variant: str | None = None, host: str | None = None) -> str:
    return (framework + ("" if device in ("cpu", None) else f"@{device}") + (f"[{variant}]" if variant else "")
            + (f"/{host}" if host else ""))


def parse(text: str) -> dict | None:
    """{'fw', 'device', 'variant', 'host'} (None where a part is left out), or None if ``text``
    is not a side."""
    m = _LABEL.fullmatch(text)
    return m.groupdict() if m and m.group("fw") else None


def is_framework_side(text: str, frameworks) -> bool:
    p = parse(text)
    return p is not None and p["fw"] in frameworks


def matches(pattern: str, side: str) -> bool:
    """Whether a case's side ``pattern`` names the side labelled ``side``."""
    if pattern in (ANY, side):
        return True
    p, s = parse(pattern), parse(side)
    if p is None or s is None or p["fw"] != s["fw"]:
        return False
    if p["device"] is not None and p["device"] != (s["device"] or "cpu"):
        return False
    return all(p[k] is None or p[k] == s[k] for k in ("variant", "host"))
