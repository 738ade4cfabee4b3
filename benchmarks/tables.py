"""Writing a run's tables for many zones: pandas' CSV writer (the writer before) against one Arrow
table written as Parquet and CSV (:func:`ecodask.io.tables.write_table`):

    python -m benchmarks.run --suite tables [--zones 3000 40000] [--years 2] [--repeats 3]

The tables have the shape a run writes per zone: the transfer matrix (every class pair of a
nine-class scheme, per pair of years), ESV by service (11 services, 4 groups, the market split and
the total, per year) and class areas (per class and year), with zone ids and Chinese names as
text. Prints a Markdown table of median seconds and writes tables-results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.env import code_state, machine

CLASSES = 9
LEVELS = np.array(["service"] * 11 + ["group"] * 4 + ["market"] * 2 + ["total"])


def frames(zones: int, years: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    """A run's three largest per-zone tables for ``zones`` zones and ``years`` years."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"{420000000 + i:09d}" for i in range(zones)])
    names = np.array([f"街道{i}" for i in range(zones)])
    pairs = [(2000 + 10 * t, 2010 + 10 * t) for t in range(years - 1)]
    n = zones * CLASSES * CLASSES * len(pairs)
    z = np.repeat(np.arange(zones), CLASSES * CLASSES * len(pairs))
    cf = np.tile(np.repeat(np.arange(1, CLASSES + 1), CLASSES), zones * len(pairs))
    ct = np.tile(np.arange(1, CLASSES + 1), zones * CLASSES * len(pairs))
    yf = np.tile(np.repeat([p[0] for p in pairs], CLASSES * CLASSES), zones)
    px = rng.integers(0, 50_000, n)
    transitions = pd.DataFrame({"zone_id": ids[z], "zone_name": names[z], "year_from": yf,
                                "year_to": yf + 10,
                                "class_from": cf, "class_to": ct, "pixels": px, "area_ha": px * 0.09,
                                "esv_change_cny": rng.normal(0, 1e6, n)})
    items = 11 + 4 + 2 + 1
    m = zones * years * items
    zz = np.repeat(np.arange(zones), years * items)
    esv = pd.DataFrame({"zone_id": ids[zz], "zone_name": names[zz],
                        "year": np.tile(np.repeat(2000 + 10 * np.arange(years), items), zones),
                        "level": np.tile(LEVELS, zones * years),
                        "item": np.tile(np.array([f"s{i}" for i in range(items)]), zones * years),
                        "esv_cny": rng.random(m) * 1e8})
    esv["esv_1e8cny"] = esv["esv_cny"] / 1e8
    k = zones * years * CLASSES
    zk = np.repeat(np.arange(zones), years * CLASSES)
    areas = pd.DataFrame({"zone_id": ids[zk], "zone_name": names[zk],
                          "year": np.tile(np.repeat(2000 + 10 * np.arange(years), CLASSES), zones),
                          "class_code": np.tile(np.arange(1, CLASSES + 1), zones * years),
                          "area_ha": rng.random(k) * 1e4})
    return {"transitions": transitions, "esv_by_service": esv, "class_areas": areas}


def _pandas(tables: dict[str, pd.DataFrame], folder: Path) -> None:
    for name, df in tables.items():
        df.to_csv(folder / f"{name}.csv", index=False, lineterminator="\n")
        df.to_parquet(folder / f"{name}.parquet", index=False, compression="zstd")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zones", type=int, nargs="+", default=[3000, 40000])
    ap.add_argument("--years", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("bench-output"))
    a = ap.parse_args(argv)

    from ecodask.io.tables import write_tables

    env = machine(["pandas", "pyarrow"])
    folder = a.out / "tables"
    rows = []
    for zones in a.zones:
        tables = frames(zones, a.years)
        n_rows = sum(len(df) for df in tables.values())
        times: dict[str, list[float]] = {"pandas CSV + Parquet": [], "Arrow (write_tables)": []}
        for _ in range(a.repeats):
            for label, write in (("pandas CSV + Parquet", _pandas), ("Arrow (write_tables)", write_tables)):
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir(parents=True)
                t = time.perf_counter()
                write(tables, folder)
                times[label].append(time.perf_counter() - t)
        mb = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
        for label, ts in times.items():
            rows.append({"zones": zones, "rows": n_rows, "writer": label,
                         "median_s": statistics.median(ts), "all_s": ts, "mb": mb})
    load_end = os.getloadavg()
    print(f"\n{a.years} years; load average {env['load_avg_at_start'][0]:.2f} at start, "
          f"{load_end[0]:.2f} at end; {env['cores']} cores, {env['cpu']}\n")
    print("| zones | rows | writer | median s | vs pandas |\n|---:|---:|---|---:|---:|")
    for r in rows:
        base = next(b["median_s"] for b in rows
                    if b["zones"] == r["zones"] and b["writer"].startswith("pandas"))
        print(f"| {r['zones']:,} | {r['rows']:,} | {r['writer']} | {r['median_s']:.2f} | "
              f"{base / r['median_s']:.1f}x |")
    results = {"machine": env, "code": code_state(), "load_avg_end": load_end, "rows": rows}
    (a.out / "tables-results.json").write_text(json.dumps(results, indent=2, default=str))
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
