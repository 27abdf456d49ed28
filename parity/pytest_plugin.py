"""pytest plugin: case files as test items (``pytest cases/``).

Every ``*.yaml`` under a directory named ``cases`` (but not the case copies inside a results
store) becomes one item per comparison the
case plans: each run against the reference (per output), every pair of runs, every golden
value. A case runs once per test process, on its first item; the others read its
results. Verdicts map to pytest outcomes: PASS passes, KNOWN_GAP and declared errors are
expected failures (xfail), UNSUPPORTED skips, FAIL, FIXED and undeclared errors fail.

With pytest-xdist the items of a case share an ``xdist_group``, so
``pytest cases/ -n auto --dist loadgroup`` runs each case in one process;
``--junitxml`` gives one testcase per comparison. Options: ``--parity-frameworks A,B``,
``--parity-timeout SEC``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from parity.errors import CaseError, CaseErrors

_RESULTS: dict[str, list] = {}  # case path -> the case's comparisons (this process)
_POOL = None  # framework workers shared by the cases of this process


def pytest_sessionfinish(session):
    global _POOL
    if _POOL is not None:
        _POOL.close()
        _POOL = None


def pytest_addoption(parser):
    group = parser.getgroup("parity", "parity case files")
    group.addoption("--parity-frameworks", default=None, metavar="A,B",
                    help="run only these frameworks for case files")
    group.addoption("--parity-timeout", type=float, default=300.0, metavar="SEC",
                    help="per-run time limit for case files (default 300)")


def _cases_root(path: Path) -> Path | None:
    for parent in path.parents:
        if parent.name == "cases":
            return parent
    return None


def pytest_collect_file(parent, file_path):
    from parity.cases import in_results_store

    root = _cases_root(Path(file_path)) if file_path.suffix in (".yaml", ".yml") else None
    # the case copies inside a results store (.../results/cases/<id>/case.yaml) are records of a run
    if root is not None and not in_results_store(Path(file_path), Path(parent.config.rootpath)):
        return CaseFile.from_parent(parent, path=file_path)
    return None


def _swept(case) -> bool:
    """One dtype of a dtype sweep (cases.expand_dtypes names it NAME[dtype])."""
    return case.name.endswith(f"[{case.dtype}]")


class CaseFile(pytest.File):
    def collect(self):
        from parity.cases import expand_dtypes, load_case

        try:
            cases = expand_dtypes(load_case(self.path, _cases_root(self.path)))
        except (CaseErrors, CaseError) as exc:
            raise self.CollectError(str(exc)) from None
        for case in cases:
            yield from self._items(case)

    def _items(self, case):
        from parity import runner
        from parity.compare import side_label

        only = self.config.getoption("--parity-frameworks")
        runs = runner.plan([case], only.split(",") if only else None)

        sides = [side_label(r.framework, r.device, r.variant) for r in runs]
        names = []
        for side in sides:
            names += [f"{side} vs reference [{out}]" for out in case.outputs()]
        for i, a in enumerate(sides):
            for b in sides[i + 1:]:
                names += [f"{a} vs {b} [{out}]" for out in case.outputs()]
        for e in case.expected:
            targets = (["reference"] if e.who in ("reference", "all") else []) + \
                [s for s, r in zip(sides, runs) if e.who in ("all", r.framework)]
            names += [f"{t} vs expected [{e.output}]" for t in targets]
        prefix = f"[{case.dtype}] " if _swept(case) else ""
        for name in dict.fromkeys(names):
            item = ComparisonItem.from_parent(self, name=prefix + name, case=case)
            item.add_marker(pytest.mark.xdist_group(case.name))
            yield item


class ComparisonFailure(Exception):
    pass


class ComparisonItem(pytest.Item):
    def __init__(self, *, case, **kwargs):
        super().__init__(**kwargs)
        self.case = case

    def _rows(self) -> list:
        global _POOL
        from parity import api, runner

        if _POOL is None:
            _POOL = runner.WorkerPool()
        key = f"{self.case.path}::{self.case.name}"
        if key not in _RESULTS:
            only = self.config.getoption("--parity-frameworks")
            report = api.run([self.case], frameworks=only.split(",") if only else None,
                             timeout=self.config.getoption("--parity-timeout"), pool=_POOL, keep_outputs=False)
            if report.interrupted:
                raise KeyboardInterrupt
            _RESULTS[key] = report.rows
        return _RESULTS[key]

    def runtest(self):
        rows = self._rows()
        name = self.name
        if _swept(self.case):  # dtype sweep: "[float16] torch vs ..."
            name = name.split("] ", 1)[1]
        title, _, output = name.rpartition(" [")
        output = output.rstrip("]")
        row = next((r for r in rows if r.title == title and r.output in (output, "*")), None)
        if row is None:
            failed = [r for r in rows if r.kind == "reference" and r.output == "*"
                      and r.a.label in title.split(" vs ")]
            pytest.skip("not compared: " + ("; ".join(f"{r.a.label} {r.verdict}: {r.message.splitlines()[0]}"
                                                      for r in failed) or "a side did not run"))
        self.user_properties += [("verdict", row.verdict), ("cause", row.cause)]
        if row.metrics is not None:
            self.user_properties += [("max_abs", row.metrics.max_abs), ("max_ulp", row.metrics.max_ulp)]
        if row.verdict == "PASS":
            return
        reason = (row.known.reason if row.known else "") or row.message
        if row.verdict == "UNSUPPORTED":
            pytest.skip(f"UNSUPPORTED: {reason}")
        if row.ok:  # KNOWN_GAP, declared ERROR/CRASH/TIMEOUT
            pytest.xfail(f"{row.verdict} (declared): {reason}")
        m = row.metrics
        ulp = f", {m.max_ulp:.3g} ulp" if m and m.max_ulp is not None else ""
        detail = f"max abs {m.max_abs:.3g}{ulp}, {m.mismatches}/{m.n} beyond atol {row.atol:g} " \
                 f"rtol {row.rtol:g}" if m else ""
        raise ComparisonFailure(f"{row.verdict}: {detail}\n{row.message}".strip())

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, ComparisonFailure):
            return f"{self.case.name}: {self.name}\n{excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, self.case.line, f"{self.case.name}: {self.name}"
