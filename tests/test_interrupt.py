"""Ctrl-C (or SIGTERM) during a run: finished cases are reported, files are whole, a rerun works."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, run_cli, write_case


def _default_sigint():
    # a process started from a background job (as CI runners and `make test &` do) inherits
    # SIGINT as ignored, and Python then never raises KeyboardInterrupt: give the child the
    # default, as a terminal's Ctrl-C would find it
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def start():
    """Start `parity` in a subprocess; whatever happens in the test, it and every process it
    started (its framework workers) are killed at the end."""
    import psutil

    procs = []

    def _start(args, env):
        proc = subprocess.Popen([sys.executable, "-m", "parity", *map(str, args)], cwd=ROOT,
                                env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=_default_sigint)
        procs.append(proc)
        return proc

    yield _start
    for proc in procs:
        try:
            family = psutil.Process(proc.pid).children(recursive=True) + [psutil.Process(proc.pid)]
        except psutil.NoSuchProcess:
            family = []
        for p in family:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        proc.wait(timeout=30)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_keeps_finished_cases_and_writes_whole_reports(tmp_path, sig, start):
    write_case(tmp_path, "a-quick", """
        name: a-quick
        op: fault
        inputs: {x: {shape: [3], dtype: float32}}
        frameworks: [torch]
    """)
    write_case(tmp_path, "b-hangs", """
        name: b-hangs
        op: fault
        native: {torch: {mode: hang}}
        inputs: {x: {shape: [3], dtype: float32}}
        frameworks: [torch]
    """)
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "parity.json").write_text('{"from": "an earlier run"}')
    proc = start(["run", tmp_path, "--report-dir", reports, "--timeout", "600"], {"PARITY_TEST_OPS": "1"})
    deadline = time.monotonic() + 120
    seen = ""
    while "a-quick" not in seen and time.monotonic() < deadline:  # progress goes to stderr
        seen += proc.stderr.readline()
    assert "a-quick" in seen, seen
    time.sleep(1.0)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "interrupted" in err
    doc = json.loads((reports / "parity.json").read_text())
    assert doc["interrupted"] is True and [c["name"] for c in doc["cases"]] == ["a-quick"]
    assert "INTERRUPTED" in (reports / "parity.html").read_text()
    assert not [p for p in reports.iterdir() if p.name.startswith(".")], "temporary files left behind"
    # the hung worker was killed
    pid = doc["cases"][0]["runs"][0]["worker"]["pid"]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    # and a second run works
    again = run_cli("run", tmp_path / "a-quick.yaml", report_dir=reports, env={"PARITY_TEST_OPS": "1"})
    assert again.code == 0 and again.json["interrupted"] is False
