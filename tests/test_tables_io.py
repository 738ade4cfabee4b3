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
