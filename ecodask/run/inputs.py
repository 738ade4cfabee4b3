"""A run's way in, done once per process: the configuration loaded (:func:`load`), its inputs opened
and checked before anything is written (:func:`check_inputs`, :func:`checked`), and each input
file's checksum computed (:func:`checksum`) and reused for the stage keys and ``run.json``. The
command line's checks before Prefect starts are the flow's: the same process asks again and gets
the result it has, while every file is unchanged (same path, inode, size and change times)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ecodask.errors import InputError, Problem, problem
from ecodask.io import objstore
from ecodask.io.provenance import file_checksum, shapefile_parts
from ecodask.run.config import RunConfig, load_config

if TYPE_CHECKING:
    import pandas as pd

    from ecodask.io.store import StoreInputs


def check_inputs(cfg: RunConfig) -> StoreInputs:
    """Open every input and check it can be used, before anything is written.

    Rasters: readable, one band, a CRS, overlapping the grid; land cover of an integer type, every
    year on the same grid as the first (CRS, transform, shape), so that pixels pair up across
    years in the transfer matrices; a DEM that a driver derives slope or aspect from in a projected
    CRS in metres, north-up (:func:`ecodask.io.terrain.terrain_crs_reason`). Zones: see
    :func:`ecodask.io.zones.read_zones`. Raises :class:`InputError` listing every fault.
    """
    import numpy as np
    from rasterio.warp import transform_bounds

    from ecodask.io.rasters import open_info
    from ecodask.io.store import StoreInputs
    from ecodask.io.terrain import terrain_crs_reason
    from ecodask.io.zones import read_zones, zone_table

    crs = cfg.grid.to_grid((0, 0, 1, 1)).crs
    z = cfg.zones
    zones = read_zones(z.path, z.id_field, z.name_field, crs, z.layer)
    grid = cfg.grid.to_grid(tuple(zones.total_bounds))
    problems: list[Problem] = []
    rasters = [(f"landcover.years.{y}", p, True) for y, p in sorted(cfg.landcover.years.items())]
    rasters += [(f"drivers.{n}", d.path, False) for n, d in cfg.drivers.items()]
    first_lc: tuple[Path, dict] | None = None
    for key, path, is_lc in rasters:
        try:
            info = open_info(path)
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        if is_lc and first_lc is None:
            first_lc = (path, info)
        elif is_lc and info["crs"] is not None and first_lc[1]["crs"] is not None:
            problems.extend(_same_grid(key, path, info, *first_lc))
        if info["count"] != 1:
            problems.append(problem(path, f"{key} (bands)", info["count"], "must have exactly one band"))
        if info["crs"] is None:
            problems.append(problem(path, f"{key} (crs)", None, "the raster has no CRS"))
            continue
        derive = cfg.drivers[key.removeprefix("drivers.")].derive if not is_lc else "none"
        reason = terrain_crs_reason(info["crs"], info["transform"]) if derive != "none" else None
        if reason:
            problems.append(problem(path, f"{key}.derive: {derive} (crs)", short_crs(info["crs"]), reason))
        if is_lc and not np.issubdtype(np.dtype(info["dtype"]), np.integer):
            problems.append(
                problem(path, f"{key} (dtype)", info["dtype"], "land cover must be integer codes")
            )
        b = transform_bounds(info["crs"], grid.crs, *info["bounds"], densify_pts=21)
        g = grid.bounds
        if b[0] >= g[2] or b[2] <= g[0] or b[1] >= g[3] or b[3] <= g[1]:
            problems.append(problem(path, f"{key} (bounds)", tuple(round(v) for v in b),
                                    f"does not overlap the run's grid {g}"))
    if cfg.county_stats is not None and cfg.compensation.enabled:  # fail before any pixel is read
        from ecodask.io.county_stats import read_county_stats
        from ecodask.run.stages.compensation import reference_gdp_years

        try:
            stats = read_county_stats(cfg.county_stats, zone_table(zones), cfg.years)
        except InputError as exc:
            problems.extend(exc.problems)
        else:
            problems += reference_gdp_years(cfg.compensation, cfg.catalogs, stats["year"].tolist(),
                                            cfg.county_stats)
    if problems:
        raise InputError(problems)
    return StoreInputs(
        run_name=cfg.name, grid=grid, zones=zones, landcover=dict(cfg.landcover.years),
        scheme=cfg.landcover.scheme,
        drivers={n: (d.path, d.kind, d.derive) for n, d in cfg.drivers.items()})


def short_crs(crs: object) -> str | None:
    """A CRS in a message, on one short line: its authority code (``EPSG:32649``), else its PROJ
    string (with its name when it has one), never the WKT over several lines."""
    if crs is None:
        return None
    import warnings

    from pyproj import CRS

    c = CRS.from_user_input(crs)
    code = c.to_authority(min_confidence=90)
    if code:
        return ":".join(code)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "may lose important projection information"
        text = c.to_proj4().replace(" +type=crs", "")
    return text if c.name in ("unknown", "") else f"{c.name} ({text})"


def _same_grid(key: str, path: Path, info: dict, first: Path, ref: dict) -> list[Problem]:
    """Problems where a land-cover year is on another grid than the first year's."""
    for field, fmt in (("crs", short_crs), ("shape", tuple),
                       ("transform", lambda t: tuple(round(v, 6) for v in tuple(t)[:6]))):
        a, b = info[field], ref[field]
        if (a != b) if field != "transform" else not a.almost_equals(b, precision=1e-9):
            return [problem(path, f"{key} ({field})", fmt(a),
                            f"land-cover years must share one grid; {first.name} has {fmt(b)}")]
    return []




def _stamp(path: Path) -> tuple[object, ...] | None:
    """What identifies a file's content without reading it: its path, inode, size and change
    times (a rewrite, in place or by rename, changes one of them), with those of the files that
    belong to a shapefile (its attribute table...); an object's URL, ETag and size; None if it
    cannot be read."""
    if isinstance(path, objstore.RemotePath):
        try:
            return objstore.stamp(path.url)
        except (OSError, ValueError):
            return None
    try:
        p = Path(path)
        stats = [f.stat() for f in (p, *(shapefile_parts(p) if p.suffix.lower() == ".shp" else ()))]
    except OSError:
        return None
    return str(p.resolve()), *((st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) for st in stats)


class _Memo:
    """Per-process results keyed by what they were computed from (a file's path, size and
    modification time): a run's entry, its flow and its stages share one load, one check and one
    checksum of each file; a file changed in between is read again."""

    def __init__(self) -> None:
        self.configs: dict[tuple, RunConfig] = {}
        self.checked: dict[tuple, StoreInputs] = {}
        self.checksums: dict[tuple, str] = {}


_MEMO = _Memo()


def checksum(path: str | Path) -> str:
    """``blake2b:<hex>`` of a file (or a folder's files) or of an object's bytes, computed once per
    process for the same path, size and modification time, or URL, ETag and size (see
    :func:`ecodask.io.provenance.file_checksum`, :func:`ecodask.io.objstore.checksum`)."""
    read = objstore.checksum if isinstance(path, objstore.RemotePath) else file_checksum
    key = _stamp(path if isinstance(path, objstore.RemotePath) else Path(path))
    if key is None:
        return read(str(path))  # its own error names the file
    if key not in _MEMO.checksums:
        _MEMO.checksums[key] = read(str(path))
    return _MEMO.checksums[key]


def load(config_path: str | Path) -> RunConfig:
    """The run configuration (:func:`ecodask.run.config.load_config`), loaded once per process
    while the file is unchanged."""
    key = _stamp(Path(config_path))
    if key is None:
        return load_config(config_path)  # its ConfigError names the file
    if key not in _MEMO.configs:
        _MEMO.configs[key] = load_config(config_path)
    return _MEMO.configs[key]


def input_files(cfg: RunConfig) -> dict[str, Path]:
    """Every input file of the run, by config key."""
    files = {f"landcover.years.{y}": p for y, p in sorted(cfg.landcover.years.items())}
    files["zones.path"] = cfg.zones.path
    files |= {f"drivers.{n}.path": d.path for n, d in sorted(cfg.drivers.items())}
    if cfg.county_stats:
        files["county_stats"] = cfg.county_stats
    return files


def checked(cfg: RunConfig) -> StoreInputs:
    """:func:`check_inputs` of ``cfg``, done once per process while its input files are unchanged."""
    key = (cfg.model_dump_json(exclude={"output"}),  # the same in the run's work copy
           *(_stamp(p) for p in input_files(cfg).values()))
    if None in key:
        return check_inputs(cfg)  # a file gone since loading: its own errors name it
    if key not in _MEMO.checked:
        _MEMO.checked[key] = check_inputs(cfg)
    return _MEMO.checked[key]


def validate(config_path: str | Path) -> RunConfig:
    """Load and validate the configuration and every input; nothing is written."""
    cfg = load(config_path)
    checked(cfg)
    return cfg


@dataclass(frozen=True)
class Survey:
    """The land cover of a run as one read on its grid shows it, before anything is written:
    ``shares`` the classes' shares of the classified pixels inside the zones (class name x year,
    0..1), ``coverage`` each zone's coverage (:func:`ecodask.science.landuse.coverage_table`) and
    ``problems`` what would stop the run (codes the scheme lacks, years without data)."""

    shares: pd.DataFrame
    coverage: pd.DataFrame
    problems: list[Problem]


def survey(cfg: RunConfig) -> Survey:
    """Read every land-cover year on the run's grid (as ingest would: the same pixels, nothing
    written) and count codes inside the zones and each zone's pixels with data."""
    import numpy as np
    import pandas as pd

    from ecodask.io.catalogs import load_class_scheme
    from ecodask.io.store import scan
    from ecodask.io.zones import zone_table
    from ecodask.science import landuse

    prep = checked(cfg)
    scheme = load_class_scheme(cfg.landcover.scheme, cfg.catalogs)
    codes = sorted(scheme.classes)
    known = np.zeros(256, dtype=bool)
    known[codes] = True
    s = scan(prep, known)
    try:
        landuse.check_landcover_counts(s.inside, cfg.years, scheme, cfg.landcover.years)
        problems: list[Problem] = []
    except InputError as exc:
        problems = list(exc.problems)
    classified = s.inside[:, codes].astype(float)
    totals = classified.sum(axis=1, keepdims=True)
    share = np.divide(classified, totals, out=np.zeros_like(classified), where=totals > 0)
    shares = pd.DataFrame(share.T, index=[scheme.classes[c].name for c in codes], columns=cfg.years)
    coverage = landuse.coverage_table(s.zone_data[:, 1:], s.zone_pixels[1:], cfg.years,
                                      zone_table(prep.zones), prep.grid.pixel_area_ha, cfg.zones.min_coverage)
    return Survey(shares, coverage, problems)
