"""ecodask: ecosystem service value, land-use transitions and ecological compensation
from multi-year 30 m land-use rasters, on Dask arrays in Zarr stores, orchestrated by Prefect."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ecodask")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = ["__version__"]
