"""Table writers: every table as CSV and Parquet, written atomically (temp file, then rename)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_table(df: pd.DataFrame, folder: str | Path, name: str) -> dict[str, Path]:
    """Write ``name.csv`` and ``name.parquet`` under ``folder``; return both paths."""
    folder = Path(folder)
    paths = {"csv": folder / f"{name}.csv", "parquet": folder / f"{name}.parquet"}
    _atomic_write(paths["csv"], lambda p: df.to_csv(p, index=False, lineterminator="\n"))
    _atomic_write(paths["parquet"], lambda p: df.to_parquet(p, index=False, compression="zstd"))
    return paths


def write_tables(tables: dict[str, pd.DataFrame], folder: str | Path) -> dict[str, Path]:
    """Each table as CSV and Parquet (:func:`write_table`); paths by ``name.ext``."""
    return {f"{name}.{ext}": p for name, df in tables.items()
            for ext, p in write_table(df, folder, name).items()}


def write_json(obj: object, path: str | Path) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    path = Path(path)
    text = json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n"
    _atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))
    return path
