"""A small shared thread pool for NumPy work (NumPy releases the GIL in its loops)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

_POOL: ThreadPoolExecutor | None = None


def pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1), thread_name_prefix="parity-numpy")
    return _POOL


def _forget_pool() -> None:
    """In a forked child the pool's threads do not exist: a child that needs one makes its own."""
    global _POOL
    _POOL = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def spans(n: int, per: int) -> list[slice]:
    """[0, n) cut into slices of ``per`` items (the last may be shorter)."""
    return [slice(s, min(s + per, n)) for s in range(0, n, max(1, per))]


def run(fn, items) -> list:
    """fn over items, in the pool when there is more than one."""
    items = list(items)
    if len(items) <= 1:
        return [fn(i) for i in items]
    return list(pool().map(fn, items))
