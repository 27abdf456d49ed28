"""The report files of ``parity run`` written by a second process while the run goes on.

Rendering a case's part of five report formats costs the parent about as much as judging
it (about 1 ms for a small case), and the parent is what a large suite waits for. So
``parity run`` forks a writer before the runner's threads start; the parent hands it the
judged cases, pickled without their arrays, 16 to a message (what they share is pickled once:
about 0.13 ms and 4 KB a small case, against 0.25 ms and 6 KB one at a time), and the writer
feeds its ``stream.Writer`` exactly as the parent would have. ``close(report)``
sends the Report the heads are written from and waits for the files; ``abandon`` leaves the
previous set as it was. Same interface and same files as ``stream.Writer``.

Failures keep their meaning: a failure while adding (a full disk) is raised by ``close``,
the filesystem's as the same OSError; a writer that dies is a RuntimeError at ``close``;
the results store, written by the parent, is whole either way. The writer ignores Ctrl-C
and SIGTERM (the terminal sends them to the whole process group; the parent decides), and
leaves, removing what it staged, when the parent's end of the pipe closes (the parent
died). Where there is no ``fork`` (or one CPU), ``writer`` gives the in-process Writer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import signal
import struct
import sys
from pathlib import Path

from parity import fsutil

_LEN = struct.Struct(">Q")
#: judged cases handed to the writer in one message (Background.add)
HAND_OVER = 16


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def writer(out_dir, formats=None, background: bool | None = None):
    """``parity.report.writer(out_dir, formats)``, in a forked process where that helps:
    Linux with more than one CPU (``background`` None), or as told."""
    from parity import report

    if background is None:
        background = sys.platform.startswith("linux") and _cpus() > 1
    if not background or not hasattr(os, "fork"):
        return report.writer(out_dir, formats)
    try:
        return Background(out_dir, report.sinks(formats))
    except NoFork as exc:  # no second process now (fork failed): this one writes them
        print(f"note: the report files are written by this process (fork: {exc})", file=sys.stderr)
        return report.writer(out_dir, formats)


class NoFork(Exception):
    """os.fork failed (EAGAIN, ENOMEM): the caller writes the files itself."""


def _send(fd: int, obj) -> None:
    _write(fd, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def _write(fd: int, data: bytes) -> None:
    fsutil.write_all(fd, _LEN.pack(len(data)) + data)


def _receive(f):
    head = f.read(_LEN.size)
    if len(head) < _LEN.size:
        raise EOFError
    (n,) = _LEN.unpack(head)
    data = f.read(n)
    if len(data) < n:
        raise EOFError
    return pickle.loads(data)  # from this process's own fork, through a private pipe: not untrusted input


def _bare(c):
    """A judged case as the sinks need it: no arrays (the parent's run keeps none anyway)."""
    if c.arrays is None and not any(r.outputs or r.bounds or r.magnitudes for r in c.results + c.refs):
        return c
    strip = {"outputs": {}, "bounds": {}, "magnitudes": {}}
    return dataclasses.replace(c, arrays=None, results=[dataclasses.replace(r, **strip) for r in c.results],
                               refs=[dataclasses.replace(r, **strip) for r in c.refs])


class Background:
    """The report files of ``sinks`` in ``out_dir``, written by a forked process (see the
    module docstring). ``add(case_report)``, then ``close(report)`` or ``abandon()``."""

    def __init__(self, out_dir, sinks: dict):
        from parity.report import stream

        self.out_dir = Path(out_dir)
        self.failed: BaseException | None = None  # the pipe broke: the writer is gone
        self.summary = None
        self.pending: list = []  # added cases not yet handed over (add)
        self.names = [cls.name for cls in sinks.values()]
        cases_r, cases_w = os.pipe()
        fsutil.grow_pipe(cases_w)  # the parent waits for the writer only when it is a megabyte behind
        answer_r, answer_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in (cases_r, cases_w, answer_r, answer_w):
                os.close(fd)
            raise NoFork(exc.strerror or str(exc)) from None
        if pid == 0:  # the writer
            code = 1
            try:
                os.close(cases_w)
                os.close(answer_r)
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                code = _serve(stream.Writer, self.out_dir, sinks, cases_r, answer_w)
            finally:
                os._exit(code)  # nothing of the parent's runs here (atexit, finally blocks, buffers)
        os.close(cases_r)
        os.close(answer_w)
        self.pid, self.fd = pid, cases_w
        self.answers = os.fdopen(answer_r, "rb")
        try:
            self._answer()  # the writer made its Writer (the report directory, its spools) or says why not
        except BaseException:
            self._end()
            raise

    def add(self, c) -> None:
        """Hand a judged case on: HAND_OVER of them in one message (their forms, hosts and
        names pickled once), the rest at ``close``. The cases are not changed after they are
        added (the run keeps none of them)."""
        if self.failed is not None:
            return
        self.pending.append(_bare(c))
        if len(self.pending) >= HAND_OVER:
            self._flush()

    def _flush(self) -> None:
        pending, self.pending = self.pending, []
        if not pending or self.failed is not None:
            return
        try:
            data = pickle.dumps(("add", pending), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - kept for close, as the Writer keeps a failed add
            self.failed = exc
            return
        try:
            _write(self.fd, data)
        except OSError as exc:  # the writer died; close says so
            self.failed = exc

    def close(self, report) -> list[Path]:
        """The files, once written and renamed into place; any failure is raised (the previous
        set then stays as it was)."""
        try:
            self._flush()
            if isinstance(self.failed, OSError):
                raise self._died()
            if self.failed is not None:
                with contextlib.suppress(OSError):
                    _send(self.fd, ("abandon", None))
                raise RuntimeError(f"a case could not be handed to the report writer: "
                                   f"{type(self.failed).__name__}: {self.failed}")
            from parity.report.stream import Tally

            # the heads need the totals, not the cases (the writer has had each one already)
            tally = report.tally if report.tally is not None else Tally.of(report.cases)
            _send(self.fd, ("close", dataclasses.replace(report, cases=[], tally=tally)))
            paths, self.summary = self._answer()
            return paths
        except OSError as exc:
            if getattr(exc, "errno", None) is None or isinstance(exc, BrokenPipeError):
                raise self._died() from None
            raise
        finally:
            self._end()

    def abandon(self) -> None:
        """Remove what the writer staged; the previous set stays as it was."""
        self.pending = []
        with contextlib.suppress(OSError):
            _send(self.fd, ("abandon", None))
        self._end()

    def _answer(self):
        try:
            kind, value = _receive(self.answers)
        except (EOFError, OSError, pickle.UnpicklingError):
            raise self._died() from None
        if kind == "ok":
            return value
        errno_, filename, message = value
        if errno_ is not None:  # the filesystem's no (a full disk): the same OSError as in this process
            raise OSError(errno_, os.strerror(errno_), filename)
        raise RuntimeError(f"writing the report files failed (in the report writer process): {message}")

    def _died(self) -> RuntimeError:
        status = self._end()
        how = f" (exit status {os.waitstatus_to_exitcode(status)})" if status is not None else ""
        return RuntimeError(f"the report writer process stopped{how}; the report files were not written")

    def _end(self) -> int | None:
        """Close the pipes and wait for the writer; its wait status (None: already waited)."""
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None
        with contextlib.suppress(OSError):
            self.answers.close()
        if self.pid is None:
            return None
        pid, self.pid = self.pid, None
        try:
            _, status, usage = os.wait4(pid, 0)
        except ChildProcessError:
            return None
        from parity import report

        report.WRITER_PEAK_KIB.append(usage.ru_maxrss)  # bench/scale.py reports it
        return status


def _serve(make_writer, out_dir, sinks, cases_fd: int, answer_fd: int) -> int:
    """The writer's loop: its exit status."""
    def answer(kind, value):
        _send(answer_fd, (kind, value))

    def failure(exc):
        return [getattr(exc, "errno", None), getattr(exc, "filename", None), f"{type(exc).__name__}: {exc}"[:4000]]

    cases = os.fdopen(cases_fd, "rb")
    try:
        files = make_writer(out_dir, sinks)
    except BaseException as exc:  # noqa: BLE001 - said to the parent, which raises it
        answer("error", failure(exc))
        return 1
    answer("ok", None)
    broken = None  # a message that could not be read back: said at close, as a failed add is
    while True:
        try:
            kind, value = _receive(cases)
        except (EOFError, OSError):  # the parent died, or gave up
            files.abandon()
            return 0
        except Exception as exc:  # noqa: BLE001 - an object pickle could not rebuild
            kind, value, broken = "skip", None, broken or exc
        if kind == "add":
            for c in value:
                files.add(c)  # a failure is kept by the Writer and raised by close
        elif kind == "close":
            try:
                if broken is not None:
                    files.abandon()
                    raise RuntimeError(f"a case could not be handed to the writer: {type(broken).__name__}: {broken}")
                paths = files.close(value)
            except BaseException as exc:  # noqa: BLE001
                answer("error", failure(exc))
                return 1
            answer("ok", (paths, files.summary))
            return 0
        elif kind != "skip":
            files.abandon()
            return 0

