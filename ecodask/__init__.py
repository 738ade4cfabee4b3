"""ecodask: ecosystem service value, land-use transitions and ecological compensation
from multi-year 30 m land-use rasters, on Dask arrays in Zarr stores, orchestrated by Prefect."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ecodask")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = ["__version__"]


def _fast_zarr() -> None:
    """Use zarr's synchronous (fused) codec pipeline: chunks are encoded and decoded in the calling
    thread, so Dask's threads compress in parallel instead of queueing on zarr's one event-loop
    thread (2-3x faster writes of the ESV grid on 2 cores; BENCHMARKS.md). Set per process, so Dask
    worker processes that import ecodask get it too; ``ZARR_CODEC_PIPELINE__PATH`` overrides.

    Set through zarr's own environment variable, so that importing ecodask does not import zarr
    (a command's help stays quick) and worker processes started later inherit it."""
    import os
    import sys

    if "ZARR_CODEC_PIPELINE__PATH" in os.environ:
        return
    path = "zarr.core.codec_pipeline.FusedCodecPipeline"
    os.environ["ZARR_CODEC_PIPELINE__PATH"] = path  # read by zarr's configuration when imported
    if "zarr" in sys.modules:  # imported before ecodask: its configuration is already made
        sys.modules["zarr"].config.set({"codec_pipeline.path": path})


_fast_zarr()
