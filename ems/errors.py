"""Errors that the CLI turns into one-line messages (never a traceback)."""

from __future__ import annotations


class EmsError(Exception):
    """Base class: any error a user can fix (bad input, missing file, infeasible scenario)."""


class ConfigError(EmsError):
    """A scenario, catalogue or site file is invalid. The message names file, field and problem."""

    def __init__(self, file: str, field: str, problem: str) -> None:
        self.file, self.field, self.problem = file, field, problem
        super().__init__(f"{file}: {field}: {problem}")


class DataError(EmsError):
    """Input data (CSV, payload, time series) is invalid or missing."""


class SolveError(EmsError):
    """The solver found no usable solution (infeasible, unbounded, no incumbent)."""
