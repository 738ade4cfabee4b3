"""The driver-analysis benchmark: Geographical Detector, stepwise regression and hot spots.

    python -m benchmarks.run --suite drivers [--rows 10000000] [--repeats 3] [--baseline-repeats N]
        [--stepwise-baseline-rows 1000000] [--grid 3162] [--esda-size 1000] [--cases ...]
        [--out bench-output]

Every case runs in a fresh process (:mod:`benchmarks.drivers_case`: synthetic, seeded data made
before the clock, a warm-up on a small slice, then ``--repeats`` timed runs; Dask's threaded
scheduler with 2 workers); figures are medians. Cases, in order:

- ``gd_optimal`` (``--rows``): ecodask ``detect`` on y and 8 continuous drivers, optimal
  discretization (5 methods x k 3..10 per driver), the 28 interactions, risk and ecological
  detectors. Target: <= 15 s on 10^7 rows with 2 cores. One more, untimed, call splits the time
  between the three passes over the rows (``scan``, ``fine_bin_sums``, ``overlay_sums``), the
  scoring of the candidate discretizations and the four detectors on the sums.
- ``gd_pair`` / ``gd_pypi`` (``--rows``): 3 integer factors (5, 7, 10 levels) used as given:
  ecodask ``detect`` as a whole (all four detectors) against the PyPI ``geodetector``'s
  ``FactorDetector`` for each factor + ``InteractionDetector`` on the three. Target: >= 100x
  faster, every q (3 factors, 3 interactions) equal to 1e-9.
- ``stepwise`` (``--rows`` and ``--stepwise-baseline-rows``) / ``stepwise_sm``
  (``--stepwise-baseline-rows``): ecodask ``stepwise(moments(y, X))`` on 8 drivers against the
  same SPSS search refitting ``statsmodels`` OLS on the raw rows for every candidate model (42 fits
  on these data; at 10^7 rows one search took 159 s and 4.8 GB here, so the comparison runs at
  10^6 by default). Both must select the same variables by the same moves.
- ``hotspots`` (``--grid`` and ``--esda-size``) / ``hotspots_esda`` (``--esda-size``): ecodask
  ``morans_i`` + the Gi* z grid (computed) on a float32 grid with a NaN margin (~56 % of the cells
  finite) chunked 1024², against esda's ``Moran`` + ``G_Local`` with libpysal's ``lat2W`` (W
  built for the finite cells; its construction counted) at a size esda handles. The ratio is taken
  at equal size.

``--baseline-repeats`` (default: ``--repeats``) sets the repeats of the slow baselines
(``gd_pypi``, ``stepwise_sm``, ``hotspots_esda``). ``--cases`` runs a subset and merges it into an
existing ``results.json`` (to rerun a disturbed case). Prints Markdown tables for BENCHMARKS.md and
writes ``<out>/drivers/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.env import code_state, machine, print_targets

#: Versions recorded with the results.
PACKAGES = ("numpy", "numba", "dask", "pandas", "scipy", "statsmodels", "geodetector", "esda", "libpysal")

CASES = ("gd_optimal", "gd_pair", "gd_pypi", "stepwise", "stepwise_sm", "hotspots", "hotspots_esda")
BASELINES = ("gd_pypi", "stepwise_sm", "hotspots_esda")
TARGETS = {"gd_optimal_s": 15.0, "vs_pypi": 100.0, "dq": 1e-9}
WHAT = {
    "gd_optimal": "ecodask `detect`: 8 drivers, optimal discretization (5 methods x k 3..10), "
                  "28 interactions, risk, ecological",
    "gd_pair": "ecodask `detect`: 3 integer factors as given, all four detectors",
    "gd_pypi": "PyPI `geodetector` 0.2.0: `FactorDetector` x 3 + `InteractionDetector` (3 pairs)",
    "stepwise": "ecodask `stepwise(moments(y, X))`, 8 drivers",
    "stepwise_sm": "statsmodels OLS refitted at every candidate of the same SPSS stepwise search",
    "hotspots": "ecodask `morans_i` + Gi* z grid (`.compute()`), dask 1024² chunks",
    "hotspots_esda": "esda `Moran` + `G_Local(B, star)`, libpysal `lat2W` queen W (built in the clock)",
}


def run_case(case: str, size: int, repeats: int, seed: int) -> dict:
    load = os.getloadavg()
    args = [sys.executable, "-m", "benchmarks.drivers_case", case, str(size), "--repeats", str(repeats),
            "--seed", str(seed)]
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"benchmark case {case} {size} failed:\n{proc.stderr[-4000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res.update(size=size, load_avg_before=load, load_avg_after=os.getloadavg(),
               process_seconds=time.perf_counter() - t0, finished=time.strftime("%Y-%m-%d %H:%M:%S"),
               code=code_state())
    return res


def plan(a: argparse.Namespace) -> list[tuple[str, int]]:
    out = [("gd_optimal", a.rows), ("gd_pair", a.rows), ("gd_pypi", a.rows), ("stepwise", a.rows)]
    if a.stepwise_baseline_rows != a.rows:
        out.append(("stepwise", a.stepwise_baseline_rows))
    out += [("stepwise_sm", a.stepwise_baseline_rows), ("hotspots", a.grid)]
    if a.esda_size != a.grid:
        out.append(("hotspots", a.esda_size))
    out.append(("hotspots_esda", a.esda_size))
    return [p for p in out if p[0] in a.cases]


def _find(rows: list[dict], case: str, size: int) -> dict | None:
    return next((r for r in rows if r["case"] == case and r["size"] == size), None)


def compare(rows: list[dict]) -> dict:
    """Ratios at equal size and the checks of the results against the baselines."""
    out: dict = {"ratios": [], "checks": []}
    for eco, base in (("gd_pair", "gd_pypi"), ("stepwise", "stepwise_sm"), ("hotspots", "hotspots_esda")):
        for b in (r for r in rows if r["case"] == base):
            e = _find(rows, eco, b["size"])
            if not e:
                continue
            ratio = {"case": eco, "baseline": base, "size": b["size"], "speedup": b["median"] / e["median"]}
            if base == "hotspots_esda":
                ratio["speedup_stats_only"] = statistics.median(b["stats_seconds"]) / e["median"]
            if base == "gd_pypi":
                ratio["speedup_factor_only_pypi"] = statistics.median(b["factor_seconds"]) / e["median"]
            out["ratios"].append(ratio)
            if base == "gd_pypi":
                dq = [abs(e["q"][k] - b["q"][k]) for k in b["q"]]
                dq += [abs(e["q_ab"][k] - b["q_ab"][k]) for k in b["q_ab"]]
                same_cls = all(e["interaction"][k] == b["interaction"][k] for k in b["interaction"])
                what = f"q vs PyPI geodetector ({len(dq)} values, {b['size']:,} rows)"
                out["checks"].append({"check": what,
                                      "max_abs_dq": max(dq), "ok": max(dq) <= TARGETS["dq"],
                                      "detail": f"max abs. Δq = {max(dq):.2e}; interaction classes "
                                                f"{'agree' if same_cls else 'DIFFER'}"})
            elif base == "stepwise_sm":
                same = e["selected"] == b["selected"] and e["history"] == b["history"]
                dp = max(abs(x - y) / max(abs(y), 1e-12)
                         for x, y in zip(e["params"], b["params"], strict=True))
                out["checks"].append({"check": f"stepwise vs statsmodels ({b['size']:,} rows)", "ok": same,
                                      "max_rel_dparam": dp,
                                      "detail": f"selected {', '.join(e['selected'])} by the same "
                                                f"{len(e['history'])} moves" if same else
                                                f"ecodask {e['history']} vs statsmodels {b['history']}",
                                      "params": f"max rel. difference of B {dp:.1e}"})
            else:
                ok = b["abs_dI"] < 1e-10 and b["max_abs_dz"] < 1e-8
                out["checks"].append({"check": f"hot spots vs esda ({b['size']}², {b['finite_cells']:,} "
                                               f"finite cells)", "ok": ok,
                                      "detail": f"abs. ΔI = {b['abs_dI']:.1e}, "
                                                f"max abs. Δz = {b['max_abs_dz']:.1e}"})
    return out


def targets(rows: list[dict], cmp: dict) -> list[dict]:
    out = []
    g = next((r for r in rows if r["case"] == "gd_optimal"), None)
    if g:
        full = g["rows"] >= 10_000_000
        out.append({"target": f"8-factor optimal GD on 10^7 rows <= {TARGETS['gd_optimal_s']:.0f} s "
                              "(2 cores)",
                    "value": f"{g['median']:.2f} s on {g['rows']:,} rows, peak {g['peak_rss_mb']:.0f} MB",
                    "met": full and g["median"] <= TARGETS["gd_optimal_s"]})
    r = next((x for x in cmp["ratios"] if x["baseline"] == "gd_pypi"), None)
    c = next((x for x in cmp["checks"] if "PyPI" in x["check"]), None)
    if r and c:
        out.append({"target": f">= {TARGETS['vs_pypi']:.0f}x PyPI geodetector (factor + interaction, "
                              "3 factors), "
                              f"q equal to {TARGETS['dq']:.0e}",
                    "value": f"{r['speedup']:.0f}x on {r['size']:,} rows, max abs. Δq {c['max_abs_dq']:.1e}",
                    "met": r["speedup"] >= TARGETS["vs_pypi"] and c["ok"]})
    return out


def _size(r: dict) -> str:
    if r["case"].startswith("hotspots"):
        return f"{r['size']}² = {r['cells'] / 1e6:.2f} M cells ({r['finite_cells'] / 1e6:.2f} M finite)"
    return f"{r['rows'] / 1e6:g} M rows"


def _rate(r: dict) -> str:
    n = r["cells"] if r["case"].startswith("hotspots") else r["rows"]
    return f"{n / r['median'] / 1e6:.2f} {'Mcells' if r['case'].startswith('hotspots') else 'Mrows'}/s"


def markdown(rows: list[dict], cmp: dict) -> str:
    out = ["| case | what | size | median s (runs) | rate | peak memory MB (input data) | vs baseline |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = next((x for x in cmp["ratios"] if x["case"] == r["case"] and x["size"] == r["size"]), None)
        vs = "—"
        if ratio:
            vs = f"**{ratio['speedup']:.0f}x** {ratio['baseline']}"
            if "speedup_stats_only" in ratio:
                vs += f" ({ratio['speedup_stats_only']:.0f}x its statistics alone)"
            if "speedup_factor_only_pypi" in ratio:
                vs += f" ({ratio['speedup_factor_only_pypi']:.0f}x its factor detector alone)"
        elif r["case"] in BASELINES:
            vs = "baseline"
        runs = ", ".join(f"{s:.2f}" for s in r["seconds"])
        extra = ""
        if r["case"] == "gd_pypi":
            extra = (f"; factor {statistics.median(r['factor_seconds']):.1f} s + interaction "
                     f"{statistics.median(r['interaction_seconds']):.1f} s")
        elif r["case"] == "hotspots_esda":
            extra = (f"; W {statistics.median(r['w_seconds']):.1f} s + statistics "
                     f"{statistics.median(r['stats_seconds']):.1f} s")
        out.append(f"| {r['case']} | {WHAT[r['case']]} | {_size(r)} | {r['median']:.2f} ({runs}{extra}) | "
                   f"{_rate(r)} | {r['peak_rss_mb']:.0f} ({r['data_mb']:.0f}) | {vs} |")
    out += ["", "| check | result | ok |", "|---|---|---|"]
    for c in cmp["checks"]:
        detail = c["detail"] + (f"; {c['params']}" if "params" in c else "")
        out.append(f"| {c['check']} | {detail} | {'yes' if c['ok'] else 'NO'} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline-repeats", type=int, default=None)
    ap.add_argument("--stepwise-baseline-rows", type=int, default=1_000_000)
    ap.add_argument("--grid", type=int, default=3162, help="side of the hot-spot grid (3162² ~ 10^7 cells)")
    ap.add_argument("--esda-size", type=int, default=1000, help="side of the grid for the esda comparison")
    ap.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("bench-output"))
    a = ap.parse_args(argv)
    root = a.out / "drivers"
    root.mkdir(parents=True, exist_ok=True)
    args = argv if argv is not None else sys.argv[1:]
    info = {"command": " ".join(["python -m benchmarks.run --suite drivers", *args]),
            "machine": machine(PACKAGES),
            "code": code_state(), "repeats": a.repeats, "seed": a.seed,
            "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    rows = []
    for case, size in plan(a):
        reps = a.baseline_repeats if case in BASELINES and a.baseline_repeats else a.repeats
        r = run_case(case, size, reps, a.seed)
        rows.append(r)
        n = r["cells"] if case.startswith("hotspots") else r["rows"]
        each = ", ".join(f"{s:.2f}" for s in r["seconds"])
        print(f"{case:14s} {n:>11,d} {r['median']:8.2f} s  {_rate(r):>16s}  {r['peak_rss_mb']:6.0f} MB  "
              f"(runs: {each}; load {r['load_avg_before'][0]:.2f})", flush=True)
    results = root / "results.json"
    if set(a.cases) != set(CASES) and results.exists():  # a subset: merge into the previous results
        old = json.loads(results.read_text())
        if old.get("seed") == a.seed:
            keep = [r for r in old["rows"] if not _find(rows, r["case"], r["size"])]
            rows = sorted(keep + rows, key=lambda r: (CASES.index(r["case"]), -r["size"]))
            info["merged_with"] = old.get("started")
    if code_state() != info["code"]:
        info["code_at_end"] = code_state()
        print(f"WARNING: the code changed during the run: {info['code']} -> {info['code_at_end']}")
    cmp = compare(rows)
    tg = targets(rows, cmp)
    info.update(rows=rows, **cmp, targets=tg, finished=time.strftime("%Y-%m-%d %H:%M:%S"),
                load_avg_at_end=os.getloadavg())
    results.write_text(json.dumps(info, indent=2, default=str))
    m, code = info["machine"], info["code"]
    print(f"\nCode: commit {code['commit']}" + (f", modified: {', '.join(code['modified'])}"
                                               if code["modified"] else ", clean"))
    print(f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB; Python {m['python']}; "
          f"load average at start {', '.join(f'{v:.2f}' for v in m['load_avg_at_start'])}\n")
    print(markdown(rows, cmp))
    g = next((r for r in rows if r["case"] == "gd_optimal" and r.get("profile")), None)
    if g:
        p = g["profile"]
        print(f"\ngd_optimal, one more call ({p['total']:.2f} s): "
              + ", ".join(f"{k} {v:.2f} s" for k, v in p.items() if k != "total"))
    print_targets(tg)
    print(f"\nresults: {results}")


if __name__ == "__main__":
    main()
