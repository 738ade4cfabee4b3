"""What a driver read onto the analysis grid costs, chunk by chunk: bytes and seconds per driver.

The synthetic region of ``benchmarks.remote_run`` (``make demo``'s generator; a DEM in UTM 49N,
NDVI at 30 m on the run's grid, precipitation and population at 1 km), its drivers read window by
window as ingest reads them (``ecodask.io.rasters.WarpedRaster``, mean onto the analysis grid), one
window after the other, from local files: for each driver the bytes its windows read (through a
counting opener that this benchmark hands ``rasterio.open`` in its own process) and the seconds;
then ingest of the whole region on Dask's threads (2), into a fresh folder.

    python -m benchmarks.driver_windows [--km 61.44] [--years 3] [--chunk 256] [--repeats 2]

To compare code versions, run the same command from another checkout (or with its ``ecodask`` first
on ``PYTHONPATH``); the figures depend on the code, not on this script.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import time
from pathlib import Path

import numpy as np

from benchmarks.remote_run import region


def _counting_open(counter: dict[str, int]):  # noqa: ANN202
    """``rasterio.open`` with a local-file opener that adds the bytes read to ``counter["bytes"]``."""
    import fsspec.implementations.local
    import rasterio

    class Counting(fsspec.implementations.local.LocalFileSystem):
        def _open(self, path, mode="rb", **kw):  # noqa: ANN001, ANN202
            f = super()._open(path, mode, **kw)
            read = f.read

            def counted(n: int = -1) -> bytes:
                data = read(n)
                counter["bytes"] += len(data)
                return data

            f.read = counted
            return f

    fs, plain = Counting(), rasterio.open

    def opened(path, *args, **kwargs):  # noqa: ANN001, ANN202
        if isinstance(path, (str, Path)) and os.path.exists(str(path)):
            kwargs.setdefault("opener", fs)
        return plain(str(path), *args, **kwargs)

    return opened


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--km", type=float, default=61.44, help="side of the square region, km (30 m pixels)")
    ap.add_argument("--years", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=256, help="chunk side, px")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("bench-output"))
    args = ap.parse_args(argv)

    import dask
    from rasterio.enums import Resampling

    from ecodask.io import rasters
    from ecodask.io.store import ingest
    from ecodask.run.config import load_config
    from ecodask.run.inputs import check_inputs

    out = (args.out / "driver_windows").resolve()
    out.mkdir(parents=True, exist_ok=True)
    config = region(args.out.resolve() / "remote_run", args.km, args.years)
    prep = check_inputs(load_config(config))
    prep = dataclasses.replace(prep, grid=dataclasses.replace(prep.grid, chunk_size=args.chunk))
    agrid = prep.grid.analysis
    c = agrid.chunk_size
    print(f"load average {os.getloadavg()[0]:.1f} at the start; {args.chunk}-px chunks = {c} x {c} cells")
    print("| driver | file MB | windows | MB read | seconds (each repeat) |")
    print("|---|---:|---:|---:|---|")
    counter = {"bytes": 0}
    plain = rasters.rasterio.open
    for name, (path, kind, _) in sorted(prep.drivers.items()):
        resampling = Resampling.average if kind == "continuous" else Resampling.mode
        src = rasters.WarpedRaster(str(path), agrid, np.dtype(np.float32), np.nan, resampling)
        windows = [(slice(r, r + c), slice(q, q + c)) for r in range(0, agrid.height, c)
                   for q in range(0, agrid.width, c)]
        counter["bytes"] = 0
        rasters.rasterio.open = _counting_open(counter)
        try:
            for w in windows:
                src[w]
        finally:
            rasters.rasterio.open = plain
        seconds = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            for w in windows:
                src[w]
            seconds.append(time.perf_counter() - t0)
        print(f"| {name} | {Path(path).stat().st_size / 1e6:.2f} | {len(windows)} | "
              f"{counter['bytes'] / 1e6:.1f} | {', '.join(f'{s:.2f}' for s in seconds)} |")
    for i in range(args.repeats):
        folder = out / "ingest"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        with dask.config.set(scheduler="threads", num_workers=2):
            t0 = time.perf_counter()
            ingest(prep, folder)
            print(f"ingest of the region, run {i + 1}: {time.perf_counter() - t0:.2f} s")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
