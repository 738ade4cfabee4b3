"""A folder's run is written as a bucket's: each stage's arrays in a layer of its own, the run
committed by a pointer naming the layers, and the folder's ``store.zarr`` a view whose arrays link
into them (:mod:`ecodask.io.layers`, :mod:`ecodask.io.view`, :mod:`ecodask.run.transaction`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from ecodask.io import layers, view
from ecodask.io.layout import RunFolder
from ecodask.io.store import open_store
from ecodask.run.inprocess import run
from ecodask.run.stages import NAMES

from conftest import make_tiny_region
from helpers import digest

pytestmark = pytest.mark.usefixtures("dask_threads")


def _array(folder: Path, values: np.ndarray, dims: list[str]) -> None:
    import zarr

    arr = zarr.create_array(str(folder), shape=values.shape, dtype=values.dtype, chunks=values.shape,
                            dimension_names=dims)
    arr[...] = values


def test_a_view_links_every_layer_s_arrays_once_and_reads_after_being_moved(tmp_path: Path) -> None:
    import zarr

    a, b = tmp_path / "stages" / "ingest" / "k1", tmp_path / "stages" / "transitions_esv" / "k2"
    for layer in (a, b):
        zarr.open_group(str(layer), mode="w", zarr_format=3)
        _array(layer / "x", np.arange(3.0) + (0 if layer == a else 100), ["x"])  # a coordinate in both
    zarr.open_group(str(a), mode="r+").attrs["zones"] = {"zone_id": [1, 2]}
    _array(a / "landcover", np.ones(3, "u1"), ["x"])
    _array(b / "esv", np.full(3, 2.5, "f4"), ["x"])
    zarr.open_group(str(b / "analysis"), mode="w", zarr_format=3)
    _array(b / "analysis" / "esv_density", np.zeros(2, "f4"), ["cell"])
    (b / layers.FILES / "tables").mkdir(parents=True)
    (b / layers.FILES / "tables" / "t.csv").write_text("a\n")

    staged, final = tmp_path / "work" / "store.zarr", tmp_path / "store.zarr"
    assert view.link_store([a, b], staged, final) == 4  # x once, landcover, esv, the group's array
    assert sorted(p.name for p in staged.iterdir()) == ["analysis", "esv", "landcover", "x", "zarr.json"]
    assert os.readlink(staged / "x") == "../stages/ingest/k1/x"  # the first layer's, seen from final
    staged.rename(final)
    ds = xr.open_zarr(final, consolidated=False)
    assert ds.attrs["zones"] == {"zone_id": [1, 2]}
    assert ds["x"].values.tolist() == [0.0, 1.0, 2.0] and float(ds["esv"][0]) == 2.5
    assert xr.open_zarr(final, group="analysis", consolidated=False)["esv_density"].shape == (2,)
    with pytest.raises(FileExistsError):
        view.link_store([a], final)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A tiny region's run, finished through :func:`ecodask.run.inprocess.run`."""
    config = make_tiny_region(tmp_path_factory.mktemp("layers") / "region")
    run(config, log=lambda _: None)
    return config


def test_the_folder_shows_the_run_its_pointer_names(finished: Path) -> None:
    out = RunFolder(finished.parent / "out")
    pointer = json.loads((out.state / "current.json").read_text())
    named = {s["stage"]: out.root / s["layer"] for s in pointer["stages"]}
    assert list(named) == list(NAMES)
    # No layer but those the pointer names; no work folder left.
    assert {p for p in (out.root / layers.STAGES).glob("*/*")} == set(named.values())
    assert not (out.state / "work").exists()
    # The view's arrays are links into the layers, and read as the layers read together.
    esv = out.store / "esv"
    assert esv.is_symlink() and esv.resolve().parent == named["transitions_esv"].resolve()
    pix, _ = open_store(out.store)
    pix_l, _ = open_store(layers.committed(str(out.root)))
    assert set(pix.data_vars) == set(pix_l.data_vars)
    for name in pix.data_vars:
        np.testing.assert_array_equal(pix[name].values, pix_l[name].values)
    # GDAL's Zarr driver (QGIS's way in) opens the view's arrays through the links, georeferenced.
    import rasterio

    with rasterio.open(f'ZARR:"{out.store}":/zone') as ds:
        assert ds.crs is not None and ds.read(1).shape == pix["zone"].shape
        np.testing.assert_array_equal(ds.read(1), pix["zone"].values)
    # The tables in the folder are the layers' own files (hard links), not copies.
    table = out.tables / "esv_by_service.csv"
    in_layer = named["transitions_esv"] / layers.FILES / "tables" / table.name
    assert table.stat().st_ino == in_layer.stat().st_ino


def test_a_run_of_some_stages_keeps_the_others_outputs_in_the_view(finished: Path, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "region"
    shutil.copytree(finished.parent, folder, symlinks=True)
    config = folder / finished.name
    out = RunFolder(folder / "out")
    before = digest(out.root)
    doc = yaml.safe_load(config.read_text())
    doc["analysis"] = {"alpha": 0.1}
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    outputs = run(config, stages=["driver_analysis"], log=lambda _: None)
    assert "run_record" not in outputs  # not a whole run: no record of its own
    after = digest(out.root)
    changed = {k for k in before if after.get(k) != before[k]}
    # The driver tables and charts and the pointer changed; the maps, the compensation tables, run.json and
    # the report of the run before are still there, as they were.
    assert changed and all(k.startswith(("tables/geodetector_", "figures/geodetector_", ".ecodask/"))
                           for k in changed), changed
    assert set(after) == set(before)
    pointer = json.loads((out.state / "current.json").read_text())
    assert [s["stage"] for s in pointer["stages"]] == list(NAMES)


def test_a_stage_that_starts_keeps_a_manifest_of_the_committed_layer_only(finished: Path, tmp_path: Path,
                                                                           ) -> None:
    """A stage that starts again leaves its manifest when it names the committed run's layer (never
    written into: a rerun may still trust it), and removes it with its layer otherwise."""
    import shutil

    from ecodask.run import resume, transaction
    from ecodask.run.config import load_config

    folder = tmp_path / "region"
    shutil.copytree(finished.parent, folder, symlinks=True)
    cfg = load_config(folder / finished.name)
    out = RunFolder(cfg.output)
    committed = layers.committed_layers(str(out.root))["compensation"]
    work = transaction.begin(cfg)
    assert work.todo == {}

    def fails() -> dict[str, str]:
        raise RuntimeError("a stage that fails")

    key = work.keys["compensation"]
    with pytest.raises(RuntimeError):
        resume.run_stage(work.cfg, "compensation", key, fails, force=True)
    assert json.loads(out.manifest("compensation").read_text())["layer"] == \
        Path(committed).relative_to(out.root).as_posix()
    assert resume.pending(cfg)[0] == {}  # the committed layer, whole, is still trusted
    # A stage finished under another key (a run killed before its commit), then started again.
    other = "0" * 64
    resume.run_stage(work.cfg, "compensation", other, lambda: {})
    mine = json.loads(out.manifest("compensation").read_text())["layer"]
    assert (out.root / mine).is_dir() and mine != Path(committed).relative_to(out.root).as_posix()
    with pytest.raises(RuntimeError):
        resume.run_stage(work.cfg, "compensation", other, fails, force=True)
    assert not out.manifest("compensation").exists()
    assert Path(committed).is_dir()  # the committed run's layer untouched
