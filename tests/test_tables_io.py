"""The table writer: one Arrow table written as Parquet and as CSV, each read back as the frame it
was given (text with commas, quotes and Chinese names, missing values, booleans, categories)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ecodask.io.tables import read_table, write_table


def test_csv_and_parquet_read_back_as_the_frame(tmp_path: Path) -> None:
    df = pd.DataFrame({
        "zone_id": ["420102", "420103", "420104"],
        "zone_name": ['江岸区', 'a, "quoted" name', None],
        "year": np.array([2000, 2010, 2020], dtype=np.int64),
        "esv_cny": [1.25e8, np.nan, 1 / 3],
        "partial": [True, False, True],
        "level": pd.Categorical(["service", "group", "service"]),
    })
    paths = write_table(df, tmp_path, "t")
    assert set(paths) == {"csv", "parquet"} and all(p.is_file() for p in paths.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.parquet"]  # no partial file left
    expected = df.assign(level=df["level"].astype(str))
    back = pd.read_parquet(paths["parquet"]).assign(level=lambda d: d["level"].astype(str))
    pd.testing.assert_frame_equal(back, expected, check_dtype=False)
    csv = read_table(paths["csv"])
    assert csv["zone_id"].tolist() == [420102, 420103, 420104]  # as any CSV reader infers them
    assert csv["zone_name"].iloc[:2].tolist() == ["江岸区", 'a, "quoted" name']
    assert pd.isna(csv["zone_name"].iloc[2])
    np.testing.assert_array_equal(csv["esv_cny"], df["esv_cny"])  # floats round-trip exactly; NaN as empty
    assert csv["partial"].tolist() == [True, False, True]
    assert csv["level"].tolist() == ["service", "group", "service"]
    assert paths["csv"].read_bytes().count(b"\r") == 0


def test_a_table_of_many_batches_is_the_file_of_one_whole_write(tmp_path: Path, monkeypatch) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from ecodask.io import tables

    monkeypatch.setattr(tables, "BATCH_ROWS", 1_000)  # 2,500 rows: three batches
    rng = np.random.default_rng(0)
    n = 2_500
    labels = pd.Index(["江岸区", 'a "quoted", name', "line\nbreak", "whole region"], dtype="str")
    df = pd.DataFrame({
        "zone_name": pd.Categorical.from_codes(rng.integers(0, 4, n), labels),
        "kind": pd.array(rng.choice(["single", None], n), dtype="str"),
        "esv_cny": np.where(rng.random(n) < 0.1, np.nan, rng.normal(1e8, 1e7, n)),
        "class_code": pd.array(np.where(rng.random(n) < 0.2, None, rng.integers(1, 10, n)), dtype="Int64"),
        "partial": rng.random(n) < 0.5,
    })
    paths = write_table(df, tmp_path / "batched", "t")
    plain = df.astype({"zone_name": "str"})
    whole = pa.Table.from_pandas(plain, preserve_index=False)
    pacsv.write_csv(whole, tmp_path / "whole.csv", pacsv.WriteOptions(quoting_style="needed"))
    assert paths["csv"].read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert pq.ParquetFile(paths["parquet"]).metadata.num_row_groups == 3
    pd.testing.assert_frame_equal(read_table(paths["parquet"]), plain)
    assert read_table(paths["csv"])["zone_name"].tolist() == plain["zone_name"].tolist()


def test_an_empty_table_is_written_with_its_columns(tmp_path: Path) -> None:
    df = pd.DataFrame({"zone_name": pd.Categorical.from_codes([], ["a"]),
                       "v": pd.Series([], dtype="float64")})
    paths = write_table(df, tmp_path, "t")
    assert paths["csv"].read_text() == '"zone_name","v"\n'
    assert list(read_table(paths["parquet"]).columns) == ["zone_name", "v"]


def test_a_table_given_in_parts_is_the_file_of_the_whole(tmp_path: Path, monkeypatch) -> None:
    from ecodask.io import tables

    monkeypatch.setattr(tables, "BATCH_ROWS", 1_000)  # row groups of 1,000 rows across the parts' edges
    rng = np.random.default_rng(1)
    n = 3_700
    df = pd.DataFrame({
        "zone_name": pd.Categorical.from_codes(rng.integers(0, 3, n),
                                               pd.Index(["a", "b, c", "湖北"], dtype="str")),
        "v": rng.normal(size=n), "k": rng.integers(0, 9, n),
    })
    edges = [0, 1, 999, 1_000, 2_345, 3_700]
    parts = (df.iloc[a:b] for a, b in zip(edges, edges[1:], strict=False))
    whole, split = write_table(df, tmp_path / "whole", "t"), write_table(parts, tmp_path / "split", "t")
    assert whole["csv"].read_bytes() == split["csv"].read_bytes()
    assert whole["parquet"].read_bytes() == split["parquet"].read_bytes()
