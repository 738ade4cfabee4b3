"""The run's figures: each PNG opened and checked (size, not blank, the colours of exactly the classes
it shows), the land-use overview kernel against a plain count, and the map furniture (true north,
scale bar length, CRS caption)."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from matplotlib import colormaps
from matplotlib.colors import TwoSlopeNorm, to_hex
from pyproj import CRS

from ecodask.chunked.overview import landcover_overview
from ecodask.io.catalogs import load_class_scheme
from ecodask.kernels.overview import block_mode
from ecodask.present import maps
from ecodask.run.config import load_config
from ecodask.run.stages.figures import HOTSPOT_CLASSES, overview_step

from conftest import CHINA_ALBERS, assert_figure, has_colour, make_tiny_region
from helpers import deadline, run_stages


def _mode_reference(codes: np.ndarray, factor: int, nodata: int) -> np.ndarray:
    rows, cols = -(-codes.shape[0] // factor), -(-codes.shape[1] // factor)
    out = np.zeros((rows, cols), np.uint8)
    for i in range(rows):
        for j in range(cols):
            block = codes[i * factor:(i + 1) * factor, j * factor:(j + 1) * factor].ravel()
            counts = np.bincount(block, minlength=256)
            counts[nodata] = 0
            out[i, j] = int(np.argmax(counts)) if counts.max() > 0 else nodata
    return out


@settings(max_examples=60, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 40), st.integers(1, 40)), elements=st.integers(0, 5)),
       st.integers(1, 9), st.integers(0, 5))
def test_block_mode_is_the_most_frequent_code(codes: np.ndarray, factor: int, nodata: int) -> None:
    np.testing.assert_array_equal(block_mode(codes, factor, nodata), _mode_reference(codes, factor, nodata))


def test_block_mode_by_hand_and_chunked() -> None:
    a = np.array([[1, 1, 2, 2, 0], [1, 3, 2, 0, 0], [0, 0, 5, 5, 5]], np.uint8)
    np.testing.assert_array_equal(block_mode(a, 2), [[1, 2, 0], [0, 5, 5]])
    big = np.random.default_rng(1).integers(0, 4, (96, 70)).astype(np.uint8)
    chunked = landcover_overview(da.from_array(big, chunks=(32, 32)), 8, 0).compute()
    np.testing.assert_array_equal(chunked, _mode_reference(big, 8, 0))
    with pytest.raises(ValueError, match="uint8"):
        block_mode(big.astype(np.int16), 8)


def test_map_furniture() -> None:
    crs = CRS.from_user_input(CHINA_ALBERS)
    # On the central meridian grid north is true north; east of it true north leans west (left).
    assert maps.true_north_degrees(crs, 0.0, 3_500_000.0) == pytest.approx(0.0, abs=1e-6)
    assert maps.true_north_degrees(crs, 900_000.0, 3_300_000.0) > 3.0
    assert maps.nice_length(24_000) == 5_000 and maps.nice_length(9_000) == 2_000
    assert maps.nice_length(3_000_000) == 500_000
    assert maps.crs_label(crs).startswith("CRS: Albers equal-area, lon0 105°, parallels 25° and 47°")
    assert maps.crs_label(CRS.from_epsg(32649)) == "CRS: WGS 84 / UTM zone 49N (EPSG:32649)"


def test_diverging_map_is_centred_on_zero(tmp_path: Path) -> None:
    values = np.array([[-4.0, -4.0, 0.0, 0.0, 4.0, 4.0]] * 6)
    frame = maps.GridFrame.from_coords(np.arange(6) * 1000.0 + 500, np.arange(6)[::-1] * 1000.0 + 500,
                                       CHINA_ALBERS)
    path = maps.raster_map(values, frame, tmp_path / "d.png", title="t", cmap="RdBu",
                           norm=TwoSlopeNorm(0.0, -4.0, 4.0), units="CNY/ha/yr")
    img = assert_figure(path, 500, 400)
    cmap = colormaps["RdBu"]
    for v in (0.0, 0.5, 1.0):  # the lowest, zero and highest values in the map's colours
        assert has_colour(img, to_hex(cmap(v)), 500, tol=2)
    assert not has_colour(img, to_hex(cmap(0.25)), 500, tol=2)  # nothing between


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("figures")
    drivers = {"elevation": {"path": "elev.tif"}, "elevation_again": {"path": "elev.tif"}}  # two: a heat map
    cfg = load_config(make_tiny_region(folder, years=(2000, 2010, 2020), drivers=drivers))
    store, _ = run_stages(cfg, "ingest", "transitions_esv")
    _, paths = run_stages(cfg, "driver_analysis", "figures")
    return cfg, store, paths


def test_every_figure_drawn(run) -> None:
    cfg, _, paths = run
    names = {k for k in paths if k.endswith(".png")}
    expected = {f"{kind}_{y}.png" for kind in ("landuse", "esv", "hotspots") for y in (2000, 2010, 2020)}
    expected |= {"esv_change_2000_2020.png", "esv_by_service.png", "landuse_flows.png", "coverage.png",
                 "service_tradeoffs.png"}
    expected |= {f"geodetector_{k}_{y}.png" for k in ("q", "interaction") for y in (2000, 2010, 2020)}
    assert names == expected
    assert {p.name for p in (cfg.output / "figures").glob("*.png")} == expected
    for name in expected:
        assert_figure(paths[name], min_height=300)  # a q chart of two factors is short


def test_land_use_maps_show_the_classes_present(run) -> None:
    cfg, store, paths = run
    import xarray as xr

    scheme = load_class_scheme("clcd", [])
    pix = xr.open_zarr(store, consolidated=False, mask_and_scale=False)
    for i, year in enumerate((2000, 2010, 2020)):
        codes = pix["landcover"].values[i].astype(np.uint8)
        step = overview_step(max(codes.shape), 32)  # a small region: drawn at 30 m
        assert step == 1
        overview = _mode_reference(codes, step, scheme.nodata) if step > 1 else codes
        present = set(np.unique(overview)) - {scheme.nodata}
        img = assert_figure(paths[f"landuse_{year}.png"])
        shown = {code for code, c in scheme.classes.items() if has_colour(img, c.color)}
        assert shown == present, year  # map and legend: the classes present, no others


def test_hotspot_maps_show_their_classes(run) -> None:
    _, store, paths = run
    import xarray as xr

    ana = xr.open_zarr(store, group="analysis", consolidated=False)
    for i, year in enumerate((2000, 2010, 2020)):
        cls = ana["esv_hotspot"].values[i]
        present = {int(v) for v in np.unique(cls[np.isfinite(cls)])}
        img = assert_figure(paths[f"hotspots_{year}.png"])
        shown = {code for code, _, colour in HOTSPOT_CLASSES if has_colour(img, colour)}
        assert shown == present and present, year


def test_charts_show_every_service_and_class(run) -> None:
    cfg, _, paths = run
    from ecodask.present.plots import GROUP_COLOURS

    esv = pd.read_parquet(cfg.output / "tables" / "esv_by_service.parquet")
    services = esv[(esv.zone_id == "ALL") & (esv.level == "service")].drop_duplicates("item")
    img = assert_figure(paths["esv_by_service.png"])
    used = {g: sum(services.group == g) for g in GROUP_COLOURS}
    colours = [GROUP_COLOURS[g][i] for g, n in used.items() for i in range(n)]
    assert len(colours) == len(services) and all(has_colour(img, c) for c in colours)
    tr = pd.read_parquet(cfg.output / "tables" / "transitions.parquet")
    tr = tr[(tr.zone_id == "ALL") & (tr.area_ha > 0)]
    scheme = load_class_scheme("clcd", [])
    img = assert_figure(paths["landuse_flows.png"])
    present = set(tr.class_from) | set(tr.class_to)
    assert {c for c, info in scheme.classes.items() if has_colour(img, info.color)} == present


def test_figures_can_be_switched_off(tmp_path: Path) -> None:
    cfg = load_config(make_tiny_region(tmp_path / "r", report={"figures": False}))
    assert run_stages(cfg, "figures")[1] == {}  # on the store of cfg.output, which is not there
    assert not (cfg.output / "figures").exists()


def _report(run):
    import datetime as dt

    from ecodask.present.report import write_report
    from ecodask.run.record import write_run_record

    cfg, _, paths = run
    write_run_record(cfg, {"ingest": 1.25, "transitions_esv": 2.5}, dict(paths), dt.datetime.now(dt.UTC),
                     {"ingest": True, "transitions_esv": False})
    return cfg, write_report(cfg.output)


def test_report_is_self_contained_and_complete(run) -> None:
    import base64
    import re

    cfg, path = _report(run)
    text = path.read_text(encoding="utf-8")
    # Every figure embedded once, byte for byte; nothing fetched from elsewhere.
    refs = re.findall(r'(?:src|href)="([^"]*)"', text)
    assert all(r.startswith(("data:image/png;base64,", "#")) for r in refs), [r[:40] for r in refs]
    embedded = sorted(base64.b64decode(r.split(",", 1)[1]) for r in refs if r.startswith("data:"))
    assert embedded == sorted(p.read_bytes() for p in (cfg.output / "figures").glob("*.png"))
    assert "<link" not in text and "<script" not in text and "\0" not in text
    # Tables, configuration, conventions, versions and timings.
    esv = pd.read_parquet(cfg.output / "tables" / "esv_by_service.parquet")
    total = esv[(esv.zone_id == "ALL") & (esv.level == "total")].set_index("year")["esv_1e8cny"]
    for year in (2000, 2010, 2020):
        assert f"{total[year]:,.4f}" in text
    assert "East" in text and "West" in text  # every county's row
    assert "xinzhou_2023" in text and "Getis-Ord Gi*" in text and "CNY/ha/yr" in text
    # the table's market split and its catalog note, as run.json recorded them
    market = "Market part of the ESV (esv.table xinzhou_2023): food_production, raw_materials, water_supply"
    assert market in text
    assert "Note on xinzhou_2023: Farmland raw materials, 1575.79 CNY/ha/yr" in text
    assert "<td>prefect</td>" in text and "<td>3.8.8</td>" in text
    assert "<td>transitions_esv</td>" in text and "skipped" in text
    assert "name: tiny" in text  # the configuration as YAML


def test_report_streams_each_figure_into_place(tmp_path: Path) -> None:
    """The report's figures are encoded into the file one at a time, in blocks: the result is the
    base64 of each whole file, at its marker, however the blocks fall (3 MiB + 5 bytes, 0 bytes)."""
    import base64

    from ecodask.present import report

    rng = np.random.default_rng(0)
    big, empty = tmp_path / "big.png", tmp_path / "empty.png"
    big.write_bytes(rng.integers(0, 256, 3 * 2**20 + 5, dtype=np.uint8).tobytes())
    empty.write_bytes(b"")
    text = f"<p>á</p>{report._img(big, 'big map')}<br>{report._img(empty, 'none')}end"
    out = tmp_path / "r.html"
    report._write_with_figures(text, out)
    got = out.read_text(encoding="utf-8")
    expect = (f'<p>á</p><figure><img alt="big map" src="data:image/png;base64,'
              f'{base64.b64encode(big.read_bytes()).decode()}"><figcaption>big map</figcaption></figure><br>'
              '<figure><img alt="none" src="data:image/png;base64,"><figcaption>none</figcaption>'
              '</figure>end')
    assert got == expect


@pytest.mark.slow  # a browser
def test_report_renders_in_chromium_without_network(run, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from conftest import CHROMIUM, CHROMIUM_ARGS, need_chromium

    need_chromium()
    _, path = _report(run)
    requests: list[str] = []
    wait_ms = deadline(30) * 1000
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=wait_ms)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(wait_ms)
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.resolve().as_uri())
            widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")
            heading = page.inner_text("h1")
            page.screenshot(path=tmp_path / "first-screen.png")
        finally:
            browser.close()
    assert widths and all(w > 0 for w in widths)  # every image decoded
    assert "tiny" in heading
    assert all(u.startswith(("file:", "data:")) for u in requests), requests
    assert_figure(tmp_path / "first-screen.png", 1000, 800)


def test_report_of_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ecodask.cli import app
    from ecodask.errors import InputError
    from ecodask.present.report import write_report

    with pytest.raises(InputError, match="run.json"):
        write_report(tmp_path)
    res = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert res.exit_code == 2 and f"{tmp_path / 'run.json'}: missing" in res.output
    assert list(tmp_path.iterdir()) == []


def test_report_command_rewrites_the_report(run) -> None:
    from typer.testing import CliRunner

    from ecodask.cli import app

    cfg, path = _report(run)
    before = path.read_text(encoding="utf-8")
    path.unlink()
    res = CliRunner().invoke(app, ["report", str(cfg.output)])
    assert res.exit_code == 0, res.output
    assert path.read_text(encoding="utf-8") == before  # from the run's files alone


def test_overview_step_draws_the_finest_cells_that_fit() -> None:
    assert overview_step(800, 32) == 1  # a 24 km region: every 30 m pixel
    assert overview_step(3200, 32) == 2 and overview_step(1601, 32) == 2
    assert overview_step(40_000, 32) == 32  # a province: the analysis cells (factor 32)
    assert overview_step(10_000, 30) == 10  # divisors of a factor that is no power of two


def test_no_data_is_grey_with_a_legend_entry_not_white(tmp_path: Path) -> None:
    from matplotlib.colors import Normalize

    frame = maps.GridFrame((0.0, 400.0, 0.0, 300.0), 100.0, CRS.from_epsg(3857))
    values = np.array([[1.0, 2.0, np.nan, np.nan], [1.0, 0.0, np.nan, 3.0], [2.0, 2.0, 2.0, 2.0]])
    nodata = np.isnan(values)
    nodata[0, 3] = False  # outside the region: blank, not grey
    path = maps.raster_map(values, frame, tmp_path / "m.png", title="t", cmap="YlGn", units="u",
                           norm=Normalize(0, 3), nodata=nodata)
    img = assert_figure(path)
    assert has_colour(img, maps.NODATA_COLOUR)
    codes = np.array([[1, 0], [2, 1]], np.uint8)
    small = maps.GridFrame((0.0, 200.0, 0.0, 200.0), 100.0, CRS.from_epsg(3857))
    path = maps.category_map(codes, small, tmp_path / "c.png", title="t", legend_title="class", nodata=0,
                             classes=[(1, "a", "#ff0000"), (2, "b", "#0000ff")])
    assert has_colour(assert_figure(path), maps.NODATA_COLOUR)


def test_conventions_name_both_forms_of_r_and_the_one_used() -> None:
    from ecodask.present.report import conventions
    from ecodask.run.config import CompensationConfig

    for form, other in (("pearl", "seed"), ("seed", "pearl")):
        comp = CompensationConfig(r_form=form).model_dump(mode="json")
        lines = conventions({"county_stats": "stats.csv", "compensation": comp})
        (r,) = [line for line in lines if line.startswith("Development stage R")]
        used = {"pearl": "t = 1/En − 3 (the Pearl form), used here",
                "seed": "t = En (seed 003's eq. 8 as printed), used here"}[form]
        assert used in r and f"compensation.r_form: {other}" in r
        assert "extremely rich" in r  # the one sentence on why
    assert CompensationConfig().r_form == "pearl"
    for ref, what in (("china_nbs", "the series china_nbs by year"), ("counties", "the counties' total GDP"),
                      (60000.0, "60,000 CNY per person in every year")):
        comp = CompensationConfig(reference_gdp_per_capita=ref).model_dump(mode="json")
        lines = conventions({"county_stats": "stats.csv", "compensation": comp})
        assert any(line.startswith("Affordability G") and what in line for line in lines), (ref, lines)
    assert not any(line.startswith("Development stage R") for line in conventions({}))
    drivers = {"aspect": {"path": "in/dem.tif", "kind": "continuous", "derive": "aspect"},
               "elevation": {"path": "in/dem.tif", "kind": "continuous"}}
    (line,) = [c for c in conventions({"drivers": drivers}) if c.startswith("Driver ")]
    assert line.startswith("Driver aspect: aspect of the DEM dem.tif by Horn's (1981)")
    assert "circular mean" in line


@pytest.mark.slow  # a LocalCluster of worker processes
def test_maps_are_drawn_on_the_workers_one_task_per_year(run, tmp_path: Path) -> None:
    import os
    import shutil

    from dask.utils import key_split
    from distributed import Client, LocalCluster, get_task_stream

    from ecodask.io.layout import RunFolder
    from ecodask.run.stages import figures

    cfg, _, drawn_here = run  # the fixture drew them in this process (Dask's threaded scheduler)
    out = tmp_path / "out"
    shutil.copytree(cfg.output, out)
    shutil.rmtree(out / "figures")
    moved = cfg.model_copy(update={"output": out})
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.wait_for_workers(2, timeout=deadline(60))
        pids = client.run(os.getpid)
        with get_task_stream(client) as stream:
            paths = figures.run(moved, RunFolder(out).store)
        backends = client.run(lambda: __import__("matplotlib").get_backend())
    assert os.getpid() not in pids.values()
    ran: dict[str, list[str]] = {}
    for t in stream.data:
        ran.setdefault(key_split(t["key"]), []).append(t["worker"])
    years = (2000, 2010, 2020)
    # One task a year drew its three maps; the colour scale's limits and the counties were tasks too.
    assert len(ran["year_maps"]) == len(years) and len(ran["esv_limit"]) == len(years)
    assert len(ran["read_zones"]) == 1 and len(ran["change_map"]) == 1
    assert all(w in pids for workers in ran.values() for w in workers)  # each on a worker process
    assert set(backends.values()) == {"agg"}  # files only, no display
    names = {f"{kind}_{y}.png" for kind in ("landuse", "esv", "hotspots") for y in years}
    names |= {"esv_change_2000_2020.png", "esv_by_service.png", "landuse_flows.png", "coverage.png",
              "service_tradeoffs.png"}
    assert set(paths) == names and {p.name for p in (out / "figures").glob("*.png")} == names
    for name in names:  # the same files, byte for byte, as drawn in this process
        assert paths[name] == out / "figures" / name
        assert paths[name].read_bytes() == drawn_here[name].read_bytes(), name


def test_a_task_that_draws_leaves_no_figure_to_the_garbage_collector(run, tmp_path: Path) -> None:
    """A matplotlib figure is freed by Python's cycle collector, not when its task returns; a
    worker drawing one year after another kept ~10 years of figures before its next full
    collection (BENCHMARKS.md, "The archive's 39 years"). With automatic collection off, no
    figure of the stage's tasks is left once they returned: each collected its own."""
    import gc
    import shutil

    import dask
    from matplotlib.figure import Figure

    from ecodask.io.layout import RunFolder
    from ecodask.run.stages import figures

    cfg, _, _ = run
    out = tmp_path / "out"
    shutil.copytree(cfg.output, out)
    shutil.rmtree(out / "figures")

    def alive() -> int:  # figures tracked by the collector, garbage not yet collected included
        return sum(isinstance(o, Figure) for o in gc.get_objects())

    gc.collect()
    before = alive()
    gc.disable()
    try:
        with dask.config.set(scheduler="synchronous"):
            paths = figures.run(cfg.model_copy(update={"output": out}), RunFolder(out).store)
        left = alive()
    finally:
        gc.enable()
    assert len(paths) == 14  # 3 years' 3 maps, the change map, 4 charts: every task drew
    assert left == before


def test_a_large_grid_is_drawn_from_one_cell_in_k() -> None:
    """A grid wider than maps.DRAWN_CELLS is drawn from the cell at the centre of each k x k block
    (k the least stride that fits), over the extent of those blocks; a smaller grid as it is."""
    n = maps.DRAWN_CELLS
    crs = CRS.from_user_input(CHINA_ALBERS)
    frame = maps.GridFrame((0.0, 960.0 * (2 * n + 3), -960.0 * 5, 0.0), 960.0, crs)
    grid = np.arange(5 * (2 * n + 3), dtype=np.float64).reshape(5, 2 * n + 3)  # value = row * width + col
    (drawn, mask), extent = maps._drawn([grid, grid > 7], frame)
    k, w = 3, 2 * n + 3  # 2n + 3 cells need a stride of 3 to fit n
    assert drawn.shape == (2, -(-w // 3)) and drawn.shape[1] <= n
    assert drawn[0, 0] == grid[1, 1] and drawn[1, 0] == grid[4, 1] and drawn[1, 1] == grid[4, 4]
    assert drawn[0, -1] == grid[1, w - 1]  # the last block is short: its last cell, not past the grid
    rows, cols = [1, 4], np.minimum(np.arange(drawn.shape[1]) * 3 + 1, w - 1)
    np.testing.assert_array_equal(drawn, grid[np.ix_(rows, cols)])
    np.testing.assert_array_equal(mask, drawn > 7)
    assert extent == (0.0, 960.0 * k * len(cols), -960.0 * k * len(rows), 0.0)
    assert extent[1] >= frame.extent[1] > extent[1] - 960.0 * k  # past the frame by less than k cells
    small = grid[:, :n]
    (same, none), ext = maps._drawn([small, None], maps.GridFrame((0.0, 960.0 * n, -4800.0, 0.0), 960.0,
                                                                   frame.crs))
    assert same is small and none is None and ext == (0.0, 960.0 * n, -4800.0, 0.0)
