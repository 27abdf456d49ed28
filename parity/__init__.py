"""parity: cross-framework numerical parity for normalization operators.

The Python API (see parity.api and README, "Python API"):

    parity.case(op=..., params=..., inputs={"x": ndarray | spec}, ...)  -> Case
    parity.load_cases(paths)                                            -> [Case]
    parity.load_suite(paths)               -> [CaseRef] (checked, read again when run)
    parity.run(cases_or_paths, frameworks=..., results=..., ...)        -> Report
    parity.load(results_dirs, cases=None)                               -> Report
    Report.to_pandas(), .summary(), .matrix(case), .outputs(case, side), .reference(case),
    .exit_code, .write(report_dir)
"""

__version__ = "0.1.0"

__all__ = ["Case", "Report", "case", "load", "load_cases", "load_suite", "run"]


def __getattr__(name):
    # the API loads on first use: `import parity` stays cheap (the workers import parity too)
    if name in ("case", "load", "load_cases", "load_suite", "run"):
        from parity import api

        return getattr(api, name)
    if name == "Report":
        from parity.report import Report

        return Report
    if name == "Case":
        from parity.cases import Case

        return Case
    raise AttributeError(f"module 'parity' has no attribute {name!r}")
