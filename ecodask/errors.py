"""One exception family for everything a user can get wrong.

Every message names the file, the field (key) and the value at fault, so that a single line
tells the user what to fix. Raised before any output is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


class EcodaskError(Exception):
    """Base class of all ecodask errors a user can act on."""


@dataclass(frozen=True)
class Problem:
    """One fault: where (file, key) and what (value, message)."""

    file: str
    key: str
    value: object
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}" if self.key else self.file
        if not self.key and self.value is None:  # a problem of the whole file
            return f"{where}: {self.message}"
        return f"{where} = {self.value!r}: {self.message}"


class ProblemsError(EcodaskError):
    """An error carrying one or more located problems."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        lines = [str(p) for p in self.problems]
        head = lines[0] if len(lines) == 1 else f"{len(lines)} problems:\n  " + "\n  ".join(lines)
        super().__init__(head)


class ConfigError(ProblemsError):
    """The run configuration is invalid."""


class CatalogError(ProblemsError):
    """A catalog entry (class scheme, ESV table) is missing or invalid."""


class InputError(ProblemsError):
    """An input data file is unreadable or holds values the run cannot use."""


def problem(file: str | Path, key: str, value: object, message: str) -> Problem:
    """Build a :class:`Problem`; ``file`` may be a path."""
    return Problem(str(file), key, value, message)
