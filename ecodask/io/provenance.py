"""What a run records about itself: package versions and input checksums."""

from __future__ import annotations

import hashlib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = ("ecodask", "dask", "distributed", "xarray", "zarr", "numpy", "numba", "pandas",
            "prefect", "rasterio", "pyproj", "geopandas", "pyogrio", "shapely", "pydantic")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a result depends on."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


#: The files that belong to a shapefile besides its ``.shp`` (attributes, index, CRS, encoding,
#: spatial indexes, metadata), lower case.
SHAPEFILE_PARTS = (".dbf", ".shx", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".shp.xml")


def shapefile_parts(shp: Path) -> list[Path]:
    """The files beside a ``.shp`` that are part of it (same stem, any case), sorted by suffix."""
    parts = {f.name[len(shp.stem):].lower(): f for f in shp.parent.glob(f"{shp.stem}.*")
             if f.is_file() and f != shp}
    return [parts[s] for s in SHAPEFILE_PARTS if s in parts]


def file_checksum(path: str | Path, algorithm: str = "blake2b") -> str:
    """``algorithm:hexdigest`` of a file's bytes (a folder: of its files, in sorted order; a
    shapefile: its ``.shp`` and the files that belong to it, :data:`SHAPEFILE_PARTS`, so that an
    edited attribute table changes it)."""
    h = hashlib.new(algorithm)
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file())
    elif p.suffix.lower() == ".shp":
        files = [p, *shapefile_parts(p)]
    else:
        files = [p]
    for f in files:
        if p.is_dir():
            h.update(str(f.relative_to(p)).encode())
        elif f != p:
            h.update(f.name[len(p.stem):].lower().encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
    return f"{algorithm}:{h.hexdigest()}"
