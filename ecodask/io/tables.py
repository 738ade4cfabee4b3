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
