"""Plan runs, execute them in framework workers, compute references.

One worker process per (framework, device, python) imports its framework once and
serves every run of it; workers for different frameworks run concurrently, and
the float64 reference runs on a thread of the parent. A worker that raises
yields ERROR; one that dies yields CRASH (and is restarted for the next run); one
that does not answer within the per-run limit is killed and yields TIMEOUT. Each
worker holds a few requests queued (_Feed), so it never waits for the parent
between runs; the runs queued behind a crash or a hang go again to a fresh worker.
The parent never imports a deep-learning framework.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from parity import frameworks, fsutil, host, inputs, protocol, sides
from parity.cases import Case
from parity.ops.base import Form, NoExactMapping
from parity.verdicts import CRASH, ERROR, OK, TIMEOUT, UNSUPPORTED  # noqa: F401 - re-exported

REFERENCE = sides.REFERENCE
DEFAULT_TIMEOUT = 300.0
PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


@dataclass(slots=True)
class Run:
    """One framework call to make: a case on a framework, device and dtype."""

    case: Case
    framework: str
    device: str
    dtype: str
    native: dict | None
    form: Form | None  # the form of the first spelling; forms has every candidate's
    spelling: tuple[str, ...] | None = None  # pinned by the case
    forms: dict = field(default_factory=dict)
    python: str | None = None
    variant: str | None = None  # a label for a second run of the framework (another Python or environment)
    env: dict = field(default_factory=dict)  # environment variables set for this run's worker
    planned_status: str | None = None  # UNSUPPORTED when no exact mapping exists
    planned_message: str = ""

    @property
    def id(self) -> str:
        return f"{self.case.name}::{self.framework}@{self.device}[{self.variant or ''}]/{self.dtype}"


@dataclass(slots=True)
class Result:
    """What a run produced (or the reference, with framework == 'reference')."""

    case: Case
    framework: str
    device: str
    dtype: str
    status: str
    message: str = ""
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    form: Form | None = None
    native: dict | None = None
    spelling: str | None = None
    attempts: list = field(default_factory=list)
    version: str | None = None
    seconds: float | None = None
    worker: dict = field(default_factory=dict)
    inputs_sha256: str | None = None
    bounds: dict[str, np.ndarray] = field(default_factory=dict)  # reference only: rounding bounds
    magnitudes: dict[str, np.ndarray] = field(default_factory=dict)  # reference only: of gradients' terms
    variant: str | None = None
    python: str | None = None
    #: with ``grad:``: how the gradients went, {"status", "spelling", "message", "seconds"}
    grad: dict | None = None
    #: the fingerprint of the machine that made it (parity.host)
    host: dict | None = None
    #: environment variables the run's variant set for its worker (``--env``)
    env: dict = field(default_factory=dict)
    #: a run that did not succeed: the framework's traceback (last frames), and what the
    #: worker wrote to its log during this run (framework messages, C++ logs), at most 60 lines
    traceback: str = ""
    log: str = ""


# --- planning --------------------------------------------------------------------

def plan(cases: list[Case], only_frameworks=None, devices=None, python: dict | None = None,
         env: dict | None = None) -> list[Run]:
    """Every run the cases ask for (Planner's arguments)."""
    planner = Planner(only_frameworks, devices, python, env)
    return [run for case in cases for run in planner.runs(case)]


@dataclass(frozen=True, slots=True)
class Plan:
    """What a run will make, told before it starts (parity.run's ``on_start``): how many runs
    and cases, and ``runs_of(case)``, how many runs a case has (as the run plans each case only
    when it reaches it)."""

    runs: int
    cases: int
    runs_of: object  # Callable[[Case], int]


class Planner:
    """The runs of each case: ``runs(case)`` plans them (mapping the case's params to each
    framework's, which takes time; a run does it when it reaches the case), ``sides(case)``
    says which they are (framework, device, variant label) from what a CaseRef holds, at once.

    ``devices`` (from --device) overrides the cases'. ``python`` maps a framework to the
    interpreter to run it with, or ``FW:LABEL`` to an interpreter for an extra run of FW
    labelled LABEL (version against version). ``env`` maps ``FW:LABEL`` to environment
    variables for an extra run of FW labelled LABEL (another ISA cap, oneDNN switched off); a
    label in both runs that interpreter with those variables."""

    def __init__(self, only_frameworks=None, devices=None, python: dict | None = None, env: dict | None = None):
        python = dict(python or {})
        self.variants: dict[str, dict] = {}
        for key, path in python.items():
            if ":" in key:
                self.variants.setdefault(key, {})["python"] = path
        for key, variables in (env or {}).items():
            self.variants.setdefault(key, {})["env"] = dict(variables)
        self.python = {k: v for k, v in python.items() if ":" not in k}
        self.only, self.devices = only_frameworks, devices
        self._sides: dict[tuple, tuple] = {}
        self._keys: dict[tuple, tuple] = {}

    @staticmethod
    def _config(case) -> tuple:
        return case.op_name, case.frameworks, case.devices, bool(case.blocked)

    def sides(self, case) -> tuple:
        """(framework, device, variant label or None) of each run of a Case or CaseRef, in the
        order ``runs`` plans them."""
        config = self._config(case)
        got = self._sides.get(config)
        if got is None:
            from parity import ops

            op_name, case_fws, case_devices, blocked = config
            fws = list(case_fws) if case_fws is not None else \
                [fw for fw in ops.get(op_name).frameworks() if fw in self.python or frameworks.installed(fw)]
            out = []
            for fw in fws:
                if self.only and fw not in self.only:
                    continue
                for device in self.devices or case_devices:
                    out.append((fw, device, None))
                    if not blocked:  # a case that is not run is not run again either
                        out += [(fw, device, key.split(":", 1)[1]) for key in self.variants
                                if key.split(":", 1)[0] == fw]
            got = self._sides[config] = tuple(out)
        return got

    def _python_env(self, fw: str, label: str | None) -> tuple[str | None, dict]:
        if label is None:
            return self.python.get(fw), {}
        v = self.variants[f"{fw}:{label}"]
        return v.get("python", self.python.get(fw)), v.get("env", {})

    def worker_keys(self, case) -> tuple:
        """The workers (worker_key) a Case or CaseRef has runs for (none for a case not run)."""
        config = self._config(case)
        got = self._keys.get(config)
        if got is None:
            keys = {} if case.blocked else {_worker_key(fw, device, label, *self._python_env(fw, label)): None
                                            for fw, device, label in self.sides(case)}
            got = self._keys[config] = tuple(keys)
        return got

    def summary(self, items) -> Plan:
        return Plan(sum(len(self.sides(c)) for c in items), len(items), lambda case: len(self.sides(case)))

    def runs(self, case: Case) -> list[Run]:
        out: list[Run] = []
        run = None
        for fw, device, label in self.sides(case):
            if label is not None:  # a second run of the last plain one (another Python or environment)
                python, env = self._python_env(fw, label)
                out.append(dataclasses.replace(run, python=python, variant=label, env=env))
                continue
            run = Run(case, fw, device, case.dtype, native=None, form=None, spelling=case.spelling.get(fw),
                      python=self.python.get(fw))
            out.append(run)
            if case.blocked:  # only this case: the others run
                run.planned_status = ERROR
                run.planned_message = "not run: " + "; ".join(str(e) for e in case.blocked)
                continue
            try:
                run.native, run.forms = _native_and_forms(case, fw, run.spelling)
                run.form = next(iter(run.forms.values()))
            except NoExactMapping as exc:
                run.planned_status = UNSUPPORTED
                run.planned_message = (f"no exact mapping: {exc}. Give native: {{{fw}: {{...}}}} in the case "
                                       f"to run {fw}'s own call anyway")
        return out


def _worker_key(fw: str, device: str, label: str | None, python: str | None, env: dict) -> tuple:
    """Which worker makes a run: one per framework, device, Python and environment."""
    return fw, device, python, label if env else None, tuple(sorted(env.items()))


def _run_key(run: Run) -> tuple:
    return _worker_key(run.framework, run.device, run.variant, run.python, run.env)


def _native_and_forms(case: Case, fw: str, pinned: tuple[str, ...] | None) -> tuple[dict, dict[str, Form]]:
    """The framework's native params and the canonical form of each spelling to try.

    ``native:`` params are used as written, with every spelling (or the pinned one).
    Otherwise the native params are the exact equivalent of the case's params, and only
    the spellings that compute exactly the case's form are tried.
    """
    op = case.op
    names = list(pinned) if pinned else [s.name for s in op.spellings[fw]]
    if fw in case.native:
        native = op.with_defaults(op.native_schemas[fw], case.native[fw])
        return native, {n: op.form_from_native(fw, native, case.shapes, n, case.dtype) for n in names}
    native = op.native_for(fw, case.params, case.shapes, case.dtype)
    forms = {n: op.form_from_native(fw, native, case.shapes, n, case.dtype) for n in names}
    if pinned:
        return native, forms
    own = case.form()
    exact = {n: f for n, f in forms.items() if f == own}
    if not exact:
        why = "; ".join(f"{n} computes " + ", ".join(f"{label} {va} (case: {vb})" for label, va, vb in f.diff(own))
                        for n, f in forms.items())
        raise NoExactMapping(f"no {fw} spelling computes the case's form: {why}")
    return native, exact


# --- workers ---------------------------------------------------------------------

class WorkerDied(Exception):
    def __init__(self, status: str, message: str):
        self.status, self.message = status, message
        super().__init__(message)


class Worker:
    """A framework worker process and the pipe to it."""

    def __init__(self, framework: str, device: str, python: str | None, log_dir: Path | None,
                 startup_timeout: float, env: dict | None = None, label: str = ""):
        self.framework, self.device = framework, device
        self.python = python or sys.executable
        self.extra_env = dict(env or {})
        self.label = label
        self.log_dir = log_dir
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self.hello: dict = {}
        self.starts = 0
        self.log_path: Path | None = None
        self.launched = False  # launch() started the process; start() reads its hello
        self._pending = bytearray()  # read from the worker, not yet taken by _read
        self.pipe_bytes = fsutil.PIPE_DEFAULT  # its stdin pipe's buffer

    def _env(self) -> dict:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        env.setdefault("GLOG_v", "3")
        # OpenMP's threads sleep when a parallel region ends instead of spinning for the next:
        # a worker waits for its next request most of the time, and its spinning threads took
        # the CPU from the other workers (2,000 small cases: 0.74x the CPU, 0.82x the wall time,
        # paired runs). It changes no result: only how idle threads wait.
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.extra_env)
        return env

    def run_log(self, run_id: str, lines: int = 60) -> str:
        """What the worker wrote to its log during run ``run_id``: the lines between its start
        and end markers (to the end of the file, for a run it died in)."""
        from parity.worker import LOG_END, LOG_START

        if not self.log_path or not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - (1 << 20)))
            text = f.read().decode("utf-8", "replace")
        start = text.rfind(f"{LOG_START}{run_id}\n")
        if start < 0:
            return ""
        body = text[start:].split("\n", 1)[1] if "\n" in text[start:] else ""
        end = body.find(f"{LOG_END}{run_id} ")
        body = body[:end] if end >= 0 else body
        kept = body.strip("\n").splitlines()[-lines:]
        return "\n".join(line[:500] for line in kept)

    def log_tail(self, lines: int = 15) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - 16384))
            text = f.read().decode("utf-8", "replace")
        return "\n".join(text.strip().splitlines()[-lines:])

    def launch(self) -> None:
        """Start the process and let it import its framework while the caller does something
        else; the next start() waits for its hello instead of starting another."""
        if self.proc is None and not self.launched:
            self._spawn()
            self.launched = self.proc is not None

    def start(self) -> dict:
        if self.launched:
            self.launched = False
        else:
            self._spawn()
            if self.proc is None:
                return self.hello
        try:
            self.hello, _ = self._read(time.monotonic() + self.startup_timeout)
        except WorkerDied as exc:
            self.hello = {"status": exc.status, "message": f"worker failed to start: {exc.message}"}
            self.kill()
        return self.hello

    def _spawn(self) -> None:
        """The process (self.proc), or self.hello saying why it could not be started."""
        self.proc = None
        self.starts += 1
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            tag = f"-{self.label}" if self.label else ""
            self.log_path = self.log_dir / f"worker-{self.framework}-{self.device}{tag}-{self.starts}.log"
        else:
            self.log_path = None
        log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(
                [self.python, "-m", "parity.worker", self.framework, self.device],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                env=self._env(), start_new_session=True, cwd=PACKAGE_ROOT,
            )
        except OSError as exc:
            self.proc = None
            self.hello = {"status": ERROR, "message": f"cannot start {self.python}: {exc}"}
        finally:
            if log is not subprocess.DEVNULL:
                log.close()
        self._pending = bytearray()
        self.pipe_bytes = fsutil.PIPE_DEFAULT
        if self.proc is not None:
            self.pipe_bytes = fsutil.grow_pipe(self.proc.stdin.fileno())
            fsutil.grow_pipe(self.proc.stdout.fileno())

    def _read(self, deadline: float, more: bool = False):
        """The worker's next message (its hello, or the answer to the oldest request it has
        not answered). ``more``: it has more requests to answer, so bytes after this message
        are the next answers and are kept for the next read; otherwise they break the protocol."""
        fd = self.proc.stdout.fileno()
        # a worker writes each message whole, so one read usually brings its length, header
        # and arrays at once (and, with requests queued, the next answers), instead of a select
        # and a read for each of them
        pending = self._pending

        def read_exact(n: int) -> bytes:
            while len(pending) < n:
                left = deadline - time.monotonic()
                ready = select.select([fd], [], [], max(left, 0))[0] if left > 0 else []
                if not ready:
                    raise TimeoutError
                chunk = os.read(fd, max(min(n - len(pending), 1 << 22), 1 << 16))
                if not chunk:
                    raise EOFError
                pending.extend(chunk)
            if len(pending) == n:  # the usual case: the message's last piece
                out = bytes(pending)
                pending.clear()
            else:
                out = bytes(pending[:n])
                del pending[:n]
            return out

        try:
            message = protocol.read(read_exact)
        except TimeoutError:
            self.kill()
            raise WorkerDied(TIMEOUT, "no answer within the time limit; the worker was killed") from None
        except (EOFError, ValueError, OSError) as exc:
            raise WorkerDied(CRASH, self._death(exc)) from None
        if pending and not more:  # a message nobody asked for: not the protocol
            self.kill()
            raise WorkerDied(CRASH, f"the worker sent {len(pending)} bytes after the end of its message, which "
                                    f"the protocol does not allow; it was killed")
        return message

    def _death(self, exc) -> str:
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode
        if code is not None and code < 0:
            try:
                how = f"killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"killed by signal {-code}"
            if -code == signal.SIGKILL:
                how += " (the kernel's out-of-memory killer sends SIGKILL)"
        elif code is not None:
            how = f"exited with status {code}"
        else:
            how = f"stopped answering ({exc})"
        tail = self.log_tail()
        return f"worker process {how}" + (f"; last stderr lines:\n{tail}" if tail else "")

    def send(self, message: bytes) -> None:
        """Write a request (protocol.pack) to the worker; its answer is read by _read."""
        if self.proc is None or self.proc.poll() is not None:
            raise WorkerDied(CRASH, "worker is not running")
        try:
            self.proc.stdin.write(message)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as exc:
            raise WorkerDied(CRASH, self._death(exc)) from None

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
            self.proc.wait()

    def stop(self):
        """End the worker. It holds nothing to save (every answer is in), so it is killed at
        once: a framework's interpreter shutdown takes up to a second per worker."""
        if self.proc is None:
            return
        self.kill()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


# --- the session -----------------------------------------------------------------

class _Open:
    """A case some thread of execute has begun and the parent has not judged yet."""

    __slots__ = ("lock", "case", "runs", "arrays", "digest", "summary", "left", "results", "refs")

    def __init__(self):
        self.lock = threading.Lock()
        self.case = self.arrays = self.digest = self.summary = self.refs = None
        self.runs: list[Run] = []
        self.results: list[Result] = []
        self.left = 0  # its runs and its references not yet in


class _OpenCases:
    """The open cases of execute, shared by its threads: each case opened (a CaseRef read
    again) and planned by the first thread to reach it, its inputs made once, all of it let go
    when the parent has judged it."""

    def __init__(self, items: list, planner: Planner, events: queue.Queue):
        self.items, self.planner, self.events = items, planner, events
        self._lock = threading.Lock()
        self._open: dict[int, _Open] = {}
        self._closed_below, self._closed = 0, set()  # judged: every case below, and these

    def open(self, i: int) -> _Open | None:
        """The open case ``i``, opened and planned if no thread did yet; None once it is judged
        (a worker all of whose runs of it were planned out can come to it late)."""
        with self._lock:
            if i < self._closed_below or i in self._closed:
                return None
            st = self._open.get(i)
            if st is None:
                st = self._open[i] = _Open()
        with st.lock:
            if st.case is None:
                case = self.items[i].open()
                st.runs = self.planner.runs(case)
                st.left = len(st.runs) + 1
                st.case = case
                for r in st.runs:
                    if r.planned_status is not None:
                        self.events.put(("result", i, _planned_result(r)))
        return st

    @staticmethod
    def arrays(st: _Open) -> tuple[dict[str, np.ndarray], str]:
        with st.lock:
            if st.arrays is None:
                arrays = {name: spec.materialize() for name, spec in st.case.inputs.items()}
                if st.case.grad:
                    arrays[protocol.UPSTREAM] = st.case.upstream()
                st.arrays, st.digest, st.summary = arrays, inputs.digest(arrays), inputs.summarize(arrays)
            return st.arrays, st.digest

    def get(self, i: int) -> _Open:
        with self._lock:
            return self._open[i]

    def close(self, i: int) -> _Open:
        with self._lock:
            st = self._open.pop(i)
            self._closed.add(i)
            while self._closed_below in self._closed:
                self._closed.discard(self._closed_below)
                self._closed_below += 1
        self.items[i].release()
        return st


#: how much the cases open at once (begun by some thread, not yet judged) may hold, estimated
#: from their shapes: a fast worker, or the reference thread, runs ahead of the slowest only
#: that far, so the parent holds the inputs, outputs and references of that much, or of its
#: largest case (the oldest open case always begins), whatever the suite's length. A thread
#: stopped by it goes on once the open cases hold half of it: it runs ahead in bursts and
#: waits long between them (a worker waiting case by case costs time: its thread pools spin
#: while it is idle). 2,000 small cases of [2, C, 6, 6] are about 64 MiB.
WINDOW_BYTES = 64 << 20


def _case_bytes(elements: int, n_runs: int) -> int:
    """What a case of ``elements`` input elements holds while open, about: its inputs, each
    run's outputs and the references (float64, with their bounds), all about the size of the
    inputs."""
    return elements * 8 * (n_runs + 4)


class _Window:
    """The threads of ``execute`` begin case ``i`` only while the cases from the oldest
    unfinished one to it hold less than ``budget`` (the oldest itself always begins); ``sizes``
    are their estimated bytes, in suite order. Each thread takes its cases in suite order, so
    the oldest unfinished case never waits on a thread that is blocked here (that thread is
    past it)."""

    def __init__(self, sizes, budget: int):
        import array
        import itertools

        self.upto = array.array("q", itertools.chain((0,), itertools.accumulate(sizes)))  # bytes of cases 0..i-1
        self.budget = budget
        self.oldest = 0
        self.finished: set[int] = set()
        self.cond = threading.Condition()
        self.waiting: list[int] = []  # the cases threads wait here to begin

    def may(self, i: int) -> bool:
        """Whether ``enter(i)`` would go on at once."""
        return self._may(i, self.budget)

    def _may(self, i: int, budget: int) -> bool:
        return i <= self.oldest or self.upto[i + 1] - self.upto[self.oldest] <= budget

    def enter(self, i: int, stop: threading.Event) -> None:
        if self._may(i, self.budget):  # the usual case, without the lock (oldest only grows)
            return
        with self.cond:  # stopped: on again when the open cases hold half the budget
            self.waiting.append(i)
            try:
                while not self._may(i, self.budget // 2) and not stop.is_set():
                    self.cond.wait(0.2)
            finally:
                self.waiting.remove(i)

    def finish(self, i: int) -> None:
        with self.cond:
            self.finished.add(i)
            moved = False
            while self.oldest in self.finished:
                self.finished.discard(self.oldest)
                self.oldest += 1
                moved = True
            # wake the waiting threads only when one of them may go on: each finished case
            # woke them all before, and thousands of wake-ups cost the parent seconds
            if moved and self.waiting and self._may(min(self.waiting), self.budget // 2):
                self.cond.notify_all()


def reference_results(case: Case, candidate_forms: list[Form], arrays: dict, digest: str | None) -> list[Result]:
    """The float64 reference of every distinct canonical form given, plus the case's own."""
    forms: list[Form] = []
    for form in [case.form()] + list(candidate_forms):
        if form is not None and form not in forms:
            forms.append(form)
    out = []
    given = {k: v for k, v in arrays.items() if k != protocol.UPSTREAM}
    for form in forms:
        start = time.perf_counter()
        try:
            outputs, bounds = case.op.reference_and_bound(given, form, case.dtype)
            magnitudes = {}
            if case.grad:
                x64 = {k: np.asarray(v, np.float64) for k, v in given.items()}
                grads, magnitudes = case.op.reference_vjp(x64, form, arrays[protocol.UPSTREAM])
                outputs.update(grads)
            status, message = OK, ""
        except Exception as exc:  # noqa: BLE001 - a reference failure is reported like a framework's
            outputs, bounds, magnitudes = {}, {}, {}
            status, message = ERROR, f"reference failed: {type(exc).__name__}: {exc}"
        out.append(Result(case, REFERENCE, "cpu", "float64", status, message, outputs, form=form,
                          version=f"numpy {np.__version__}", seconds=time.perf_counter() - start,
                          inputs_sha256=digest, bounds=bounds, magnitudes=magnitudes, host=host.fingerprint()))
    return out


class WorkerPool:
    """Workers kept between execute() calls (one per framework, device and python), so that
    a caller running cases in several batches (the pytest plugin, explain) imports each
    framework once. Close it when done."""

    def __init__(self, log_dir: Path | None = None):
        self.log_dir = log_dir
        self._workers: dict[tuple, Worker] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple, startup_timeout: float) -> Worker:
        """The worker of ``key`` = (framework, device, python, variant, env items)."""
        with self._lock:
            if key not in self._workers:
                framework, device, python, variant, env = key
                self._workers[key] = Worker(framework, device, python, self.log_dir, startup_timeout, dict(env),
                                            variant or "")
            return self._workers[key]

    def launch(self, keys, startup_timeout: float) -> None:
        """Start the workers of ``keys`` now (each imports its framework meanwhile); a run that
        then uses the pool waits for their hello instead of starting them."""
        for key in keys:
            self.get(key, startup_timeout).launch()

    def kill(self):
        for w in list(self._workers.values()):
            w.kill()

    def close(self):
        for w in list(self._workers.values()):
            w.stop()
        self._workers.clear()


def execute(items: list, planner: Planner | None = None, *, timeout: float = DEFAULT_TIMEOUT,
            log_dir: Path | None = None, on_case_done=None, on_result=None, pool: WorkerPool | None = None,
            on_cases_done=None) -> None:
    """Run every case of ``items`` (Case objects, or CaseRefs: each opened when a thread
    reaches it and released once judged), planned by ``planner`` (a Planner) as the run
    reaches it. ``on_result(result)`` is called per finished run; ``on_case_done(index, case,
    results, references, input_summary, inputs)`` once per case when all its runs are in
    (``inputs``: the arrays, with ``inputs_sha256`` of the results). Or, instead of that,
    ``on_cases_done(done)`` with a list of such tuples: the cases finished by every event
    already waiting when one arrives (at most BATCH), so that a caller that falls behind
    judges several cases in one pass; a caller that keeps up gets them one at a time, as they
    finish. All are called on the calling thread. Workers come from ``pool`` (kept running) or from a pool of this call
    (stopped at its end). A case that cannot be opened (a CaseRef whose file changed:
    parity.cases.CaseChanged) stops the run as Ctrl-C does, and its error is raised."""
    planner = planner or Planner()
    own_pool = pool is None
    pool = pool or WorkerPool(log_dir)
    events: queue.Queue = queue.Queue()
    n = len(items)
    cases = _OpenCases(items, planner, events)
    window = _Window((_case_bytes(c.elements, len(planner.sides(c))) for c in items), WINDOW_BYTES)
    keys = {k: None for c in items for k in planner.worker_keys(c)}
    stop = threading.Event()

    def open_(i: int) -> _Open | None:
        """Case ``i`` once the window lets this thread begin it; None when it is judged already,
        or when the run stops (``stop`` is set)."""
        window.enter(i, stop)
        if stop.is_set():
            return None
        try:
            return cases.open(i)
        except Exception as exc:  # noqa: BLE001 - raised on the calling thread
            events.put(("failed", i, exc))
            stop.set()
            return None

    def serve(key):
        worker = pool.get(key, startup_timeout=max(120.0, timeout))
        feed = _Feed(worker, timeout, lambda i, result: events.put(("result", i, result)), stop)

        for i, item in enumerate(items):
            if key not in planner.worker_keys(item):
                continue
            if feed.busy() and not window.may(i):  # about to wait for slower threads: what is sent first
                feed.drain()
            st = open_(i)
            if st is None:
                if stop.is_set():
                    return
                continue
            for run in st.runs:
                if run.planned_status is not None or _run_key(run) != key:
                    continue
                feed.submit(i, run, functools.partial(cases.arrays, st))
        feed.drain()

    def references():
        for i in range(n):
            st = open_(i)
            if st is None:
                return
            try:
                arrays, digest = cases.arrays(st)
                refs = reference_results(st.case, [f for r in st.runs for f in r.forms.values()], arrays, digest)
            except Exception as exc:  # noqa: BLE001
                refs = [Result(st.case, REFERENCE, "cpu", "float64", ERROR, f"inputs: {type(exc).__name__}: {exc}",
                               host=host.fingerprint())]
            events.put(("refs", i, refs))

    threads = [threading.Thread(target=serve, args=(k,), daemon=True, name=f"worker-{k[0]}-{k[1]}") for k in keys]
    threads.append(threading.Thread(target=references, daemon=True, name="reference"))
    for t in threads:
        t.start()

    if on_case_done is not None and on_cases_done is None:
        def on_cases_done(done):
            for args in done:
                on_case_done(*args)

    judged = 0
    try:
        while judged < n:
            try:
                # a timeout, so that Ctrl-C is handled even when the OS delivers the signal to
                # a worker thread rather than to this one (a blocked get() would not wake up)
                event = events.get(timeout=0.2)
            except queue.Empty:
                continue
            # what the waiting events finish is handed on whole: Ctrl-C (held) and a case that
            # cannot be opened (raised) wait until the cases finished before them are handed on
            failure = None
            with fsutil.deferred_signals() as held:
                finished: list[tuple[int, _Open]] = []
                while True:
                    kind, i, item = event
                    if kind == "failed":
                        failure = item
                        break
                    st = cases.get(i)
                    if kind == "result":
                        st.results.append(item)
                        if on_result:
                            on_result(item)
                    else:
                        st.refs = item
                    st.left -= 1
                    if st.left == 0:
                        cases.close(i)
                        finished.append((i, st))
                    if len(finished) >= BATCH:
                        break
                    try:
                        event = events.get_nowait()
                    except queue.Empty:
                        break
                if finished and on_cases_done:
                    on_cases_done([(i, st.case, sorted(st.results, key=_in_order), st.refs, st.summary or {},
                                    st.arrays or {}) for i, st in finished])
                for i, _ in finished:
                    window.finish(i)
                judged += len(finished)
            if failure is not None:
                raise failure
            if held:
                raise KeyboardInterrupt
    except BaseException:
        stop.set()
        pool.kill()  # interrupted: no worker may outlive this
        raise
    finally:
        stop.set()
        if own_pool:
            pool.close()
        for t in threads:
            t.join(timeout=5)


#: the most finished cases handed to ``on_cases_done`` at once (execute)
BATCH = 32


def _in_order(r: Result) -> tuple:
    """A case's runs as execute hands them on: by framework, device and variant."""
    return frameworks.NAMES.index(r.framework), r.device, r.variant or ""


def _planned_result(run: Run) -> Result:
    return _failed(run, run.planned_status, run.planned_message)


def _failed(run: Run, status: str, message: str, **extra) -> Result:
    return Result(run.case, run.framework, run.device, run.dtype, status, message, form=run.form,
                  native=run.native, variant=run.variant, python=run.python, host=host.fingerprint(), env=run.env,
                  **extra)


#: how many requests a worker may hold queued (sent, not yet answered), at most: it begins the
#: next as soon as it has sent an answer, instead of waiting while the parent reads that answer
#: and writes the next request. A mindspore worker waiting for its next request keeps its runtime
#: threads spinning (README, "Performance"): queued requests cost it less CPU per run (1,000
#: small LRN runs, the parent busy 1 ms between answers: 2.7 -> 1.5-2.0 ms of worker CPU a run).
QUEUE_DEPTH = 8
_PAGE = 4096


def _pages(message: bytes) -> int:
    """Pipe buffer pages a message may take, at most (it can start in a page another has begun)."""
    return len(message) // _PAGE + 2


class _Sent:
    """A run given to a _Feed: its request once packed, and when it was sent."""

    __slots__ = ("i", "run", "arrays_of", "message", "digest", "sent", "timeout")

    def __init__(self, i: int, run: Run, arrays_of, default_timeout: float):
        self.i, self.run, self.arrays_of = i, run, arrays_of
        self.message = self.digest = None
        self.sent = 0.0
        self.timeout = run.case.timeout or default_timeout

    def pack(self) -> bytes:
        if self.message is None:
            arrays, self.digest = self.arrays_of()
            run = self.run
            header = {"cmd": "run", "id": run.id, "op": run.case.op.name, "native": run.native,
                      "spellings": list(run.forms)}
            if run.case.grad:
                header["grad"] = {"wrt": run.case.grad_inputs()}
            self.message = protocol.pack(header, arrays)
        return self.message


class _Feed:
    """The runs one thread of execute gives one worker, several queued at a time (up to
    QUEUE_DEPTH, and no more than its stdin pipe holds, so that writing a request never blocks
    while the worker may be blocked writing an answer nobody reads). The worker answers them in
    order, so the oldest unanswered run is the one it is making: a worker that dies or hangs
    fails that run (CRASH, TIMEOUT), and the runs queued behind it are sent again to a fresh
    worker. A run's time limit counts from when the worker could begin it: the later of its
    sending and the answer before it. Each finished run is handed to ``done(case index,
    Result)`` as soon as its answer is read."""

    def __init__(self, worker: Worker, default_timeout: float, done, stop: threading.Event | None = None,
                 depth: int = QUEUE_DEPTH):
        self.worker, self.default_timeout, self.depth, self.done = worker, default_timeout, depth, done
        self.stop = stop or threading.Event()
        self.todo: collections.deque[_Sent] = collections.deque()  # not sent yet, or to send again
        self.flight: collections.deque[_Sent] = collections.deque()  # sent, not answered, in order
        self.free_at = 0.0  # when the worker sent its last answer

    def busy(self) -> bool:
        return bool(self.todo or self.flight)

    def submit(self, i: int, run: Run, arrays_of) -> None:
        """Queue a run: sent at once where the worker has room, after reading answers otherwise."""
        self.todo.append(_Sent(i, run, arrays_of, self.default_timeout))
        self._pump(False)

    def drain(self) -> None:
        """Every run given so far, answered."""
        self._pump(True)

    def _pump(self, final: bool) -> None:
        while self.todo or (final and self.flight):
            if self.stop.is_set():  # the run is stopping (its workers are being killed)
                self.todo.clear()
                self.flight.clear()
                break
            try:
                if self.todo and not self.flight and not self._started():
                    continue  # the worker cannot start: that run is answered so
                if self.todo and (not self.flight or self._fits(self.todo[0])):
                    self._send()
                else:
                    self._answer()
            except Exception as exc:  # noqa: BLE001 - a harness bug must not hang the session
                self.worker.kill()
                message = f"harness error: {type(exc).__name__}: {exc}"
                lost = (*self.flight, *self.todo)
                self.todo.clear()
                self.flight.clear()
                for e in lost:
                    self.done(e.i, _failed(e.run, ERROR, message))

    def _started(self) -> bool:
        """Whether the worker is up (started where it was not); if not, the next run is answered
        with why."""
        hello = _ready(self.worker)
        if hello.get("status") == OK:
            return True
        e = self.todo.popleft()
        status = hello.get("status", ERROR)
        prefix = "" if status == UNSUPPORTED else f"{e.run.framework} could not be loaded: "
        self.done(e.i, _failed(e.run, status, prefix + hello.get("message", ""), worker=_worker_info(self.worker)))
        return False

    def _fits(self, e: _Sent) -> bool:
        """Whether ``e`` may be queued behind the runs in flight."""
        if len(self.flight) >= self.depth:
            return False
        pages = _pages(e.pack()) + sum(_pages(f.message) for f in self.flight)
        return pages * _PAGE <= self.worker.pipe_bytes

    def _send(self) -> None:
        e = self.todo.popleft()
        try:
            self.worker.send(e.pack())
        except WorkerDied as exc:
            if self.flight:  # the worker died making an earlier run: reading its answer says how
                self.todo.appendleft(e)
                self._answer()
                return
            self.done(e.i, _failed(e.run, exc.status, exc.message, version=self.worker.hello.get("version"),
                                   worker=_worker_info(self.worker), inputs_sha256=e.digest))
            return
        e.sent = time.monotonic()
        self.flight.append(e)

    def _answer(self) -> None:
        """Read the answer to the oldest run in flight, or its failure (the others go back to
        todo), and hand it on."""
        e = self.flight.popleft()
        run, worker = e.run, self.worker
        start = max(e.sent, self.free_at)
        try:
            answer, outputs = worker._read(start + e.timeout, more=bool(self.flight))
            if answer.get("id") != run.id:
                worker.kill()
                raise WorkerDied(CRASH, f"the worker answered run {answer.get('id')!r} when {run.id!r} was "
                                        f"next, which the protocol does not allow; it was killed")
        except WorkerDied as exc:
            self.todo.extendleft(reversed(self.flight))  # sent again, in order, to a fresh worker
            self.flight.clear()
            worker.kill()
            message = exc.message
            if exc.status == TIMEOUT:
                message = f"no answer after {e.timeout:g} s; the worker was killed"
            self.done(e.i, _failed(run, exc.status, message, version=worker.hello.get("version"),
                                   seconds=time.monotonic() - start, worker=_worker_info(worker),
                                   inputs_sha256=e.digest, log=worker.run_log(run.id)))
            return
        self.free_at = time.monotonic()
        self.done(e.i, _answered(run, answer, outputs, worker, e.digest))


def _ready(worker: Worker) -> dict:
    """The worker's hello, started first where it is not running (again, after a crash)."""
    if worker.starts and worker.hello.get("status") in (ERROR, UNSUPPORTED):
        return worker.hello  # the framework cannot load here: the same answer for every run
    if worker.launched or worker.proc is None or worker.proc.poll() is not None:
        return worker.start()
    return worker.hello


def _answered(run: Run, answer: dict, outputs: dict, worker: Worker, digest: str | None) -> Result:
    form = run.forms.get(answer.get("spelling"), run.form)
    failed = answer["status"] != OK or (answer.get("grad") or {}).get("status", OK) != OK
    return Result(run.case, run.framework, run.device, run.dtype, answer["status"], answer.get("message", ""),
                  outputs, form=form, native=run.native, spelling=answer.get("spelling"),
                  attempts=answer.get("attempts", []), version=worker.hello.get("version"),
                  seconds=answer.get("seconds"), worker=_worker_info(worker), inputs_sha256=digest,
                  variant=run.variant, python=run.python, grad=answer.get("grad"), host=host.fingerprint(),
                  env=run.env, traceback=answer.get("traceback", "") or (answer.get("grad") or {}).get("traceback", ""),
                  log=worker.run_log(run.id) if failed else "")


def _worker_info(worker: Worker) -> dict:
    """The facts of a worker its results carry: one dict per worker's hello, shared by its runs
    (a store keeps each worker's facts once, parity.store._WorkerIds)."""
    h = worker.hello
    made = getattr(worker, "_facts", None)
    if made is None or made[0] is not h:
        made = worker._facts = (h, {k: h[k] for k in ("python", "numpy", "executable", "info", "env",
                                                      "import_seconds", "pid") if k in h})
    return made[1]
