"""Lazy, picklable views of source rasters on the run's grid, for ``dask.array.from_array``.

Each view reads only the window a chunk needs, opening the file in the task that reads it, so
a cluster's workers read and reproject in parallel and nothing is loaded whole.

A source averaged (or its mode taken) onto the grid is warped chunk by chunk from the source
window under the chunk's footprint (:func:`source_window`), with GDAL's exact transformer; outside
the source counts as no data, like the source's own no data. So a cell at the source's edge is the
average (the mode) of the source pixels it covers, whatever the chunking: the chunks equal the
whole grid warped in one piece (``tests/test_ingest.py``).
"""

from __future__ import annotations

import contextlib
import math
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.features import rasterize
from rasterio.io import MemoryFile
from rasterio.session import DummySession
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from shapely import STRtree, box, from_wkb

from ecodask.errors import InputError, problem
from ecodask.io import objstore
from ecodask.science.grid import Grid


@contextlib.contextmanager
def open_raster(path: str | Path) -> Iterator[rasterio.io.DatasetReader]:
    """``rasterio.open`` of a local file or of an object in a bucket (a URL or a
    :class:`~ecodask.io.objstore.RemotePath`). An S3, Azure or Google Cloud Storage object is read by
    GDAL's own client (``/vsis3/``, ``/vsiaz/``, ``/vsigs/``, where GDAL finds the credentials;
    configured by :func:`ecodask.io.objstore.gdal_config`: it asks for the header and
    the tiles a read needs, several ranges at once; 3x faster than a Python opener at 30 ms a
    request, BENCHMARKS.md), with nothing of it kept between opens (``CPL_VSIL_CURL_NON_CACHED``:
    an object replaced since an earlier read in this process is read anew; one more request an
    open, for the header); an object of another protocol through
    :func:`ecodask.io.objstore.rasterio_options`. An object's neighbours are not looked for (no
    ``.aux.xml`` or ``.ovr`` beside it); a COG holds its overviews and nodata itself."""
    vsi = objstore.gdal_path(path)
    if vsi is not None:
        proto = objstore.protocol(str(path)) or ""
        with (gdal_env(**objstore.gdal_config(proto), CPL_VSIL_CURL_NON_CACHED=vsi),
              rasterio.open(vsi) as src):
            yield src
        return
    options = objstore.rasterio_options(path)
    if not options:
        with gdal_env(), rasterio.open(path) as src:
            yield src
        return
    with gdal_env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"), rasterio.open(str(path), **options) as src:
        yield src


def gdal_env(**options: object) -> rasterio.Env:
    """A rasterio environment with GDAL's ``options`` that leaves credentials to GDAL, as rasterio
    itself does unless ``AWS_ACCESS_KEY_ID`` is in the environment: then each environment rasterio
    opens (every ``rasterio.open`` outside one, every ``reproject``) makes a boto3 session only to
    hand GDAL the same variables (8 ms of Python alone, more on a busy worker): a third of the
    reading tasks' thread time in a bucket run's ingest (BENCHMARKS.md). ``rasterize`` still makes
    one per burn, whatever environment is active: the in-memory dataset it burns into opens an
    environment of its own (rasterio 1.5's ``MemoryDataset``). GDAL reads the ``AWS_*`` variables,
    the AWS files and the instance's role itself."""
    return rasterio.Env(session=DummySession(), **options)


def _slices(key: tuple[slice, ...], shape: tuple[int, int]) -> tuple[int, int, int, int]:
    rows, cols = key[-2], key[-1]
    r0, r1, _ = rows.indices(shape[0])
    c0, c1, _ = cols.indices(shape[1])
    return r0, r1, c0, c1


def _aligned(src: rasterio.io.DatasetReader, grid: Grid) -> tuple[int, int] | None:
    """(row, col) offset of the grid's origin in the source, if the source is on the grid."""
    if src.crs is None or not src.crs.equals(grid.crs):
        return None
    t, g = src.transform, grid.transform
    if not (np.isclose(t.a, g.a) and np.isclose(t.e, g.e) and t.b == 0 and t.d == 0):
        return None
    col, row = (g.c - t.c) / t.a, (g.f - t.f) / t.e
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    return round(row), round(col)


#: Source pixels read beyond a chunk's footprint for the warp's rounding (the chunks then equal
#: the whole grid warped at once: ``tests/test_ingest.py``, ``tests/test_terrain.py``).
WARP_MARGIN = 2


def source_window(src: rasterio.io.DatasetReader, crs: object, dst_t: Affine, h: int, w: int, dtype: np.dtype,
                  halo: int = 0, margin: int = WARP_MARGIN) -> tuple[np.ndarray | None, Affine]:
    """Band 1 of ``src`` under the footprint of an ``h`` x ``w`` window of a grid in ``crs`` whose
    top-left pixel has the transform ``dst_t``, as floats of ``dtype`` with NaN for no data and for
    what lies outside the source, and the transform of that array; None when the footprint misses
    the source. Read beyond the footprint: ``halo`` source pixels all round, and ``margin`` more
    for the warp's rounding unless the footprint's edges fall on the source's pixel edges (a
    source on the grid's pixels: its window is the footprint exactly, a tile read no more)."""
    left, top = dst_t.c, dst_t.f
    right, bottom = left + dst_t.a * w, top + dst_t.e * h
    xmin, ymin, xmax, ymax = transform_bounds(crs, src.crs, min(left, right), min(top, bottom),
                                              max(left, right), max(top, bottom), densify_pts=21)
    inv = ~src.transform
    cols, rows = zip(*(inv @ (x, y) for x in (xmin, xmax) for y in (ymin, ymax)), strict=True)
    edges = (min(rows), max(rows), min(cols), max(cols))
    if all(abs(e - round(e)) < 1e-6 for e in edges):  # on the source's pixel edges: no rounding
        edges, margin = tuple(float(round(e)) for e in edges), 0
    pad = halo + margin
    wr0, wr1 = math.floor(edges[0]) - pad, math.ceil(edges[1]) + pad
    wc0, wc1 = math.floor(edges[2]) - pad, math.ceil(edges[3]) + pad
    sr0, sr1 = max(wr0, 0), min(wr1, src.height)
    sc0, sc1 = max(wc0, 0), min(wc1, src.width)
    if sr1 <= sr0 or sc1 <= sc0:
        return None, src.transform
    data = src.read(1, window=Window(sc0, sr0, sc1 - sc0, sr1 - sr0), masked=True, out_dtype=dtype)
    z = np.full((wr1 - wr0, wc1 - wc0), np.nan, dtype)
    z[sr0 - wr0 : sr1 - wr0, sc0 - wc0 : sc1 - wc0] = data.filled(np.nan)
    return z, src.transform @ Affine.translation(wc0, wr0)


#: The approximate transformer's error allowed in a warp, pixels: so small that GDAL transforms
#: every pixel exactly (a warped view refuses 0, which ``rasterio.warp.reproject`` takes for its
#: exact transformer; the two give the same values: ``tests/test_ingest.py``).
EXACT = 1e-9


def warp_array(z: np.ndarray, src_t: Affine, src_crs: object, dst_t: Affine, dst_crs: object,
               shape: tuple[int, int], resampling: Resampling) -> np.ndarray:
    """The floats ``z`` (one band, or bands first), NaN for no data, at ``src_t`` in ``src_crs``,
    warped with ``resampling`` and GDAL's exact transformer onto an ``shape`` window at ``dst_t`` in
    ``dst_crs``: NaN where no source value falls. Through a warped view of an in-memory copy, not
    ``rasterio.warp.reproject``: that one opens two rasterio environments per call, and with AWS
    credentials in the environment each creates a boto3 session (8 ms alone; on a bucket run's
    ingest, more than the reads it follows: BENCHMARKS.md)."""
    bands = z if z.ndim == 3 else z[None]
    with gdal_env(), MemoryFile() as mem:
        with mem.open(driver="GTiff", width=bands.shape[2], height=bands.shape[1], count=bands.shape[0],
                      dtype=bands.dtype, crs=src_crs, transform=src_t, nodata=np.nan) as tmp:
            tmp.write(bands)
        with mem.open() as tmp, WarpedVRT(tmp, crs=dst_crs, transform=dst_t, width=shape[1], height=shape[0],
                                          resampling=resampling, tolerance=EXACT, src_nodata=np.nan,
                                          nodata=np.nan) as vrt:
            out = vrt.read()
    return out if z.ndim == 3 else out[0]


def float_for(dtype: object) -> np.dtype:
    """The float type that holds every value of a source's ``dtype`` exactly (float32 up to 16-bit
    integers and for float32 itself, else float64)."""
    dt = np.dtype(dtype)
    return np.dtype(np.float32) if dt.itemsize <= 2 or dt == np.float32 else np.dtype(np.float64)


class _OnGrid:
    """An array-like of ``self.grid``'s shape, for ``dask.array.from_array``."""

    grid: Grid

    @property
    def shape(self) -> tuple[int, int]:
        return self.grid.shape

    @property
    def ndim(self) -> int:
        return 2


@dataclass(frozen=True)
class WarpedRaster(_OnGrid):
    """Band 1 of ``path`` on ``grid``, resampled with ``resampling``.

    ``shape``/``dtype``/``ndim`` and ``__getitem__`` make it an array-like for dask. Source
    nodata and pixels outside the source become ``nodata``. Integer sources cast to an integer
    ``dtype`` are range-checked: an out-of-range value is an :class:`InputError`.
    """

    path: str
    grid: Grid
    dtype: np.dtype
    nodata: float
    resampling: Resampling = Resampling.nearest

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        r0, r1, c0, c1 = _slices(key, self.shape)
        out = np.full((r1 - r0, c1 - c0), self.nodata, dtype=self.dtype)
        if out.size == 0:
            return out
        try:
            return self._read(out, r0, c0)
        except RasterioError as exc:  # a truncated file, a corrupt compressed tile: the input's fault
            reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        # Raised outside the handler, so that it carries no chained GDAL error: raised in a Dask
        # worker, it travels back pickled, and GDAL's exceptions do not unpickle.
        window = f"rows {r0}:{r1}, columns {c0}:{c1}"
        raise InputError([problem(self.path, "band 1, window on the run's grid", window,
                                  f"cannot be read: a truncated file or a corrupt tile? ({reason})")])

    def _read(self, out: np.ndarray, r0: int, c0: int) -> np.ndarray:
        r1, c1 = r0 + out.shape[0], c0 + out.shape[1]
        with open_raster(self.path) as src:
            off = _aligned(src, self.grid) if self.resampling == Resampling.nearest else None
            if off is not None:  # already on the grid: a plain windowed read
                rr0, cc0 = r0 + off[0], c0 + off[1]
                sr0, sc0 = max(rr0, 0), max(cc0, 0)
                sr1, sc1 = min(rr0 + out.shape[0], src.height), min(cc0 + out.shape[1], src.width)
                if sr1 > sr0 and sc1 > sc0:
                    data = src.read(1, window=Window(sc0, sr0, sc1 - sc0, sr1 - sr0), masked=True)
                    self._place(out, data, sr0 - rr0, sc0 - cc0)
                return out
            if self.resampling != Resampling.nearest:
                self._warp_window(src, out, r0, c0)
                return out
            warp = {"src_nodata": src.nodata, "nodata": src.nodata} if src.nodata is not None else {
                "add_alpha": True  # no nodata: an alpha band marks pixels outside the source
            }
            if np.dtype(self.dtype).kind == "f":  # average/mode in floating point, not source ints
                warp["dtype"] = np.dtype(self.dtype).name
            with WarpedVRT(
                src,
                crs=self.grid.crs,
                transform=self.grid.transform,
                width=self.grid.width,
                height=self.grid.height,
                resampling=self.resampling,
                **warp,
            ) as vrt:
                data = vrt.read(1, window=Window(c0, r0, c1 - c0, r1 - r0), masked=True)
            self._place(out, data, 0, 0)
        return out

    def _warp_window(self, src: rasterio.io.DatasetReader, out: np.ndarray, r0: int, c0: int) -> None:
        """Warp the source window under ``out``'s footprint (rows from ``r0``, columns from ``c0``
        of the grid) onto it, outside the source counting as no data (the module's text). Each
        cell reads the source pixels it covers and a margin, not the blocks of a whole-grid view:
        at 256-px chunks a 30 m driver averaged onto the analysis grid read half its file per
        chunk through such a view (BENCHMARKS.md, "A whole run against object storage")."""
        h, w = out.shape
        dst_t = self.grid.transform @ Affine.translation(c0, r0)
        ftype = np.dtype(np.float64) if np.dtype(self.dtype) == np.float64 else float_for(src.dtypes[0])
        z, src_t = source_window(src, self.grid.crs, dst_t, h, w, ftype)
        if z is None:
            return
        warped = warp_array(z, src_t, src.crs, dst_t, self.grid.crs, (h, w), self.resampling)
        self._place(out, np.ma.masked_invalid(warped), 0, 0)

    def _place(self, out: np.ndarray, data: np.ma.MaskedArray, r: int, c: int) -> None:
        valid = ~np.ma.getmaskarray(data)
        values = np.ma.getdata(data)
        if np.issubdtype(self.dtype, np.integer):
            info = np.iinfo(self.dtype)
            bad = valid & ((values < info.min) | (values > info.max))
            if bad.any():
                v = values[bad][0]
                raise InputError([problem(self.path, "band 1", v.item(),
                                          f"does not fit {np.dtype(self.dtype).name} "
                                          f"({int(bad.sum())} pixels in this chunk)")])
        region = out[r : r + data.shape[0], c : c + data.shape[1]]
        region[valid] = values[valid].astype(self.dtype, copy=False)


@dataclass(frozen=True)
class WarpedYears:
    """Several rasters on one grid as a (layer, y, x) array-like for dask, e.g. a land-cover file
    per year: a block of several layers is read in one task (window by window, layer by layer), so
    an archive of 39 years takes a task per chunk and block of years, not per chunk and year."""

    layers: tuple[WarpedRaster, ...]

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.layers), *self.layers[0].shape)

    @property
    def ndim(self) -> int:
        return 3

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.layers[0].dtype)

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        t0, t1, _ = key[0].indices(len(self.layers))
        window = tuple(key[1:])
        r0, r1, c0, c1 = _slices(window, self.layers[0].shape)
        out = np.empty((max(t1 - t0, 0), r1 - r0, c1 - c0), self.dtype)
        for i, t in enumerate(range(t0, t1)):
            out[i] = self.layers[t][window]
        return out


@dataclass(frozen=True)
class RasterizedZones(_OnGrid):
    """Zone polygons burned onto ``grid``: pixel value = zone index (1..n) whose polygon holds the
    pixel centre, 0 outside every polygon."""

    wkb: tuple[bytes, ...]
    values: tuple[int, ...]
    grid: Grid
    dtype: np.dtype

    def _parsed(self) -> tuple[np.ndarray, STRtree]:
        """The polygons and their search tree, parsed once per process and thread: every chunk task
        of a Dask worker gets the same object (from_array's source), and 40,000 townships take
        ~0.15 s to parse, once per chunk before. Not pickled (:meth:`__getstate__`)."""
        cache = self.__dict__.setdefault("_cache", {})
        me = threading.get_ident()
        if me not in cache:
            geoms = from_wkb(list(self.wkb))
            cache[me] = (geoms, STRtree(geoms))
        return cache[me]

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_cache"}

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        r0, r1, c0, c1 = _slices(key, self.shape)
        shape = (r1 - r0, c1 - c0)
        if shape[0] == 0 or shape[1] == 0:
            return np.zeros(shape, self.dtype)
        geoms, tree = self._parsed()
        t = self.grid.transform @ Affine.translation(c0, r0)
        window = box(t.c, t.f + t.e * shape[0], t.c + t.a * shape[1], t.f)
        hits = tree.query(window)
        if len(hits) == 0:
            return np.zeros(shape, self.dtype)
        return rasterize(
            ((geoms[i], self.values[i]) for i in sorted(hits)),
            out_shape=shape,
            transform=t,
            fill=0,
            all_touched=False,
            dtype=self.dtype,
        )


# rasterize() builds an in-memory dataset that warns it has no geotransform although the burn
# uses the transform given: noise on every chunk (a filter, not catch_warnings: the chunks are
# burned on Dask's threads, and catch_warnings is not thread-safe).
warnings.filterwarnings("ignore", category=NotGeoreferencedWarning, module=r"rasterio\.features")


def smallest_uint(n: int) -> np.dtype:
    """Smallest unsigned integer dtype holding 0..n."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if n <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.uint64)


def open_info(path: Path) -> dict:
    """Band count, dtype, CRS, bounds, nodata, transform and shape of a raster, or an :class:`InputError`."""
    try:
        with open_raster(path) as src:
            return {
                "count": src.count,
                "dtype": src.dtypes[0],
                "crs": src.crs,
                "bounds": tuple(src.bounds),
                "nodata": src.nodata,
                "transform": src.transform,
                "shape": (src.height, src.width),
            }
    except rasterio.errors.RasterioIOError as exc:
        raise InputError([problem(path, "", None, f"cannot open as a raster: {exc}")]) from None
