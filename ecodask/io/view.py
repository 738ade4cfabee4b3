"""A folder's plain view of its run's store: one Zarr v3 group whose arrays are links into the layers.

Each stage of a run writes its arrays into a layer of its own (:mod:`ecodask.io.layers`). People
and tools that open a fixed path (QGIS through GDAL's Zarr driver, ``xr.open_zarr``) read
``<output>/store.zarr``, which :func:`link_store` makes: a folder with the group metadata of the
ingest stage's layer (the grid, the zones and their attributes) and, for every array of every
layer, a relative symbolic link to the array's folder in its layer; a group (``analysis``) is a
folder of its own with its links. The layers come in run order: where two hold an array of the
same name (the coordinates each layer keeps beside its arrays), the first one's is linked, as
:func:`ecodask.io.store.open_store` reads layers. The view holds no chunk of its own: made in
milliseconds, and published with the run's pointer (:mod:`ecodask.io.commit`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ecodask.io.atomic import write_json
from ecodask.io.layers import FILES


def _node(folder: Path) -> dict | None:
    """The Zarr v3 metadata of the node in ``folder``, or None where there is none."""
    try:
        meta = json.loads((folder / "zarr.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def link_store(layers: list[Path], dest: Path, published: Path | None = None) -> int:
    """Make ``dest`` (new) the view of the store made of the ``layers`` (folders, ingest's first),
    its links relative to ``published``, where ``dest`` will be renamed to (``dest`` itself by
    default); return the number of arrays linked."""
    if not layers:
        raise ValueError("a store view needs at least the ingest stage's layer")
    return _link_group(layers, "", dest, published or dest)


def _link_group(layers: list[Path], rel: str, dest: Path, seen_from: Path) -> int:
    groups = [layer / rel if rel else layer for layer in layers]
    metas = [m for g in groups if (m := _node(g)) is not None and m.get("node_type") == "group"]
    if not metas:
        return 0
    dest.mkdir(parents=True)
    meta = {k: v for k, v in metas[0].items() if k != "consolidated_metadata"}
    write_json(meta, dest / "zarr.json")
    n = 0
    for group in groups:
        if not group.is_dir():
            continue
        for child in sorted(group.iterdir(), key=lambda p: p.name):
            if child.name == "zarr.json" or (not rel and child.name == FILES):
                continue
            if (dest / child.name).exists() or (dest / child.name).is_symlink():
                continue  # an earlier layer's (the coordinates)
            node = _node(child)
            kind = node.get("node_type") if node else None
            if kind == "array":
                (dest / child.name).symlink_to(os.path.relpath(child, seen_from), target_is_directory=True)
                n += 1
            elif kind == "group":
                n += _link_group(layers, f"{rel}/{child.name}" if rel else child.name, dest / child.name,
                                 seen_from / child.name)
    return n
