"""Table writers: every table as Parquet and CSV through Arrow, written atomically (temp file, then
rename)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ecodask.errors import InputError, problem
from ecodask.io.atomic import replacing


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


def write_table(df: pd.DataFrame | Iterable[pd.DataFrame], folder: str | Path, name: str) -> dict[str, Path]:
    """Write ``name.parquet`` (zstd) and ``name.csv`` (UTF-8, ``\\n`` line ends, text quoted) under
    ``folder`` through Arrow; return both paths. Arrow writes the CSV about 10x faster than pandas
    (BENCHMARKS.md, "Tables"); a reader gets the same frame back from either file.

    ``df`` is one frame, or its rows in order as frames of the same columns (at least one), each let
    go once written: a table of tens of millions of rows need not be held whole. Categorical columns
    are written as their values, :data:`BATCH_ROWS` rows at a time, in row groups of that many rows
    whatever the frames' sizes: the files are those of the whole table written at once."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    folder = Path(folder)
    paths = {"csv": folder / f"{name}.csv", "parquet": folder / f"{name}.parquet"}
    frames = iter([df] if isinstance(df, pd.DataFrame) else df)
    table, schema = _arrow(next(frames))
    pending: list = []  # rows written to the CSV, not yet to a Parquet row group
    held = 0
    options = pacsv.WriteOptions(quoting_style="needed")
    with (replacing(paths["csv"]) as csv_tmp, replacing(paths["parquet"]) as parquet_tmp,
          pacsv.CSVWriter(csv_tmp, schema, write_options=options) as csv,
          pq.ParquetWriter(parquet_tmp, schema, compression="zstd") as parquet):
        groups = 0
        while table is not None:
            for start in range(0, table.num_rows, BATCH_ROWS):
                piece = table.slice(start, BATCH_ROWS).cast(schema)
                csv.write_table(piece)
                pending.append(piece)
                held += piece.num_rows
                while held >= BATCH_ROWS:
                    rows = pa.concat_tables(pending)
                    parquet.write_table(rows.slice(0, BATCH_ROWS), row_group_size=BATCH_ROWS)
                    groups += 1
                    rest = rows.slice(BATCH_ROWS)
                    pending, held = ([rest] if rest.num_rows else []), rest.num_rows
            frame = next(frames, None)
            table = None if frame is None else pa.Table.from_pandas(frame, preserve_index=False)
        if held or not groups:  # the last rows, or an empty table's one empty row group
            parquet.write_table(pa.concat_tables(pending) if pending else schema.empty_table(),
                                row_group_size=BATCH_ROWS)
    return paths


def write_tables(tables: dict[str, pd.DataFrame | Iterable[pd.DataFrame]],
                 folder: str | Path) -> dict[str, Path]:
    """Each table (a frame, or its rows as frames) as CSV and Parquet (:func:`write_table`); paths by
    ``name.ext``."""
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
