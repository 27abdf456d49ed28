"""Shared helpers: run the real `parity` command line in a subprocess."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str
    report_dir: Path

    @property
    def json(self) -> dict:
        return json.loads((self.report_dir / "parity.json").read_text())

    @property
    def csv_rows(self) -> list[dict]:
        with open(self.report_dir / "parity.csv", newline="") as f:
            return list(csv.DictReader(f))

    @property
    def html(self) -> str:
        return (self.report_dir / "parity.html").read_text()

    @property
    def drill(self) -> dict:
        """The drill-down data the HTML page carries (JSON in a script element)."""
        html = self.html
        start = html.index('<script type="application/json" id="drill-data">') + len(
            '<script type="application/json" id="drill-data">')
        return json.loads(html[start:html.index("</script>", start)])

    def rows(self, case: str | None = None, **match) -> list[dict]:
        out = [r for r in self.json["comparisons"] if case is None or r["case"] == case]
        return [r for r in out if all(r.get(k) == v for k, v in match.items())]

    def row(self, case: str, comparison: str, output: str | None = None) -> dict:
        found = [r for r in self.rows(case, comparison=comparison) if output is None or r["output"] == output]
        assert len(found) == 1, f"{case} / {comparison}: {len(found)} rows\n{self.stdout}\n{self.stderr}"
        return found[0]

    def run(self, case: str, framework: str) -> dict:
        for c in self.json["cases"]:
            if c["name"] == case:
                return next(r for r in c["runs"] if r["framework"] == framework)
        raise KeyError(case)


def run_cli(*args, report_dir: Path | None = None, env: dict | None = None, cwd: Path = ROOT,
            timeout: float = 900) -> CliResult:
    cmd = [sys.executable, "-m", "parity", *map(str, args)]
    if report_dir is not None and args and args[0] in ("run", "report"):
        cmd += ["--report-dir", str(report_dir)]
    full_env = {**os.environ, **(env or {})}
    p = subprocess.run(cmd, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout)
    return CliResult(p.returncode, p.stdout, p.stderr, report_dir or ROOT / "reports")


def cli_in_process(*args) -> int:
    """parity's command line in this process (for a test that patches parity's own code), its
    exit status; the SIGINT and SIGTERM handlers `parity run` installs are put back after."""
    import signal

    from parity import cli

    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return cli.main([str(a) for a in args])
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)


def write_case(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


@pytest.fixture
def cli():
    return run_cli
