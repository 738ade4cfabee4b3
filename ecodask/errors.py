"""One exception family for everything a user can get wrong.

Every message names the file, the field (key) and the value at fault, so that a single line
tells the user what to fix. Raised before any output is written.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: How much of a value a message shows: a few levels, items and characters (a YAML alias bomb
#: expands to billions of items; its repr must not).
_SHORT = reprlib.Repr(maxlevel=2, maxtuple=24, maxlist=24, maxarray=24, maxdict=24, maxset=24,
                      maxfrozenset=24, maxdeque=24, maxstring=300, maxlong=60, maxother=300)
MAX_TEXT = 500


class EcodaskError(Exception):
    """Base class of all ecodask errors a user can act on."""


class InputWarning(UserWarning):
    """Something ecodask changed or assumed in an input, which the user should know (the command
    line prints it as one ``warning:`` line)."""


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

    def __reduce__(self) -> tuple[object, ...]:
        # Raised in a Dask worker process, it travels back pickled: rebuilt from its problems.
        return (type(self), (self.problems,))


class ConfigError(ProblemsError):
    """The run configuration is invalid."""


class CatalogError(ProblemsError):
    """A catalog entry (class scheme, ESV table) is missing or invalid."""


class InputError(ProblemsError):
    """An input data file is unreadable or holds values the run cannot use."""


class Abbreviated(str):
    """A value too large to show whole, as its shortened repr (shown without quotes)."""

    def __repr__(self) -> str:
        return str(self)


def bounded(value: object) -> object:
    """``value`` itself when it is small; else a shortened stand-in whose repr is bounded (a few
    levels and items of a container, the first characters of a text)."""
    if value is None or isinstance(value, bool | int | float | Path):
        return value
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else Abbreviated(repr(value[:MAX_TEXT]) + "...")
    short = _SHORT.repr(value)  # bounded work: never the whole of a huge container
    if isinstance(value, list | tuple | dict | set | frozenset):
        return value if "..." not in short else Abbreviated(short)  # small ones kept as they are
    return value if len(short) <= _SHORT.maxother else Abbreviated(short)


def problem(file: str | Path, key: str, value: object, message: str) -> Problem:
    """Build a :class:`Problem`; ``file`` may be a path; ``value`` is kept short (:func:`bounded`)
    and ``message`` cut to a few hundred characters."""
    if len(message) > 4 * MAX_TEXT:
        message = message[: 4 * MAX_TEXT] + "..."
    return Problem(str(file), key, bounded(value), message)
