"""Vector writers: a GeoDataFrame as GeoPackage and GeoParquet, each written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd


def write_vectors(gdf: gpd.GeoDataFrame, folder: str | Path, name: str) -> dict[str, Path]:
    """Write ``name.gpkg`` (layer ``name``) and ``name.geoparquet`` under ``folder``; return both."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {f"{name}.gpkg": folder / f"{name}.gpkg", f"{name}.geoparquet": folder / f"{name}.geoparquet"}
    for key, path in paths.items():
        tmp = path.with_name(f".{path.stem}.partial{path.suffix}")  # GDAL picks the format by suffix
        try:
            tmp.unlink(missing_ok=True)
            if key.endswith(".gpkg"):
                gdf.to_file(tmp, layer=name, driver="GPKG", engine="pyogrio")
            else:
                gdf.to_parquet(tmp, index=False, compression="zstd")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return paths
