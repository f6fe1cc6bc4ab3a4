"""Typed errors and exit codes: the core raises, only the CLI renders."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """What a bpcalc process tells its caller."""

    OK = 0
    WRONG_ANSWERS = 1  # `bpcalc check`: the answer sheet has wrong (or carried-forward) answers
    INVALID_INPUT = 2  # bad YAML, bad spec, bad usage, a value that became NaN
    INTERNAL = 70  # a bug in bpcalc (EX_SOFTWARE): "internal error, please report"
    INTERRUPTED = 130


@dataclass(frozen=True, slots=True)
class Location:
    """A place in a source file, 1-based line and column as editors show them."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class BpcalcError(Exception):
    """Base of every error bpcalc reports to the user (never a traceback)."""

    exit_code: ExitCode = ExitCode.INVALID_INPUT

    def __init__(self, message: str, where: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class SpecError(BpcalcError):
    """The YAML (network, answer sheet, data reference) is not what bpcalc expects."""


class NumericError(BpcalcError):
    """A value became NaN or infinite during a run; `value` names it (e.g. "fc.z")."""

    def __init__(
        self, message: str, where: Location | None = None, *, value: str | None = None
    ) -> None:
        super().__init__(message, where)
        self.value = value


class UsageError(BpcalcError):
    """The command line asks for something that cannot be done."""
