"""What a run's output transaction costs, on a folder laid out as a run's output with many chunks:

    python -m benchmarks.run --suite transaction [--files 20000] [--size-kib 256] [--out bench-output]

- the checksums a finishing stage records for what it wrote (:func:`ecodask.run.verify.written`,
  a thread per core), against one thread;
- a rerun's read-back before it skips a stage: sizes, tables, and the chunks' content for a 1 %
  sample (the default) or all (``ecodask run --verify``);
- the commit of a folder: the store's view (:func:`ecodask.io.view.link_store`: a link per array
  into the stages' layers, whatever their chunks) and its publication with the run's tables
  (:func:`ecodask.io.commit.publish`: the journalled renames, then removing the previous entries).

The chunk files hold random bytes (incompressible, like the zstd chunks of a real store) and are
read from the page cache right after being written: the figures are the CPU's hashing rate, not
a cold disk's (a cold read runs at the disk's rate, which the run's own pass also pays). Prints a
Markdown table and the projection to a store of the given size, and writes results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

from benchmarks.env import code_state, machine, timed


def _make_folder(root: Path, files: int, size: int) -> Path:
    """``root`` laid out as a run's output being committed: a stage's layer holding a 3-D Zarr array
    with ``files`` chunks of ``size`` random bytes, and the work folder with 20 tables and a run
    record; return the layer."""
    from ecodask.io import commit, layers

    shutil.rmtree(root, ignore_errors=True)
    layer = root / layers.STAGES / "transitions_esv" / "0123456789abcdef"
    arr = layer / "esv"
    arr.mkdir(parents=True)
    (layer / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "group"}))
    side = int(files ** 0.5) + 1
    (arr / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "array",
                                               "shape": [1, side * 4096, side * 4096]}))
    block = os.urandom(size + 4096)
    for i in range(files):
        path = arr / "c" / "0" / str(i // side) / str(i % side)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(block[i % 4096: i % 4096 + size])
    work = commit.work_folder(root)
    (work / "tables").mkdir(parents=True)
    for i in range(20):
        (work / "tables" / f"t{i}.parquet").write_bytes(os.urandom(200_000))
    (work / "run.json").write_text("{}\n")
    return layer


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--size-kib", type=int, default=256)
    ap.add_argument("--out", type=Path, default=Path("bench-output"))
    ap.add_argument("--project-gb", type=float, default=390.0,
                    help="store size to project to (the 39-year national archive's ESV grids, GB)")
    a = ap.parse_args(argv)

    from ecodask.io import commit, layers, view
    from ecodask.io.provenance import file_checksum
    from ecodask.run import verify

    root = a.out / "transaction"
    size = a.size_kib * 1024
    env = machine(["zarr"])
    layer, t_make = timed(lambda: _make_folder(root, a.files, size))
    os.sync()  # the written chunks on disk, no write-back competing with what is measured
    gb = a.files * size / 1e9
    rels = sorted(str(p.relative_to(layer)) for p in layer.rglob("*") if p.is_file())[:2000]
    _, t_one = timed(lambda: [file_checksum(layer / r) for r in rels])
    one_gbs = len(rels) * size / 1e9 / t_one
    files, t_hash = timed(lambda: verify.written(layer, {}))
    # As the stage's manifest records them: relative to the output folder, through the layer.
    at = layer.relative_to(root).as_posix()
    owned = verify.owners([("transitions_esv", {f"{at}/{rel}": rec for rel, rec in files.items()})])
    diffs, t_sample = timed(lambda: verify.changes(root, "transitions_esv", owned, "sample"))
    diffs_all, t_all = timed(lambda: verify.changes(root, "transitions_esv", owned, "all"))
    assert diffs == diffs_all == []
    work = commit.work_folder(root)
    _, t_clone = timed(lambda: view.link_store([layer], work / "store.zarr", root / "store.zarr"))
    _, t_publish = timed(lambda: commit.publish(root))
    assert not work.exists() and (root / "store.zarr" / "esv" / "zarr.json").is_file()
    # The next commit removes the layers its pointer does not name: this one, replaced.
    _, t_sweep = timed(lambda: layers.sweep(str(root), [("transitions_esv", "f" * 64, str(layer) + "-new")]))
    assert not layer.exists()
    load_end = os.getloadavg()
    rows = [
        ("checksums of what a stage wrote (a thread per core)", t_hash, f"{gb / t_hash:.2f} GB/s"),
        ("the same, one thread (2,000 chunks)", t_one * len(files) / len(rels), f"{one_gbs:.2f} GB/s"),
        ("rerun read-back, default (sizes, tables, 1 % of chunks)", t_sample,
         f"{len(files) / t_sample:,.0f} files/s"),
        ("rerun read-back, --verify (every chunk)", t_all, f"{gb / t_all:.2f} GB/s"),
        ("the store's view (a link per array)", t_clone, f"{len(files) / t_clone:,.0f} chunk files/s"),
        ("publication (the journalled renames of the view, the tables, the pointer)", t_publish,
         f"{len(files) / t_publish:,.0f} chunk files/s"),
        ("a replaced layer removed, after the next commit", t_sweep, f"{len(files) / t_sweep:,.0f} files/s"),
    ]
    print(f"\n{a.files:,} chunk files of {a.size_kib} KiB ({gb:.2f} GB) + 20 tables; load average "
          f"{env['load_avg_at_start'][0]:.2f} at start, {load_end[0]:.2f} at end; {env['cores']} cores, "
          f"{env['cpu']}\n")
    print("| step | s | rate |\n|---|---:|---:|")
    for name, t, rate in rows:
        print(f"| {name} | {t:.2f} | {rate} |" if t >= 0.01 else f"| {name} | {t:.4f} | {rate} |")
    scale = a.project_gb / gb
    files_per_gb = a.files / gb
    print(f"\nProjected to {a.project_gb:g} GB of chunks at {a.size_kib} KiB each "
          f"({a.project_gb * files_per_gb:,.0f} files), this machine's rates: checksums "
          f"{t_hash * scale / 60:.1f} min, default read-back {t_sample * scale:.0f} s, --verify "
          f"{t_all * scale / 60:.1f} min, the store's view {t_clone:.3f} s (per array, not per chunk), "
          f"a replaced layer removed {t_sweep * scale:.0f} s, publication "
          f"{t_publish * scale:.0f} s.")
    results = {"machine": env, "code": code_state(), "files": a.files, "size_kib": a.size_kib, "gb": gb,
               "make_s": t_make, "load_avg_end": load_end,
               "steps": {name: {"s": t, "rate": rate} for name, t, rate in rows}}
    (a.out / "transaction-results.json").write_text(json.dumps(results, indent=2, default=str))
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
