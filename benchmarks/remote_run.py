"""What a whole run costs against object storage: requests and bytes per stage, by chunk size.

A synthetic region (``ecodask.synth.make_region``) is uploaded to a local S3 server (moto in its
own process, counting what it answers: ``benchmarks.stage_commit.s3_server``); the run reads its
inputs there and writes its output there (``output: s3://...``), on a LocalCluster of worker
processes, through ``ecodask.run.inprocess`` (no Prefect server). For each stage: the requests by
kind (PUT, GET, HEAD, LIST, DELETE), bytes put and got, the objects of the stage's layer and its
wall time; with the chunks per year and arrays, so that the requests per chunk and year follow.

    python -m benchmarks.remote_run --km 61.44 --chunks 256 512 1024 --years 3

Limits: moto answers in about a millisecond, so the seconds here are not those of a real store
(10-50 ms a request: multiply the requests); the request counts and bytes do not depend on the
server.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import yaml

from benchmarks.stage_commit import BUCKET, s3_counts, s3_server

KINDS = ("PUT", "GET", "HEAD", "LIST", "DELETE")


def _urls(doc: object, inputs: str) -> object:
    """The configuration with every path under ``inputs/`` made a URL under ``inputs``."""
    if isinstance(doc, dict):
        return {k: _urls(v, inputs) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_urls(v, inputs) for v in doc]
    if isinstance(doc, str) and doc.startswith("inputs/"):
        return f"{inputs}/{doc.removeprefix('inputs/')}"
    return doc


def region(folder: Path, km: float, years: int) -> Path:
    """The synthetic region's configuration (generated once per size and years)."""
    from ecodask.demo import prepare_region

    all_years = (2000, 2005, 2010, 2015, 2020, 2023)[:years]
    config, _ = prepare_region(folder / f"region-{km:g}km-{years}y", seed=3, width_km=km, height_km=km,
                               years=all_years)
    return config


def measure(config: Path, endpoint: str, chunk: int, workers: int, out: Path) -> list[dict]:
    """Upload the region, run it to a fresh prefix with ``chunk``-px chunks; one row per stage."""
    import s3fs

    from ecodask.io.layers import layer_url
    from ecodask.run import inprocess, resume

    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    tag = f"{config.parent.name}-c{chunk}"
    inputs = f"s3://{BUCKET}/inputs/{config.parent.name}"
    for f in sorted((config.parent / "inputs").iterdir()):
        if f.is_file() and not fs.exists(f"{inputs.removeprefix('s3://')}/{f.name}"):
            fs.put_file(str(f), f"{inputs.removeprefix('s3://')}/{f.name}")
    doc = _urls(yaml.safe_load(config.read_text()), inputs)
    doc["grid"]["chunk_size"] = chunk
    remote = f"s3://{BUCKET}/runs/{tag}"
    cluster = {"kind": "local", "n_workers": workers, "threads_per_worker": 1, "memory_limit": "3GiB"}
    doc |= {"output": remote, "work_dir": str(out / "work" / tag), "cluster": cluster}
    cfg_path = out / f"{tag}.yaml"
    cfg_path.write_text(yaml.safe_dump(doc, sort_keys=False))
    if fs.exists(remote.removeprefix("s3://")):
        fs.rm(remote.removeprefix("s3://"), recursive=True)

    rows: list[dict] = []
    plain = resume.run_stage

    def counted(cfg, stage, key, fn, **kw):  # noqa: ANN001, ANN202 - resume.run_stage's
        s3_counts(endpoint, reset=True)
        t0 = time.perf_counter()
        result = plain(cfg, stage, key, fn, **kw)
        seconds = time.perf_counter() - t0
        c = s3_counts(endpoint, reset=True)
        layer = layer_url(str(cfg.remote_output), stage, key)
        objects = len(fs.find(layer.removeprefix("s3://")))
        rows.append({"stage": stage, "seconds": round(seconds, 2), "layer_objects": objects,
                     **{k: int(c.get(k, 0)) for k in KINDS}, "bytes_put": int(c.get("bytes_put", 0)),
                     "bytes_got": int(c.get("bytes_got", 0))})
        return result

    resume.run_stage = counted
    try:
        inprocess.run(cfg_path, log=lambda line: None)
    finally:
        resume.run_stage = plain
    from ecodask.run.config import load_config

    cfg = load_config(cfg_path)
    from ecodask.io.store import open_store

    pix, _ = open_store(resume.store_arg(cfg, "figures", resume.plan(cfg), None))
    chunks_per_year = len(pix["zone"].chunks[0]) * len(pix["zone"].chunks[1])
    for r in rows:
        r |= {"chunk": chunk, "px": f"{pix.sizes['y']}x{pix.sizes['x']}", "years": pix.sizes["year"],
              "chunks_per_year": chunks_per_year}
    return rows


def report(rows: list[dict]) -> None:
    print("| chunk, px | stage | s | PUT | GET | HEAD | LIST | DELETE | MB put | MB got | layer objects "
          "| PUT per chunk-year |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        per = r["PUT"] / (r["chunks_per_year"] * r["years"])
        print(f"| {r['chunk']} | {r['stage']} | {r['seconds']:.1f} | {r['PUT']} | {r['GET']} | {r['HEAD']} | "
              f"{r['LIST']} | {r['DELETE']} | {r['bytes_put'] / 1e6:.1f} | {r['bytes_got'] / 1e6:.1f} | "
              f"{r['layer_objects']} | {per:.2f} |")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--km", type=float, default=30.72, help="side of the square region, km (30 m pixels)")
    ap.add_argument("--years", type=int, default=3, help="years of land cover, 2-6")
    ap.add_argument("--chunks", type=int, nargs="+", default=[256, 512], help="chunk sides, px")
    ap.add_argument("--workers", type=int, default=2, help="Dask worker processes, one thread each")
    ap.add_argument("--out", type=Path, default=Path("bench-output"))
    args = ap.parse_args(argv)
    out = (args.out / "remote_run").resolve()
    out.mkdir(parents=True, exist_ok=True)
    config = region(out, args.km, args.years)
    load = os.getloadavg()[0]
    rows: list[dict] = []
    with s3_server(out) as endpoint:
        for chunk in args.chunks:
            rows += measure(config, endpoint, chunk, args.workers, out)
    print(f"load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    report(rows)
    (out / "remote-run-results.json").write_text(json.dumps({"load": load, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
