"""Table writers: every table as CSV and Parquet, written atomically (temp file, then rename)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ecodask.errors import InputError, problem
from ecodask.io.atomic import write_atomic


def write_table(df: pd.DataFrame, folder: str | Path, name: str) -> dict[str, Path]:
    """Write ``name.csv`` and ``name.parquet`` under ``folder``; return both paths."""
    folder = Path(folder)
    paths = {"csv": folder / f"{name}.csv", "parquet": folder / f"{name}.parquet"}
    write_atomic(paths["csv"], lambda p: df.to_csv(p, index=False, lineterminator="\n"))
    write_atomic(paths["parquet"], lambda p: df.to_parquet(p, index=False, compression="zstd"))
    return paths


def write_tables(tables: dict[str, pd.DataFrame], folder: str | Path) -> dict[str, Path]:
    """Each table as CSV and Parquet (:func:`write_table`); paths by ``name.ext``."""
    return {f"{name}.{ext}": p for name, df in tables.items()
            for ext, p in write_table(df, folder, name).items()}


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV (UTF-8, BOM allowed) or Parquet table."""
    path = Path(path)
    if not path.is_file():
        raise InputError([problem(path, "", None, "no such file")])
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path, encoding="utf-8-sig")
    except Exception as exc:  # noqa: BLE001 - any reader error is an unreadable table
        raise InputError([problem(path, "", None, f"not a readable CSV or Parquet table ({exc})")]) from None


def read_run_table(path: str | Path, columns: tuple[str, ...], what: str) -> pd.DataFrame:
    """A table a run wrote (``what``, e.g. ``esv_by_service``), read by :func:`read_table` and
    checked to have ``columns``: a table of another kind is an :class:`InputError` naming the file
    and the columns it lacks, not a ``KeyError`` later."""
    df = read_table(path)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError([problem(path, "columns", missing, f"not a run's {what} table: it lacks these "
                                  f"columns (has: {', '.join(map(str, df.columns[:12]))})")])
    return df
