"""Test data made by helpers: a tiny region on an exact grid, and paths to the shared real data."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import dask
import geopandas as gpd
import numpy as np
import pytest
import rasterio
import yaml
from affine import Affine
from hypothesis import settings
from shapely import box

from ecodask.science.grid import CHINA_ALBERS

from helpers import deadline, stop_group, wait_until

# gcsfs asks a Google Cloud Storage bucket for its type over gRPC first (zonal, hierarchical); the
# local server of the tests (gcs_server.py) speaks HTTP only, so each ask would wait out a minute.
# Read by gcsfs when it is imported: set before, here and for every process the tests start.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

# Property tests explore new examples on every local run; in CI they replay the same ones, so that a
# submission's result does not depend on the draw (a case found locally becomes a test of its own).
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules that hold slow tests first, each module's tests in their order. ``make test``
    hands whole modules to its two workers (``--dist loadfile``) in this order: the long ones
    start at once and the short ones fill both workers' ends, where alphabetical order left a
    long module running alone at the end (~140 s of one idle core)."""
    slow = {item.module for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.module not in slow)  # stable: the order within each group kept


# The project's reference data (published figures, real boundaries, a real DEM) lives beside the
# repository; ECODASK_SHARED_DATA overrides. Missing: skipped locally, a failure in CI.
SHARED_DATA = Path(os.environ.get("ECODASK_SHARED_DATA",
                                  Path(__file__).resolve().parents[2] / "shared" / "data"))

# Tiny region: 320 x 256 pixels of 30 m, origin on a 960 m multiple; two counties split at column 160.
X0, Y1, RES, COLS, ROWS = 960_000.0, 3_360_000.0, 30.0, 320, 256
SPLIT_COL = 160


def shared(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"reference data file {path} is missing")
        pytest.skip(f"reference data file {name} not available")
    return path


def tiny_landcover(seed: int, year_index: int, shape: tuple[int, int] = (ROWS, COLS)) -> np.ndarray:
    """Patchy CLCD codes 1..9 (4 x 4 pixel blocks), a few blocks changing per year index."""
    rng = np.random.default_rng(seed)
    codes = [1, 1, 1, 2, 2, 3, 4, 5, 7, 8, 9]
    blocks = rng.choice(codes, size=(shape[0] // 4, shape[1] // 4)).astype(np.uint8)
    change = rng.random(blocks.shape) < 0.05 * year_index
    blocks[change] = 8
    return np.kron(blocks, np.ones((4, 4), np.uint8))


def write_tif(path: Path, data: np.ndarray, crs: str, transform: Affine, nodata: float | None) -> Path:
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0], count=1,
                       dtype=data.dtype, crs=crs, transform=transform, nodata=nodata,
                       tiled=True, blockxsize=128, blockysize=128) as dst:
        dst.write(data, 1)
    return path


#: The tiny region's cluster: one worker of two threads in the run's process (a real scheduler and
#: task stream; no process start-up, ~20 s of a whole run here). Tests of what processes change
#: (killed workers, errors pickled back, tasks on other pids) ask for :data:`PROCESSES`. No memory
#: limit of its own: a worker of threads measures the whole process it lives in (a test session's:
#: over 1.6 GB, it paused at 80 % of 2 GiB and never ran another task).
THREADS = {"kind": "local", "n_workers": 1, "threads_per_worker": 2, "processes": False}
#: A run's default kind of cluster: worker processes under nannies, the scheduler in a process.
PROCESSES = {"kind": "local", "n_workers": 2, "threads_per_worker": 1, "memory_limit": "2GiB"}


def make_tiny_region(folder: Path, years=(2000, 2010), seed: int = 0, shape: tuple[int, int] = (ROWS, COLS),
                     **overrides) -> Path:
    """Write a tiny region (GeoTIFFs on the exact grid, counties in the grid CRS) and its config
    (cluster :data:`THREADS` unless overridden); ``shape`` (rows, columns of 30 m pixels, multiples
    of 32) makes a larger one of the same kind."""
    folder.mkdir(parents=True, exist_ok=True)
    rows, cols = shape
    transform = Affine(RES, 0, X0, 0, -RES, Y1)
    lc = {}
    for i, year in enumerate(years):
        lc[year] = write_tif(folder / f"lc_{year}.tif", tiny_landcover(seed, i, shape), CHINA_ALBERS,
                             transform, 0)
    xm, y0, x1 = X0 + cols * SPLIT_COL // COLS * RES, Y1 - rows * RES, X0 + cols * RES
    zones = gpd.GeoDataFrame(
        {"code": [420102, 420101], "name": ["East", "West"]},
        geometry=[box(xm, y0, x1, Y1), box(X0, y0, xm, Y1)],
        crs=CHINA_ALBERS,
    )
    zones.to_file(folder / "zones.gpkg", driver="GPKG")
    elev = (np.add.outer(np.arange(rows), np.arange(cols)) / 4.0).astype(np.float32)
    write_tif(folder / "elev.tif", elev, CHINA_ALBERS, transform, -9999.0)
    cfg = {
        "name": "tiny",
        "grid": {"crs": CHINA_ALBERS, "resolution": 30, "analysis_factor": 32, "chunk_size": 128},
        "landcover": {"scheme": "clcd", "years": {y: p.name for y, p in lc.items()}},
        "esv": {"table": "xinzhou_2023"},
        "zones": {"path": "zones.gpkg", "id_field": "code", "name_field": "name"},
        "drivers": {"elevation": {"path": "elev.tif", "kind": "continuous"}},
        "output": "out",
        "cluster": THREADS,
    }
    for key, value in overrides.items():
        cfg[key] = value
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture
def tiny_region(tmp_path: Path) -> Path:
    return make_tiny_region(tmp_path / "region")


@pytest.fixture
def dask_threads(request):
    """Dask's threaded scheduler for the test, with the module's ``DASK_THREADS`` threads (default 2);
    a module takes it for every test with ``pytestmark = pytest.mark.usefixtures("dask_threads")``."""
    with dask.config.set(scheduler="threads", num_workers=getattr(request.module, "DASK_THREADS", 2)):
        yield


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory):
    """A real Prefect server (``prefect server start``, UI served) on a free localhost port with its
    own home and SQLite database; yields the environment for processes that talk to it
    (``PREFECT_API_URL`` set), shared by every test that needs a server."""
    home = tmp_path_factory.mktemp("prefect-home")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_LOGGING_LEVEL": "WARNING",
           "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
           "PREFECT_UI_ENABLED": "true", "PREFECT_UI_API_URL": url,
           "PREFECT_UI_STATIC_DIRECTORY": str(home / "ui")}  # the UI bundle is copied here
    env.pop("PREFECT_API_URL", None)
    log = (home / "server.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, start_new_session=True,
                              stdout=log, stderr=subprocess.STDOUT)

    def log_tail() -> str:
        return (home / "server.log").read_text()[-3000:]

    def healthy() -> bool:
        if server.poll() is not None:
            pytest.fail(f"the Prefect server exited with {server.returncode}")
        try:
            urllib.request.urlopen(f"{url}/health", timeout=deadline(2))
        except OSError:
            return False
        return True

    try:
        wait_until(healthy, 120, "the Prefect server answering", interval=0.5)
    except pytest.fail.Exception as exc:
        stop_group(server, signal.SIGKILL)
        pytest.fail(f"the Prefect server did not start ({exc}):\n{log_tail()}")
    yield {**env, "PREFECT_API_URL": url}
    stop_group(server, signal.SIGTERM, 20)
    log.close()


@pytest.fixture(scope="module")
def prefect_server(prefect_api: dict[str, str]):
    """This process's Prefect client pointed at the session's server (flows run in the test)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: prefect_api["PREFECT_API_URL"]}):
        yield prefect_api["PREFECT_API_URL"]


def png_pixels(path: Path) -> np.ndarray:
    """An RGB PNG's pixels as uint8 (rows, cols, 3), after checking the file is a PNG."""
    from matplotlib.image import imread

    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    img = imread(path)
    return np.round(img[..., :3] * 255).astype(np.uint8)


def assert_figure(path: Path, min_width: int = 600, min_height: int = 400,
                  min_colours: int = 8) -> np.ndarray:
    """The PNG at ``path`` is a readable figure: at least the size given, not blank (many colours,
    ink on at least 5 % of it); returns its pixels."""
    img = png_pixels(path)
    h, w, _ = img.shape
    assert w >= min_width and h >= min_height, f"{path.name}: {w} x {h} px"
    rgb = img.astype(np.int32)
    colours = np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2])  # one int per colour
    assert len(colours) >= min_colours, f"{path.name}: {len(colours)} colours, blank?"
    ink = (img.astype(int).sum(axis=2) < 3 * 245).mean()
    assert ink > 0.05, f"{path.name}: {ink:.1%} of it has ink"
    return img


def has_colour(img: np.ndarray, hex_colour: str, min_pixels: int = 20, tol: int = 0) -> bool:
    """Whether at least ``min_pixels`` pixels have this colour (#rrggbb), each channel within ``tol``."""
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)], int)
    return int((np.abs(img.astype(int) - rgb) <= tol).all(axis=2).sum()) >= min_pixels


#: Debian's Chromium (``make test`` installs it where it may) and its flags for a headless sandbox.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def need_chromium() -> None:
    """Fail in CI (``make test`` installs Chromium there), else skip, when Chromium is missing."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")


#: What the command line sets for its process (Prefect reads them when it sets up logging).
_CLI_LOGGING = ("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "PREFECT_LOGGING_ROOT_LEVEL")


@pytest.fixture(autouse=True)
def _prefect_console_level_restored():
    """The command line sets Prefect's console and root levels for its process (:data:`_CLI_LOGGING`);
    a command invoked inside the test process must not leave them for the next test."""
    before = {k: os.environ.get(k) for k in _CLI_LOGGING}
    yield
    for key, value in before.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
