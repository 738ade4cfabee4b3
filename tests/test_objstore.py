"""Inputs and outputs on S3-compatible object storage, against a local moto server the tests start:
remote inputs fetched once into the work folder's cache, output trees synced both ways, a run whose
inputs and output are ``s3://`` URLs (the Prefect flow) publishing stage by stage, resuming after a
failed stage on a fresh work folder with the same tables as the region's stages run on local disk,
and credentials never written or logged."""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml

from ecodask.errors import CatalogError, ConfigError
from ecodask.io import bucket_lock, objstore
from ecodask.io.layers import committed
from ecodask.io.provenance import file_checksum
from ecodask.io.store import open_store
from ecodask.run import resume
from ecodask.run.config import load_config
from ecodask.run.stages import NAMES
from ecodask.synth import class_counts_by_zone, make_county_stats
from flows.run import run_flow

from conftest import COLS, ROWS, SPLIT_COL, make_tiny_region, tiny_landcover, write_tif
from helpers import (
    TINY_INPUTS,
    assert_same_arrays,
    ecodask_run,
    edit_yaml,
    finished_ok,
    inputs_in_bucket,
    kill_once,
    objects_under,
    run_stages,
    wait_until,
)
from s3_server import served_bucket

BUCKET = "ecodask-test"
KEY_ID, TOKEN = "AKIAECODASKTEST00001", "t0ken-ecodask-test"
SECRET = "s3cr3t/ecodask+Test0123456789abcdefghij"  # a "/" as real secrets may have
# Small: one Dask worker process (the flow's cluster). Not worker threads in the test's process: the
# S3 server (moto) answers from a thread of that process, and rasterio holds the GIL while GDAL
# reads a GeoTIFF's header over HTTP for a masked read (``mask_flag_enums``), so a read would wait
# on an answer the server cannot give: a hang, seen in the suite.
CLUSTER = {"kind": "local", "n_workers": 1, "threads_per_worker": 2, "memory_limit": "2GiB"}


@pytest.fixture(scope="module")
def s3_server():
    """A local S3 server (moto, counting what it answers) with the AWS_* variables pointing at it."""
    with served_bucket(BUCKET, KEY_ID, SECRET, TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def s3(s3_server):
    """The bucket's filesystem (s3fs) on the local S3 server."""
    fs, _ = objstore.filesystem(f"s3://{BUCKET}")
    return fs


def test_objects_read_back_against_the_md5_recorded_at_upload(s3_server, s3) -> None:
    import boto3
    from botocore.config import Config

    # Uploaded without a checksum of the client's own (as older clients and other tools do), so
    # that reading them back returns whatever bytes the server holds, and only the MD5 can tell.
    client = boto3.client("s3", endpoint_url=s3_server.endpoint,
                          config=Config(request_checksum_calculation="when_required"))
    for name in ("kept", "rotted", "sub/kept"):
        client.put_object(Bucket=BUCKET, Key=f"readback/{name}", Body=name.encode() * 1000)
    s3_server.rot(BUCKET, "readback/rotted")
    url = f"s3://{BUCKET}/readback"
    s3.invalidate_cache()
    found = objstore.entries(url)
    assert sorted(found) == ["kept", "rotted", "sub/kept"]
    assert objstore.misread(url, found) == {"rotted": "its bytes differ from the MD5 the store recorded"}
    s3_server.rot(BUCKET, "readback/rotted")  # flipped back
    assert objstore.misread(url, found) == {}
    s3.rm(f"{BUCKET}/readback", recursive=True)


def test_a_stage_redone_with_the_committed_key_writes_beside_the_committed_layer(s3) -> None:
    from ecodask.io import layers

    remote, key = f"s3://{BUCKET}/runs/slots", "ab" * 32
    first = layers.writing_url(remote, "ingest", key)
    assert first == layers.layer_url(remote, "ingest", key)  # nothing committed: <key16>
    assert layers.new_layer(remote, "ingest", key) == first
    s3.pipe_file(f"{first.removeprefix('s3://')}/landcover/c/0", b"run A")
    layers.commit(remote, [("ingest", key, first)])
    redo = layers.new_layer(remote, "ingest", key)  # the same key again: beside it, A kept whole
    assert redo == first + layers.REDO and layers.writing_url(remote, "ingest", key) == redo
    s3.invalidate_cache()
    assert s3.cat_file(f"{first.removeprefix('s3://')}/landcover/c/0") == b"run A"
    layers.commit(remote, [("ingest", key, redo)])  # run B committed: A's layer goes
    s3.invalidate_cache()
    assert not s3.exists(first.removeprefix("s3://")) and layers.committed_layers(remote) == {"ingest": redo}
    assert layers.writing_url(remote, "ingest", key) == first  # the next redo: <key16> again
    assert layers.writing_url(remote, "ingest", "cd" * 32) == layers.layer_url(remote, "ingest", "cd" * 32)
    s3.rm(f"{BUCKET}/runs/slots", recursive=True)


def _county_stats(folder: Path, years=(2000, 2010)) -> Path:
    """County statistics of the tiny region's two counties (West 420101 left of the split)."""
    zones = np.broadcast_to(np.where(np.arange(COLS) < SPLIT_COL, 1, 2).astype(np.uint8), (ROWS, COLS))
    counts = {y: class_counts_by_zone(np.ascontiguousarray(zones), tiny_landcover(0, i), 2)
              for i, y in enumerate(years)}
    stats = make_county_stats(np.random.default_rng(1), [420101, 420102], ["West", "East"], years, counts,
                              30.0)
    path = folder / "county_stats.csv"
    stats.to_csv(path, index=False, lineterminator="\n")
    return path


def _edit(path: Path, **changes) -> Path:
    """Set the configuration's top-level keys (None: remove it)."""
    def change(doc: dict) -> None:
        for key, value in changes.items():
            if value is None:
                doc.pop(key, None)
            else:
                doc[key] = value

    return edit_yaml(path, change)


def _tree(fs, url: str) -> dict[str, bytes]:
    root = url.removeprefix("s3://")
    return {name[len(root) + 1:]: fs.cat_file(name) for name in fs.find(root)}


@pytest.mark.slow  # the moto S3 server
def test_url_with_credentials_refused_without_echo(s3, tmp_path: Path) -> None:
    cfg = make_tiny_region(tmp_path / "r")
    for url in (f"s3://{KEY_ID}:{SECRET}@{BUCKET}/out", f"s3://{KEY_ID}@{BUCKET}/out"):
        _edit(cfg, output=url)
        with pytest.raises(ConfigError) as info:
            load_config(cfg)
        [p] = info.value.problems
        assert p.key == "output" and "credentials" in p.message
        assert not any(s in str(info.value) for s in (KEY_ID, *SECRET.split("/")))
    _edit(cfg, output="out")
    doc = yaml.safe_load(cfg.read_text())
    doc["zones"]["path"] = f"s3://{KEY_ID}:{SECRET}@{BUCKET}/zones.gpkg"
    cfg.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match="zones.path") as info:
        load_config(cfg)
    assert not any(s in str(info.value) for s in (KEY_ID, *SECRET.split("/")))


def test_url_output_computes_in_a_local_work_folder(tmp_path: Path) -> None:
    cfg = make_tiny_region(tmp_path / "r", output="s3://bucket/runs/tiny")
    loaded = load_config(cfg)
    work = tmp_path / "r" / ".ecodask-work" / "tiny"
    assert (loaded.output, loaded.work_dir, loaded.remote_output) == (work / "output", work,
                                                                      "s3://bucket/runs/tiny")
    assert loaded.model_dump(mode="json")["remote_output"] == "s3://bucket/runs/tiny"
    _edit(cfg, work_dir="w")
    assert load_config(cfg).output == tmp_path / "r" / "w" / "output"
    for changes, key in (({"work_dir": "s3://bucket/w"}, "work_dir"),
                         ({"work_dir": None, "remote_output": "s3://bucket/other"}, "output")):
        _edit(cfg, **changes)
        with pytest.raises(ConfigError) as info:
            load_config(cfg)
        assert [p.key for p in info.value.problems] == [key]


def test_an_output_url_other_than_s3_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    # A run's lock and commits need S3's, Azure's or Google's conditional writes; memory:// has none.
    cfg = make_tiny_region(tmp_path / "r", output="memory://bucket/runs/tiny")
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    [p] = info.value.problems
    assert (p.key, p.value) == ("output", "memory://bucket/runs/tiny")
    assert "s3://" in p.message and "az://" in p.message and "gs://" in p.message
    assert not (tmp_path / "r" / ".ecodask-work").exists()


@pytest.mark.slow  # the moto S3 server
def test_fetch_downloads_an_object_once_until_it_changes(s3, tmp_path: Path) -> None:
    s3.pipe_file(f"{BUCKET}/f/data.csv", b"a,b\n1,2\n")
    s3.pipe_file(f"{BUCKET}/f/data.csv.aux.xml", b"<x/>")  # a sidecar comes along
    s3.pipe_file(f"{BUCKET}/f/other.csv", b"no")
    url = f"s3://{BUCKET}/f/data.csv"
    p = objstore.fetch(url, tmp_path)
    assert p.read_bytes() == b"a,b\n1,2\n" and p.url == url and objstore.source(p) == url
    assert sorted(f.name for f in p.parent.iterdir() if not f.name.startswith(".")) == [
        "data.csv", "data.csv.aux.xml"]
    p.write_bytes(b"a local edit")  # no longer the object's size: fetched again
    assert objstore.fetch(url, tmp_path).read_bytes() == b"a,b\n1,2\n"
    mtime = p.stat().st_mtime_ns
    assert objstore.fetch(url, tmp_path) == p and p.stat().st_mtime_ns == mtime  # unchanged: cached
    s3.pipe_file(f"{BUCKET}/f/data.csv", b"a,b\n3,4\n")  # same size, new ETag
    assert objstore.fetch(url, tmp_path).read_bytes() == b"a,b\n3,4\n"
    with pytest.raises(ValueError, match="no such object"):
        objstore.fetch(f"s3://{BUCKET}/f/missing.tif", tmp_path)


@pytest.mark.slow  # the moto S3 server
def test_inputs_fetched_from_a_bucket_give_the_keys_of_the_same_bytes_on_disk(s3, tmp_path: Path) -> None:
    local_cfg = make_tiny_region(tmp_path / "local")
    local = load_config(local_cfg)
    names = ("lc_2000.tif", "lc_2010.tif", "zones.gpkg", "elev.tif")
    for name in names:
        s3.put_file(str(local_cfg.parent / name), f"{BUCKET}/keys/{name}")
    inputs = f"s3://{BUCKET}/keys"

    def to_urls(doc: dict) -> None:
        doc["landcover"]["years"] = {y: f"{inputs}/lc_{y}.tif" for y in (2000, 2010)}
        doc["zones"]["path"] = f"{inputs}/zones.gpkg"
        doc["drivers"] = {"elevation": {"path": f"{inputs}/elev.tif"}}
        doc |= {"output": f"s3://{BUCKET}/runs/keys", "work_dir": "work"}

    (tmp_path / "remote").mkdir()
    remote_cfg = edit_yaml(Path(shutil.copy2(local_cfg, tmp_path / "remote" / "config.yaml")), to_urls)
    remote = load_config(remote_cfg)
    assert objstore.source(remote.zones.path) == f"{inputs}/zones.gpkg"  # a local copy of the object
    assert resume.plan(remote) == resume.plan(local)
    doc = json.dumps([resume.key_doc(remote, s) for s in NAMES])
    assert inputs not in doc and "runs/keys" not in doc and str(tmp_path) not in doc
    s3.pipe_file(f"{BUCKET}/keys/elev.tif", s3.cat_file(f"{BUCKET}/keys/elev.tif") + b"\0")  # new bytes
    assert resume.plan(load_config(remote_cfg)) != resume.plan(local)


@pytest.mark.slow  # the moto S3 server
def test_a_chunk_read_from_a_bucket_is_one_get(s3_server, s3) -> None:
    """zarr reads a chunk from S3 with one GET: no HEAD before it for the object's size, and a
    chunk never written (its fill value) is one GET answered 404, with no LIST after it
    (``objstore`` sets s3fs's ``max_concurrency`` to 1)."""
    import zarr

    url = f"s3://{BUCKET}/one-get/a.zarr"
    written = zarr.create_array(store=url, shape=(4, 4), chunks=(2, 2), dtype="u1", fill_value=0)
    written[:2, :] = 7  # two of the four chunks
    array = zarr.open_array(url, mode="r")
    s3_server.counts(reset=True)
    values = array[:]
    asked = s3_server.counts()
    assert values[:2].tolist() == [[7] * 4] * 2 and not values[2:].any()
    assert asked["GET"] == 4 and asked["HEAD"] == 0 and asked["LIST"] == 0, asked


@pytest.mark.slow  # the moto S3 server
def test_a_raster_in_a_bucket_is_read_window_by_window(s3_server, s3, tmp_path: Path) -> None:
    from affine import Affine
    from pyproj import CRS

    from ecodask.io.rasters import WarpedRaster, open_info
    from ecodask.science.grid import Grid

    # 4096 x 4096 px of codes in 128-px tiles, uncompressed: a 16 MB object.
    codes = np.random.default_rng(3).integers(1, 10, (4096, 4096), dtype=np.uint8)
    local = write_tif(tmp_path / "lc.tif", codes, "EPSG:32649", Affine(30, 0, 500_000, 0, -30, 3_400_000), 0)
    size = local.stat().st_size
    s3.put_file(str(local), f"{BUCKET}/window/lc.tif")
    remote = objstore.RemotePath.of(f"s3://{BUCKET}/window/lc.tif")
    side = 4096 * 30
    grid = Grid(CRS.from_epsg(32649), 30.0, 8, (500_000, 3_400_000 - side, 500_000 + side, 3_400_000),
                chunk_size=256)
    s3_server.counts(reset=True)
    assert open_info(remote)["shape"] == (4096, 4096)  # the header only
    header = s3_server.counts(reset=True)
    window = WarpedRaster(str(remote), grid, np.dtype(np.uint8), 0)[768:1024, 512:768]
    read = s3_server.counts(reset=True)
    assert np.array_equal(window, codes[768:1024, 512:768])
    # A 256-px window, 1/256 of the pixels: a few ranged GETs (each reading objstore.READ_BLOCK
    # ahead), not the 16 MB object.
    assert header["bytes_got"] + read["bytes_got"] < size / 8, (header, read, size)
    assert read["GET"] <= 4 and read["PUT"] == 0, read
    # Only our bucket is asked (rasterio checks an opener by the size of "test/test": a filesystem
    # would ask a bucket named "test", someone else's).
    asked = {k for k, n in (header + read).items() if k.startswith("bucket ") and n}
    assert asked == {f"bucket {BUCKET}"}, asked
    # Two opens of one object are two files: rasterio keys the files its opener opened in a dict
    # that a Dask worker's threads share, and fsspec's files of one object compare equal, so
    # tasks reading one object at once closed each other's file (a worker's crash).
    opener = objstore.rasterio_options(remote)["opener"]
    with opener.open(remote.url) as a, opener.open(remote.url) as b:
        assert a != b and len({a, b}) == 2 and a.read(4) == b.read(4) == local.read_bytes()[:4]
    assert objstore.checksum(remote.url) == file_checksum(local)  # the same bytes, the same checksum
    # The object replaced (another process's upload): this process reads the new bytes, not what
    # it read of the old one.
    write_tif(local, codes[::-1].copy(), "EPSG:32649", Affine(30, 0, 500_000, 0, -30, 3_400_000), 0)
    s3.put_file(str(local), f"{BUCKET}/window/lc.tif")
    window = WarpedRaster(str(remote), grid, np.dtype(np.uint8), 0)[768:1024, 512:768]
    assert np.array_equal(window, codes[::-1][768:1024, 512:768])
    assert pickle.loads(pickle.dumps(remote)) == remote and str(remote) == remote.url


@pytest.mark.slow  # the moto S3 server
def test_a_read_whose_connection_stalls_is_given_up_and_retried(s3_server, s3, tmp_path: Path,
                                                                 monkeypatch) -> None:
    from affine import Affine
    from pyproj import CRS

    from ecodask.io.rasters import WarpedRaster
    from ecodask.science.grid import Grid

    codes = np.random.default_rng(4).integers(1, 10, (512, 512), dtype=np.uint8)
    local = write_tif(tmp_path / "lc.tif", codes, "EPSG:32649", Affine(30, 0, 500_000, 0, -30, 3_400_000), 0)
    s3.put_file(str(local), f"{BUCKET}/stall/lc.tif")
    grid = Grid(CRS.from_epsg(32649), 30.0, 8, (500_000, 3_400_000 - 512 * 30, 500_000 + 512 * 30, 3_400_000),
                chunk_size=256)
    monkeypatch.delenv("GDAL_HTTP_TIMEOUT", raising=False)
    monkeypatch.setitem(objstore.HTTP_TIMEOUTS, "GDAL_HTTP_TIMEOUT", "2")  # 120 s by default: short
    s3_server.counts(reset=True)
    s3_server.stall_reads(1)  # held until the server stops, unless the client gives up
    got: dict[str, np.ndarray] = {}
    reader = threading.Thread(
        target=lambda: got.update(window=WarpedRaster(f"s3://{BUCKET}/stall/lc.tif", grid, np.dtype(np.uint8),
                                                      0)[256:512, 0:256]), daemon=True)
    reader.start()
    wait_until(lambda: not reader.is_alive(), 30, "a read from a bucket with one stalled request")
    assert np.array_equal(got["window"], codes[256:512, 0:256])
    counts = s3_server.counts()
    assert counts["stalled"] == 1 and counts["GET"] >= 2, counts


def test_gdal_reads_objects_with_the_endpoint_botocore_uses(monkeypatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://minio.example.org:9000/")
    config = objstore.gdal_config()
    assert (config["AWS_S3_ENDPOINT"], config["AWS_HTTPS"], config["AWS_VIRTUAL_HOSTING"]) == (
        "minio.example.org:9000", "YES", "FALSE")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000")  # the S3 one first
    assert objstore.gdal_config()["AWS_S3_ENDPOINT"] == "127.0.0.1:9000"
    assert objstore.gdal_config()["AWS_HTTPS"] == "NO"
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    assert "AWS_S3_ENDPOINT" not in objstore.gdal_config()  # AWS itself
    # A stalled request is given up (and retried) after 2 minutes, or what the environment says.
    monkeypatch.delenv("GDAL_HTTP_TIMEOUT", raising=False)
    assert objstore.gdal_config()["GDAL_HTTP_TIMEOUT"] == "120"
    monkeypatch.setenv("GDAL_HTTP_TIMEOUT", "600")
    assert objstore.gdal_config()["GDAL_HTTP_TIMEOUT"] == "600"
    assert objstore.gdal_path("s3://bucket/lc/2000.tif") == "/vsis3/bucket/lc/2000.tif"
    assert objstore.gdal_path("/data/lc.tif") is None


def test_gdal_reads_azure_and_google_objects_where_it_finds_the_credentials(monkeypatch) -> None:
    for name in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY",
                 "AZURE_STORAGE_SAS_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST",
                 "FSSPEC_GS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(objstore.fsspec.config.conf, "gs", {})
    # Credentials GDAL does not read (a service principal, Google's other default credentials): fsspec.
    monkeypatch.setenv("AZURE_STORAGE_CLIENT_ID", "principal")
    assert objstore.gdal_path("az://c/lc.tif") is None and objstore.gdal_path("gs://b/lc.tif") is None
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", "acct")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", "a2V5")
    assert objstore.gdal_path("az://c/lc/2000.tif") == "/vsiaz/c/lc/2000.tif"
    config = objstore.gdal_config("az")
    assert (config["AZURE_STORAGE_ACCOUNT"], config["AZURE_STORAGE_ACCESS_KEY"]) == ("acct", "a2V5")
    assert "AWS_S3_ENDPOINT" not in config and config["GDAL_HTTP_MAX_RETRY"] == "8"
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:4443")
    assert objstore.gdal_path("gs://b/lc.tif") is None  # a local server, but gcsfs would sign
    monkeypatch.setenv("FSSPEC_GS_TOKEN", "anon")
    assert objstore.gdal_path("gs://b/lc.tif") == "/vsigs/b/lc.tif"
    config = objstore.gdal_config("gs")
    assert (config["CPL_GS_ENDPOINT"], config["GS_NO_SIGN_REQUEST"]) == ("http://127.0.0.1:4443/", "YES")


@pytest.mark.slow  # the moto S3 server
def test_sync_up_and_down_mirror_a_tree(s3, tmp_path: Path) -> None:
    src = tmp_path / "src" / "store.zarr"
    (src / "a" / "c").mkdir(parents=True)
    (src / "zarr.json").write_text("{}")
    (src / "a" / "c" / "0").write_bytes(b"\1" * 100)
    (src / "a" / "c" / "1").write_bytes(b"\2" * 100)
    url = f"s3://{BUCKET}/sync/store.zarr"
    assert objstore.sync_up(src, url) == 3
    assert objstore.sync_up(src, url) == 0  # nothing changed: nothing uploaded
    (src / "a" / "c" / "1").unlink()
    (src / "a" / "c" / "0").write_bytes(b"\3" * 100)
    assert objstore.sync_up(src, url) == 1
    assert set(_tree(s3, url)) == {"zarr.json", "a/c/0"}
    dst = tmp_path / "dst" / "store.zarr"
    (dst / "stale").mkdir(parents=True)
    (dst / "stale" / "x").write_text("old")
    assert objstore.sync_down(url, dst) == 2
    files = sorted(f.relative_to(dst).as_posix() for f in dst.rglob("*") if f.is_file())
    assert files == ["a/c/0", "zarr.json"]
    assert (dst / "a" / "c" / "0").read_bytes() == b"\3" * 100
    assert objstore.sync_down(url, dst) == 0
    objstore.sync_up(src / "zarr.json", f"s3://{BUCKET}/sync/one.json")  # a single file
    assert objstore.sync_down(f"s3://{BUCKET}/sync/one.json", tmp_path / "one.json") == 1
    with pytest.raises(FileNotFoundError):
        objstore.sync_down(f"s3://{BUCKET}/sync/none", tmp_path / "none")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The tiny region with county statistics, its stages run one by one with local inputs and
    output: the reference run every remote run of this module is compared with (its configuration;
    built once, read only)."""
    local_cfg = make_tiny_region(tmp_path_factory.mktemp("reference") / "local", cluster=CLUSTER)
    _edit(local_cfg, county_stats=_county_stats(local_cfg.parent).name)
    run_stages(load_config(local_cfg), "ingest", "transitions_esv", "driver_analysis", "compensation")
    return local_cfg


def _reference_and_remote(s3, local_cfg: Path, folder: Path, out: str, **changes) -> tuple[Path, Path, dict]:
    """The reference run's tables folder, the region's inputs uploaded to the bucket (under
    ``folder``'s name), and a configuration naming only URLs, writing to ``out`` (its path and
    mapping; ``changes`` set)."""
    inputs = f"s3://{BUCKET}/{folder.name}/inputs"
    doc = inputs_in_bucket(s3, local_cfg, inputs, (*TINY_INPUTS, "county_stats.csv"))
    doc |= {"county_stats": f"{inputs}/county_stats.csv", "output": out, **changes}
    remote_cfg = folder / "remote" / "config.yaml"
    remote_cfg.parent.mkdir()
    remote_cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    return local_cfg.parent / "out" / "tables", remote_cfg, doc


def _same_tables(s3, out: str, local_tables: Path) -> dict[str, bytes]:
    """The run's tree in the bucket, after checking its tables equal the local run's byte for byte
    (a GeoPackage records when it was written: not compared)."""
    bucket = _tree(s3, out)
    tables = {k.removeprefix("tables/"): v for k, v in bucket.items() if k.startswith("tables/")}
    assert set(tables) == {f.name for f in local_tables.iterdir()}
    assert {"compensation.csv", "esv_by_service.csv", "geodetector_factor.csv"} <= set(tables)
    differ = {name for name, data in tables.items() if data != (local_tables / name).read_bytes()}
    assert differ <= {"compensation.gpkg"}, differ
    return bucket


@pytest.mark.slow  # the moto S3 server, a Prefect server, flows on a LocalCluster of worker processes
def test_remote_run_publishes_stages_and_resumes_after_a_failure(s3, s3_server, prefect_server, reference,
                                                                 tmp_path: Path, caplog, capfd) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="prefect")  # make test runs Prefect at WARNING
    inputs, out = f"s3://{BUCKET}/{tmp_path.name}/inputs", f"s3://{BUCKET}/runs/tiny"
    local_tables, remote_cfg, doc = _reference_and_remote(
        s3, reference, tmp_path, out, work_dir="work1",
        compensation={"footprint_table": "no_such_table"})  # only compensation reads it

    cfg = load_config(remote_cfg)  # validating writes nothing to the output
    assert cfg.remote_output == out and cfg.output == tmp_path / "remote" / "work1" / "output"
    assert cfg.landcover.years[2000] == objstore.RemotePath.of(f"{inputs}/lc_2000.tif")  # read in place
    assert cfg.zones.path.is_file() and not cfg.output.exists() and not s3.exists(out)  # fetched
    assert cfg.model_dump(mode="json")["zones"]["path"] == f"{inputs}/zones.gpkg"

    with pytest.raises(CatalogError, match="no_such_table"):
        run_flow(str(remote_cfg))
    manifests = f"{BUCKET}/runs/tiny/.ecodask/stages"
    assert sorted(p.rsplit("/", 1)[1] for p in s3.ls(manifests)) == [
        "driver_analysis.json", "ingest.json", "transitions_esv.json"]
    keys = resume.plan(cfg)
    layer = {s: f"stages/{s}/{keys[s][:16]}" for s in NAMES}  # each stage's arrays, by its key
    ingest = json.loads(s3.cat_file(f"{manifests}/ingest.json"))
    assert ingest["outputs"] == {"store": layer["ingest"]}  # paths relative to the output
    # The arrays were written to the bucket by the tasks; none in the work folder.
    assert s3.exists(f"{BUCKET}/runs/tiny/{layer['transitions_esv']}/analysis/esv_density/zarr.json")
    assert not (cfg.output / "store.zarr").exists() and not s3.exists(f"{BUCKET}/runs/tiny/store.zarr")
    assert not s3.exists(f"{BUCKET}/runs/tiny/run.json")

    # The stage fixed; a fresh work folder (another machine): the finished stages are skipped, their
    # outputs downloaded for the failed stage to read.
    doc["work_dir"] = "work2"
    doc["compensation"] = {"footprint_table": "hubei_2017"}
    remote_cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    run_flow(str(remote_cfg))
    keys = resume.plan(load_config(remote_cfg))  # compensation's (and figures') keys changed
    layer = {s: f"stages/{s}/{keys[s][:16]}" for s in NAMES}
    record = json.loads(s3.cat_file(f"{BUCKET}/runs/tiny/run.json"))
    assert record["stage_ran"] == {"ingest": False, "transitions_esv": False, "driver_analysis": False,
                                   "compensation": True, "figures": True}  # figures: never reached before
    assert record["outputs"]["store"] == f"{out}/{layer['ingest']}"
    assert record["inputs"]["zones.path"]["path"] == f"{inputs}/zones.gpkg"
    assert not (tmp_path / "remote" / "work2" / "output" / "store.zarr").exists()  # never downloaded
    fetched = {f.name for f in (tmp_path / "remote").rglob("*") if f.is_file()}
    assert not fetched & {"lc_2000.tif", "lc_2010.tif", "elev.tif"}  # the rasters were never copied
    bucket = _same_tables(s3, out, local_tables)
    assert {f"{s}.json" for s in NAMES} == {k.rsplit("/", 1)[1] for k in bucket
                                            if k.startswith(".ecodask/stages/")}
    pointer = json.loads(bucket[".ecodask/current.json"])  # the run, committed last
    assert [(s["stage"], s["layer"]) for s in pointer["stages"]] == [(s, layer[s]) for s in NAMES]
    kept = {layer[s].split("/")[2] for s in NAMES}
    assert {k.split("/")[2] for k in bucket if k.startswith("stages/")} == kept  # nothing else left
    assert any(k.startswith(f"{layer['transitions_esv']}/esv/c/") for k in bucket)
    assert "report.html" in bucket and "figures/esv_2000.png" in bucket
    # Each layer's metadata is consolidated in its zarr.json: a reader opens the run's store (five
    # layers, both grids) without listing anything: 50 GETs (the groups' metadata and the
    # coordinates' values), where it took 123 GETs and 2 LISTs before.
    for s in NAMES:
        assert "consolidated_metadata" in json.loads(bucket[f"{layer[s]}/zarr.json"]), s
    s3_server.counts(reset=True)
    pix, ana = open_store(committed(out))
    asked = s3_server.counts()
    assert {"landcover", "zone", "esv"} <= set(pix.data_vars) and "esv_density" in ana.data_vars
    assert asked["LIST"] == 0 and asked["GET"] <= 60, asked

    # A rerun trusts the bucket only as each stage published it (sizes and ETags in its manifest):
    # a chunk gone and a table replaced send their stages round again, nothing else.
    again = load_config(remote_cfg)
    assert resume.pending(again)[0] == {}
    # Bytes rotted at rest (size and ETag as recorded: no listing shows it) are found by reading
    # back what the rerun would trust (every chunk here, as `ecodask run --verify` does; a sample
    # of them by default).
    rotted = next(k for k in bucket if k.startswith(f"{layer['transitions_esv']}/esv/c/"))
    s3_server.rot(BUCKET, f"runs/tiny/{rotted}")
    s3.invalidate_cache()
    assert set(resume.pending(again, chunks="all")[0]) == {"transitions_esv"}
    _, diffs = resume._check(again, "transitions_esv", resume.plan(again)["transitions_esv"], "all")
    # (s3fs's client checks the CRC moto recorded at upload and refuses the bytes: a failed read)
    assert len(diffs) == 1, diffs
    assert diffs[0].startswith(f"{rotted}: could not be read back (FlexibleChecksumError"), diffs
    s3_server.rot(BUCKET, f"runs/tiny/{rotted}")  # the same byte flipped back
    assert resume.pending(again, chunks="all")[0] == {}
    chunk = next(k for k in bucket if k.startswith(f"{layer['ingest']}/landcover/c/"))
    s3.rm_file(f"{BUCKET}/runs/tiny/{chunk}")
    owner = next(s for s in NAMES if f"{layer[s]}/files/tables/esv_by_service.csv" in json.loads(
        bucket[f".ecodask/stages/{s}.json"])["files"])
    s3.pipe_file(f"{BUCKET}/runs/tiny/{layer[owner]}/files/tables/esv_by_service.csv", b"edited\n")
    assert set(resume.pending(again)[0]) == {"ingest", owner}
    done, diffs = resume._check(again, "ingest", resume.plan(again)["ingest"])
    assert done is None and diffs == [f"{chunk}: missing"]

    # Credentials: nowhere in what was written or logged.
    secrets = (KEY_ID, SECRET, TOKEN)
    written = [v for k, v in bucket.items() if k.endswith(".json")]
    written += [f.read_bytes() for f in (tmp_path / "remote").rglob("*.json")]
    assert all(s.encode() not in data for s in secrets for data in written)
    logged = caplog.text + "".join(capfd.readouterr())
    assert "published to" in logged and "downloaded its outputs" in logged
    assert not any(s in logged for s in secrets)


@pytest.mark.slow  # the moto S3 server, a Prefect server, a flow on a LocalCluster of worker processes
def test_a_remote_run_rides_out_a_bucket_failing_a_share_of_requests(s3_server, s3, prefect_server, reference,
                                                                     tmp_path: Path) -> None:
    out = f"s3://{BUCKET}/runs/faulty"
    local_tables, remote_cfg, _ = _reference_and_remote(s3, reference, tmp_path, out, work_dir="work")
    s3_server.counts(reset=True)
    # 503 SlowDown and 500 InternalError in turn, on 3 % of the requests: each costs the client
    # a wait of ~0.5 s before it asks again (botocore's backoff; s3fs's after that).
    s3_server.faults(0.03, seed=7)
    try:
        run_flow(str(remote_cfg))  # reads the rasters' windows on its worker, publishes each stage
    finally:
        s3_server.faults(0)
    counts = s3_server.counts()
    assert counts["faults"] >= 10 and counts["GET"] >= 20 and counts["PUT"] >= 20, counts
    bucket = _same_tables(s3, out, local_tables)  # every answer retried: nothing lost
    record = json.loads(bucket["run.json"])
    assert all(record["stage_ran"].values())


@pytest.mark.slow  # the moto S3 server, a Prefect server, whole runs as subprocesses, two killed
def test_a_killed_remote_run_resumes_and_the_bucket_shows_the_previous_run_until_the_next_commits(
        s3_server, s3, prefect_api, reference, tmp_path: Path) -> None:
    from ecodask.io import layers

    out = f"s3://{BUCKET}/runs/whole"
    local_tables, remote_cfg, doc = _reference_and_remote(s3, reference, tmp_path, out, work_dir="work")
    env = {**prefect_api, **{k: v for k, v in os.environ.items() if k.startswith("AWS_")}}
    # Run A is killed with its Dask workers (the whole process group, as a machine going down would)
    # as soon as its first stage is published: the bucket's lock stays behind, held by a dead pid.
    ingest = f"{BUCKET}/runs/whole/.ecodask/stages/ingest.json"
    kill_once(ecodask_run(remote_cfg, env), lambda: objects_under(s3, ingest),
              "the ingest stage published to the bucket")
    s3.invalidate_cache()
    assert s3.exists(bucket_lock.lock_url(out).removeprefix("s3://"))  # a dead run's lock
    assert not s3.exists(f"{BUCKET}/runs/whole/run.json") and layers.pointer(out) is None  # never finished
    finished_ok(ecodask_run(remote_cfg, env))  # run A again: resumes where it stopped, commits
    record = json.loads(s3.cat_file(f"{BUCKET}/runs/whole/run.json"))
    assert record["stage_ran"]["ingest"] is False and record["stage_ran"]["figures"] is True, record
    _same_tables(s3, out, local_tables)
    assert_same_arrays(local_tables.parent / "store.zarr", committed(out))
    first = layers.pointer(out)
    assert first is not None
    values = {(i, name): var.values for i, ds in enumerate(open_store(committed(out)))
              for name, var in ds.data_vars.items()}
    view = _tree(s3, f"{out}/tables")

    # Run B changes a setting of transitions_esv (a new key for it and the stages after it) and is
    # killed while it writes that stage's chunks: the pointer, A's layers and the tables' view stay.
    # (A stage redone with the same key, `--force`, writes beside the committed layer, never in it:
    # test_a_stage_redone_with_the_committed_key_writes_beside_the_committed_layer.)
    doc["zones"] = {**doc["zones"], "min_coverage": 0.5}
    remote_cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    keys = resume.plan(load_config(remote_cfg))
    new_layer = f"{BUCKET}/runs/whole/stages/transitions_esv/{keys['transitions_esv'][:16]}/esv/c"
    old_layer = next(s["layer"] for s in first["stages"] if s["stage"] == "transitions_esv")
    assert not new_layer.startswith(f"{BUCKET}/runs/whole/{old_layer}")
    s3_server.slow_puts(0.05)
    try:
        kill_once(ecodask_run(remote_cfg, env), lambda: objects_under(s3, new_layer),
                  "run B's first ESV chunks in the bucket")
    finally:
        s3_server.slow_puts(0)
    s3.invalidate_cache()
    assert layers.pointer(out) == first  # readers still resolve run A ...
    for i, ds in enumerate(open_store(committed(out))):  # ... whole: every array as A wrote it
        assert {(i, n) for n in ds.data_vars} == {k for k in values if k[0] == i}
        for name, var in ds.data_vars.items():
            np.testing.assert_array_equal(var.values, values[i, name], err_msg=name)
    assert _tree(s3, f"{out}/tables") == view

    finished_ok(ecodask_run(remote_cfg, env))  # run B again: resumes, commits; A's superseded layers go
    second = layers.pointer(out)
    assert second != first
    assert {s["stage"]: s["key"] for s in second["stages"]} == keys
    s3.invalidate_cache()
    assert not s3.exists(f"{BUCKET}/runs/whole/{old_layer}")
    assert s3.exists(f"{BUCKET}/runs/whole/{second['stages'][0]['layer']}/zarr.json")  # ingest's: kept


def test_objects_are_read_back_in_batches_bounded_by_count_and_bytes(monkeypatch) -> None:
    monkeypatch.setattr(objstore, "READ_BATCH", 3)
    monkeypatch.setattr(objstore, "READ_BATCH_BYTES", 100)
    sizes = {"a": 10, "b": 10, "c": 10, "d": 10, "e": 90, "f": 150, "g": 1}
    assert objstore._batches(list(sizes), sizes) == [["a", "b", "c"], ["d", "e"], ["f"], ["g"]]
    assert objstore._batches([], {}) == []
