"""Compensation of a synthetic region's run, and the ``ecodask compensation`` command: a table for
every county, year and variant with no missing value, totals that add up, and the geometry and maps
written beside it."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ecodask.cli import app
from ecodask.errors import InputError
from ecodask.io.catalogs import load_gdp_per_capita
from ecodask.run.config import load_config
from ecodask.synth import make_region

from conftest import assert_figure, has_colour
from helpers import run_stages


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[object, dict[str, Path]]:
    cfg = load_config(make_region(tmp_path_factory.mktemp("comp"), seed=4, width_km=8, height_km=6,
                                  n_counties=5))
    run_stages(cfg, "ingest", "transitions_esv")
    return cfg, run_stages(cfg, "compensation")[1]


def test_every_county_year_and_variant_without_gaps(run) -> None:
    cfg, paths = run
    t = pd.read_parquet(paths["compensation.parquet"])
    stats = pd.read_csv(cfg.county_stats)
    expected = {(str(c), y, v) for c, y in zip(stats.code, stats.year, strict=True)
                for v in ("all_land", "cultivated")}
    assert set(zip(t.zone_id, t.year, t.variant, strict=True)) == expected and len(t) == len(expected)
    numeric = t.select_dtypes("number").columns
    assert not t[numeric].isna().any().any(), t[numeric].columns[t[numeric].isna().any()].tolist()
    # market + non-market = total ESV, and the amounts in 10^8 CNY are the CNY amounts
    np.testing.assert_allclose(t.esv_market_cny + t.esv_nonmarket_cny, t.esv_total_cny, rtol=1e-12)
    np.testing.assert_allclose(t.amount_1e8cny * 1e8, t.amount_cny, rtol=1e-12)
    # the all-land ESV is the run's county ESV table
    esv = pd.read_parquet(cfg.output / "tables" / "esv_by_service.parquet")
    total = esv[esv.level == "total"].assign(zone_id=lambda d: d.zone_id.astype(str))
    merged = t[t.variant == "all_land"].merge(total, on=["zone_id", "year"])
    np.testing.assert_allclose(merged.esv_total_cny, merged.esv_cny, rtol=1e-12)
    assert set(t.direction) == {"pay", "receive"}
    # G's reference is China's national GDP per capita of each year (the default, seed 003's eq. 9)
    national = load_gdp_per_capita("china_nbs").values
    np.testing.assert_allclose(t.reference_gdp_per_capita, [national[y] for y in t.year], rtol=1e-12)
    np.testing.assert_allclose(t.g_affordability, t.gdp_per_capita_cny / t.year.map(national), rtol=1e-12)


def test_role_totals_add_up(run) -> None:
    _, paths = run
    t = pd.read_parquet(paths["compensation.parquet"])
    totals = pd.read_parquet(paths["compensation_totals.parquet"])
    sums = t.groupby(["variant", "year", "role"])["amount_cny"].sum()
    for row in totals.itertuples():
        assert row.amount_cny == pytest.approx(sums[(row.variant, row.year, row.role)], rel=1e-12)
    assert len(totals) == len(sums)


def test_geometry_and_maps(run) -> None:
    _, paths = run
    gdf = gpd.read_file(paths["compensation.gpkg"])
    t = pd.read_parquet(paths["compensation.parquet"])
    assert len(gdf) == len(t) and gdf.geometry.notna().all() and gdf.crs is not None
    assert gpd.read_parquet(paths["compensation.geoparquet"]).geometry.area.gt(0).all()
    pngs = {k: p for k, p in paths.items() if k.endswith(".png")}
    last = t[t.year == t.year.max()]
    assert set(pngs) == {f"compensation_{v}_{r}.png" for v, r in zip(last.variant, last.role, strict=True)}
    for (variant, role), g in last.groupby(["variant", "role"]):
        img = assert_figure(pngs[f"compensation_{variant}_{role}.png"], 1000, 400)
        others = len(last[last.variant == variant]) > len(g)
        assert has_colour(img, "#dddddd", 200) == others  # counties of the other roles in grey


def test_command_and_bad_statistics(run, tmp_path: Path) -> None:
    cfg, _ = run
    tables = cfg.output / "tables"
    args = ["compensation", "--stats", str(cfg.county_stats), "--esv", str(tables / "esv_by_service.csv"),
            "--transitions", str(tables / "transitions.parquet"), "--zones", str(cfg.zones.path)]
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    t = pd.read_csv(tmp_path / "c" / "compensation.csv")
    assert set(t.variant) == {"all_land", "cultivated"} and (t.loss_total_cny >= 0).all()
    # One variant, and statistics without the crop columns the cultivated variant needs.
    stats = pd.read_csv(cfg.county_stats)
    crops = [c for c in stats.columns if c.endswith(("_sown_ha", "_price_cny_per_kg", "_yield_kg_per_ha"))]
    stats.drop(columns=crops).to_csv(tmp_path / "no_crops.csv", index=False)
    one = [a if a != str(cfg.county_stats) else str(tmp_path / "no_crops.csv") for a in args]
    res = CliRunner().invoke(app, [*one, "--variant", "all_land", "--name-field", "",
                                   "--out", str(tmp_path / "v")])
    assert res.exit_code == 0, res.output
    v = pd.read_csv(tmp_path / "v" / "compensation.csv")
    assert set(v.variant) == {"all_land"}
    assert (v["zone_name"].astype(str) == v["zone_id"].astype(str)).all()
    both = t[t.variant == "all_land"].set_index(["zone_id", "year"])["amount_cny"]
    assert np.allclose(v.set_index(["zone_id", "year"])["amount_cny"].loc[both.index], both)
    res = CliRunner().invoke(app, ["compensation", "--stats", str(cfg.county_stats), "--zones",
                                   str(cfg.zones.path), "--variant", "all_land",
                                   "--out", str(tmp_path / "w")])
    assert res.exit_code == 2 and "needs a run's ESV table, --esv" in res.output
    stats = pd.read_csv(cfg.county_stats)
    stats.loc[stats.index[2], "gdp_cny"] = -5
    bad = tmp_path / "bad.csv"
    stats.to_csv(bad, index=False)
    res = CliRunner().invoke(app, ["compensation", "--stats", str(bad), "--zones", str(cfg.zones.path),
                                   "--out", str(tmp_path / "d")])
    assert res.exit_code == 2
    assert "bad.csv: gdp_cny" in res.output and str(stats.code.iloc[2]) in res.output
    assert not (tmp_path / "d").exists()
    # a year the national series lacks: named with the statistics file; --reference-gdp-per-capita
    # counties (or a number) serves any year
    stats = pd.read_csv(cfg.county_stats)
    stats = stats[stats.year == stats.year.min()].assign(year=1990)
    old = tmp_path / "old.csv"
    stats.to_csv(old, index=False)
    base = ["compensation", "--stats", str(old), "--zones", str(cfg.zones.path), "--variant", "cultivated"]
    res = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "o")])
    flat = " ".join(res.output.split())
    assert res.exit_code == 2 and "old.csv: year = 1990" in flat and "2000-2024" in flat, res.output
    assert not (tmp_path / "o").exists()
    res = CliRunner().invoke(app, [*base, "--reference-gdp-per-capita", "counties",
                                   "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output


def test_bad_statistics_stop_a_run_before_ingest(tmp_path: Path) -> None:
    from ecodask.errors import InputError
    from ecodask.run.inputs import validate

    cfg_path = make_region(tmp_path, seed=5, width_km=6, height_km=5, n_counties=3)
    stats_path = tmp_path / "inputs" / "county_stats.csv"
    stats = pd.read_csv(stats_path)
    stats.loc[0, "engel_urban"] = 38.0
    stats.loc[stats.index[-1], "role"] = "industrial park"
    stats.to_csv(stats_path, index=False)
    with pytest.raises(InputError) as err:
        validate(cfg_path)
    text = str(err.value)
    assert "county_stats.csv: engel_urban = 38.0" in text and str(stats.code.iloc[0]) in text
    assert "role = 'industrial park'" in text and str(stats.code.iloc[-1]) in text
    assert not (tmp_path / "output").exists()


def test_a_table_that_is_not_a_runs_is_named_with_the_columns_it_lacks(run, tmp_path: Path) -> None:
    cfg, _ = run
    tables = cfg.output / "tables"
    for option, table, lacking in (("--esv", "class_area.csv", "level"),
                                   ("--transitions", "esv_by_service.csv", "year_from")):
        args = ["compensation", "--stats", str(cfg.county_stats), "--zones", str(cfg.zones.path),
                "--esv", str(tables / "esv_by_service.csv"), option, str(tables / table),
                "--out", str(tmp_path / option.strip("-"))]
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 2, res.output
        text = " ".join(res.output.split())
        assert f"{table}: columns" in text and lacking in text and "not a run's" in text
        assert not (tmp_path / option.strip("-")).exists()


def test_the_compensation_geopackage_is_the_same_bytes_every_time(run, tmp_path: Path) -> None:
    cfg, paths = run
    first = Path(paths["compensation.gpkg"]).read_bytes()
    args = ["compensation", "--stats", str(cfg.county_stats), "--zones", str(cfg.zones.path),
            "--esv", str(cfg.output / "tables" / "esv_by_service.csv"),
            "--transitions", str(cfg.output / "tables" / "transitions.parquet")]
    for out in ("a", "b"):
        assert CliRunner().invoke(app, [*args, "--out", str(tmp_path / out)]).exit_code == 0
    a, b = ((tmp_path / out / "compensation.gpkg").read_bytes() for out in ("a", "b"))
    assert a == b and len(first) > 0


def test_a_year_the_national_series_lacks_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    from ecodask.run.inputs import check_inputs

    cfg = load_config(make_region(tmp_path / "r", seed=4, width_km=4, height_km=3, n_counties=2))
    stats = pd.read_csv(cfg.county_stats)
    first = int(stats.year.min())
    stats.loc[stats.year == first, "year"] = 1985  # the land-cover year moved before the series
    stats.to_csv(cfg.county_stats, index=False)
    years = {1985 if y == first else y: f for y, f in cfg.landcover.years.items()}
    cfg = cfg.model_copy(update={"landcover": cfg.landcover.model_copy(update={"years": years})})
    with pytest.raises(InputError) as info:
        check_inputs(cfg)
    (p,) = [p for p in info.value.problems if p.key == "year"]
    assert p.file == str(cfg.county_stats) and p.value == 1985 and "china_nbs" in p.message
    assert "2000-2024" in p.message
    assert not cfg.output.exists()
    # a number or the counties' own figure serves any year
    for ref in (60_000.0, "counties"):
        comp = cfg.compensation.model_copy(update={"reference_gdp_per_capita": ref})
        check_inputs(cfg.model_copy(update={"compensation": comp}))
