"""The machine a run happened on: its fingerprint, and the environment that changes numerics.

Every result carries the fingerprint of the host that made it (``fingerprint``): CPU vendor
and model, the ISA flags that select kernels (sse4, avx, avx2, fma, avx512*, amx*), core
counts, OS and machine. Each worker adds what only it can see (``worker_facts``): the
environment variables that change numerics as the worker saw them, and each framework's
own build facts (adapter ``info()``). A ``when:`` of a case is judged against the
fingerprint of the run it concerns, so a store made on one machine is judged by that
machine's facts wherever it is re-judged.

A host is named by ``label`` (``amd-avx2``, ``intel-avx512``: the vendor and the widest
vector ISA; ``--host-label`` sets another) and identified by ``id`` (the label and a short
hash of the fingerprint's hardware part), which stays the same for the same machine.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re

#: prefixes of the CPU flags that select kernels (what is recorded of /proc/cpuinfo's flags)
FLAG_PREFIXES = ("sse4", "avx", "amx", "fma")

#: environment variables that change what the frameworks compute (recorded when set)
NUMERIC_ENV = (
    "TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ONEDNN_DEFAULT_FPMATH_MODE",
    "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR", "ATEN_CPU_CAPABILITY", "NPY_DISABLE_CPU_FEATURES",
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS", "TF_DETERMINISTIC_OPS", "TF_ENABLE_XLA", "XLA_FLAGS", "KMP_AFFINITY",
    "NVIDIA_TF32_OVERRIDE", "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", "CUBLAS_WORKSPACE_CONFIG",
    "CUDA_VISIBLE_DEVICES", "MS_ALLOC_CONF",
)

#: the fields that identify the hardware (the id's hash)
_HARDWARE = ("vendor", "cpu", "flags", "cpus", "machine")

_VENDORS = {"GenuineIntel": "intel", "AuthenticAMD": "amd", "HygonGenuine": "hygon", "CentaurHauls": "centaur"}

_CACHE: dict | None = None


def _cpuinfo() -> dict:
    """vendor_id, model name, flags, cpu cores and physical ids from /proc/cpuinfo (Linux)."""
    out: dict = {"physical": set()}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "vendor_id" and "vendor_id" not in out:
                    out["vendor_id"] = value
                elif key == "model name" and "model" not in out:
                    out["model"] = value
                elif key in ("flags", "Features") and "flags" not in out:
                    out["flags"] = value.split()
                elif key == "cpu cores" and "cores" not in out:
                    out["cores"] = int(value) if value.isdigit() else None
                elif key == "physical id":
                    out["physical"].add(value)
    except OSError:
        pass
    return out


def isa_level(flags) -> str:
    """The widest vector ISA among the flags: avx512, avx2, avx, sse4 or the machine's."""
    flags = set(flags)
    for name, flag in (("avx512", "avx512f"), ("avx2", "avx2"), ("avx", "avx"), ("sse4", "sse4_2")):
        if flag in flags:
            return name
    return platform.machine().lower() or "cpu"


def vendor_of(vendor_id: str | None, model: str) -> str:
    if vendor_id in _VENDORS:
        return _VENDORS[vendor_id]
    text = (model or "").lower()
    for key in ("intel", "amd", "arm", "apple"):
        if key in text:
            return key
    return "unknown"


def _finish(fp: dict, label: str | None = None) -> dict:
    """Add ``label`` and ``id`` to a fingerprint. The id is the label and a hash of the hardware
    (and of the label, when one was given: two machines a user names apart stay apart even if
    their hardware is alike)."""
    default = f"{fp['vendor']}-{isa_level(fp.get('flags') or ())}"
    key = [fp.get(k) for k in _HARDWARE] + ([label] if label else [])
    fp["label"] = label or default
    fp["id"] = f"{fp['label']}-{hashlib.sha256(repr(key).encode()).hexdigest()[:6]}"
    return fp


def fingerprint(label: str | None = None) -> dict:
    """This machine, one dict per process shared by every result made here (``label``, from
    ``--host-label``, renames it for the rest of the process)."""
    global _CACHE
    if _CACHE is None:
        import numpy as np

        info = _cpuinfo()
        flags = sorted(f for f in info.get("flags", []) if f.startswith(FLAG_PREFIXES))
        sockets = len(info["physical"]) or 1
        _CACHE = _finish({
            "vendor": vendor_of(info.get("vendor_id"), info.get("model", "")),
            "cpu": info.get("model") or platform.processor() or platform.machine(),
            "flags": flags,
            "cpus": os.cpu_count(),
            "cores": info["cores"] * sockets if info.get("cores") else None,
            "machine": platform.machine(),
            "os": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
        })
    if label and label != _CACHE["label"]:
        _finish(_CACHE, label)
    return _CACHE


def normalize(host: dict | None) -> dict:
    """A host entry read from a results store: fingerprints of this version as they are; the
    older form (``cpu_flags`` as one string, no vendor) converted. Untrusted input: every
    value is kept as text or numbers."""
    host = dict(host or {})
    if "id" in host and "flags" in host:
        host["flags"] = [str(f) for f in host.get("flags") or []]
        return host
    flags = host.get("cpu_flags", "")
    flags = flags.split() if isinstance(flags, str) else [str(f) for f in flags or []]
    fp = {
        "vendor": vendor_of(None, str(host.get("cpu", ""))),
        "cpu": str(host.get("cpu", "") or "unknown"),
        "flags": sorted(f for f in flags if f.startswith(FLAG_PREFIXES)),
        "cpus": host.get("cpus"),
        "cores": host.get("cores"),
        "machine": str(host.get("machine", "")),
        "os": str(host.get("platform", host.get("os", ""))),
        "python": str(host.get("python", "")),
        "numpy": str(host.get("numpy", "")),
    }
    return _finish(fp, host.get("label"))


def flags(host: dict | None) -> set[str]:
    return set((host or {}).get("flags") or ())


def numeric_env(environ=None) -> dict[str, str]:
    """The variables of NUMERIC_ENV that are set (in ``environ``, default this process's)."""
    environ = os.environ if environ is None else environ
    return {k: environ[k] for k in NUMERIC_ENV if k in environ}


def differences(a: dict, b: dict) -> list[str]:
    """What separates two hosts, for people: 'avx512f: only on intel-avx512', 'cpu: X vs Y'."""
    out = []
    for key in ("vendor", "cpu", "machine"):
        if a.get(key) != b.get(key):
            out.append(f"{key}: {a.get(key)} vs {b.get(key)}")
    fa, fb = flags(a), flags(b)
    for only, host in ((sorted(fa - fb), a), (sorted(fb - fa), b)):
        if only:
            out.append(f"{_flag_list(only)}: only on {host.get('label')}")
    for key in ("cpus", "cores", "os", "numpy"):
        if a.get(key) is not None and b.get(key) is not None and a.get(key) != b.get(key):  # None: not recorded
            out.append(f"{key}: {a.get(key)} vs {b.get(key)}")
    return out


def _flag_list(names: list[str]) -> str:
    """avx512f, avx512bw, ... (at most 6 named)."""
    return ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")


def describe(host: dict) -> str:
    """One line: 'amd-avx2: AMD EPYC, 2 CPUs, avx avx2 fma sse4_1 sse4_2 sse4a'."""
    fl = host.get("flags") or []
    wide = [f for f in fl if not f.startswith("avx512")] + (
        [f"avx512 ({len([f for f in fl if f.startswith('avx512')])} flags)"] if any(
            f.startswith("avx512") for f in fl) else [])
    return f"{host.get('label')}: {host.get('cpu')}, {host.get('cpus')} CPUs, {' '.join(wide) or 'no vector flags'}"


_LABEL = re.compile(r"[A-Za-z0-9._-]{1,40}")


def valid_label(label: str) -> bool:
    return bool(_LABEL.fullmatch(label))
