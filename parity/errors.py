"""Errors that reach the user as one clear line and exit code 2 (bad input)."""

from __future__ import annotations


class InputError(Exception):
    """Bad input from the user: a case file, a path, a command-line value."""

    exit_code = 2


class CaseError(InputError):
    """A problem in a case file, located by file, line and field."""

    def __init__(self, file, line: int | None, field: str | None, message: str):
        self.file = str(file)
        self.line = line
        self.field = field
        self.message = message
        super().__init__(str(self))

    def __reduce__(self):  # pickled (parity run's report writer gets blocked cases) with its four fields
        return type(self), (self.file, self.line, self.field, self.message)

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class CaseErrors(InputError):
    """Several CaseErrors, reported together (sorted by file and line)."""

    def __init__(self, errors: list[CaseError]):
        self.errors = sorted(errors, key=lambda e: (e.file, e.line or 0))
        super().__init__("\n".join(str(e) for e in self.errors))

    def __reduce__(self):
        return type(self), (self.errors,)
