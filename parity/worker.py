"""A framework worker: ``python -m parity.worker FRAMEWORK DEVICE``.

It imports one framework once and serves every run of that framework on that
device, reading requests on stdin and answering on the original stdout (see
parity.protocol). Anything the framework prints goes to stderr, which the parent
keeps in a log, so it can never corrupt the answers.

Per request it tries the spellings the parent lists, in order (see runner.plan): a
spelling that raises with a message meaning "not available here" is recorded as
UNSUPPORTED and the next is tried; any other exception ends the run as ERROR with
the framework's own message.
"""

from __future__ import annotations

import os
import platform
import re
import sys
import time
import traceback

from parity.protocol import UPSTREAM

#: the lines a worker writes to its log around each run (runner.run_log reads between them)
LOG_START, LOG_END = "=== parity run start: ", "=== parity run end: "


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    # MindSpore appends a C++ call stack "for framework developers": keep the user part,
    # without the rules of dashes it frames its messages with
    text = re.split(r"\n+-{10,}\n- C\+\+ Call Stack", text)[0].strip()
    text = "\n".join(line for line in text.splitlines() if not re.fullmatch(r"\s*-{10,}\s*", line)).strip()
    if len(text) > 4000:
        text = text[:4000] + " ..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _execute(fw, framework: str, header: dict, arrays: dict):
    import numpy as np

    from parity import ops

    op = ops.get(header["op"])
    upstream = arrays.pop(UPSTREAM, None)
    spellings = op.spellings[framework]
    if header.get("spellings"):  # the ones to try, in order
        by_name = {s.name: s for s in spellings}
        spellings = tuple(by_name[n] for n in header["spellings"])
    attempts = []
    for spelling in spellings:
        patterns = tuple(spelling.unsupported) + tuple(fw.UNSUPPORTED)
        start = time.perf_counter()
        try:
            outputs = spelling.run(fw, arrays, header["native"])
            seconds = time.perf_counter() - start
        except Exception as exc:  # the framework raised: keep its message
            fw.recover()
            message = _message(exc)
            if _unsupported(exc, message, patterns):
                attempts.append({"spelling": spelling.name, "status": "UNSUPPORTED", "message": message})
                continue
            return {"status": "ERROR", "spelling": spelling.name, "message": message,
                    "attempts": attempts, "traceback": traceback.format_exc(limit=-8)}, {}
        if not isinstance(outputs, dict):
            return {"status": "ERROR", "spelling": spelling.name, "attempts": attempts,
                    "message": f"harness: spelling returned {type(outputs).__name__}, expected a dict of arrays"}, {}
        answer = {"status": "OK", "spelling": spelling.name, "attempts": attempts, "seconds": seconds}
        outputs = {k: np.asarray(v) for k, v in outputs.items()}
        if header.get("grad"):
            answer["grad"] = _gradients(fw, op, framework, header, arrays, upstream, outputs)
        return answer, outputs
    message = "; ".join(f"{a['spelling']}: {a['message']}" for a in attempts) or "no spelling to run"
    return {"status": "UNSUPPORTED", "message": message, "attempts": attempts}, {}


def _unsupported(exc: BaseException, message: str, patterns) -> bool:
    """Whether a failure means "not available here": parity's own Unsupported, or a framework
    message matching the spelling's or the adapter's patterns."""
    from parity.ops.base import Unsupported

    return isinstance(exc, Unsupported) or any(re.search(p, message) for p in patterns)


def _gradients(fw, op, framework: str, header: dict, arrays: dict, upstream, outputs: dict) -> dict:
    """Vector-Jacobian products of the op's first output with the upstream gradient, through
    the op's gradient spelling for this framework; added to ``outputs`` as grad_<input>.
    Returns {"status", "spelling", "message", "seconds"}."""
    import numpy as np

    spelling = op.grad_spellings.get(framework)
    if spelling is None:
        return {"status": "UNSUPPORTED", "message": f"harness: no gradient spelling of {op.name} for {framework}"}
    if upstream is None:
        return {"status": "ERROR", "message": "harness: no upstream gradient was sent"}
    start = time.perf_counter()
    try:
        grads = fw.vjp(lambda ts: spelling.run(fw, ts, header["native"]), arrays, header["grad"]["wrt"], upstream)
    except Exception as exc:  # the framework raised: keep its message
        fw.recover()
        message = _message(exc)
        patterns = tuple(spelling.unsupported) + tuple(fw.UNSUPPORTED)
        status = "UNSUPPORTED" if _unsupported(exc, message, patterns) else "ERROR"
        return {"status": status, "spelling": spelling.name, "message": message,
                "traceback": traceback.format_exc(limit=-8)}
    outputs.update({f"grad_{k}": np.asarray(v) for k, v in grads.items()})
    return {"status": "OK", "spelling": spelling.name, "seconds": time.perf_counter() - start}


def _exit_with_parent(poll: float = 1.0) -> None:
    """A worker never outlives the parity process that started it: when that one dies (even by
    kill -9, with the worker busy in a long or hung framework call), the worker exits."""
    import threading

    parent = os.getppid()

    def watch():
        while True:
            time.sleep(poll)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def main(argv: list[str]) -> int:
    framework, device = argv
    _exit_with_parent()
    # Keep the real stdout for answers; send fd 1 (framework prints) to stderr.
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    import numpy as np

    from parity import frameworks, host, protocol
    from parity.ops.base import Unsupported

    requests = protocol.stream_reader(sys.stdin.buffer)
    hello = {"framework": framework, "device": device, "pid": os.getpid(),
             "python": platform.python_version(), "executable": sys.executable, "numpy": np.__version__,
             "env": host.numeric_env()}
    start = time.perf_counter()
    try:
        fw = frameworks.load(framework, device)
        hello.update(status="OK", version=fw.version, info=fw.info())
    except Unsupported as exc:
        hello.update(status="UNSUPPORTED", message=str(exc))
    except BaseException as exc:  # noqa: BLE001 - an import failure is reported, not raised
        hello.update(status="ERROR", message=_message(exc))
    hello["import_seconds"] = time.perf_counter() - start
    protocol.write(answers, hello)
    if hello["status"] != "OK":
        return 0
    while True:
        try:
            header, arrays = protocol.read(requests)
        except EOFError:
            return 0
        if header.get("cmd") == "exit":
            return 0
        # the log (stderr: framework prints and C++ logs) says which run wrote what
        sys.stderr.write(f"{LOG_START}{header.get('id')}\n")
        sys.stderr.flush()
        answer, outputs = _execute(fw, framework, header, arrays)
        sys.stderr.write(f"{LOG_END}{header.get('id')} {answer.get('status')}\n")
        sys.stderr.flush()
        answer["id"] = header.get("id")
        protocol.write(answers, answer, outputs)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
