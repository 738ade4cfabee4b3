"""Where the time of a pass goes, per 4096² chunk and one thread, on real and on synthetic texture.

    python -m benchmarks.texture_budget [--out bench-output] [--repeats 3]

Takes every (y, x) chunk of the real-texture store (:mod:`benchmarks.wuhan_texture_data`, built if
missing) and, for the synthetic texture, one 4096² tile of the Hubei-30m generator for the same 4
years (``make_terrain`` + ``make_landcover``, seeded (0, 0, 0) as the Hubei-30m tile (0, 0)) with the
zone chunk of the real store's centre, so that only the land cover differs. For each chunk,
single-threaded, the fastest of ``--repeats``:

- ``decode``: zstd-decoding the zone chunk and the 4 land-cover chunks, from bytes encoded in memory
  with the store's codec (zstd, default level), as a read of the store decodes them (the file
  reads themselves are from the page cache, and not timed);
- ``kernel``: ecodask's fused transition + ESV kernel (``kernels.transitions_esv``, 4 pairs, 4 years,
  960 m cells) on the decoded arrays, warm;
- ``counts``: the transition kernel alone (``kernels.transitions.transition_counts``);
- ``encode``: zstd level 1 (the stage's ESV-grid codec) of the chunk's 4 x 4096² float32 ESV grid.

Prints per-chunk milliseconds, single-thread Mpos/s (pixel positions / s), compression ratios, the
mean run along rows (zone and every year equal), and the sum over the store's chunks divided by 2
cores: the stage's time if its tasks were only these pieces and the two threads never waited.
Writes ``<out>/wuhan_texture/budget.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.env import fastest, machine


def synthetic_landcover(years: tuple[int, ...], size: int) -> np.ndarray:
    """The Hubei-30m generator's tile (0, 0) of seed 0, for ``years``: (years, size, size) uint8."""
    from ecodask.synth import make_landcover, make_terrain

    streams = np.random.SeedSequence([0, 0, 0]).spawn(2)
    rng_terrain, rng_lc = (np.random.default_rng(s) for s in streams)
    terrain = make_terrain(rng_terrain, (size, size), 30.0)
    maps, _ = make_landcover(rng_lc, terrain, years, 30.0)
    return np.stack([maps[y] for y in years])


def chunk_budget(zone: np.ndarray, lc: np.ndarray, n_zones: int, repeats: int) -> dict:
    """The four pieces of one chunk (see the module's docstring), seconds, and its texture."""
    from numcodecs import Zstd

    from benchmarks.hubei30m_case import year_pairs
    from ecodask.kernels.transitions import transition_counts
    from ecodask.kernels.transitions_esv import transitions_esv

    store_codec, grid_codec = Zstd(), Zstd(level=1)
    n_years = lc.shape[0]
    pairs = np.asarray(year_pairs(n_years))
    lut = np.full(256, 10, np.uint8)  # codes 0..9 (PLUS uses 1..7, the synthetic CLCD 1..9), unknown 10
    lut[:10] = np.arange(10)
    values = np.full((n_years, 256), np.nan)
    values[:, 1:10] = np.arange(1.0, 10.0) * 1000.0
    enc = [store_codec.encode(zone)] + [store_codec.encode(np.ascontiguousarray(a)) for a in lc]
    t_dec, _ = fastest(lambda: [store_codec.decode(b) for b in enc], repeats)
    transitions_esv(zone, lc, lut, pairs, n_zones, values, 32)  # compiled / loaded outside the clock
    transition_counts(zone, lc, lut, pairs, n_zones)
    t_kernel, res = fastest(lambda: transitions_esv(zone, lc, lut, pairs, n_zones, values, 32), repeats)
    t_counts, _ = fastest(lambda: transition_counts(zone, lc, lut, pairs, n_zones), repeats)
    grid = res[2]
    t_enc, gbytes = fastest(lambda: grid_codec.encode(grid), repeats)
    start = np.ones(zone.shape, bool)
    start[:, 1:] = (zone[:, 1:] != zone[:, :-1]) | (lc[:, :, 1:] != lc[:, :, :-1]).any(axis=0)
    return {"decode_s": t_dec, "kernel_s": t_kernel, "counts_s": t_counts, "encode_s": t_enc,
            "raw_bytes": zone.nbytes + lc.nbytes, "stored_bytes": sum(len(b) for b in enc),
            "lc_ratio": lc.nbytes / sum(len(b) for b in enc[1:]),
            "grid_ratio": grid.nbytes / len(gbytes), "positions": zone.size, "runs": int(start.sum()),
            "zone_pixels": int((zone > 0).sum())}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("bench-output"))
    ap.add_argument("--size", type=int, default=20480, help="the real-texture mosaic's side, px")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)

    import dask

    from benchmarks.hubei30m_case import year_pairs
    from benchmarks.wuhan_texture_data import YEARS, build
    from ecodask.io.layout import RunFolder
    from ecodask.io.store import open_store, store_zones
    from ecodask.run.config import load_config

    cfg = load_config(build(a.out, a.size)["full"])
    pix, _ = open_store(RunFolder(cfg.output).store)
    n_zones = len(store_zones(pix))
    c = cfg.grid.chunk_size
    ny, nx = -(-pix.sizes["y"] // c), -(-pix.sizes["x"] // c)
    info = {"machine": machine(("numpy", "numba", "numcodecs")), "chunk": c, "chunks": ny * nx}
    rows = []
    with dask.config.set(scheduler="synchronous"):
        for i in range(ny):
            for j in range(nx):
                win = {"y": slice(i * c, (i + 1) * c), "x": slice(j * c, (j + 1) * c)}
                zone = np.ascontiguousarray(pix["zone"][win].values)
                lc = np.ascontiguousarray(pix["landcover"][{"year": slice(None), **win}].values)
                rows.append({"data": "real", "chunk": [i, j], **chunk_budget(zone, lc, n_zones, a.repeats)})
                print(f"real chunk ({i}, {j}): " + ", ".join(f"{k} {rows[-1][k] * 1e3:.0f} ms" for k in (
                    "decode_s", "kernel_s", "counts_s", "encode_s")), flush=True)
        mid = {"y": slice((ny // 2) * c, (ny // 2 + 1) * c), "x": slice((nx // 2) * c, (nx // 2 + 1) * c)}
        zone = np.ascontiguousarray(pix["zone"][mid].values)
    t0 = time.perf_counter()
    synth = synthetic_landcover(YEARS, c)
    print(f"synthetic tile generated in {time.perf_counter() - t0:.0f} s", flush=True)
    synth[:, zone == 0] = 0  # outside the zones no data, as on the real chunk
    rows.append({"data": "synthetic", "chunk": [ny // 2, nx // 2], **chunk_budget(zone, synth, n_zones,
                                                                                   a.repeats)})
    real_mid = next(r for r in rows if r["data"] == "real" and r["chunk"] == [ny // 2, nx // 2])
    info["rows"] = rows
    out = a.out / "wuhan_texture" / "budget.json"
    out.write_text(json.dumps(info, indent=2))

    def line(name: str, r: dict, n: int = 1) -> str:
        pos = r["positions"] * n
        cells = " | ".join(f"{r[k] * 1e3:.0f} ({pos / r[k] / 1e6:.0f})" for k in ("decode_s", "kernel_s",
                                                                                   "counts_s", "encode_s"))
        return (f"| {name} | {cells} | {r['lc_ratio']:.1f}:1 | {r['grid_ratio']:.1f}:1 | "
                f"{r['positions'] / r['runs']:.1f} |")

    real = [r for r in rows if r["data"] == "real"]
    total = {k: sum(r[k] for r in real) for k in ("decode_s", "kernel_s", "counts_s", "encode_s", "positions",
                                                    "runs")}
    total["lc_ratio"] = float(np.mean([r["lc_ratio"] for r in real]))
    total["grid_ratio"] = float(np.mean([r["grid_ratio"] for r in real]))
    print(f"\nOne thread, fastest of {a.repeats}; ms (single-thread Mpos/s):\n")
    print("| chunk | decode | fused kernel | counts only | ESV grid encode | land cover zstd | ESV grid zstd "
          "| mean run px |")
    print("|---|---|---|---|---|---|---|---|")
    print(line("real, centre chunk", real_mid))
    print(line("synthetic, same zones", rows[-1]))
    print(line(f"real, all {len(real)} chunks (sum; ratios: mean)", total))
    n_pairs = len(year_pairs(len(YEARS)))
    two = (total["decode_s"] + total["kernel_s"] + total["encode_s"]) / 2
    print(f"\nAll chunks, decode + fused kernel + encode on 2 threads without waiting: {two:.2f} s "
          f"({total['positions'] * n_pairs / two / 1e6:.0f} Mpix/s x {n_pairs} pairs); decode alone "
          f"(the floor's compute): {total['decode_s'] / 2:.2f} s")
    print(f"\nbudget: {out}")


if __name__ == "__main__":
    main()
