"""Vector writers: a GeoDataFrame as GeoPackage and GeoParquet, each written atomically and
reproducibly (the same data, the same bytes)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd

from ecodask.io.atomic import replacing

#: The time GeoPackages record as their last change: fixed, so that the same data gives the same
#: bytes (GDAL would write the current time into gpkg_contents).
GPKG_TIME = "2000-01-01T00:00:00.000Z"


@contextlib.contextmanager
def reproducible_gpkg() -> Iterator[None]:
    """While the block runs, GeoPackages written through GDAL record :data:`GPKG_TIME`."""
    import pyogrio

    before = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": GPKG_TIME})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": before})


def write_vectors(gdf: gpd.GeoDataFrame, folder: str | Path, name: str) -> dict[str, Path]:
    """Write ``name.gpkg`` (layer ``name``) and ``name.geoparquet`` under ``folder``; return both."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {f"{name}.gpkg": folder / f"{name}.gpkg", f"{name}.geoparquet": folder / f"{name}.geoparquet"}
    for key, path in paths.items():
        with replacing(path, keep_suffix=True) as tmp:  # GDAL picks the format by suffix
            if key.endswith(".gpkg"):
                with reproducible_gpkg():
                    gdf.to_file(tmp, layer=name, driver="GPKG", engine="pyogrio")
            else:
                gdf.to_parquet(tmp, index=False, compression="zstd")
    return paths
