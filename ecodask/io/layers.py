"""A run's store in a bucket: one Zarr group per stage, at a prefix named by the stage's key.

With a remote output (``output: s3://bucket/run``) the chunk tasks write the store's arrays
straight to the bucket, from whichever worker runs them; no worker needs the flow's disk. A bucket
has no rename, so a stage cannot stage its arrays and rename them into place as it does on disk
(:mod:`ecodask.io.grids`). Each stage writes its arrays into a Zarr v3 group of its own instead, a
**layer**::

    <output>/stages/<stage>/<key16>/          a plain Zarr v3 group (zarr, xarray, GDAL read it)
      landcover, zone, analysis/<driver>, ...  the arrays the stage writes, under their final names

and the stage's manifest, written after every chunk is in the bucket, is what makes the layer part
of the run (:mod:`ecodask.run.resume`): a layer no manifest names is never read, and is removed when
its stage next starts. A reader opens the layers of a run's stages, ingest's first, as one store
(:func:`ecodask.io.store.open_store` of a :class:`Layers`). ``key16``: the first 16 hex digits of
the stage's key, so a stage redone with other inputs never writes where a reader may be reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ecodask.io import objstore

#: Where the layers of a remote output lie, relative to it.
STAGES = "stages"
KEY_DIGITS = 16


@dataclass(frozen=True)
class Layers:
    """The store as a stage of a remote run sees it: ``read``, the URLs of the layers of the stages
    it builds on (ingest's first, in run order), and ``write``, the URL of its own layer."""

    read: tuple[str, ...]
    write: str

    def __post_init__(self) -> None:
        bad = [u for u in (*self.read, self.write) if not objstore.is_remote(u)]
        if bad:
            raise ValueError(f"layers are URLs of a bucket, not {bad}")

    @property
    def base(self) -> str:
        """The ingest stage's layer (the land cover, the zones and the drivers)."""
        return self.read[0] if self.read else self.write


def layer_url(remote: str, stage: str, key: str) -> str:
    """The layer of ``stage`` with ``key`` under the remote output ``remote``."""
    return objstore.join(remote, STAGES, stage, key[:KEY_DIGITS])


def stage_prefix(remote: str, stage: str) -> str:
    """Every layer of ``stage`` under ``remote``, whatever its key."""
    return objstore.join(remote, STAGES, stage)


def location(root: str | Path, *names: str) -> str | Path:
    """``names`` under a store's folder or a layer's URL (joined with ``/`` for a URL)."""
    if objstore.is_remote(str(root)):
        return objstore.join(str(root), *names)
    return Path(root).joinpath(*names)


def new_layer(remote: str, stage: str, key: str) -> str:
    """Remove every layer of ``stage`` under ``remote`` (an earlier key's, or what a killed run of
    this key left half-written) and create the stage's empty layer; return its URL."""
    import zarr

    objstore.remove_tree(stage_prefix(remote, stage))
    url = layer_url(remote, stage, key)
    zarr.open_group(url, mode="w", zarr_format=3)
    return url
