"""A run's store as layers: one Zarr group per stage, at a prefix named by the stage's key, in
the output folder or in a bucket alike.

Each stage's chunk tasks write its arrays straight into a Zarr v3 group of its own, a **layer**,
from whichever worker runs them (with a bucket output, no worker needs the flow's disk)::

    <root>/stages/<stage>/<key16>/          a plain Zarr v3 group (zarr, xarray, GDAL read it)
      landcover, zone, analysis/<driver>, ...  the arrays the stage writes, under their final names
      files/tables/..., files/figures/...      the small files the stage wrote (tables, charts)
    <root>/.ecodask/current.json            the run: each stage's key and layer, written last

``<root>`` is the output: a folder, or a bucket's prefix (``s3://bucket/run``). A bucket has no
rename, so nothing is staged and renamed into place: a layer is new for every key, never written
where a reader may be reading. The stage's manifest, written after every chunk is in place, is what
makes the layer part of a run being computed (:mod:`ecodask.run.resume`); the run's pointer
``current.json``, written when every stage has finished, is what makes the run the output's:
readers resolve it (:func:`committed`), and until it is replaced they read the previous run, whole,
whatever a later run has written or left half-written beside it. In a bucket the pointer is one
PUT; in a folder it is published with the folder's plain view of the run (``store.zarr``, whose
arrays are links into the layers, the tables, the figures; :mod:`ecodask.io.commit`) in one
journalled step. A stage removes, when it starts, its layers that neither the pointer nor its new
key names; the run, once committed, every layer the pointer does not name (:func:`sweep`).
``key16``: the first 16 hex digits of the stage's key; a stage redone with the same key
(``--force``, or after its layer failed verification) while the committed run names ``<key16>``
writes ``<key16>-r`` beside it, and the next such redo ``<key16>`` again (:func:`writing_url`): the
committed run's layers are never written in place.
"""

from __future__ import annotations

import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

from ecodask.crashpoints import crash_point
from ecodask.io import objstore
from ecodask.io.layout import POINTER, in_chunk_folder

#: Where the layers of an output lie, relative to it.
STAGES = "stages"
KEY_DIGITS = 16
#: The suffix of a layer redone with the same key beside the committed one.
REDO = "-r"
#: The small files of a stage, in its layer.
FILES = "files"

# zarr warns, whenever it lists a layer's members (xarray's appends do), that the stage's own
# ``files/`` folder is no Zarr node: it is not meant to be one. Only that warning is silenced.
warnings.filterwarnings("ignore", message=f"Object at {FILES} is not recognized as a component of a Zarr",
                        category=UserWarning)


@dataclass(frozen=True)
class Layers:
    """The store as a stage sees it: ``read``, the layers of the stages it builds on (ingest's
    first, in run order), and ``write``, its own layer (None for a reader); all URLs of a bucket, or
    all paths of a folder."""

    read: tuple[str, ...]
    write: str | None = None

    def __post_init__(self) -> None:
        every = [*self.read, *([self.write] if self.write else [])]
        if len({objstore.is_remote(str(u)) for u in every}) > 1:
            raise ValueError(f"layers are all in a bucket or all in a folder, not {every}")

    @property
    def base(self) -> str:
        """The ingest stage's layer (the land cover, the zones and the drivers)."""
        return self.read[0] if self.read else str(self.write)


def layer_url(root: str, stage: str, key: str, redo: bool = False) -> str:
    """The layer of ``stage`` with ``key`` under the output ``root`` (``redo``: the one
    beside it, written when the committed run names the first)."""
    return objstore.join(root, STAGES, stage, key[:KEY_DIGITS] + (REDO if redo else ""))


def writing_url(root: str, stage: str, key: str) -> str:
    """The layer a stage run now with ``key`` writes: ``<key16>``, unless the committed run
    names that very layer (the same key, redone), then ``<key16>-r`` beside it, so that readers of
    the committed run keep reading it whole until the next commit."""
    return _beside(root, stage, key, (committed_layers(root) or {}).get(stage))


def _beside(root: str, stage: str, key: str, kept: str | None) -> str:
    """:func:`writing_url` given the committed run's layer of ``stage`` (``kept``, or None)."""
    first = layer_url(root, stage, key)
    return layer_url(root, stage, key, redo=True) if kept == first else first


def stage_prefix(root: str, stage: str) -> str:
    """Every layer of ``stage`` under ``root``, whatever its key."""
    return objstore.join(root, STAGES, stage)


def location(root: str | Path, *names: str) -> str | Path:
    """``names`` under a store's folder or a layer's URL (joined with ``/`` for a URL)."""
    if objstore.is_remote(str(root)):
        return objstore.join(str(root), *names)
    return Path(root).joinpath(*names)


def _remove_layers(prefix: str, keep: str | None) -> None:
    """Remove every layer under the stage's ``prefix`` but the one named ``keep``."""
    if objstore.is_remote(prefix):
        objstore.remove_tree(prefix, keep=keep)
        return
    folder = Path(prefix)
    if folder.is_dir():
        for layer in folder.iterdir():
            if layer.name == keep:
                continue
            if layer.is_dir() and not layer.is_symlink():
                shutil.rmtree(layer, ignore_errors=True)
            else:
                layer.unlink()


def new_layer(root: str, stage: str, key: str) -> str:
    """Remove every layer of ``stage`` under ``root`` but the committed run's (another key's, or
    what a killed run left half-written) and create the stage's empty layer, :func:`writing_url`
    (never the committed one); return its URL or path."""
    import zarr

    kept = (committed_layers(root) or {}).get(stage)  # the pointer, read once
    url = _beside(root, stage, key, kept)
    _remove_layers(stage_prefix(root, stage), name(kept) if kept else None)
    crash_point("layer:swept")
    zarr.open_group(url, mode="w", zarr_format=3)
    return url


def consolidate(url: str) -> None:
    """Record the metadata of every group and array of the layer at ``url`` in its root
    ``zarr.json`` (Zarr's consolidated metadata), so that a reader opens the layer without a LIST
    or a GET per array and group (a finished run's five layers: 123 GETs and 2 LISTs without it, 50
    GETs with it; BENCHMARKS.md). Called once every array of the stage is written, before its
    manifest records the layer's files; a layer without it is read as before."""
    import zarr

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        zarr.consolidate_metadata(url)


def pointer(root: str) -> dict | None:
    """The run's pointer at the output ``root`` (``{"stages": [{"stage", "key", "layer"}, ...]}``, in run
    order, layers relative to ``root``), or None before a run has been committed there."""
    doc = objstore.read_json(objstore.join(root, POINTER))
    return doc if isinstance(doc, dict) and isinstance(doc.get("stages"), list) else None


def committed_layers(root: str) -> dict[str, str] | None:
    """The committed run's layer URL of each stage, by stage, or None."""
    doc = pointer(root)
    return None if doc is None else {s["stage"]: objstore.join(root, s["layer"]) for s in doc["stages"]}


def committed(root: str) -> Layers | None:
    """The committed run's store at ``root`` as a reader opens it
    (:func:`ecodask.io.store.open_store`), or None."""
    found = committed_layers(root)
    return None if found is None else Layers(tuple(found.values()))


def is_chunk(rel: str) -> bool:
    """Whether ``rel`` (relative to a layer) is a chunk of one of its Zarr arrays."""
    parts = rel.split("/")
    return parts[0] != FILES and in_chunk_folder(parts)


def name(url: str) -> str:
    """A layer's name under its stage's prefix: ``<key16>`` or ``<key16>-r``."""
    return url.rstrip("/").rsplit("/", 1)[1]


def pointer_doc(stages: list[tuple[str, str, str]]) -> dict:
    """The pointer naming the run whose stages have these ``(stage, key, layer URL or path)``."""
    return {"stages": [{"stage": s, "key": k, "layer": f"{STAGES}/{s}/{name(u)}"} for s, k, u in stages]}


def sweep(root: str, stages: list[tuple[str, str, str]]) -> None:
    """Once the run whose stages have these ``(stage, key, layer)`` is committed: remove every
    layer of those stages it does not name."""
    for stage, _, url in stages:
        _remove_layers(stage_prefix(root, stage), name(url))


def commit(root: str, stages: list[tuple[str, str, str]]) -> None:
    """Make the run whose stages have these ``(stage, key, layer URL)`` the bucket's: its pointer,
    one PUT (a reader gets the previous one or this one, whole); then every layer it does not name
    goes. (A folder's pointer is published with its plain view: :mod:`ecodask.run.transaction`.)"""
    objstore.put_json(pointer_doc(stages), objstore.join(root, POINTER))
    sweep(root, stages)
