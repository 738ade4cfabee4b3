"""Table writers: every table as Parquet and CSV through Arrow, written atomically (temp file, then
rename)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ecodask.errors import InputError, problem
from ecodask.io.atomic import write_atomic


def use_system_allocator() -> None:
    """Take Arrow's buffers in this process from the C library's ``malloc``
    (``pyarrow.system_memory_pool()``) instead of Arrow's bundled mimalloc; buffers already made keep
    their own pool.

    mimalloc keeps the pages of freed buffers for later allocations, so a long-lived process that
    reads and writes tables (the flow, a Dask worker task after task) kept more with every year of
    the archive: ~45 MB more per worker at the end of a run of 39 years than of 2 (BENCHMARKS.md,
    "The archive's 39 years"; :func:`ecodask.run.cluster.lean_allocators`)."""
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())


#: Rows a written table is converted and written in at a time: Parquet's default row group, so that the
#: file's row groups are those of a whole-table write.
BATCH_ROWS = 1024 * 1024


def _arrow(df: pd.DataFrame):  # noqa: ANN202 - (pyarrow.Table, pyarrow.Schema)
    """``df`` as one Arrow table for both files (categorical columns as dictionaries, numeric columns
    shared with pandas where Arrow can) and the schema it is written in: a dictionary's values plain
    (the CSV writer takes no dictionary type, and the files hold the values), with the pandas
    metadata of the frame whose categorical columns are their values."""
    import pyarrow as pa

    table = pa.Table.from_pandas(df, preserve_index=False)
    cats = [c for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype)]
    meta = pa.Schema.from_pandas(df.head(0).astype({c: df[c].cat.categories.dtype for c in cats}),
                                 preserve_index=False).metadata if cats else table.schema.metadata
    plain = [pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
             for f in table.schema]
    return table, pa.schema(plain, metadata=meta)


def write_table(df: pd.DataFrame, folder: str | Path, name: str) -> dict[str, Path]:
    """Write ``name.parquet`` (zstd) and ``name.csv`` (UTF-8, ``\\n`` line ends, text quoted) under
    ``folder`` through one Arrow table; return both paths. Arrow writes the CSV about 10x faster
    than pandas (BENCHMARKS.md, "Tables"); a reader gets the same frame back from either file.
    Categorical columns are written as their values, :data:`BATCH_ROWS` rows at a time (the row
    groups a whole-table write makes), so that a table of tens of millions of rows is never held as
    plain text whole."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    folder = Path(folder)
    paths = {"csv": folder / f"{name}.csv", "parquet": folder / f"{name}.parquet"}
    table, schema = _arrow(df)

    def pieces():  # noqa: ANN202
        for start in range(0, max(table.num_rows, 1), BATCH_ROWS):
            yield table.slice(start, BATCH_ROWS).cast(schema)

    def parquet(p: Path) -> None:
        with pq.ParquetWriter(p, schema, compression="zstd") as out:
            for piece in pieces():
                out.write_table(piece, row_group_size=BATCH_ROWS)

    def csv(p: Path) -> None:
        with pacsv.CSVWriter(p, schema, write_options=pacsv.WriteOptions(quoting_style="needed")) as out:
            for piece in pieces():
                out.write_table(piece)

    write_atomic(paths["parquet"], parquet)
    write_atomic(paths["csv"], csv)
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
