"""County (zone) polygons: read, check, reproject and number them."""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from ecodask.errors import InputError, InputWarning, Problem, problem


def _polygonal(geom: BaseGeometry | None) -> BaseGeometry | None:
    """The polygonal part of a geometry (collections from GIS exports keep their polygons)."""
    if geom is None or geom.is_empty:
        return None
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    polys = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(polys) if polys else None


def read_zones(path: str | Path, id_field: str, name_field: str | None, crs: object,
               layer: str | None = None) -> gpd.GeoDataFrame:
    """Zones from a vector file (``layer`` of it, default the first), in ``crs``, numbered 1..n in
    order of their id field.

    Columns: ``zone`` (raster value, 1..n), ``zone_id``, ``zone_name``, ``area_ha`` (polygon area
    in the equal-area ``crs``, ha), ``geometry``; without a ``name_field`` the names are the ids.
    Raises :class:`InputError` naming the file, field and values for a missing CRS, missing or
    duplicated ids, missing names or non-polygon geometry.
    """
    try:
        gdf = gpd.read_file(path, layer=layer)
    except Exception as exc:  # noqa: BLE001 - any driver error is an unreadable file
        raise InputError([problem(path, "", None, f"cannot read as vector: {exc}")]) from None
    problems: list[Problem] = []
    if gdf.crs is None:
        problems.append(problem(path, "crs", None, "the file has no CRS"))
    ids = gdf[id_field]
    if ids.isna().any():
        rows = np.flatnonzero(ids.isna().to_numpy())[:10].tolist()
        problems.append(problem(path, id_field, None, f"missing id in rows {rows}"))
    dup = ids[ids.duplicated(keep=False) & ids.notna()]
    if len(dup):
        problems.append(problem(path, id_field, sorted(set(dup.tolist()))[:10], "duplicated ids"))
    names = gdf[name_field] if name_field is not None else ids.astype(str)  # no names: the ids
    if names.isna().any():
        bad = ids[names.isna()].tolist()[:10]
        problems.append(problem(path, name_field, None, f"missing name for ids {bad}"))
    gdf = gdf.set_geometry(gdf.geometry.apply(_polygonal))
    geom_ok = gdf.geometry.notna() & ~gdf.geometry.is_empty
    if not geom_ok.all():
        bad = ids[~geom_ok].tolist()[:10]
        problems.append(problem(path, "geometry", bad, "ids with empty geometry or no polygon in it"))
    if len(gdf) == 0:
        problems.append(problem(path, "", 0, "no zones in the file"))
    if problems:
        raise InputError(problems)
    gdf = gdf.to_crs(crs)
    out = gpd.GeoDataFrame(
        {
            "zone_id": ids.to_numpy(),
            "zone_name": names.astype(str).to_numpy(),
        },
        geometry=_repaired(path, id_field, ids, gdf.geometry).to_numpy(),
        crs=gdf.crs,
    )
    out = out.sort_values("zone_id", kind="stable").reset_index(drop=True)
    out.insert(0, "zone", np.arange(1, len(out) + 1, dtype=np.int64))
    out.insert(3, "area_ha", out.geometry.area / 10_000.0)
    return out


def _repaired(path: str | Path, id_field: str, ids: pd.Series, geometry: gpd.GeoSeries) -> gpd.GeoSeries:
    """``geometry`` with invalid polygons (self-intersecting rings, bow ties) made valid, and an
    :class:`InputWarning` naming the file, the ids and how the area changed (ha, in the run's
    equal-area CRS: the area a zone is valued by)."""
    bad = ~geometry.is_valid.to_numpy()
    if not bad.any():
        return geometry
    fixed = geometry.make_valid()
    before, after = geometry[bad].area.to_numpy() / 1e4, fixed[bad].area.to_numpy() / 1e4
    shown = ", ".join(f"{i}: {b:.6g} -> {a:.6g} ha" for i, b, a in
                      zip(ids[bad].tolist()[:10], before[:10], after[:10], strict=True))
    more = f" and {int(bad.sum()) - 10} more" if bad.sum() > 10 else ""
    warnings.warn(f"{path}: geometry: {int(bad.sum())} invalid (self-intersecting) polygons repaired; "
                  f"{id_field} and area before -> after: {shown}{more}", InputWarning, stacklevel=2)
    return fixed


def zone_table(zones: gpd.GeoDataFrame) -> pd.DataFrame:
    """The zones without geometry: zone, zone_id, zone_name, area_ha."""
    return pd.DataFrame(zones.drop(columns="geometry"))
