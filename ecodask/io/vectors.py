"""Vector writers: a GeoDataFrame as GeoPackage and GeoParquet, each written atomically."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd

from ecodask.io.atomic import replacing


def write_vectors(gdf: gpd.GeoDataFrame, folder: str | Path, name: str) -> dict[str, Path]:
    """Write ``name.gpkg`` (layer ``name``) and ``name.geoparquet`` under ``folder``; return both."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {f"{name}.gpkg": folder / f"{name}.gpkg", f"{name}.geoparquet": folder / f"{name}.geoparquet"}
    for key, path in paths.items():
        with replacing(path, keep_suffix=True) as tmp:  # GDAL picks the format by suffix
            if key.endswith(".gpkg"):
                gdf.to_file(tmp, layer=name, driver="GPKG", engine="pyogrio")
            else:
                gdf.to_parquet(tmp, index=False, compression="zstd")
    return paths
