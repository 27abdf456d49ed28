"""Writing to disk so that nothing is lost and nothing lands outside its directory.

- ``atomic_write``: a file is replaced whole or not at all (temp file, fsync, rename).
- ``Lock``: one parity process at a time writes a directory (``flock`` on a lock file, removed
  on release; the kernel drops the lock when the process dies, even by kill -9, so a file a
  killed process left never blocks anyone).
- ``swap_into_place``: a directory built beside its destination replaces it in one step
  (``renameat2(RENAME_EXCHANGE)`` where the kernel has it; else two renames, and
  ``recover_swap`` puts the old one back if a process died between them).
- ``usable_dir``: a directory parity is about to write, checked before anything runs
  (not a file, creatable, writable), with a one-line error otherwise.
- ``inside``: a path read from an untrusted file (a results store's manifest), resolved and
  confined to its root.
- ``deferred_signals``: SIGINT and SIGTERM held back while reports and results are written,
  so a second Ctrl-C cannot leave a half-written set.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import datetime as dt
import errno
import fcntl
import json
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
from pathlib import Path

from parity.errors import InputError

PIPE_DEFAULT = 1 << 16  # Linux's pipe buffer unless it is grown
PIPE_WANTED = 1 << 20  # what grow_pipe asks for: /proc/sys/fs/pipe-max-size's default


def grow_pipe(fd: int) -> int:
    """Grow a pipe's buffer to 1 MiB where the OS allows it (Linux's F_SETPIPE_SZ); the size it
    has. A writer that hands a reader many small messages then waits only when the reader is
    a megabyte behind, not 64 KiB (on a busy machine the reader is often not running)."""
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_WANTED)
        return fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)
    except (AttributeError, OSError):
        return PIPE_DEFAULT


def write_all(fd: int, data) -> int:
    """Write all of ``data`` (bytes or a buffer) to the raw file descriptor ``fd``, however
    many ``os.write`` calls that takes; the number of bytes."""
    view = memoryview(data).cast("B")
    n = len(view)
    while view:
        view = view[os.write(fd, view):]
    return n


def writev_all(fd: int, buffers: list) -> int:
    """Write the ``buffers`` one after the other to the raw file descriptor ``fd``: in one
    ``os.writev`` where the OS takes them all at once (else as many as it takes); the number of
    bytes."""
    views = [v for v in (memoryview(b).cast("B") for b in buffers) if len(v)]
    n, first = sum(len(v) for v in views), 0
    while first < len(views):
        done = os.writev(fd, views[first:first + _IOV_MAX])
        while first < len(views) and done >= len(views[first]):
            done -= len(views[first])
            first += 1
        if done:
            views[first] = views[first][done:]
    return n


#: the most buffers one writev takes (POSIX's IOV_MAX; Linux's is 1024)
_IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") and "SC_IOV_MAX" in os.sysconf_names else 16


def atomic_write(path: Path, data: str | bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600 files; reports are for everyone to read
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --- locks -------------------------------------------------------------------------------

class Lock:
    """An exclusive lock on ``path`` (a lock file), taken at once or refused with who holds it."""

    def __init__(self, path: Path, what: str):
        self.path, self.what = Path(path), what
        self.fd: int | None = None

    def acquire(self) -> "Lock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                holder = _read_holder(self.path)
                raise InputError(f"{self.what}: another parity process is writing it{holder}; wait for it to "
                                 f"finish, or write elsewhere (--report-dir / --results)") from None
            try:  # the holder before us may have removed the file after we opened it: lock the one in place
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        info = {"pid": os.getpid(), "started": _now(), "command": " ".join(sys.argv[1:])[:500]}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(info).encode())
        self.fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file, then drop the lock (acquire checks that the file it locked is
        still the one in place, so removing it is safe; a killed holder leaves an unlocked file,
        which the next acquire takes)."""
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _read_holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text()[:2000] or "{}")
        return f" (pid {int(info['pid'])}, started {str(info['started'])[:40]})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def lock_beside(directory: Path, what: str) -> Lock:
    """The lock of a directory that is replaced as a whole (a results store): a file beside it,
    ``.NAME.lock``, which the swap does not move."""
    directory = Path(directory)
    return Lock(directory.parent / f".{directory.name}.lock", what)


# --- directories --------------------------------------------------------------------------

def usable_dir(path: Path, what: str) -> Path:
    """``path`` as a directory parity may write: an existing directory, or one it can create
    (its nearest existing parent is a writable directory). A one-line InputError otherwise."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{what} {path}: exists and is not a directory")
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"{what} {path}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"{what} {path}: {probe} is not writable")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot create it: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise InputError(f"{what} {path}: not writable")
    return path


def staging_dir(dest: Path, tag: str = "new") -> Path:
    """A fresh directory beside ``dest`` (same filesystem, so it can be renamed into place)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f".{dest.name}.parity-{tag}-{os.getpid()}-", dir=dest.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o777 & ~umask)  # mkdtemp makes 0700 directories; a store is for everyone to read
    return path


def stale_staging(dest: Path) -> list[Path]:
    """Staging directories of ``dest`` left by processes that died (call with dest's lock held)."""
    dest = Path(dest)
    if not dest.parent.is_dir():
        return []
    return sorted(p for p in dest.parent.glob(f".{dest.name}.parity-*") if p.is_dir() and not p.is_symlink())


_RENAME_EXCHANGE = 2
_libc = None


def _renameat2():
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            _libc.renameat2  # noqa: B018 - glibc >= 2.28
        except (OSError, AttributeError):
            _libc = False
    return _libc or None


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically; False where the kernel or filesystem cannot."""
    libc = _renameat2()
    if libc is None:
        return False
    at_fdcwd = -100
    rc = libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def swap_into_place(new: Path, dest: Path, keep_old: Path | None = None) -> None:
    """Make ``new`` (a complete directory beside ``dest``) be ``dest``; the old ``dest``, if
    any, is removed afterwards, or moved to ``keep_old`` (replacing what was there). At every
    instant ``dest`` is the old or the new directory (with the two-rename fallback, a crash
    between them is undone by ``recover_swap``)."""
    new, dest = Path(new), Path(dest)
    fsync_dir(new)
    if not dest.exists():
        os.rename(new, dest)
        old = None
    elif _exchange(new, dest):
        old = new  # ``new`` now holds the old directory
    else:
        old = dest.parent / f".{dest.name}.parity-old-{os.getpid()}"
        os.rename(dest, old)
        os.rename(new, dest)
    if old is not None:
        if keep_old is not None:
            shutil.rmtree(keep_old, ignore_errors=True)
            os.rename(old, keep_old)
        else:
            shutil.rmtree(old, ignore_errors=True)
    fsync_dir(dest.parent)


def recover_swap(dest: Path) -> None:
    """If a process died between the two renames of ``swap_into_place``, ``dest`` is missing
    and its old directory waits beside it: put it back (call with dest's lock held)."""
    dest = Path(dest)
    if dest.exists():
        return
    olds = sorted(dest.parent.glob(f".{dest.name}.parity-old-*")) if dest.parent.is_dir() else []
    if olds:
        os.rename(olds[-1], dest)


# --- untrusted paths ------------------------------------------------------------------------

_REAL_ROOTS: dict[str, str] = {}


def inside(root: Path, rel, what: str) -> Path:
    """``root/rel`` for a relative path ``rel`` read from an untrusted file: a string, not
    absolute, no '..', and (symlinks resolved) a regular file inside ``root``."""
    return Confined(root).path(rel, what)


class Confined:
    """Paths inside one directory, for a reader of many untrusted relative paths under it (a
    results store): ``path(rel, what)`` is ``inside(root, rel, what)``. The directories met
    on the way are remembered for the life of this object only (one load of a store), so each
    path costs one lstat of its file instead of a realpath of every component; any symlink on
    the way is resolved in full, as ``os.path.realpath`` does."""

    def __init__(self, root: Path):
        key = os.fspath(root)
        real_root = _REAL_ROOTS.get(key)
        if real_root is None:
            real_root = _REAL_ROOTS.setdefault(key, os.path.realpath(key))
        self.real_root = real_root
        self._prefix = real_root.rstrip(os.sep) + os.sep
        self._dirs: set[str] = set()  # real directories met under real_root

    def path(self, rel, what: str) -> Path:
        if not isinstance(rel, str) or not rel or "\0" in rel:
            raise InputError(f"{what}: expected a relative path inside the store, got {rel!r}")
        p = Path(rel)
        if p.is_absolute() or ".." in p.parts:
            raise InputError(f"{what}: {rel!r} leaves the store (absolute paths and '..' are refused)")
        resolved, mode = self._resolve(p.parts)
        if not (resolved == self.real_root or resolved.startswith(self._prefix)):
            raise InputError(f"{what}: {rel!r} leads outside the store (through a symlink)")
        if mode is None:
            try:
                mode = os.stat(resolved).st_mode
            except OSError:
                raise InputError(f"{what}: {rel!r} does not exist in the store") from None
        if not stat.S_ISREG(mode):
            raise InputError(f"{what}: {rel!r} is not a regular file")
        return Path(resolved)

    def _resolve(self, parts: tuple) -> tuple[str, int | None]:
        """(the real path of real_root/parts, its mode when known without following a link)."""
        cur = self.real_root
        if not parts:
            return cur, None
        last = len(parts) - 1
        for i, part in enumerate(parts):
            nxt = os.path.join(cur, part)
            if i < last and nxt in self._dirs:
                cur = nxt
                continue
            try:
                st = os.lstat(nxt)
            except OSError:
                return os.path.join(cur, *parts[i:]), None  # does not exist: os.stat says so
            if stat.S_ISLNK(st.st_mode):
                return os.path.realpath(os.path.join(cur, *parts[i:])), None
            if i < last:
                if not stat.S_ISDIR(st.st_mode):
                    return os.path.join(cur, *parts[i:]), None
                self._dirs.add(nxt)
            cur = nxt
        return cur, st.st_mode


# --- signals -------------------------------------------------------------------------------

_deferred: list[int] = []
_deferring = False


def _hold(signum, frame):
    if not _deferred:
        print(f"\n{signal.Signals(signum).name}: finishing the reports and results first (a few seconds)",
              file=sys.stderr)
    _deferred.append(signum)


@contextlib.contextmanager
def deferred_signals(restore: bool = True):
    """Hold SIGINT and SIGTERM back inside the block; yield a list that holds the signals
    that arrived (the caller exits 130 when it is not empty). With ``restore=False`` they are
    ignored after the block: for the last thing a process does before it exits, so that a
    Ctrl-C during its exit (interpreter shutdown included) does not kill it or print a
    traceback."""
    global _deferring
    if _deferring:  # nested: the outer block holds them
        yield _deferred
        return
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield []
        return
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    _deferred.clear()
    _deferring = True
    for s in old:
        signal.signal(s, _hold)
    try:
        yield _deferred
    finally:
        _deferring = False
        for s, h in old.items():
            signal.signal(s, h if restore else signal.SIG_IGN)
