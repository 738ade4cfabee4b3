"""Compare two output folders of runs made on the same inputs: ``python -m benchmarks.compare_outputs
OLD NEW`` (e.g. ``make demo`` before and after a change to the code, nothing but the code changed).

Tables (CSV, Parquet) and figures (PNG) must be byte-identical; GeoPackages (which carry write
times) equal as data; every array of the Zarr stores equal, NaN where NaN; ``run.json`` equal but
for the timings and the folder each run was in. Prints one line per difference and exits 1 if
there is any, else prints what it compared and exits 0.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyogrio
import zarr

TIMINGS = ("started", "finished", "stage_seconds")


def _arrays(group: zarr.Group, prefix: str = "") -> dict[str, zarr.Array]:
    out: dict[str, zarr.Array] = {}
    for name, member in group.members():
        if isinstance(member, zarr.Group):
            out |= _arrays(member, f"{prefix}{name}/")
        else:
            out[prefix + name] = member
    return out


def _record(path: Path, root: Path) -> object:
    record = {k: v for k, v in json.loads(path.read_text(encoding="utf-8")).items() if k not in TIMINGS}
    return json.loads(json.dumps(record).replace(str(root.parent), "<run>").replace(str(root), "<out>"))


def _differing_keys(a: dict, b: dict, prefix: str = "", depth: int = 2) -> list[str]:
    """Dotted keys (``depth`` levels) whose values differ between two records."""
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if va == vb:
            continue
        if depth > 1 and isinstance(va, dict) and isinstance(vb, dict):
            out += _differing_keys(va, vb, f"{prefix}{key}.", depth - 1)
        else:
            out.append(prefix + key)
    return out


def compare(old: Path, new: Path) -> list[str]:
    """The differences between the output folders ``old`` and ``new`` (empty: the same)."""
    diffs: list[str] = []
    files = {p.relative_to(old).as_posix() for p in old.rglob("*") if p.is_file()}
    files_new = {p.relative_to(new).as_posix() for p in new.rglob("*") if p.is_file()}
    # The state (keys, paths, the lock) and the layers (read through store.zarr) are not compared.
    outside_store = {f for f in files | files_new
                     if not f.startswith(("store.zarr/", ".ecodask/", "stages/"))}
    for rel in sorted(outside_store - (files & files_new)):
        diffs.append(f"{rel}: only in {'old' if rel in files else 'new'}")
    compared = 0
    for rel in sorted(outside_store & files & files_new):
        a, b = old / rel, new / rel
        if rel.endswith(".gpkg"):
            same = all(pyogrio.read_dataframe(a, layer=lyr).equals(pyogrio.read_dataframe(b, layer=lyr))
                       for lyr, _ in pyogrio.list_layers(a))
        elif rel == "run.json":
            ra, rb = _record(a, old), _record(b, new)
            same = ra == rb
            if not same:  # say where: a new configuration key is not a changed result
                diffs.append(f"run.json: differs in {', '.join(_differing_keys(ra, rb))}")
                compared += 1
                continue
        elif rel == "report.html":
            continue  # the report embeds run.json's timings; manifests hold keys of the paths
        else:
            same = a.read_bytes() == b.read_bytes()
        compared += 1
        if not same:
            diffs.append(f"{rel}: differs")
    za = _arrays(zarr.open_group(old / "store.zarr", mode="r"))
    zb = _arrays(zarr.open_group(new / "store.zarr", mode="r"))
    for name in sorted(set(za) ^ set(zb)):
        diffs.append(f"store.zarr/{name}: only in {'old' if name in za else 'new'}")
    for name in sorted(set(za) & set(zb)):
        x, y = za[name][...], zb[name][...]
        if x.dtype != y.dtype or not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
            diffs.append(f"store.zarr/{name}: values differ")
    if not diffs:
        print(f"same: {compared} files and {len(za)} store arrays ({old} vs {new})")
    return diffs


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    diffs = compare(Path(argv[0]).resolve(), Path(argv[1]).resolve())
    for line in diffs:
        print(line)
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
