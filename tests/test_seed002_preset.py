"""Seed 002's Algorithm A1 as ``analysis.preset: seed002``: the preset's resolved settings, keys given
beside it, and a run of the driver analysis on a tiny region with it (forward selection, the detector
on the selected drivers only, natural breaks with k = 5, the regression table in the seed's layout),
checked against statsmodels and the detector on the arrays the stage read."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import xarray as xr
import yaml
from affine import Affine

from ecodask.chunked.geodetector import detect_arrays, detect_table
from ecodask.errors import ConfigError
from ecodask.run.config import PRESETS, AnalysisConfig, load_config
from ecodask.science.grid import CHINA_ALBERS
from ecodask.science.regression import CONSTANT

from conftest import COLS, RES, ROWS, X0, Y1, make_tiny_region, tiny_landcover, write_tif
from helpers import run_stages

A1 = {"regression_method": "forward", "regression_criterion": "p", "p_enter": 0.05,
      "detector_factors": "selected", "discretize": "natural", "k": 5, "regression_table": "enter"}


def test_preset_resolves_to_algorithm_a1() -> None:
    assert PRESETS["seed002"] == A1
    a = AnalysisConfig(preset="seed002")
    assert {k: getattr(a, k) for k in A1} == A1
    # keys the preset does not set keep their own values; a dumped configuration loads back the same
    b = AnalysisConfig.model_validate({"preset": "seed002", "alpha": 0.01, "k": 5})
    assert (b.alpha, b.k, b.p_remove) == (0.01, 5, 0.10)
    assert AnalysisConfig.model_validate(a.model_dump(mode="json")) == a
    # without the preset: the detector on all drivers, SPSS stepwise, the selected model's table
    d = AnalysisConfig()
    assert (d.preset, d.detector_factors, d.regression_method, d.regression_table, d.discretize) == (
        "none", "all", "stepwise", "selected", "optimal")


def test_a_key_given_against_the_preset_is_refused(tmp_path: Path) -> None:
    path = make_tiny_region(tmp_path / "r", analysis={"preset": "seed002", "regression_criterion": "bic",
                                                      "discretize": "natural", "hotspots": False})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    [p] = info.value.problems
    assert (Path(p.file), p.key, p.value) == (path, "analysis.regression_criterion", "bic")
    assert "preset seed002 sets regression_criterion: p" in p.message


def _write_drivers(folder: Path) -> dict[str, dict[str, str]]:
    """water: 1 on water pixels (CLCD 5) of 2000, else 0 (its cell mean, the water share, drives the
    ESV density: water's coefficients are the table's largest);
    noise: smooth random values unrelated to the land cover; soil: three categorical bands."""
    transform = Affine(RES, 0, X0, 0, -RES, Y1)
    water = (tiny_landcover(0, 0) == 5).astype(np.float32)
    write_tif(folder / "water.tif", water, CHINA_ALBERS, transform, -9999.0)
    rng = np.random.default_rng(8)
    noise = np.kron(rng.normal(size=(ROWS // 32, COLS // 32)), np.ones((32, 32))).astype(np.float32)
    write_tif(folder / "noise.tif", noise, CHINA_ALBERS, transform, -9999.0)
    soil = np.repeat(np.arange(COLS) // 64 % 3 + 1, ROWS).reshape(COLS, ROWS).T.astype(np.float32)
    write_tif(folder / "soil.tif", soil, CHINA_ALBERS, transform, -9999.0)
    return {"elevation": {"path": "elev.tif"}, "water": {"path": "water.tif"},
            "noise": {"path": "noise.tif"}, "soil": {"path": "soil.tif", "kind": "categorical"}}


@pytest.fixture(scope="module")
def a1_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("a1") / "region"
    folder.mkdir()
    path = make_tiny_region(folder, drivers=_write_drivers(folder), analysis={"preset": "seed002",
                                                                              "hotspots": False},
                            cluster={"kind": "local", "n_workers": 1})
    cfg = load_config(path)
    store, _ = run_stages(cfg, "ingest", "transitions_esv")
    _, paths = run_stages(cfg, "driver_analysis")
    return cfg, store, paths


def test_regression_table_in_the_seeds_layout(a1_run) -> None:
    cfg, store, _ = a1_run
    tables = cfg.output / "tables"
    reg = pd.read_parquet(tables / "regression.parquet")
    chosen = pd.read_parquet(tables / "regression_selected.parquet")
    ana = xr.open_zarr(store, group="analysis", consolidated=False)
    drivers = ["elevation", "noise", "water"]  # the continuous ones, in the stage's (name) order
    for year in (2000, 2010):
        t = reg[reg.year == year]
        assert list(t.term) == [CONSTANT, *drivers]  # every driver every year, selected or not
        assert (t.preset == "seed002").all() and (t.layout == "enter").all() and (t.method == "forward").all()
        y = ana["esv_density"].sel(year=year).values.ravel()
        X = {n: ana[n].values.ravel() for n in drivers}
        ok = np.isfinite(y) & np.all([np.isfinite(v) for v in X.values()], axis=0)
        full = sm.OLS(y[ok], sm.add_constant(np.column_stack([X[n][ok] for n in drivers]))).fit()
        np.testing.assert_allclose(t.B, full.params, rtol=1e-8)
        np.testing.assert_allclose(t.p, full.pvalues, rtol=1e-8)
        np.testing.assert_allclose(t.R2, full.rsquared, rtol=1e-8)
        assert list(t.sig) == ["**" if p < 0.01 else "*" if p < 0.05 else "" for p in full.pvalues]
        # the selected flags are the forward selection's model, whose own table is regression_selected
        s = chosen[chosen.year == year]
        assert set(t.term[t.selected]) == set(s.term)
        assert "water" in set(s.term)
        picked = [n for n in drivers if n in set(s.term)]
        fit = sm.OLS(y[ok], sm.add_constant(np.column_stack([X[n][ok] for n in picked]))).fit()
        np.testing.assert_allclose(s.set_index("term").loc[[CONSTANT, *picked], "B"], fit.params, rtol=1e-8)


def test_detector_only_on_the_selected_drivers_with_natural_breaks(a1_run) -> None:
    cfg, store, _ = a1_run
    tables = cfg.output / "tables"
    chosen = pd.read_parquet(tables / "regression_selected.parquet")
    factor = pd.read_parquet(tables / "geodetector_factor.parquet")
    disc = pd.read_parquet(tables / "geodetector_discretization.parquet")
    inter = pd.read_parquet(tables / "geodetector_interaction.parquet")
    ana = xr.open_zarr(store, group="analysis", consolidated=False)
    left_out = 0
    for year in (2000, 2010):
        selected = set(chosen[(chosen.year == year)].term) - {CONSTANT}
        got = set(factor[factor.year == year].factor)
        assert got == selected | {"soil"}  # categorical drivers always go to the detector
        left_out += len({"elevation", "noise", "water"} - got)
        pairs = inter[inter.year == year]
        assert len(pairs) == len(got) * (len(got) - 1) // 2
        assert set(pairs.factor_a) | set(pairs.factor_b) <= got
        d = disc[disc.year == year]
        assert set(d.factor) == selected and (d.method == "natural").all() and (d.k == 5).all()
        # the q of the stage equal the detector run directly on the selected drivers
        direct = detect_arrays(ana["esv_density"].sel(year=year).data,
                               {n: ana[n].data for n in sorted(got)},
                               discretize={n: None if n == "soil" else "natural" for n in got}, k=5,
                               dropna=True)["factor"].set_index("factor")
        row = factor[factor.year == year].set_index("factor")
        np.testing.assert_allclose(row.loc[sorted(got), "q"], direct.loc[sorted(got), "q"], rtol=1e-12)
    assert (factor.detector_factors == "selected").all()
    assert left_out > 0  # some driver was left out, so the test tells the two settings apart


def test_run_record_and_report_name_the_preset(a1_run) -> None:
    from ecodask.present.report import write_report
    from ecodask.run.record import write_run_record

    cfg, _, paths = a1_run
    write_run_record(cfg, {"driver_analysis": 1.0}, dict(paths), dt.datetime.now(dt.UTC),
                     {"driver_analysis": True})
    record = json.loads((cfg.output / "run.json").read_text(encoding="utf-8"))
    an = record["config"]["analysis"]
    assert an["preset"] == "seed002" and {k: an[k] for k in A1} == A1
    text = write_report(cfg.output).read_text(encoding="utf-8")
    assert "Driver analysis preset seed002" in text
    assert "discretization natural with k = 5" in text
    assert "continuous drivers the regression selected" in text
    assert "forward by p (enter p &lt; 0.05)" in text and "seed 002&#x27;s layout" in text
    assert yaml.safe_dump({"preset": "seed002"}).strip() in text  # the configuration as YAML


def test_driver_summary_marks_drivers_left_out(a1_run) -> None:
    from ecodask.present.summaries import driver_summary_markdown

    cfg, _, _ = a1_run
    text = driver_summary_markdown(cfg.output)
    factor = pd.read_parquet(cfg.output / "tables" / "geodetector_factor.parquet")
    for name in set(factor.factor):
        assert f"| {name} |" in text
    assert "| noise |" not in text  # never selected, never in the detector


def test_nothing_selected_leaves_the_detector_without_factors(tmp_path: Path) -> None:
    from ecodask.present.summaries import driver_summary_markdown

    folder = tmp_path / "r"
    folder.mkdir()
    noise = {"noise": _write_drivers(folder)["noise"]}
    # first without the preset: the detector on every driver, one regression table
    cfg = load_config(make_tiny_region(folder, drivers=noise, cluster={"kind": "local", "n_workers": 1}))
    run_stages(cfg, "ingest", "transitions_esv", "driver_analysis")
    tables = cfg.output / "tables"
    assert (tables / "geodetector_factor.csv").is_file() and (tables / "morans_i.csv").is_file()
    assert not (tables / "regression_selected.csv").exists()
    assert len(list((cfg.output / "figures").glob("geodetector_q_*"))) == 2  # one chart per year
    # then with it, in the same folder: nothing is selected, so the detector has no factor; the
    # earlier run's detector tables and charts and hot-spot tables do not stay behind
    cfg = load_config(make_tiny_region(folder, drivers=noise, cluster={"kind": "local", "n_workers": 1},
                                       analysis={"preset": "seed002", "hotspots": False}))
    run_stages(cfg, "driver_analysis")
    assert not list((cfg.output / "figures").glob("geodetector_*"))
    assert not (tables / "morans_i.csv").exists() and not (tables / "hotspots.parquet").exists()
    reg = pd.read_parquet(tables / "regression.parquet")
    assert list(reg.term) == [CONSTANT, "noise"] * 2 and list(reg.selected) == [True, False] * 2
    assert list(pd.read_parquet(tables / "regression_selected.parquet").term) == [CONSTANT] * 2
    assert not list(tables.glob("geodetector_*"))
    assert "No driver went to the detector" in driver_summary_markdown(cfg.output)


def test_geodetector_command_selects_first(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ecodask.cli import app

    rng = np.random.default_rng(4)
    n = 600
    t = pd.DataFrame({"slope": rng.gamma(2, 5, n), "noise": rng.normal(size=n),
                      "soil": rng.choice(["clay", "loam", "sand"], n)})
    t["esv"] = np.sqrt(t.slope) + (t.soil == "sand") + rng.normal(0, 0.3, n)
    t.to_csv(tmp_path / "cells.csv", index=False)
    out = tmp_path / "gd"
    res = CliRunner().invoke(app, ["geodetector", str(tmp_path / "cells.csv"), "--y", "esv", "--factors",
                                   "slope,noise,soil", "--select", "bic", "--discretize", "natural",
                                   "--k", "5", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "forward selection by bic: slope" in res.output
    factor = pd.read_csv(out / "geodetector_factor.csv")
    assert set(factor.factor) == {"slope", "soil"}  # noise not selected; text columns always in
    reg = pd.read_parquet(out / "regression.parquet")
    assert list(reg.term) == [CONSTANT, "slope", "noise"] and list(reg.selected) == [True, True, False]
    full = sm.OLS(t.esv, sm.add_constant(t[["slope", "noise"]])).fit()
    np.testing.assert_allclose(reg.B, full.params, rtol=1e-9)
    np.testing.assert_allclose(reg.BIC, full.bic, rtol=1e-9)
    sel = pd.read_parquet(out / "regression_selected.parquet")
    assert list(sel.term) == [CONSTANT, "slope"] and (sel.criterion == "bic").all()
    # BIC of slope alone is lower than with noise, and lower than the constant alone (statsmodels)
    alone = sm.OLS(t.esv, sm.add_constant(t[["slope"]])).fit()
    assert alone.bic < full.bic and alone.bic < sm.OLS(t.esv, np.ones(n)).fit().bic
    direct = detect_table(t, "esv", ["slope", "soil"], discretize="natural", k=5)["factor"]
    np.testing.assert_allclose(factor.set_index("factor").q.sort_index(),
                               direct.set_index("factor").q.sort_index(), rtol=1e-12)
    bad = tmp_path / "bad"
    for args, says in ((["--select", "cp"], "--select = 'cp'"), (["--factors", "aspect", "--select", "p"],
                                                                   "aspect = None: no such column")):
        res = CliRunner().invoke(app, ["geodetector", str(tmp_path / "cells.csv"), "--y", "esv", "--factors",
                                       "slope", *args, "--out", str(bad)])
        assert res.exit_code == 2 and says in res.output, res.output
        assert not bad.exists()
