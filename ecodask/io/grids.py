"""Result grids in the run's store: the 30 m ESV arrays, the analysis-grid ESV arrays and the
hot-spot arrays, each staged then committed.

The ESV arrays of both grids are created empty under a staging name (metadata only, CF
georeferencing copied from the store), filled chunk by chunk by the pass's tasks, and renamed into
place only after the pass has succeeded and its inputs were found valid; :func:`discard` removes
them otherwise. A reader never sees a half-written ``esv``, and no year's grid passes through the
process that runs the stage.

A run's store is its stages' layers (:class:`~ecodask.io.layers.Layers`, in an output folder or a
bucket alike): there the arrays are created under their final names in the stage's own layer,
which no reader reads until the stage's manifest and the run's pointer name it, and
:func:`commit` and :func:`discard` leave them to the manifest (written last, it commits the layer)
and to the sweep of the stage's next start. The staging and renaming above is for a bare store
folder (a store written outside a run: tests, benchmarks, library use).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr
import zarr
import zarr.codecs

from ecodask.crashpoints import crash_point
from ecodask.io.cleanup import remove_tree
from ecodask.io.layers import Layers, location
from ecodask.io.store import (
    ANALYSIS_GROUP,
    CLASS,
    CLASS_PIXELS,
    ESV,
    ESV_DENSITY,
    ESV_GI_Z,
    ESV_GROUP,
    ESV_HOTSPOT,
    ESV_PIXELS,
    GROUP,
    LANDCOVER,
    ZONE,
)
from ecodask.kernels.cell_classes import count_dtype

STAGING = "_staging_"
#: A run's store: a folder (arrays staged, then renamed) or a remote run's layers (written in place).
Store = Path | Layers


def _where(store: Store) -> tuple[str | Path, str]:
    """Where new arrays go and the prefix of their names while they are written."""
    return (store.write, "") if isinstance(store, Layers) else (Path(store), STAGING)


def _grid_attrs(pix: xr.Dataset) -> dict:
    out = {"grid_mapping": "spatial_ref"} if "spatial_ref" in pix.coords else {}
    if "_CRS" in pix[LANDCOVER].attrs:  # GDAL's Zarr driver reads the CRS from _CRS
        out["_CRS"] = pix[LANDCOVER].attrs["_CRS"]
    return out


def stage_esv_arrays(store: Store, pix: xr.Dataset, groups: list[str] | None) -> dict[str, str | Path]:
    """Create empty ``esv`` (year, y, x) and, with ``groups``, ``esv_group`` (year, group, y, x)
    float32 arrays (CNY/yr per pixel, NaN outside zones and for no data) under staging names;
    return the Zarr array paths by final name. The store's own attributes are not touched."""
    ny, nx = pix.sizes["y"], pix.sizes["x"]
    cy, cx = (c[0] for c in pix[ZONE].chunks)
    n_t = pix.sizes["year"]
    attrs = {"long_name": "ecosystem service value", "units": "CNY/yr per pixel", **_grid_attrs(pix)}
    specs = {ESV: ((n_t, ny, nx), (1, cy, cx), ["year", "y", "x"], attrs)}
    if groups:
        specs[ESV_GROUP] = ((n_t, len(groups), ny, nx), (1, 1, cy, cx), ["year", GROUP, "y", "x"],
                              {**attrs, "long_name": "ecosystem service value by service group"})
    _clear_staged(store, [*specs, GROUP])
    where, prefix = _where(store)
    root = zarr.open_group(where, mode="r+")
    staged = {k: staged_path(store, k) for k in specs}
    if groups:
        _write_coord(root, prefix + GROUP, GROUP, np.asarray(groups, dtype=str))
        staged[GROUP] = staged_path(store, GROUP)
    for name, (shape, chunks, dims, at) in specs.items():
        root.create_array(prefix + name, shape=shape, chunks=chunks, dtype="float32",
                          fill_value=np.nan, dimension_names=dims, attributes=at,
                          compressors=zarr.codecs.ZstdCodec(level=1))  # 25 % faster than 3
    return staged


def _write_coord(root: zarr.Group, name: str, dim: str, values: np.ndarray) -> None:
    arr = root.create_array(name, shape=values.shape, dtype=values.dtype, dimension_names=[dim])
    arr[:] = values


#: Arrays of a run with group grids (pixel and analysis grid), removed by a later run without them.
GROUP_ARRAYS = (ESV_GROUP, GROUP, f"{ANALYSIS_GROUP}/{ESV_GROUP}", f"{ANALYSIS_GROUP}/{GROUP}")
#: Arrays of a run with the cells' class composition, removed by a later run without it.
CLASS_ARRAYS = (f"{ANALYSIS_GROUP}/{CLASS_PIXELS}", f"{ANALYSIS_GROUP}/{CLASS}")


def commit(store: Store, staged: dict[str, str | Path]) -> None:
    """Rename staged arrays (by final name, a path in the store such as ``esv`` or
    ``analysis/esv_gi_z``) to their final names, replacing earlier ones (in a layer they have
    them already: nothing to do)."""
    if isinstance(store, Layers):
        return
    for name, path in staged.items():
        final = Path(store) / name
        if final.exists():
            shutil.rmtree(final)
        crash_point("arrays:removed")
        path.rename(final)


def remove_arrays(store: Store, names: tuple[str, ...]) -> None:
    """Remove an earlier run's optional arrays ``names`` (paths in the store, e.g.
    :data:`GROUP_ARRAYS`), for a run without them (a layer is new: it has none)."""
    if isinstance(store, Layers):
        return
    for name in names:
        shutil.rmtree(Path(store) / name, ignore_errors=True)


def staged_path(store: Store, name: str) -> str | Path:
    """Where the array ``name`` (a path in the store, e.g. ``esv`` or ``analysis/esv``) is staged
    (in a layer: written under its own name)."""
    if isinstance(store, Layers):
        return location(store.write, name)
    final = Path(store) / name
    return final.parent / (STAGING + final.name)


def _clear_staged(store: Store, names: list[str]) -> None:
    """Remove what a killed earlier run left staged under ``names``, before this run's tasks start
    (no task is writing there: no wait for one, unlike :func:`discard`; a layer is new)."""
    if isinstance(store, Layers):
        return
    for name in names:
        shutil.rmtree(staged_path(store, name), ignore_errors=True)


def discard(store: Store, names: list[str]) -> None:
    """Remove staged arrays ``names`` (final names, as :func:`staged_path` takes them) if present
    (a layer without a manifest is never read, and goes at its stage's next start)."""
    if isinstance(store, Layers):
        return
    for name in names:  # after a failure: also what chunk writes still running put there
        remove_tree(staged_path(store, name))


def stage_analysis_esv_arrays(store: Store, ana: xr.Dataset, years: np.ndarray, cell_chunk: int,
                              groups: list[str] | None, classes: list[str] | None = None,
                              factor: int = 1) -> dict[str, str | Path]:
    """Create empty analysis-grid arrays under staging names in the store's analysis group, for the
    land pass's tasks to fill chunk by chunk (chunks of ``cell_chunk``² cells, one year, so a task
    writes only its own): ``esv`` (year, y, x) CNY/yr per cell and NaN without a valued pixel,
    ``esv_pixels`` int32 valued pixels per cell, ``esv_density`` CNY/ha/yr over the valued pixels
    and, with ``groups``, ``esv_group`` (year, group, y, x) CNY/yr; with ``classes`` (the scheme's
    class names), ``class_pixels`` (year, class, y, x) pixels of each class per cell of ``factor``²
    pixels (uint16, or uint32 above 255²); and the coordinates ``year`` (and ``group``,
    ``class``). Return the Zarr array paths by final name (``analysis/<name>``), for
    :func:`commit` or :func:`discard`."""
    ny, nx = ana.sizes["y"], ana.sizes["x"]
    years = np.asarray(years, np.int32)
    attrs = ({"grid_mapping": "spatial_ref", "coordinates": "spatial_ref"} if "spatial_ref" in ana.coords
             else {})
    specs = {
        ESV: ("float64", {"long_name": "ecosystem service value per analysis cell", "units": "CNY/yr"}),
        ESV_PIXELS: ("int32", {"long_name": "valued pixels per analysis cell", "units": "1"}),
        ESV_DENSITY: ("float64", {"long_name": "ESV density over valued pixels", "units": "CNY/ha/yr"}),
    }
    layered = {}  # array -> (its layer dimension, the layer names, chunk along it)
    if groups:
        specs[ESV_GROUP] = ("float64", {"long_name": "ESV per analysis cell by service group",
                                        "units": "CNY/yr"})
        layered[ESV_GROUP] = (GROUP, groups, 1)
    if classes:
        specs[CLASS_PIXELS] = (count_dtype(factor).name, {"long_name": "pixels of each land-use class per "
                                                           "analysis cell (inside the zones)", "units": "1"})
        # one chunk holds a cell chunk's whole composition: a task writes it at once
        layered[CLASS_PIXELS] = (CLASS, classes, len(classes))
    coords = [dim for dim, _, _ in layered.values()]
    _clear_staged(store, [f"{ANALYSIS_GROUP}/{k}" for k in [*specs, "year", GROUP, CLASS]])
    where, prefix = _where(store)
    root = zarr.open_group(location(where, ANALYSIS_GROUP), mode="r+" if prefix else "a")
    staged = {f"{ANALYSIS_GROUP}/{k}": staged_path(store, f"{ANALYSIS_GROUP}/{k}")
              for k in [*specs, "year", *coords]}
    _write_coord(root, prefix + "year", "year", years)
    for dim, names, _ in layered.values():
        _write_coord(root, prefix + dim, dim, np.asarray(names, dtype=str))
    for name, (dtype, at) in specs.items():
        if name in layered:
            dim, names, along = layered[name]
            shape, chunks = (len(years), len(names), ny, nx), (1, along, cell_chunk, cell_chunk)
            dims = ["year", dim, "y", "x"]
        else:
            shape, chunks, dims = (len(years), ny, nx), (1, cell_chunk, cell_chunk), ["year", "y", "x"]
        integer = np.dtype(dtype).kind in "iu"
        root.create_array(prefix + name, shape=shape, chunks=chunks, dtype=dtype,
                          fill_value=0 if integer else np.nan, dimension_names=dims,
                          attributes={**at, **attrs}, compressors=zarr.codecs.ZstdCodec(level=1))
    return staged


def cell_targets(staged: dict[str, str | Path], pixel_area_ha: float) -> dict[str, str | Path | float]:
    """The land pass's ``cells`` argument from :func:`stage_analysis_esv_arrays`' staged arrays: the
    data arrays by short name (not the coordinates) and ``pixel_area_ha`` (ha)."""
    data = (ESV, ESV_PIXELS, ESV_DENSITY, ESV_GROUP, CLASS_PIXELS)
    out: dict[str, str | Path | float] = {Path(name).name: path for name, path in staged.items()
                                          if Path(name).name in data}
    return out | {"pixel_area_ha": float(pixel_area_ha)}


def read_analysis_year(store: Store, year_index: int,
                       names: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One year of a store's analysis grid as NumPy arrays: ``analysis/esv_density`` (CNY/ha/yr)
    of the ``year_index``-th year and the drivers ``names`` (each in its own units), decoded as
    :func:`ecodask.io.store.open_store` decodes them (NaN = no data)."""
    from ecodask.io.store import open_store

    _, ana = open_store(store)
    return ana[ESV_DENSITY].isel(year=year_index).values, {n: ana[n].values for n in names}


def read_analysis_esv_year(store: Store, year_index: int) -> tuple[np.ndarray, np.ndarray]:
    """One year's ``analysis/esv`` (CNY/yr per cell, NaN without a valued pixel) and
    ``analysis/esv_pixels`` (valued pixels per cell) as NumPy arrays."""
    from ecodask.io.store import open_store

    _, ana = open_store(store)
    return ana[ESV].isel(year=year_index).values, ana[ESV_PIXELS].isel(year=year_index).values


#: The hot-spot arrays of the analysis grid.
HOTSPOT_ARRAYS = (ESV_GI_Z, ESV_HOTSPOT)


def stage_analysis_hotspots(store: Store, ana: xr.Dataset) -> dict[str, str | Path]:
    """Create empty ``analysis/esv_gi_z`` (year, y, x) float32 Getis-Ord Gi* z of the ESV density
    (dimensionless, NaN = no data) and ``analysis/esv_hotspot`` (year, y, x) int8 classes (±3/±2/±1
    hot/cold spot at 99/95/90 %, 0 not significant, -128 no data) under staging names, one chunk
    row per year so that each year's slice is written on its own (:func:`write_hotspot_year`);
    return the Zarr array paths by final name (``analysis/<name>``). :func:`commit` renames them into
    place, :func:`discard` removes them."""
    names = [f"{ANALYSIS_GROUP}/{name}" for name in HOTSPOT_ARRAYS]
    _clear_staged(store, names)
    where, prefix = _where(store)
    n_t, ny, nx = ana.sizes["year"], ana.sizes["y"], ana.sizes["x"]
    chunks = (1, min(ny, 2048), min(nx, 2048))
    attrs = {"grid_mapping": "spatial_ref"} if "spatial_ref" in ana.coords else {}
    ds = xr.Dataset(
        {prefix + ESV_GI_Z: (("year", "y", "x"), da.empty((n_t, ny, nx), chunks=chunks, dtype=np.float32),
                              {"long_name": "Getis-Ord Gi* z-score of ESV density (binary queen weights with "
                               "self)", "units": "1", **attrs}),
         prefix + ESV_HOTSPOT: (("year", "y", "x"), da.empty((n_t, ny, nx), chunks=chunks, dtype=np.int8),
                                 {"long_name": "ESV hot (+) / cold (-) spot at 99/95/90 % (3/2/1), 0 not "
                                  "significant", "flag_values": [-3, -2, -1, 0, 1, 2, 3], **attrs})},
        coords={"year": ana["year"], "y": ana["y"], "x": ana["x"]}, attrs=dict(ana.attrs))
    if "spatial_ref" in ana.coords:
        ds = ds.assign_coords(spatial_ref=ana["spatial_ref"])
    # Metadata only: the dask arrays are never computed, each year's slice is written by its task.
    ds.to_zarr(where, group=ANALYSIS_GROUP, mode="a", zarr_format=3, consolidated=False, compute=False,
               encoding={prefix + ESV_HOTSPOT: {"_FillValue": -128, "chunks": chunks},
                         prefix + ESV_GI_Z: {"_FillValue": np.nan, "chunks": chunks}})
    return {name: staged_path(store, name) for name in names}


def write_hotspot_year(staged: dict[str, str | Path], year_index: int, gi_z: np.ndarray,
                       classes: np.ndarray) -> None:
    """Write one year's Gi* z (as float32) and hot-spot classes (int8) into the arrays of
    :func:`stage_analysis_hotspots` (a whole year slice: chunks of other years are not touched)."""
    z, c = (staged[f"{ANALYSIS_GROUP}/{name}"] for name in (ESV_GI_Z, ESV_HOTSPOT))
    zarr.open_array(z, mode="r+")[year_index] = np.asarray(gi_z, dtype=np.float32)
    zarr.open_array(c, mode="r+")[year_index] = np.asarray(classes, dtype=np.int8)
