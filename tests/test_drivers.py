"""Driver analysis both ways in: the ``ecodask geodetector`` command on the published Heshun table,
and the analysis stage of a run on a tiny region (tables, charts and hot-spot grids checked against
direct computations on the arrays it read)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from affine import Affine
from typer.testing import CliRunner

from ecodask.chunked import hotspots as hs
from ecodask.cli import app
from ecodask.run.config import load_config
from ecodask.science.grid import CHINA_ALBERS

from conftest import COLS, RES, ROWS, X0, Y1, make_tiny_region, shared, write_tif
from helpers import run_stages

PNG = b"\x89PNG\r\n\x1a\n"


def _q(y: np.ndarray, strata: np.ndarray) -> float:
    ssw = sum(((y[strata == h] - y[strata == h].mean()) ** 2).sum() for h in np.unique(strata))
    return 1 - ssw / ((y - y.mean()) ** 2).sum()


def test_command_on_the_heshun_table(tmp_path: Path) -> None:
    out = tmp_path / "gd"
    res = CliRunner().invoke(app, ["geodetector", str(shared("ntd_disease_heshun.csv")), "--y", "incidence",
                                   "--factors", "type", "region", "level", "--out", str(out)])
    assert res.exit_code == 0, res.output
    factor = pd.read_csv(out / "geodetector_factor.csv").set_index("factor")
    assert factor.q.round(7).to_dict() == {"type": 0.3857168, "region": 0.6377737, "level": 0.6067087}
    inter = pd.read_csv(out / "geodetector_interaction.csv")
    assert len(inter) == 3 and (inter.interaction == "bivariate enhancement").all()
    assert len(pd.read_parquet(out / "geodetector_risk.parquet")) == 10 + 36 + 21
    for png in ("geodetector_q.png", "geodetector_interaction.png"):
        assert (out / png).read_bytes().startswith(PNG)


def test_command_discretizes_and_names_bad_input(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    t = pd.DataFrame({"slope": rng.gamma(2, 5, 500), "soil": rng.choice(["clay", "loam", "sand"], 500)})
    t["esv"] = np.sqrt(t.slope) + (t.soil == "sand") + rng.normal(0, 0.3, 500)
    t.to_csv(tmp_path / "cells.csv", index=False)
    out = tmp_path / "gd"
    res = CliRunner().invoke(app, ["geodetector", str(tmp_path / "cells.csv"), "--y", "esv",
                                   "--factors", "slope,soil", "--discretize", "optimal", "--out", str(out)])
    assert res.exit_code == 0, res.output
    cand = pd.read_csv(out / "geodetector_discretization.csv")
    assert set(cand.factor) == {"slope"} and cand.optimal.sum() == 1 and len(cand) == 40
    risk = pd.read_csv(out / "geodetector_risk.csv")
    assert set(risk[risk.factor == "soil"].stratum_a) | set(risk[risk.factor == "soil"].stratum_b) == {
        "clay", "loam", "sand"}
    bad = tmp_path / "bad"
    res = CliRunner().invoke(app, ["geodetector", str(tmp_path / "cells.csv"), "--y", "esv",
                                   "--factors", "slope", "aspect", "--out", str(bad)])
    assert res.exit_code == 2
    assert "cells.csv: aspect = None: no such column" in res.output
    assert not bad.exists()
    t.loc[3, "soil"] = None
    t.to_csv(tmp_path / "gaps.csv", index=False)
    res = CliRunner().invoke(app, ["geodetector", str(tmp_path / "gaps.csv"), "--y", "esv",
                                   "--factors", "soil", "--out", str(bad)])
    assert res.exit_code == 2 and "gaps.csv: soil = 'NaN': 1 missing values" in res.output
    assert not bad.exists()


@pytest.fixture(scope="module")
def analysed(tmp_path_factory) -> tuple[object, Path]:
    folder = tmp_path_factory.mktemp("drivers") / "region"
    folder.mkdir()
    transform = Affine(RES, 0, X0, 0, -RES, Y1)
    soil = np.repeat(np.arange(COLS) // 64 % 3 + 1, ROWS).reshape(COLS, ROWS).T.astype(np.float32)
    write_tif(folder / "soil.tif", soil, CHINA_ALBERS, transform, -9999.0)
    cfg_path = make_tiny_region(folder, drivers={"elevation": {"path": "elev.tif"},
                                                  "soil": {"path": "soil.tif", "kind": "categorical"}},
                                cluster={"kind": "local", "n_workers": 1})
    cfg = load_config(cfg_path)
    store, _ = run_stages(cfg, "ingest", "transitions_esv")
    _, paths = run_stages(cfg, "driver_analysis")
    return cfg, store, paths


def test_analysis_stage_tables_match_the_grids(analysed) -> None:
    cfg, store, paths = analysed
    tables = cfg.output / "tables"
    ana = xr.open_zarr(store, group="analysis", consolidated=False)
    factor = pd.read_parquet(tables / "geodetector_factor.parquet")
    assert set(zip(factor.year, factor.factor, strict=True)) == {(y, f) for y in (2000, 2010)
                                                                 for f in ("elevation", "soil")}
    disc = pd.read_parquet(tables / "geodetector_discretization.parquet")
    for year in (2000, 2010):
        y = ana["esv_density"].sel(year=year).values
        soil, elev = ana["soil"].values, ana["elevation"].values
        keep = np.isfinite(y) & np.isfinite(soil) & np.isfinite(elev)
        row = factor[(factor.year == year)].set_index("factor")
        assert row.loc["soil", "q"] == pytest.approx(_q(y[keep], soil[keep]), rel=1e-9)
        assert row.loc["soil", "n"] == keep.sum()
        best = disc[(disc.year == year) & disc.optimal].iloc[0]
        assert best.factor == "elevation"
        edges = np.array([float(e) for e in best.breaks.split(",")])
        strata = np.searchsorted(edges, elev[keep], side="right")
        assert row.loc["elevation", "q"] == pytest.approx(_q(y[keep], strata), rel=1e-9)
        assert (cfg.output / "figures" / f"geodetector_interaction_{year}.png").read_bytes().startswith(PNG)
    inter = pd.read_parquet(tables / "geodetector_interaction.parquet")
    assert len(inter) == 2 and inter.q_ab.notna().all()
    reg = pd.read_parquet(tables / "regression.parquet")
    assert set(reg.year) == {2000, 2010} and (reg.term.iloc[0] == "(constant)")
    assert {"B", "SE", "Beta", "t", "p", "r", "VIF", "R2", "adj_R2", "F", "F_p"} <= set(reg.columns)
    assert not reg.term.str.contains("soil").any()  # categorical drivers stay out of the regression


def test_analysis_stage_hot_spots(analysed) -> None:
    cfg, store, _ = analysed
    tables = cfg.output / "tables"
    ana = xr.open_zarr(store, group="analysis", consolidated=False, mask_and_scale=False)
    y = ana["esv_density"].sel(year=2010).values
    np.testing.assert_allclose(ana["esv_gi_z"].sel(year=2010).values,
                               hs.getis_ord_gi_star(y).compute().astype(np.float32), rtol=1e-6)
    cls = ana["esv_hotspot"].sel(year=2010).values
    assert cls.dtype == np.int8 and set(np.unique(cls)) <= {-128, -3, -2, -1, 0, 1, 2, 3}
    moran = pd.read_parquet(tables / "morans_i.parquet").set_index("year")
    assert moran.loc[2010, "I"] == pytest.approx(hs.morans_i(y)["I"], rel=1e-12)
    summary = pd.read_parquet(tables / "hotspots.parquet")
    whole = summary[(summary.year == 2010) & (summary.zone_id == "ALL")].iloc[0]
    assert whole.cells == np.isfinite(y).sum()
    classes = ["hot_99", "hot_95", "hot_90", "not_significant", "cold_90", "cold_95", "cold_99"]
    assert (summary[classes].sum(axis=1) == summary.cells).all()
