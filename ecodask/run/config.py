"""The run configuration: one YAML file describes a run, validated before any work starts.

Paths in the file are relative to the file's own folder. Every error names the file, the key
(dotted, e.g. ``landcover.years.2010``) and the value at fault; all errors are reported at once.
See the README for the schema with a full example.

Inputs and the output may be object-storage URLs (``s3://bucket/key``, see
:mod:`ecodask.io.objstore`): :func:`load_config` resolves remote inputs first
(:mod:`ecodask.run.fetch`: rasters stay in the bucket and are read window by window, the zones
and county statistics are fetched into ``<work_dir>/inputs``), then validates, and a remote
``output`` becomes ``remote_output`` with ``output`` set to the local ``<work_dir>/output`` where
the run computes before publishing.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializationInfo,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pyproj import CRS
from pyproj.exceptions import CRSError

from ecodask.errors import CatalogError, ConfigError, Problem, problem
from ecodask.io import objstore
from ecodask.io.catalogs import (
    catalog_files,
    load_class_scheme,
    load_error_matrix,
    load_esv_table,
    load_gdp_per_capita,
    scheme_fits_table,
)
from ecodask.run.fetch import fetch_inputs
from ecodask.science.catalogs import ClassScheme, EsvTable, ScenarioRule, scenario_rule_problems
from ecodask.science.grid import Grid, equal_area_reason


def _resolve(value: Any, info: ValidationInfo) -> Path:
    base = Path((info.context or {}).get("base", "."))
    p = Path(str(value)).expanduser()
    return p if p.is_absolute() else (base / p)


def _work_dir(info: ValidationInfo) -> Path:
    work = (info.context or {}).get("work_dir")
    if work is None:
        raise ValueError("a URL is resolved only by ecodask.run.config.load_config")
    return Path(work)


def _existing_file(value: Any, info: ValidationInfo) -> Path:
    if not isinstance(value, str | Path) or not str(value):
        raise ValueError("must be a file path")
    if isinstance(value, objstore.FetchedPath | objstore.RemotePath):
        return value  # fetched or located by ecodask.run.fetch before validation
    if objstore.is_remote(value):
        objstore.check_url(str(value))
        raise ValueError("a URL input is fetched by ecodask.run.config.load_config")
    p = _resolve(value, info)
    if not p.is_file():
        raise ValueError(f"file not found (looked for {p})")
    return p.resolve()


def _any_path(value: Any, info: ValidationInfo) -> Path:
    if not isinstance(value, str | Path) or not str(value):
        raise ValueError("must be a path")
    if objstore.is_remote(value):
        objstore.check_url(str(value))  # refuses credentials in the URL, an unknown protocol
        if info.field_name == "output":
            objstore.check_output_url(str(value))
            _work_dir(info)
            raise ValueError("give either a URL output or remote_output, not both")
        raise ValueError("must be a local path, not a URL")
    return _resolve(value, info).resolve()


def _remote_url(value: Any) -> str:
    if not objstore.is_remote(value):
        raise ValueError("must be a URL such as s3://bucket/prefix")
    return objstore.check_output_url(value)


def default_work_dir(data: Any, base: Path) -> Path:
    """The local work folder of a configuration (``data``, the raw mapping): ``work_dir``
    relative to ``base``, by default ``<base>/.ecodask-work/<name>``."""
    data = data if isinstance(data, dict) else {}
    work = data.get("work_dir")
    if isinstance(work, str | Path) and str(work) and not objstore.is_remote(work):
        p = Path(str(work)).expanduser()
        return (p if p.is_absolute() else base / p).resolve()
    name = data.get("name")
    name = name if isinstance(name, str) and name and "/" not in name and name not in (".", "..") else "run"
    return (base / ".ecodask-work" / name).resolve()


#: The serialization context key of :func:`content_dump`.
_CONTENT = "content"


def _input_json(path: Path, info: SerializationInfo) -> str:
    content = (info.context or {}).get(_CONTENT)
    return content(path) if content is not None else objstore.source(path)


def _path_json(path: Path, info: SerializationInfo) -> str | None:
    return None if (info.context or {}).get(_CONTENT) is not None else str(path)


#: A local file; a URL is located or fetched (load_config) and serialized as the URL (by
#: :func:`content_dump`: as the checksum of its bytes).
InputFile = Annotated[Path, BeforeValidator(_existing_file),
                      PlainSerializer(_input_json, return_type=str, when_used="json")]
#: A local path that is not an input file (the output, the work folder, a catalog folder): by
#: :func:`content_dump`, left out (None).
ResolvedPath = Annotated[Path, BeforeValidator(_any_path),
                         PlainSerializer(_path_json, return_type=str | None, when_used="json")]
#: An object-storage URL the run writes to: by :func:`content_dump`, left out (None).
RemoteUrl = Annotated[str, BeforeValidator(_remote_url),
                      PlainSerializer(_path_json, return_type=str | None, when_used="json")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GridConfig(_Strict):
    """The pixel grid: equal-area CRS, pixel size (m), analysis-cell factor, chunk size (px)."""

    crs: str
    resolution: float = Field(30.0, gt=0, description="pixel size, m")
    analysis_factor: int = Field(32, ge=1, le=4096, description="analysis cell, pixels per side")
    bounds: tuple[float, float, float, float] | None = Field(
        None, description="xmin, ymin, xmax, ymax in CRS metres; default: the zones' extent"
    )
    chunk_size: int = Field(4096, ge=16, le=32768, description="chunk side, pixels")

    @field_validator("crs")
    @classmethod
    def _equal_area(cls, v: str) -> str:
        try:
            crs = CRS.from_user_input(v)
        except CRSError as exc:
            raise ValueError(f"not a CRS PROJ/GDAL understands ({exc})") from None
        reason = equal_area_reason(crs)
        if reason:
            raise ValueError(f"the grid CRS must be equal-area: {reason}")
        return v

    @model_validator(mode="after")
    def _chunk_multiple(self) -> GridConfig:
        if self.chunk_size % self.analysis_factor:
            raise ValueError(
                f"chunk_size {self.chunk_size} must be a multiple of analysis_factor "
                f"{self.analysis_factor} so analysis cells never straddle chunks"
            )
        if self.bounds is not None:
            xmin, ymin, xmax, ymax = self.bounds
            if not (xmax > xmin and ymax > ymin):
                raise ValueError(f"bounds {self.bounds} must be xmin < xmax, ymin < ymax")
        return self

    def to_grid(self, bounds: tuple[float, float, float, float]) -> Grid:
        """The grid covering ``bounds`` (or the configured bounds), snapped to analysis cells."""
        return Grid.covering(
            CRS.from_user_input(self.crs),
            self.resolution,
            self.analysis_factor,
            self.bounds or bounds,
            self.chunk_size,
        )


class _KeyedError(ValueError):
    """A validator's error about one part of its field's value: ``key`` (dotted, below the field)
    and ``value`` name that part in the message (:func:`_problem`)."""

    def __init__(self, message: str, key: str, value: object):
        super().__init__(message)
        self.key = key
        self.value = value


class ScenariosConfig(_Strict):
    """Land-use scenarios: the Markov projection of the last pair's transitions to ``years`` (each the
    last year plus a multiple of the last interval, each once) under each named scenario, and its ESV;
    ``named``: scenario name -> restrictions (``out_of`` / ``into`` class names of the scheme,
    ``factor``); default: the class scheme's own (business as usual, ecological protection, cropland
    protection)."""

    years: list[Annotated[int, Field(ge=1900, le=2500)]] = Field(min_length=1)
    named: dict[str, list[ScenarioRule]] | None = None

    @field_validator("years")
    @classmethod
    def _once(cls, years: list[int]) -> list[int]:
        twice = sorted({y for y in years if years.count(y) > 1})
        if twice:
            raise ValueError(f"{', '.join(map(str, twice))} given more than once: give each year once")
        return years


class LandcoverConfig(_Strict):
    """Land-cover rasters per year (any CRS, all years on one grid) and the class scheme of their
    codes; ``projection_year``: the year of the Markov projection (default: the last year plus
    the last interval); ``intensity``: write the intensity analysis of the land change
    (``tables/intensity_*``, a report section; off by default: at 40,000 zones its tables add
    about 40 % to the transitions stage's table writing, BENCHMARKS.md)."""

    scheme: str
    years: dict[Annotated[int, Field(ge=1900, le=2200)], InputFile] = Field(min_length=1)
    projection_year: int | None = Field(None, ge=1900, le=2500)
    intensity: bool = Field(False, description="intensity analysis (Aldwaik & Pontius 2012) and the "
                            "quantity / exchange / shift components, per zone and interval")
    scenarios: ScenariosConfig | None = Field(None, exclude_if=lambda v: v is None)

    @staticmethod
    def _outside_the_last_interval(targets: list[int], info: ValidationInfo) -> tuple[list[int], str]:
        """The ``targets`` that are not the last land-cover year plus a whole multiple of the last
        interval, and what the years must be, with the first three that would do (none where the years
        are missing: a Markov chain steps whole intervals, docs/science.md); ValueError with one year."""
        if "years" not in info.data:
            return [], ""
        ys = sorted(info.data["years"])
        if len(ys) < 2:
            raise ValueError("needs at least two land-cover years")
        last, step = ys[-1], ys[-1] - ys[-2]
        ok = ", ".join(str(last + k * step) for k in (1, 2, 3))
        rule = f"{last} plus a whole multiple of the last interval ({step} years): {ok}, ..."
        return [y for y in targets if y <= last or (y - last) % step], rule

    @field_validator("projection_year")
    @classmethod
    def _projection(cls, year: int | None, info: ValidationInfo) -> int | None:
        if year is not None:
            bad, rule = cls._outside_the_last_interval([year], info)
            if bad:
                raise ValueError(f"must be {rule}")
        return year

    @field_validator("scenarios")
    @classmethod
    def _scenario_years(cls, sc: ScenariosConfig | None, info: ValidationInfo) -> ScenariosConfig | None:
        if sc is not None:
            bad, rule = cls._outside_the_last_interval(sc.years, info)
            if bad:
                raise _KeyedError(f"each year must be {rule}", "years", bad)
        return sc


class UncertaintyConfig(_Strict):
    """The Monte Carlo of ESV (off unless ``enabled``): ``draws`` draws from ``seed``; each coefficient
    within its table's range (``uncertainty`` of the catalog entry), else uniform within +/- ``spread``
    of its value; ``tables``: alternative ESV tables (catalog names, the same services), each draw
    taking the run's table or one of them with equal probability; ``error_matrix``: the land-cover
    map's error matrix (a catalog name, ``error_matrices/``) for its area-adjusted estimate and error."""

    enabled: bool = False
    draws: int = Field(1000, ge=100, le=100_000)
    seed: int = Field(0, ge=0)
    spread: float = Field(0.5, ge=0, lt=1)
    tables: list[str] = []
    error_matrix: str | None = None


class EsvConfig(_Strict):
    """The ESV coefficient table (a catalog name) and how it is applied.

    standard_equivalent: CNY/ha/yr for an equivalent-factor table, or ``from_county_stats`` to
        compute it per year from the crop columns of ``county_stats`` (methods.md section 2);
        default: the table's own value.
    adjustment: service group -> driver name: a spatial multiplier for the group's values, the
        driver divided by its mean over the zones' pixels (off unless given).
    group_grids: also write ``esv_group(year, group, y, x)`` beside the total.
    cell_tradeoffs: also write each analysis cell's class composition (``analysis/class_pixels``) and
        the trade-offs between services across the cells (``tables/service_tradeoffs_cells``).
    uncertainty: the Monte Carlo of ESV per zone (:class:`UncertaintyConfig`).
    """

    table: str
    standard_equivalent: Annotated[float, Field(gt=0)] | Literal["from_county_stats"] | None = None
    adjustment: dict[Literal["provisioning", "regulating", "supporting", "cultural"], str] = {}
    group_grids: bool = False
    # left out of dumps when off: earlier runs' stage keys stay as they were
    cell_tradeoffs: bool = Field(False, exclude_if=lambda v: not v)
    uncertainty: UncertaintyConfig = Field(default_factory=UncertaintyConfig,
                                           exclude_if=lambda v: v == UncertaintyConfig())


class ZonesConfig(_Strict):
    """County (zone) polygons, any CRS: the id and name fields; how much of a zone the land cover
    must cover before its figures are trusted whole (``min_coverage``, a share), and whether zones
    below it are left out of the compensation tables (``exclude_partial``)."""

    path: InputFile
    layer: str | None = None
    id_field: str
    name_field: str | None = Field(None, description="zone names (default: the ids, as text)")
    min_coverage: float = Field(0.99, ge=0, le=1, description="share of a zone's pixels with land cover")
    exclude_partial: bool = Field(False, description="leave zones under min_coverage out of compensation")


def _driver_shorthand(v: Any) -> Any:
    return {"path": v} if isinstance(v, str | Path) else v


class DriverConfig(_Strict):
    """A driver raster, brought onto the analysis grid by mean (continuous) or mode (categorical).

    derive: ``none`` (the raster's own values), or the file is a DEM (metres, in a projected CRS in
        metres) and the driver is a quantity derived from it at the DEM's own resolution, then
        averaged onto the analysis grid (:mod:`ecodask.io.terrain`): ``slope`` (degrees),
        ``aspect`` (circular mean, degrees clockwise from north), ``eastness`` / ``northness``
        (mean sin / cos of the aspect, flat pixels 0). Continuous only.
    density_of: ``population`` (persons/km²) or ``gdp`` (CNY/km² a year): summed over each zone's
        analysis cells for ESV per capita or per unit GDP (``tables/esv_per_capita``).
    """

    path: InputFile
    kind: Literal["continuous", "categorical"] = "continuous"
    # left out of dumps when none: a plain driver's stage keys stay those of earlier versions
    derive: Literal["none", "slope", "aspect", "eastness", "northness"] = Field(
        "none", exclude_if=lambda v: v == "none")
    density_of: Literal["population", "gdp"] | None = Field(
        None, exclude_if=lambda v: v is None,
        description="the raster is persons/km² (population) or CNY/km² a year (gdp): ESV per capita / "
        "per unit GDP per zone (tables/esv_per_capita)")

    @model_validator(mode="after")
    def _derived_continuous(self) -> DriverConfig:
        if self.derive != "none" and self.kind != "continuous":
            raise ValueError(f"derive: {self.derive} gives a continuous driver: kind must be continuous")
        if self.density_of is not None and (self.kind != "continuous" or self.derive != "none"):
            raise ValueError(f"density_of: {self.density_of} needs the raster's own continuous values")
        return self


#: ``analysis.preset`` → the keys it sets. ``seed002``: Algorithm A1 of seed 002 (Li et al. 2026,
#: App. A.2): forward selection that stops when the best candidate is not significant (SPSS's
#: PIN 0.05), the Geographical Detector on the selected drivers, natural breaks (5 classes: the
#: seed names the method, not the count; 5 is ArcGIS's default, the seed's GIS), and the
#: regression table as the seed prints it (every driver per year, the model of all drivers).
PRESETS: dict[str, dict[str, object]] = {
    "seed002": {"regression_method": "forward", "regression_criterion": "p", "p_enter": 0.05,
                "detector_factors": "selected", "discretize": "natural", "k": 5,
                "regression_table": "enter"},
}


class AnalysisConfig(_Strict):
    """Driver analysis on the analysis grid (methods.md sections 5-6), y = ESV density per year.

    preset: ``none``, or ``seed002`` (seed 002's Algorithm A1 in one line: the keys of
        :data:`PRESETS`); a key the preset sets may be given beside it only with the preset's value
        (another value is refused: the preset would no longer be A1).
    discretize: how continuous drivers become strata: ``optimal`` (every method and k in ``ks``,
        the highest q), a method with ``k``, or ``none`` (categorical drivers are always used as
        given). variance / drop_singletons / alpha: the Geographical Detector's conventions.
    detector_factors: ``all`` drivers in the detector (the default), or ``selected``: per year, the
        continuous drivers the regression selected plus every categorical driver (the regression
        cannot test those, so its selection says nothing about them).
    regression: ``method`` and ``criterion`` (p with ``p_enter`` / ``p_remove``, AIC or BIC) on the
        continuous drivers; ``regression_table``: the selected model's terms, or ``enter``: every
        continuous driver per year in the model of all drivers, marked selected or not (seed 002's
        table). hotspots: Moran's I and Gi* of the ESV density.
    scales: the scale effect of q: the factor detector again on cells of these multiples of the
        analysis cell (e.g. [2, 4, 8]: from 240 m cells, 480, 960 and 1920 m), aggregated from the
        one pass's analysis grid; none by default.
    """

    preset: Literal["none", "seed002"] = Field(
        "none", description="seed002: seed 002's Algorithm A1 (forward selection, detector on the "
        "selected drivers, natural breaks k=5, enter-layout regression table)")
    discretize: Literal["optimal", "equal", "quantile", "natural", "geometric", "sd", "none"] = "optimal"
    quantile_rule: Literal["type7", "type1"] = Field(
        "type7", description="quantile breaks: R type 7 (GD, gdverse) or type 1 (an order statistic)")
    k: int | None = Field(None, ge=2, le=64)
    ks: list[Annotated[int, Field(ge=2, le=64)]] = Field(default_factory=lambda: list(range(3, 11)),
                                                         min_length=1)
    variance: Literal["population", "sample"] = "population"
    drop_singletons: bool = True
    alpha: float = Field(0.05, gt=0, lt=1)
    detector_factors: Literal["all", "selected"] = Field(
        "all", description="the detector on all drivers, or per year on the regression's selected "
        "continuous drivers plus the categorical ones")
    regression_method: Literal["stepwise", "forward", "backward", "enter"] = "stepwise"
    regression_criterion: Literal["p", "aic", "bic"] = "p"
    p_enter: float = Field(0.05, gt=0, lt=1)
    p_remove: float = Field(0.10, gt=0, lt=1)
    regression_table: Literal["selected", "enter"] = Field(
        "selected", description="the selected model's terms, or every driver in the model of all "
        "(seed 002's layout) marked selected or not")
    hotspots: bool = True
    # left out of dumps when empty (as the other options added later): earlier runs keep their keys
    scales: list[Annotated[int, Field(ge=2, le=256)]] = Field(
        default_factory=list, exclude_if=lambda v: not v,
        description="multiples of the analysis cell for the scale effect of q")

    @field_validator("scales")
    @classmethod
    def _ascending(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError(f"{v}: each multiple once")
        return sorted(v)

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        """A preset fills the keys it sets that are not given (given ones are checked per field)."""
        if isinstance(data, dict) and isinstance(data.get("preset"), str) and data["preset"] in PRESETS:
            return PRESETS[data["preset"]] | data
        return data

    @field_validator(*sorted({k for v in PRESETS.values() for k in v}))
    @classmethod
    def _preset_value(cls, value: Any, info: ValidationInfo) -> Any:
        preset = info.data.get("preset")
        if preset in PRESETS and info.field_name in PRESETS[preset]:
            wanted = PRESETS[preset][info.field_name]
            if value != wanted:
                raise ValueError(f"preset {preset} sets {info.field_name}: {wanted}; drop this key, or "
                                 "drop the preset and give every key")
        return value

    @model_validator(mode="after")
    def _k_with_method(self) -> AnalysisConfig:
        if self.discretize in ("optimal", "none") and self.k is not None:
            raise ValueError("k goes with a single method (discretize: quantile, natural, ...)")
        return self


class ReportConfig(_Strict):
    """The run's figures (``<output>/figures/*.png``) and its HTML report (``<output>/report.html``).

    figures: draw the maps and charts (a stage of its own; at national scale it reads the land-cover
    grid once to draw the land-use maps). The report is written at the end of every run either way.
    """

    figures: bool = True


class CompensationConfig(_Strict):
    """County ecological compensation (methods.md sections 7-8); runs when ``county_stats`` is given
    and ``enabled`` (set it false when the statistics only value the standard equivalent).

    variants: ``all_land`` (non-market ESV of every land class from the grids, seed 002) and/or
        ``cultivated`` (cultivated land, equivalent factors of ``cultivated_table`` valued by each
        county's crops, seed 003). r_form: the social development stage R from the comprehensive
        Engel coefficient, ``pearl`` (t = 1/En - 3, the default: R rises as the food share falls,
        as the seed's prose reads) or ``seed`` (t = En, as eq. 8 prints it: R rises with the food
        share).
    reference_gdp_per_capita: G's reference (CNY per person): a catalog series by name (default
        ``china_nbs``, China's national GDP per capita by year, the seed's reference), ``counties``
        (the counties' total GDP over their total population in each year) or one number.
        reference_income: CNY per person for the opportunity cost;
        default: the population-weighted mean income of the counties in each year.
    horizon_years / discount_rate: the loss-based compensation's valuation of ESV lost through
        transitions. footprint_table: the items (c_i, p_i) and factors r, y of the footprint.
    """

    enabled: bool = Field(True, description="false: county_stats serve only the standard equivalent")
    variants: list[Literal["all_land", "cultivated"]] = Field(
        default_factory=lambda: ["all_land", "cultivated"], min_length=1)
    annual_form: Literal["seed001", "annuity"] = Field(
        "seed001", description="the loss-based annual amount: total / horizon (seed 001) or an annuity")
    cultivated_table: str = "hubei_cultivated_2017"
    footprint_table: str = "hubei_2017"
    r_form: Literal["seed", "pearl"] = Field(
        "pearl", description="R's t: 1/En - 3 (Pearl: R rises with wealth, as seed 003's prose) "
        "or En as printed")
    reference_gdp_per_capita: Annotated[float, Field(gt=0)] | Annotated[str, Field(min_length=1)] = Field(
        "china_nbs", description="G's reference, CNY/person: a series of catalogs/gdp_per_capita by name "
        "(default china_nbs, China's national figure by year, as seed 003's eq. 9), 'counties' (their "
        "total GDP over their population, per year) or one number")
    reference_income: Annotated[float, Field(gt=0)] | None = None
    horizon_years: int = Field(20, ge=1, le=500)
    discount_rate: float = Field(0.03, ge=0, lt=1)


class SlurmConfig(_Strict):
    """Dask workers as SLURM jobs (dask-jobqueue): each job runs ``processes`` workers sharing
    ``cores`` cores and ``memory``; ``jobs`` jobs are submitted."""

    queue: str | None = None
    account: str | None = None
    cores: int = Field(4, ge=1)
    processes: int = Field(1, ge=1)
    memory: str = Field("16GiB", description="per job, e.g. '64GiB'")
    walltime: str = Field("12:00:00", pattern=r"^(\d+-)?\d{1,2}:\d{2}:\d{2}$")
    jobs: int = Field(1, ge=1)
    interface: str | None = Field(None, description="network interface of the workers, e.g. 'ib0'")
    local_directory: str | None = Field(None, description="spill folder on the compute nodes")
    job_extra_directives: list[str] = []


class KubernetesConfig(_Strict):
    """Dask on Kubernetes through the Dask operator (dask-kubernetes): the flow creates a
    ``DaskCluster`` resource (scheduler and ``n_workers`` worker pods from ``image``) in
    ``namespace`` and deletes it at the end, or connects to an existing one (``create: false``).
    Secrets (object-storage credentials) are referenced by name, never written here."""

    name: str = Field("ecodask", pattern=r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")
    namespace: str | None = Field(None, description="default: the current context's namespace")
    image: str = Field(pattern=r"^[^\s:@]+(:[\w][\w.-]*)?(@sha256:[0-9a-f]{64})?$",
                       description="the project's image, pinned by tag or digest")
    create: bool = True
    n_workers: int = Field(2, ge=1)
    worker_threads: int = Field(2, ge=1)
    worker_cpu: str = Field("2", pattern=r"^\d+(\.\d+)?m?$")
    worker_memory: str = Field("8Gi", pattern=r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti)$")
    scheduler_cpu: str = Field("1", pattern=r"^\d+(\.\d+)?m?$")
    scheduler_memory: str = Field("2Gi", pattern=r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti)$")
    spill_size: str = Field("50Gi", pattern=r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti)$",
                            description="each worker's emptyDir spill volume")
    env: dict[str, str] = Field({}, description="plain settings for the pods (no secrets)")
    env_from_secret: str | None = Field(None, description="a Secret whose keys become the pods' environment")
    data_claim: str | None = Field(None, description="a PersistentVolumeClaim (ReadWriteMany) with the "
                                   "run's files, mounted in every pod at data_mount")
    data_mount: str = "/data"

    @field_validator("image")
    @classmethod
    def _pinned(cls, v: str) -> str:
        if "@sha256:" not in v and (":" not in v.rsplit("/", 1)[-1] or v.endswith(":latest")):
            raise ValueError(f"image {v!r} must be pinned by a tag other than latest, or a digest")
        return v


class MemoryConfig(_Strict):
    """Dask worker memory management, as fractions of each worker's memory limit: above ``target``
    (managed memory) and ``spill`` (process memory) data spills to ``local_directory``, at ``pause``
    the worker stops running tasks, at ``terminate`` its nanny restarts it."""

    target: float = Field(0.6, gt=0, le=1)
    spill: float = Field(0.7, gt=0, le=1)
    pause: float = Field(0.8, gt=0, le=1)
    terminate: float = Field(0.95, gt=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> MemoryConfig:
        if not self.target <= self.spill <= self.pause <= self.terminate:
            raise ValueError("memory fractions must rise: target <= spill <= pause <= terminate, got "
                             f"{self.target}, {self.spill}, {self.pause}, {self.terminate}")
        return self


class ClusterConfig(_Strict):
    """Where Dask runs: a LocalCluster (default), an existing scheduler, SLURM jobs or Kubernetes
    pods; how workers manage their memory (``memory``) and where they spill (``local_directory``)."""

    kind: Literal["local", "address", "slurm", "kubernetes"] = "local"
    n_workers: int = Field(2, ge=1)
    threads_per_worker: int = Field(1, ge=1)
    memory_limit: str = Field("auto", description="per worker, e.g. '4GiB' or 'auto'; with processes: "
                              "false the worker measures the flow's whole process, in which it runs, "
                              "and pauses at memory.pause of this: leave it 'auto' there")
    processes: bool = True
    scheduler_process: bool = Field(
        True, description="with process workers, the local scheduler runs in a process of its own "
        "rather than the flow's (its CPU then does not compete with the flow's)")
    memory: MemoryConfig = MemoryConfig()
    profile: bool = Field(
        False, description="Dask's statistical profiler on the workers (the dashboard's Profile page); "
        "off by default: its history grows with the run's time, ~0.45 MB a second per busy worker, "
        "for up to 1,000 s")
    local_directory: str | None = Field(None, description="spill folder of local workers (default: temp)")
    dashboard_address: str = Field("127.0.0.1:0", pattern=r"^[^\s/]*:\d{1,5}$",
                                   description="where a local cluster serves its dashboard (host:port; "
                                   "port 0 picks a free one); localhost only unless set, e.g. ':8787'")
    address: str | None = None
    slurm: SlurmConfig | None = None
    kubernetes: KubernetesConfig | None = None

    @model_validator(mode="after")
    def _address(self) -> ClusterConfig:
        for section in ("slurm", "kubernetes"):
            if self.kind == section and getattr(self, section) is None:
                raise ValueError(f"kind {section!r} needs a {section} section")
            if self.kind != section and getattr(self, section) is not None:
                raise ValueError(f"a {section} section is only used with kind: {section}")
        if self.kind == "address" and not self.address:
            raise ValueError("kind 'address' needs an address, e.g. tcp://127.0.0.1:8786")
        if self.kind == "local" and self.address:
            raise ValueError("an address is only used with kind: address")
        return self


class RunConfig(_Strict):
    """One run of ecodask."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    grid: GridConfig
    landcover: LandcoverConfig
    esv: EsvConfig
    zones: ZonesConfig
    drivers: dict[str, Annotated[DriverConfig, BeforeValidator(_driver_shorthand)]] = {}
    county_stats: InputFile | None = None
    analysis: AnalysisConfig = AnalysisConfig()
    compensation: CompensationConfig = CompensationConfig()
    report: ReportConfig = ReportConfig()
    output: ResolvedPath
    remote_output: RemoteUrl | None = Field(
        None, description="where the run publishes (set from a URL output); output is then local")
    work_dir: ResolvedPath | None = Field(
        None, description="local folder for remote inputs and a remote output's computing")
    layers_root: str | None = Field(
        None, exclude=True, description="while a run computes in its work folder (output): the folder "
        "whose layers, stage manifests and pointer it writes (set by the run, never by a user)")
    cluster: ClusterConfig = ClusterConfig()
    catalogs: list[ResolvedPath] = Field([], description="extra catalog folders, searched first")
    source: Path | None = Field(None, exclude=True, description="the YAML file (set by loading)")

    @field_validator("layers_root")
    @classmethod
    def _set_by_the_run(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError("set by a run while it computes, never in a configuration")
        return value

    @model_validator(mode="before")
    @classmethod
    def _url_output(cls, data: Any, info: ValidationInfo) -> Any:
        """``output: s3://...`` means: compute in ``<work_dir>/output``, publish to the URL."""
        if not isinstance(data, dict) or not objstore.is_remote(data.get("output")):
            return data
        try:
            url = objstore.check_output_url(data["output"])
            work = _work_dir(info)
        except ValueError:
            return data  # the output field reports it
        if data.get("remote_output") is not None:
            return data  # the output field reports it
        return data | {"output": str(work / "output"), "remote_output": url,
                       "work_dir": data.get("work_dir") or str(work)}

    @property
    def years(self) -> list[int]:
        return sorted(self.landcover.years)


def content_dump(cfg: RunConfig, checksum: Callable[[Path], str]) -> dict[str, Any]:
    """The configuration as ``model_dump(mode="json")`` gives it, but naming content, not places:
    every input file (an :data:`InputFile` field, local or fetched) is ``checksum(path)`` of the
    file, every other path (:data:`ResolvedPath`: the output, the work folder, catalog folders;
    the remote output's URL) None. The stage keys take their path-valued settings from it
    (:mod:`ecodask.run.resume`), so that the same bytes at another path, or fetched from a bucket,
    give the same keys."""
    return cfg.model_dump(mode="json", context={_CONTENT: checksum})


def _field_names() -> list[str]:
    names: set[str] = set()
    for model in (RunConfig, GridConfig, LandcoverConfig, EsvConfig, ZonesConfig, DriverConfig,
                  ClusterConfig, AnalysisConfig, CompensationConfig, SlurmConfig):
        names.update(model.model_fields)
    return sorted(names)


def _problem(file: Path, err: dict[str, Any]) -> Problem:
    key = ".".join(str(p) for p in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    value = objstore.redact(err.get("input"))
    keyed = err.get("ctx", {}).get("error")
    if isinstance(keyed, _KeyedError):  # about one part of the field's value: name that part
        key, value = f"{key}.{keyed.key}", keyed.value
    if err["type"] == "extra_forbidden":
        close = difflib.get_close_matches(str(err["loc"][-1]), _field_names(), n=1)
        msg = "unknown key" + (f"; did you mean {close[0]!r}?" if close else "")
    elif err["type"] == "missing":
        value = None
        msg = "required key is missing"
    return problem(file, key, value, msg)


def _catalog_problems(exc: CatalogError, kind: str, cfg: RunConfig, file: Path, key: str,
                      name: str) -> list[Problem]:
    """An unknown catalog name is the configuration's fault; an invalid entry is its YAML file's,
    reported with the entry's own file, key and value."""
    if name in catalog_files(kind, cfg.catalogs):
        return [problem(p.file, p.key, p.value, p.message.removeprefix("Value error, "))
                for p in exc.problems]
    what = {"class_schemes": "class scheme", "gdp_per_capita": "GDP per capita series",
            "error_matrices": "error matrix"}.get(kind, "ESV table")
    return [problem(file, key, name, f"unknown {what} ({exc.problems[0].message})")]


def _output_problems(cfg: RunConfig, file: Path) -> list[Problem]:
    """The output must be a folder this process can create or write into (found now, not after an
    hour's computing)."""
    import os

    key = "work_dir" if cfg.remote_output is not None else "output"
    out = cfg.output
    if out.exists() and not out.is_dir():
        return [problem(file, key, str(out), "exists and is not a folder: name a folder for the outputs")]
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return [problem(file, key, str(out), f"{parent} is a file, not a folder")]
    if not os.access(parent, os.W_OK | os.X_OK):
        return [problem(file, key, str(out), f"cannot write into {parent} (permissions)")]
    return []


def _cross_checks(cfg: RunConfig, file: Path) -> list[Problem]:
    """Checks that need the catalogs, the zone file's fields and the output's place on disk."""
    out: list[Problem] = _output_problems(cfg, file)
    scheme = table = None
    try:
        scheme = load_class_scheme(cfg.landcover.scheme, cfg.catalogs)
    except CatalogError as exc:
        out += _catalog_problems(exc, "class_schemes", cfg, file, "landcover.scheme", cfg.landcover.scheme)
    try:
        table = load_esv_table(cfg.esv.table, cfg.catalogs)
    except CatalogError as exc:
        out += _catalog_problems(exc, "esv_tables", cfg, file, "esv.table", cfg.esv.table)
    if scheme and table and table.class_set not in scheme.mappings:
        out.append(problem(file, "esv.table", cfg.esv.table,
                           f"its class set {table.class_set!r} has no mapping in class scheme "
                           f"{scheme.name!r} (has: {', '.join(scheme.mappings)})"))
    elif scheme and table:
        out += _table_fits(cfg, scheme, table, file)
        out += _uncertainty_fits(cfg, scheme, table, file)
    if scheme and cfg.landcover.scenarios is not None:
        out += _scenarios_fit(cfg.landcover.scenarios, scheme, file)
    ref = cfg.compensation.reference_gdp_per_capita
    compensated = cfg.county_stats is not None and cfg.compensation.enabled
    if compensated and isinstance(ref, str) and ref != "counties":
        try:
            load_gdp_per_capita(ref, cfg.catalogs)
        except CatalogError as exc:
            out += _catalog_problems(exc, "gdp_per_capita", cfg, file,
                                     "compensation.reference_gdp_per_capita", ref)
    import pyogrio

    try:
        info = pyogrio.read_info(cfg.zones.path, layer=cfg.zones.layer)
    except Exception as exc:  # noqa: BLE001 - any driver error is an unreadable file
        out.append(problem(file, "zones.path", str(cfg.zones.path), f"cannot read as vector: {exc}"))
    else:
        fields = list(info["fields"])
        for key in ("id_field", "name_field"):
            name = getattr(cfg.zones, key)
            if name is not None and name not in fields:
                out.append(problem(file, f"zones.{key}", name,
                                   f"no such field in {cfg.zones.path.name} (fields: {fields})"))
    return out


def _table_fits(cfg: RunConfig, scheme: ClassScheme, table: EsvTable, file: Path) -> list[Problem]:
    """The table values every class the scheme maps onto it; the ESV options fit the table."""
    out: list[Problem] = scheme_fits_table(scheme, table, cfg.catalogs)
    se = cfg.esv.standard_equivalent
    if se is not None and table.kind == "value":
        out.append(problem(file, "esv.standard_equivalent", se,
                           f"table {table.name!r} is in CNY/ha/yr, not equivalent factors"))
    if table.kind == "equivalent" and se is None and table.standard_equivalent is None:
        out.append(problem(file, "esv.standard_equivalent", None,
                           f"table {table.name!r} has no standard equivalent: "
                           "give a value or from_county_stats"))
    if se == "from_county_stats" and cfg.county_stats is None:
        out.append(problem(file, "esv.standard_equivalent", se, "needs county_stats"))
    groups = {s.group for s in table.services}
    for group, driver in cfg.esv.adjustment.items():
        if group not in groups:
            out.append(problem(file, f"esv.adjustment.{group}", driver,
                               f"table {table.name!r} has no such group"))
        if driver not in cfg.drivers:
            out.append(problem(file, f"esv.adjustment.{group}", driver,
                               f"no such driver (drivers: {', '.join(cfg.drivers) or 'none'})"))
        elif cfg.drivers[driver].kind != "continuous":
            out.append(problem(file, f"esv.adjustment.{group}", driver, "must be a continuous driver"))
    return out


def _scenarios_fit(sc: ScenariosConfig, scheme: ClassScheme, file: Path) -> list[Problem]:
    """The scenarios name classes of the scheme; without names, the scheme has scenarios of its own."""
    if sc.named is None:
        if not scheme.scenarios:
            return [problem(file, "landcover.scenarios.named", None,
                            f"class scheme {scheme.name!r} has no scenarios of its own: name some")]
        return []
    if not sc.named:
        return [problem(file, "landcover.scenarios.named", {}, "names no scenario")]
    names = [c.name for c in scheme.classes.values()]
    return [problem(file, f"landcover.scenarios.named.{name}.{where}", value, message)
            for name, rules in sc.named.items()
            for where, value, message in scenario_rule_problems(rules, names, scheme.name)]


def _uncertainty_fits(cfg: RunConfig, scheme: ClassScheme, table: EsvTable, file: Path) -> list[Problem]:
    """The alternative tables value the run's services for every class of the scheme; the error
    matrix is of the run's class scheme."""
    unc = cfg.esv.uncertainty
    out: list[Problem] = []
    for i, name in enumerate(unc.tables):
        key = f"esv.uncertainty.tables.{i}"
        try:
            alt = load_esv_table(name, cfg.catalogs)
        except CatalogError as exc:
            out += _catalog_problems(exc, "esv_tables", cfg, file, key, name)
            continue
        if alt.service_names != table.service_names:
            out.append(problem(file, key, name, f"values the services {alt.service_names}, not the run's "
                               f"{table.service_names} (table {table.name!r})"))
        elif alt.class_set not in scheme.mappings:
            out.append(problem(file, key, name, f"its class set {alt.class_set!r} has no mapping in class "
                               f"scheme {scheme.name!r}"))
        else:
            out += scheme_fits_table(scheme, alt, cfg.catalogs)
        if (alt.kind == "equivalent" and alt.standard_equivalent is None and table.kind == "value"
                and table.standard_equivalent is None):
            out.append(problem(file, key, name, "an equivalent-factor table without a standard equivalent "
                               f"needs the run's, and the run's table {table.name!r} of values states none"))
    if unc.error_matrix is not None:
        try:
            em = load_error_matrix(unc.error_matrix, cfg.catalogs)
        except CatalogError as exc:
            return out + _catalog_problems(exc, "error_matrices", cfg, file, "esv.uncertainty.error_matrix",
                                           unc.error_matrix)
        if em.scheme != scheme.name:
            out.append(problem(file, "esv.uncertainty.error_matrix", unc.error_matrix,
                               f"is of class scheme {em.scheme!r}, not the run's {scheme.name!r}"))
        unknown = sorted(set(em.codes) - set(scheme.classes))
        if unknown:
            out.append(problem(file, "esv.uncertainty.error_matrix", unc.error_matrix,
                               f"has codes {unknown} that class scheme {scheme.name!r} does not"))
    return out


def _duplicate_keys(node: yaml.Node | None, file: Path, path: str = "") -> list[Problem]:
    """Every key given twice in one mapping of a YAML document (YAML loaders keep the last one
    without a word), named by its dotted path and the lines it is on."""
    out: list[Problem] = []
    seen: set[int] = set()
    stack = [(node, path)]
    while stack:
        n, where = stack.pop()
        if n is None or id(n) in seen:  # an alias is checked once
            continue
        seen.add(id(n))
        if isinstance(n, yaml.MappingNode):
            given: dict[str, list[tuple[int, object]]] = {}
            for key, value in n.value:
                name = str(key.value) if isinstance(key, yaml.ScalarNode) else key.tag
                shown = value.value if isinstance(value, yaml.ScalarNode) else f"({value.id})"
                given.setdefault(name, []).append((key.start_mark.line + 1, shown))
                stack.append((value, f"{where}.{name}" if where else name))
            out += [problem(file, f"{where}.{k}" if where else k, [v for _, v in g],
                            f"given {len(g)} times (lines {', '.join(str(line) for line, _ in g)}): "
                            "give it once (YAML would keep the last without a word)")
                    for k, g in given.items() if len(g) > 1]
        elif isinstance(n, yaml.SequenceNode):
            stack += [(item, f"{where}.{i}") for i, item in enumerate(n.value)]
    return sorted(out, key=lambda p: p.message)


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a run configuration; raise :class:`ConfigError` listing every fault."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([problem(file, "", None, f"cannot read the configuration: {exc}")]) from None
    try:
        duplicates = _duplicate_keys(yaml.compose(text, Loader=yaml.SafeLoader), file)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError([problem(file, "", None, f"not valid YAML{where}: "
                                   f"{getattr(exc, 'problem', None) or exc}")]) from None
    if duplicates:
        raise ConfigError(duplicates)
    if not isinstance(data, dict):
        raise ConfigError([problem(file, "", type(data).__name__, "must be a mapping of keys")])
    if "source" in data:
        raise ConfigError([problem(file, "source", data["source"], "unknown key")])
    base = file.resolve().parent
    work_dir = default_work_dir(data, base)
    data, unfetched = fetch_inputs(data, work_dir, file)  # remote inputs: a step of their own
    try:
        cfg = RunConfig.model_validate(data, context={"base": base, "work_dir": work_dir})
    except ValidationError as exc:
        failed = [tuple(map(str, loc)) for loc in unfetched]  # reported by the fetch step
        problems = [*unfetched.values()]
        problems += [_problem(file, e) for e in exc.errors()
                     if not any(tuple(map(str, e["loc"]))[:len(f)] == f for f in failed)]
        raise ConfigError(problems) from None
    if unfetched:
        raise ConfigError(list(unfetched.values()))
    problems = _cross_checks(cfg, file)
    if problems:
        raise ConfigError(problems)
    return cfg.model_copy(update={"source": file.resolve()})
