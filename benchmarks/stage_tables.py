"""The transitions + ESV stage's tables at many zones and years: built and written as the stage does
(each as soon as it is built, the largest in parts), the process's peak memory and time.

    python -m benchmarks.run --suite stage_tables [--zones 2000 10000] [--years 39]

Synthetic transfer matrices (no pixel pass): each zone's CLCD classes (9) with gamma-distributed
pixels, 97 % of each class staying and 3 % moving to the next class, for every pair of years the
stage counts; xinzhou_2023, the intensity analysis on, the Monte Carlo off. Each zone count runs in a
fresh process, so that its peak RSS is its own; Arrow takes malloc as in the flow. Prints a Markdown
table and writes stage-tables-results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.env import code_state, machine


def _one(zones: int, years: int) -> dict:
    """Build and write every table once; peak RSS (GB) and seconds."""
    import numpy as np
    import pandas as pd

    from ecodask.io.catalogs import load_class_scheme, load_esv_table
    from ecodask.io.tables import use_system_allocator, write_tables
    from ecodask.science.esv import EsvModel
    from ecodask.science.landuse import ClassIndex

    use_system_allocator()
    scheme, table = load_class_scheme("clcd"), load_esv_table("xinzhou_2023")
    n = ClassIndex(scheme).n
    model = EsvModel.build(scheme, table, range(1985, 1985 + years), [None] * years, 0.09, None, True)
    base = np.random.default_rng(0).gamma(0.6, 4000.0, (zones, n))
    counts = np.zeros((len(model.pairs), zones, n + 1, n + 1), dtype=np.int64)
    counts[:, :, np.arange(n), np.arange(n)] = (base * 0.97).astype(np.int64)
    counts[:, :, np.arange(n), (np.arange(n) + 1) % n] = (base * 0.03).astype(np.int64)
    zt = pd.DataFrame({"zone": np.arange(1, zones + 1), "zone_id": [f"{420000 + i}" for i in range(zones)],
                       "zone_name": [f"township {i}" for i in range(zones)]})
    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        for name, t in model.each_table(counts, None, zt):
            write_tables({name: t}, folder)
        seconds = time.perf_counter() - t0
    return {"zones": zones, "years": years, "seconds": round(seconds, 1),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zones", type=int, nargs="+", default=[2000, 10000])
    ap.add_argument("--years", type=int, default=39)
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a fresh process's case
    ap.add_argument("--out", type=Path, default=Path("bench-output"))
    a = ap.parse_args(argv)
    if a.one:
        print(json.dumps(_one(a.zones[0], a.years)))
        return
    a.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for zones in a.zones:
        load = os.getloadavg()[0]
        cmd = [sys.executable, "-m", "benchmarks.stage_tables", "--one", "--zones", str(zones),
               "--years", str(a.years)]
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]) | {"load_before": round(load, 2)})
        print(rows[-1], flush=True)
    info = {"machine": machine(["numpy", "pandas", "pyarrow"]), "code": code_state(), "rows": rows}
    (a.out / "stage-tables-results.json").write_text(json.dumps(info, indent=2))
    print("\n| zones x years | built and written, s | peak RSS, GB | load before |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['zones']:,} x {r['years']} | {r['seconds']} | {r['peak_rss_gb']} | {r['load_before']} |")


if __name__ == "__main__":
    main()
