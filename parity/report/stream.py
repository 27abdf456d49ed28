"""The report files written as the cases arrive: each format a sink fed one case at a time.

A sink (``Sink``) takes each finished case in suite order (``add``) and writes what it can
of its file at once: a CSV writes its lines, the other formats put each case's part of their
body in a spool (``Spool``: an unnamed temporary file in the report directory). ``finish``
then writes the head (which needs the totals), the spooled body and the tail. So the report
of a suite costs the memory of its largest case, not of the suite: parity run hands each
case to the sinks as it finishes and keeps none of them (``parity.run(on_case=...,
keep_cases=False)``).

``Writer`` writes the set: one staged file per format beside its destination, all renamed
into place at the end (``close``), so a failure leaves the previous set whole; a failure
while a case is added is kept and raised by ``close`` (the run goes on and its results
store is written: nothing computed is lost for a report that could not be written).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

#: characters read back from a spool at a time
CHUNK = 1 << 20


class Spool:
    """Text written as the cases arrive and read back once: an unnamed temporary file in
    ``directory`` (nothing is left behind if the process dies, nothing is written elsewhere),
    or memory when there is no directory (a report rendered to a string)."""

    def __init__(self, directory: Path | None):
        if directory is None:
            self.file = io.StringIO()
        else:
            self.file = tempfile.TemporaryFile("w+", encoding="utf-8", dir=directory, prefix=".parity-spool.")
        self.pieces = 0

    def write(self, text: str, sep: str = ",") -> None:
        """Append one piece, after ``sep`` when it is not the first."""
        if self.pieces and sep:
            self.file.write(sep)
        self.file.write(text)
        self.pieces += 1

    def chunks(self):
        """What was written, in chunks of CHUNK characters."""
        self.file.seek(0)
        while True:
            chunk = self.file.read(CHUNK)
            if not chunk:
                return
            yield chunk

    def copy_to(self, out) -> None:
        for chunk in self.chunks():
            out.write(chunk)

    def close(self) -> None:
        self.file.close()


class Tally:
    """What the heads and tails of the reports need from the cases, counted as they arrive:
    a report that keeps no case (parity run) still has its counts, hosts and versions."""

    __slots__ = ("cases", "rows", "counts", "not_ok", "hosts", "versions")

    def __init__(self):
        from parity.verdicts import VERDICTS

        self.cases = self.rows = self.not_ok = 0
        self.counts = {v: 0 for v in VERDICTS}
        self.hosts: dict[str, dict] = {}  # host id -> fingerprint, in the order the runs name them
        self.versions: dict[str, str] = {}  # framework -> the first version a run or reference gives

    @classmethod
    def of(cls, cases) -> "Tally":
        t = cls()
        for c in cases:
            t.add(c)
        return t

    def add(self, c) -> None:
        self.cases += 1
        self.rows += len(c.rows)
        counted = self.counts
        for row in c.rows:
            counted[row.verdict] += 1
            if not row.ok:
                self.not_ok += 1
        for r in c.results:
            if r.host:
                self.hosts.setdefault(r.host["id"], r.host)
        for r in c.results + c.refs:
            if r.version and r.framework not in self.versions:
                self.versions[r.framework] = r.version


class Sink:
    """One report format. ``add(case_report, tally)`` for each case in order (``tally``: the
    totals so far, this case included) puts the case's part in spools; ``finish(out,
    report, tally)`` writes the whole text to ``out``. ``report`` gives what is not counted
    from the cases (started, seconds, command, host, interrupted, exit_code); it may hold no
    case (parity run keeps none)."""

    name = ""

    def __init__(self, spool_dir: Path | None):
        self.spool_dir = spool_dir
        self.spools: list[Spool] = []

    def spool(self) -> Spool:
        s = Spool(self.spool_dir)
        self.spools.append(s)
        return s

    def add(self, c, tally) -> None:
        raise NotImplementedError

    def finish(self, out, report, tally) -> None:
        raise NotImplementedError

    def close(self) -> None:
        for s in self.spools:
            with contextlib.suppress(OSError):
                s.close()
        self.spools = []

    @classmethod
    def text(cls, report) -> str:
        """The whole text of this format for a report that holds its cases (in memory)."""
        out = io.StringIO()
        sink = cls(None)
        tally = Tally()
        for c in report.cases:
            tally.add(c)
            sink.add(c, tally)
        sink.finish(out, report, tally)
        return out.getvalue()


class Writer:
    """The report files of ``sinks`` (format -> Sink class; parity.report.writer gives them)
    in ``out_dir``, made as cases are added (``add``, in suite order: into unnamed spools, so
    a process killed meanwhile leaves nothing behind) and put in place as a set by
    ``close(report)``: each file staged beside its destination (``stage``), then all renamed.
    ``abandon`` leaves the previous set as it was. A failure in ``add`` (a full disk, a
    renderer's bug) stops the writing and is raised by ``close``."""

    def __init__(self, out_dir, sinks: dict):
        self.out_dir = Path(out_dir)
        self.formats = list(sinks)
        self.names = {f: cls.name for f, cls in sinks.items()}  # format -> its file's name
        self.tally = Tally()
        self.failed: BaseException | None = None
        self.summary: str | None = None  # the Markdown text, for $GITHUB_STEP_SUMMARY
        self.staged: dict[str, str] = {}  # format -> its temporary file, renamed into place by commit
        self.files: dict = {}
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.sinks: dict[str, Sink] = {}
        try:
            for f, cls in sinks.items():
                self.sinks[f] = cls(self.out_dir)
        except BaseException:
            self.abandon()
            raise

    def add(self, c) -> None:
        if self.failed is not None:
            return
        from parity import report

        report._SHARING.case, report._SHARING.records = c, None  # the sinks share its records (report.records)
        try:
            self.tally.add(c)
            for sink in self.sinks.values():
                sink.add(c, self.tally)
        except Exception as exc:  # noqa: BLE001 - kept for close(): the run goes on, its results are stored
            self.failed = exc
            self.forget(list(self.sinks))
        finally:
            report._SHARING.case = report._SHARING.records = None

    def stage(self) -> None:
        """The temporary file of each format, beside its destination (once)."""
        if self.staged:
            return
        umask = os.umask(0)
        os.umask(umask)
        for f in self.formats:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.names[f]}.", dir=self.out_dir)
            self.staged[f] = tmp
            self.files[f] = os.fdopen(fd, "w", encoding="utf-8")
            os.fchmod(fd, 0o666 & ~umask)

    def forget(self, formats) -> None:
        """This process no longer writes ``formats`` (another one does, or they are done or
        failed): their files and spools are closed here, not removed; commit still renames
        them into place, abandon removes them."""
        for f in formats:
            sink, file = self.sinks.pop(f, None), self.files.pop(f, None)
            if sink is not None:
                sink.close()
            if file is not None:
                with contextlib.suppress(OSError):
                    file.close()

    def finish(self, report) -> None:
        """Write every file of this process, each flushed to disk."""
        if self.failed is not None:
            raise self.failed
        self.stage()
        for f in list(self.sinks):
            sink, file = self.sinks[f], self.files[f]
            sink.finish(file, report, self.tally)
            if f == "md":
                self.summary = sink.summary
            file.flush()
            os.fsync(file.fileno())
            self.forget([f])

    def commit(self) -> list[Path]:
        """Rename every staged file into place (microseconds: the set changes at once), append
        the Markdown summary to $GITHUB_STEP_SUMMARY when that is set; the files, in order."""
        names = [self.names[f] for f in self.formats]
        for f, name in zip(self.formats, names):
            os.replace(self.staged[f], self.out_dir / name)
        self.staged = {}
        if self.summary is not None and os.environ.get("GITHUB_STEP_SUMMARY"):
            with open(os.environ["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as step:
                step.write(self.summary + "\n")
        return [self.out_dir / name for name in names]

    def close(self, report) -> list[Path]:
        """finish and commit; on any failure, abandon and raise it."""
        try:
            self.finish(report)
            return self.commit()
        except BaseException:
            self.abandon()
            raise

    def abandon(self) -> None:
        """Remove what this writer staged; the previous set stays as it was."""
        self.forget(list(self.sinks) + list(self.files))
        for tmp in self.staged.values():
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self.staged = {}
