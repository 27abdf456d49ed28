"""The words parity answers with, in one place.

A *run* ends with a status: OK, ERROR (the framework raised), UNSUPPORTED (no such op, dtype,
rank, device or exact mapping here), CRASH (the worker died) or TIMEOUT (it did not answer).

A *comparison* ends with a verdict (README, "Verdicts and exit status"): PASS, KNOWN_GAP, FAIL, FIXED, or the status
of a run that produced nothing to compare (ERROR, UNSUPPORTED, CRASH, TIMEOUT). A verdict is
*ok* (lets `parity run` exit 0) when it is PASS, KNOWN_GAP or UNSUPPORTED, or an ERROR, CRASH
or TIMEOUT the case declares.
"""

from __future__ import annotations

OK, ERROR, UNSUPPORTED, CRASH, TIMEOUT = "OK", "ERROR", "UNSUPPORTED", "CRASH", "TIMEOUT"
STATUSES = (OK, ERROR, UNSUPPORTED, CRASH, TIMEOUT)
#: statuses a case may declare (``known: {framework: X, status: ...}``)
DECLARABLE = (ERROR, UNSUPPORTED, CRASH, TIMEOUT)

PASS, KNOWN_GAP, FAIL, FIXED = "PASS", "KNOWN_GAP", "FAIL", "FIXED"
VERDICTS = (PASS, KNOWN_GAP, FAIL, FIXED, ERROR, UNSUPPORTED, CRASH, TIMEOUT)
#: worst first: the order a summary lists them in
SEVERITY = (FAIL, FIXED, CRASH, TIMEOUT, ERROR, KNOWN_GAP, UNSUPPORTED, PASS)


def is_ok(verdict: str, declared: bool) -> bool:
    if verdict in (PASS, KNOWN_GAP, UNSUPPORTED):
        return True
    return verdict in (ERROR, CRASH, TIMEOUT) and declared
