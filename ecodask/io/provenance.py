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


def file_checksum(path: str | Path, algorithm: str = "blake2b") -> str:
    """``algorithm:hexdigest`` of a file's bytes (a folder: of its files, in sorted order)."""
    h = hashlib.new(algorithm)
    p = Path(path)
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    for f in files:
        if p.is_dir():
            h.update(str(f.relative_to(p)).encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
    return f"{algorithm}:{h.hexdigest()}"
