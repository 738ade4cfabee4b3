"""The scale effect of q (issue: several analysis cell sizes from one pass), the confidence interval of q
and the significance of an interaction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ecodask.kernels.coarsen import block_density, block_mean, block_mode, block_sum
from ecodask.science.geodetector import factor_test, q_interval, stratum_sums
from ecodask.science.scale import levels_off, scale_summary


def test_blocks_worked_by_hand() -> None:
    a = np.array([[1, 2, 3], [4, np.nan, 6], [7, 8, 9.0]])
    # 2 x 2 blocks, partial at the right and bottom edges
    assert block_sum(a, 2) == pytest.approx(np.array([[7.0, 9.0], [15.0, 9.0]]))
    assert block_mean(a, 2) == pytest.approx(np.array([[7 / 3, 4.5], [7.5, 9.0]]))
    codes = np.array([[1, 1, 2], [2, np.nan, 3], [3, 3, np.nan]])
    got = block_mode(codes, 2)  # [1, 1, 2, nan] -> 1; [2, 3] tie -> 2; [3, 3] -> 3; [nan] -> nan
    assert got[:, :1].ravel().tolist() == [1.0, 3.0] and got[0, 1] == 2.0 and np.isnan(got[1, 1])
    esv = np.array([[100.0, 50.0], [np.nan, 30.0]])
    pixels = np.array([[10, 5], [0, 3]])
    # (100 + 50 + 30) CNY/yr over 18 px x 0.09 ha
    assert block_density(esv, pixels, 2, 0.09)[0, 0] == pytest.approx(180 / (18 * 0.09))
    assert np.isnan(block_density(esv * np.nan, pixels * 0, 2, 0.09)[0, 0])


def test_the_interval_of_q_puts_a_central_f_quantile_at_zero_and_covers_eta_squared() -> None:
    # F(1, 10) at 0.975 is 6.937 in the tables: observed there, the lower end of λ (and q) is 0
    f = stats.f.ppf(0.975, 1, 10)
    assert round(f, 3) == 6.937
    lo, hi = q_interval(f, 1, 10)
    assert lo == pytest.approx(0.0, abs=1e-9) and hi > f / (f + 10)
    # Coverage of the population η² = λ / (λ + N) of four normal groups, 400 samples (seeded)
    rng = np.random.default_rng(0)
    mu, n_h = np.array([0.0, 0.3, 0.6, 0.2]), 30
    lam = n_h * ((mu - mu.mean()) ** 2).sum()
    eta2 = lam / (lam + 4 * n_h)
    hits = 0
    for _ in range(400):
        y = (rng.normal(size=(4, n_h)) + mu[:, None]).ravel()
        t = factor_test(stratum_sums(y, np.repeat(np.arange(4), n_h)))
        assert t["q_low"] <= t["q"] <= t["q_high"]
        hits += t["q_low"] <= eta2 <= t["q_high"]
    assert 0.92 <= hits / 400 <= 0.975


def test_an_interactions_p_is_the_factor_test_of_the_overlay() -> None:
    from ecodask.chunked.geodetector import detect_arrays

    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 3, 600), rng.integers(0, 4, 600)
    y = a * 1.0 + (b == 2) * 0.8 + rng.normal(0, 1, 600) + 50.0  # far from 0: the shift matters
    r = detect_arrays(y, {"a": a, "b": b})
    row = r["interaction"].iloc[0]
    overlay = factor_test(stratum_sums(y, a * 10 + b))
    got = (row["q_ab"], row["F_ab"], row["p_ab"])
    assert got == pytest.approx((overlay["q"], overlay["F"], overlay["p"]))


def test_the_size_where_q_levels_off_and_gds_best_size() -> None:
    sizes = np.array([240.0, 480.0, 960.0, 1920.0])
    # growth +50 %, +10 %, +2 %: levelled off at 1920 (the first growth <= 5 % after one above it)
    assert levels_off(sizes, np.array([0.2, 0.3, 0.33, 0.3366])) == 1920.0
    assert levels_off(sizes, np.array([0.4, 0.3, 0.2, 0.1])) == 240.0  # never: the highest q
    rows = pd.DataFrame({
        "year": 2020, "size_m": np.repeat(sizes, 3), "factor": ["x1", "x2", "x3"] * 4,
        "q": [0.1, 0.2, 0.3, 0.2, 0.3, 0.5, 0.3, 0.4, 0.45, 0.3, 0.41, 0.9],
        "p": [0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.5]})
    t = scale_summary(rows).set_index("size_m")
    # the 90 % quantile (type 7) of the significant q: 0.3 + 0.8 x (0.5 - 0.3) = 0.46 at 480 m ...
    assert t.loc[480.0, "q90"] == pytest.approx(0.46)
    assert t.loc[1920.0, "significant"] == 2 and t.loc[1920.0, "q90"] == pytest.approx(0.3 + 0.9 * 0.11)
    assert t.index[t["best_q90"]].tolist() == [480.0]  # 0.46 > 0.44 (960) > 0.399 (1920) > 0.28
    # q_mean 0.2, 0.333, 0.383, 0.355: +67 %, +15 %, -7 %: levelled off at 1920
    assert t.index[t["levels_off"]].tolist() == [1920.0]


@pytest.mark.usefixtures("dask_threads")
def test_a_run_reads_q_at_each_size_from_its_one_pass(tmp_path: Path) -> None:
    from ecodask.io.layout import RunFolder
    from ecodask.io.store import open_store
    from ecodask.run.config import load_config

    from conftest import make_tiny_region
    from helpers import edit_yaml, run_stages

    path = make_tiny_region(tmp_path / "r", years=(2000, 2010))
    edit_yaml(path, lambda d: (d["grid"].update(analysis_factor=8), d.update(analysis={"scales": [2, 4]})))
    cfg = load_config(path)
    run_stages(cfg, "ingest", "transitions_esv", "driver_analysis")
    out = RunFolder(cfg.output)
    scale, factor = out.table("geodetector_scale"), out.table("geodetector_factor")
    assert sorted(scale["size_m"].unique()) == [240.0, 480.0, 960.0]
    base = scale[scale["multiple"] == 1].merge(factor, on=["year", "factor"], suffixes=("", "_f"))
    assert len(base) == len(factor) and base["q"].to_numpy() == pytest.approx(base["q_f"].to_numpy())
    # the 480 m ESV density is the blocks' ESV over their valued area, from the one pass's arrays
    _, ana = open_store(out.store)
    y2 = block_density(ana["esv"].isel(year=0).values, ana["esv_pixels"].isel(year=0).values, 2,
                       0.09)
    assert np.isfinite(y2).sum() == scale[(scale["multiple"] == 2) & (scale["year"] == 2000)]["n"].iloc[0]
    summary = out.table("geodetector_scale_summary")
    assert summary.groupby("year")["best_q90"].sum().le(1).all()
    assert (out.figures / "geodetector_scale_2010.png").is_file()
