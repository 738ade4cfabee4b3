"""One benchmark case in its own process; prints one JSON line: seconds, pixels, peak_rss_mb.

    python -m benchmarks.case {ingest|io_floor|class_areas} CONFIG CHUNK

Runs on Dask's threaded scheduler with 2 workers (the machine's cores) so that the process's
max RSS is the whole peak memory. Stores go to <output>-chunkN so chunk sizes do not collide.
The clock starts after the modules a run's process has imported by then (zarr among them: since
``import ecodask`` no longer imports zarr, it would otherwise land in the first write, ~0.15 s).
"""

from __future__ import annotations

import json
import resource
import sys
import time

import dask


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), MB. Unlike ru_maxrss it is not inherited
    from the parent that forked the process."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(stage: str, config: str, chunk: int) -> None:
    import zarr  # noqa: F401 - a run's process has it imported before any stage (see the docstring)

    from ecodask.chunked.class_counts import class_areas
    from ecodask.io.catalogs import load_class_scheme
    from ecodask.io.layout import RunFolder
    from ecodask.io.store import ingest, open_store, store_zones
    from ecodask.run.config import load_config
    from ecodask.run.inputs import check_inputs

    cfg = load_config(config)
    grid = cfg.grid.model_copy(update={"chunk_size": chunk})
    out = cfg.output.with_name(f"{cfg.output.name}-chunk{chunk}")
    cfg = cfg.model_copy(update={"grid": grid, "output": out})
    store = RunFolder(cfg.output).store
    with dask.config.set(scheduler="threads", num_workers=2):
        if stage == "ingest":
            prep = check_inputs(cfg)
            t0 = time.perf_counter()
            ingest(prep, cfg.output)
            seconds = time.perf_counter() - t0
            pix, _ = open_store(store)
        else:
            pix, _ = open_store(store)
            zone, lc = pix["zone"].data, pix["landcover"].data
            t0 = time.perf_counter()
            if stage == "io_floor":  # read every chunk once: the floor of any pass over the store
                dask.compute(zone.sum(dtype="u8"), lc.sum(dtype="u8"))
            else:
                class_areas(zone, lc, [int(y) for y in pix["year"].values], store_zones(pix),
                            load_class_scheme(cfg.landcover.scheme), float(pix.attrs["pixel_area_ha"]))
            seconds = time.perf_counter() - t0
    pixels = int(pix.sizes["y"] * pix.sizes["x"] * pix.sizes["year"])
    peak = _peak_rss_mb()
    print(json.dumps({"stage": stage, "seconds": seconds, "pixels": pixels, "peak_rss_mb": peak}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
