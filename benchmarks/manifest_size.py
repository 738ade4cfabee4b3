"""The size of a stage manifest at national chunk counts, and what writing and reading it costs:

    python -m benchmarks.run --suite manifest_size [--chunks-a-year 638] [--years 39] [--arrays 6]

A synthetic manifest in the format :func:`ecodask.run.resume.publish` writes (every chunk
file's path, size and BLAKE2b checksum, indented JSON with sorted keys), with the national grid's
chunks at the default 4096 px (638 a year) in each chunked array of a run (30 m land cover and ESV;
the analysis grid's ESV, valued pixels, density and class composition) for every year."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import time
import tracemalloc
from pathlib import Path

from benchmarks.env import code_state
from ecodask.io.atomic import write_json

ARRAYS = ("landcover", "esv", "analysis/esv", "analysis/esv_pixels", "analysis/esv_density",
          "analysis/class_pixels")


#: The stage's layer, as a folder's manifest names it (the paths of its files start with it).
LAYER = "stages/transitions_esv/0123456789abcdef"


def manifest(chunks_a_year: int, years: int, arrays: int) -> dict:
    """A manifest of ``arrays`` x ``years`` x ``chunks_a_year`` chunk files (rows of 29 chunks)."""
    files = {}
    for name in ARRAYS[:arrays]:
        for y in range(years):
            for c in range(chunks_a_year):
                row, col = divmod(c, 29)
                digest = hashlib.blake2b(f"{name}/{y}/{c}".encode()).hexdigest()
                files[f"{LAYER}/{name}/c/{y}/{row}/{col}"] = [262_144 + c, f"blake2b:{digest}"]
    return {"stage": "transitions_esv", "key": "0" * 64, "layer": LAYER, "outputs": {}, "files": files}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks-a-year", type=int, default=638)
    ap.add_argument("--years", type=int, default=39)
    ap.add_argument("--arrays", type=int, default=len(ARRAYS))
    a = ap.parse_args(argv)
    doc = manifest(a.chunks_a_year, a.years, a.arrays)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stage.json"
        t = time.perf_counter()
        write_json(doc, path, sort_keys=True)
        written = time.perf_counter() - t
        size = path.stat().st_size
        del doc
        tracemalloc.start()
        t = time.perf_counter()
        back = json.loads(path.read_text(encoding="utf-8"))
        read = time.perf_counter() - t
        held, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    print(f"commit {code_state()['commit']}; load before {load:.2f}")
    print("\n| chunk files | JSON MB | written s | read s | held once read MB | peak of the read MB |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(f"| {len(back['files']):,} | {size / 1e6:.1f} | {written:.2f} | {read:.2f} | {held / 1e6:.0f} | "
          f"{peak / 1e6:.0f} |")


if __name__ == "__main__":
    main()
