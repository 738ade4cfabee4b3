"""The ``ecodask`` command.

Exit codes: 0 success; 1 unexpected failure (a bug: rerun with --debug and report it);
2 invalid configuration, catalog or input data (the message names the file, key and value).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ecodask.errors import EcodaskError

# Runs are often offline (clusters, scheduled jobs): no anonymous usage pings from a local server.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# A run without a Prefect server starts a temporary one; its first start on a fresh machine (database
# migrations, cold imports) can take longer than Prefect's default 20 s.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

app = typer.Typer(
    help="ecodask: ecosystem service value, land-use transitions and ecological compensation "
    "from multi-year land-use rasters, on Dask + Zarr + Prefect.\n\n"
    "Example: ecodask demo --out demo-output",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True)
out = Console()
_state = {"debug": False}


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _state["debug"] = debug


def _fail(exc: BaseException) -> None:
    if _state["debug"]:
        raise exc
    code = 2 if isinstance(exc, EcodaskError) else 1
    kind = "error" if code == 2 else f"unexpected error ({type(exc).__name__}; rerun with --debug)"
    err.print(f"[bold red]{kind}:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _run(config: Path, force: list[str] | None = None) -> dict[str, str]:
    """Run the flow, unless every stage finished earlier with the same inputs (and none is forced):
    then say so and return the recorded outputs without starting Prefect or Dask, writing nothing."""
    from ecodask import resume
    from ecodask.config import load_config

    cfg = load_config(config)
    if not force and cfg.output.exists():
        todo, done = resume.pending(cfg)
        if not todo:
            for stage in done:
                out.print(f"stage {stage}: finished earlier with the same inputs, skipped", highlight=False)
            outputs = {k: v for stage in done.values() for k, v in stage.items()}
            run_record = cfg.output / "run.json"
            if run_record.exists():
                outputs["run_record"] = str(run_record)
            return outputs
    from flows.run import run_flow

    return run_flow(str(config), force=list(force or []))


def _print_outputs(outputs: dict[str, str]) -> None:
    out.print("[bold green]Done.[/] Outputs:")
    for key, path in outputs.items():
        out.print(f"  {key:<22} {path}", highlight=False, soft_wrap=True)


@app.command()
def validate(config: Annotated[Path, typer.Argument(help="Run configuration (YAML).")]) -> None:
    """Check a run configuration and every input it names; write nothing.

    Example: ecodask validate region.yaml
    """
    from ecodask.stages import validate as _validate

    try:
        cfg = _validate(config)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    out.print(f"[green]ok[/]: {config} ({len(cfg.years)} years, {len(cfg.drivers)} drivers)")


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="Run configuration (YAML).")],
    force: Annotated[list[str] | None, typer.Option(
        help="Redo this stage, and the stages built on it, even if it finished earlier with the same "
        "inputs (repeatable): ingest, "
        "transitions_esv, driver_analysis, compensation.")] = None,
) -> None:
    """Run the whole flow for a configuration. Stages that finished earlier with the same inputs
    are skipped.

    Example: ecodask run region.yaml --force driver_analysis
    """
    try:
        outputs = _run(config, force)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    _print_outputs(outputs)


@app.command()
def serve(
    config: Annotated[Path, typer.Argument(help="Run configuration (YAML) of the scheduled run.")],
    cron: Annotated[str, typer.Option(
        help="When to run: a cron expression (minute hour day month weekday).")] = "0 2 1 * *",
    timezone: Annotated[str, typer.Option(help="Time zone of the cron schedule.")] = "Asia/Shanghai",
    name: Annotated[str, typer.Option(help="Deployment name (the Prefect UI shows ecodask-run/NAME).")] = (
        "national"),
) -> None:
    """Serve the run flow as a scheduled Prefect deployment: create (or update) the deployment with
    its cron schedule and the config path as its parameter, then run each scheduled or triggered
    flow run in this process until stopped (Ctrl-C). Needs a Prefect server (PREFECT_API_URL).

    Example: ecodask serve national.yaml --cron "0 2 1 * *"
    """
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.schedules import Cron

    from flows.run import run_flow

    try:
        from ecodask.config import load_config

        load_config(config)  # a bad configuration fails here, not at 2 a.m.
        try:
            CronSchedule(cron=cron, timezone=timezone)
        except ValueError as exc:
            reason = "; ".join(e["msg"] for e in getattr(exc, "errors", lambda: [])()) or str(exc)
            raise EcodaskError(f"--cron {cron!r} --timezone {timezone!r}: {reason}") from None
        schedule = Cron(cron, timezone=timezone)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    run_flow.serve(name=name, schedules=[schedule], parameters={"config_path": str(config.resolve())},
                   description=f"ecodask run of {config.name} on the schedule {cron} ({timezone})",
                   tags=["ecodask"], pause_on_shutdown=False)


@app.command()
def synth(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the region into.")],
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same files.")] = 0,
    width_km: Annotated[float, typer.Option(help="Region width, km.")] = 24.0,
    height_km: Annotated[float, typer.Option(help="Region height, km.")] = 18.0,
    counties: Annotated[int, typer.Option(help="Number of counties.")] = 8,
) -> None:
    """Write a synthetic region (GeoTIFFs, GeoPackage, CSV and its config.yaml).

    Example: ecodask synth region --seed 1 --width-km 50
    """
    from ecodask.synth import make_region

    try:
        cfg = make_region(out_dir, seed=seed, width_km=width_km, height_km=height_km, n_counties=counties)
    except ValueError as exc:  # a bad option value
        _fail(EcodaskError(str(exc)))
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    out.print(f"wrote {cfg}")


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the demo's inputs and outputs.")] = Path(
        "demo-output"
    ),
    seed: Annotated[int, typer.Option(help="Random seed of the synthetic region.")] = 0,
) -> None:
    """Generate a synthetic region and run the whole flow on it. A rerun reuses the region when its
    files are unchanged and skips the stages that finished with the same inputs.

    Example: ecodask demo --out demo-output
    """
    from ecodask.demo import prepare_region

    try:
        cfg, generated = prepare_region(out_dir, seed=seed)
        if not generated:
            out.print(f"synthetic region in {out_dir} is current (same seed, files unchanged): reused",
                      highlight=False)
        outputs = _run(cfg)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    _print_outputs(outputs)


@app.command(no_args_is_help=True)
def geodetector(
    table: Annotated[Path, typer.Argument(help="CSV or Parquet table, one row per observation.")],
    more_factors: Annotated[list[str] | None, typer.Argument(hidden=True, metavar="")] = None,
    y: Annotated[str, typer.Option("--y", help="Column of the dependent variable.")] = ...,  # type: ignore[assignment]
    factors: Annotated[list[str], typer.Option(
        "--factors", help="Factor columns: --factors A B C (or A,B,C).")] = ...,  # type: ignore[assignment]
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the tables and charts.")] = Path(
        "geodetector-output"),
    discretize: Annotated[str, typer.Option(
        help="none (use values as strata), optimal (every method and k, highest q), or one of "
        "equal, quantile, natural, geometric, sd with --k.")] = "none",
    k: Annotated[int, typer.Option(help="Classes for a single discretization method.")] = 5,
    categorical: Annotated[list[str] | None, typer.Option(
        help="Factors used as given even when discretizing (repeat, or A,B).")] = None,
    variance: Annotated[str, typer.Option(help="λ of the F test: population (GD, gdverse) or sample "
                                          "(CRAN geodetector).")] = "population",
    keep_singletons: Annotated[bool, typer.Option(
        help="Keep one-observation strata in the overlays of the interaction detector.")] = False,
    alpha: Annotated[float, typer.Option(help="Level of the risk and ecological detectors.")] = 0.05,
    dropna: Annotated[bool, typer.Option(
        help="Leave out rows with a missing value (else an error).")] = False,
) -> None:
    """Geographical Detector on a table: factor, interaction, risk and ecological detectors.

    Example: ecodask geodetector ntd.csv --y incidence --factors type region level --out gd
    """
    from ecodask.drivers import geodetector_on_table

    names = [f for v in [*factors, *(more_factors or [])] for f in v.split(",") if f]
    cats = [f for v in (categorical or []) for f in v.split(",") if f]
    choices = ("none", "optimal", "equal", "quantile", "natural", "geometric", "sd")
    try:
        if discretize not in choices:
            raise EcodaskError(f"--discretize = {discretize!r}: one of {', '.join(choices)}")
        if variance not in ("population", "sample"):
            raise EcodaskError(f"--variance = {variance!r}: population or sample")
        results, paths = geodetector_on_table(
            table, y, names, out_dir, discretize=None if discretize == "none" else discretize, k=k,
            categorical=cats, variance=variance, drop_singletons=not keep_singletons, alpha=alpha,
            dropna=dropna)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    from rich.table import Table

    t = Table(title=f"Factor detector (λ on {variance} variance)")
    for col in ("factor", "q", "p", "strata"):
        t.add_column(col, justify="left" if col == "factor" else "right")
    for r in results["factor"].sort_values("q", ascending=False).itertuples():
        t.add_row(str(r.factor), f"{r.q:.4f}", f"{r.p:.3g}", str(r.strata))
    out.print(t)
    _print_outputs({k: str(v) for k, v in paths.items()})


@app.command(no_args_is_help=True)
def compensation(
    stats: Annotated[Path, typer.Option("--stats", help="County statistics (CSV or Parquet).")] = ...,  # type: ignore[assignment]
    zones: Annotated[Path, typer.Option("--zones", help="County polygons (any vector format).")] = ...,  # type: ignore[assignment]
    esv: Annotated[Path | None, typer.Option(
        "--esv", help="A run's esv_by_service table (CSV or Parquet) for the all-land variant.")] = None,
    transitions: Annotated[Path | None, typer.Option(
        help="A run's transitions table, for the loss-based amount.")] = None,
    id_field: Annotated[str, typer.Option(help="County id field of the polygons.")] = "code",
    name_field: Annotated[str, typer.Option(help="County name field of the polygons.")] = "name",
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the tables and maps.")] = Path(
        "compensation-output"),
    r_form: Annotated[str, typer.Option(help="Development stage R: seed (t = En) or pearl "
                                        "(t = 1/En - 3).")] = "seed",
    reference_gdp_per_capita: Annotated[float | None, typer.Option(
        help="CNY per person for G (default: the counties' GDP over their population).")] = None,
    reference_income: Annotated[float | None, typer.Option(
        help="CNY per person for the opportunity cost (default: the counties' mean).")] = None,
    horizon_years: Annotated[int, typer.Option(help="Years over which a loss is valued.")] = 20,
    discount_rate: Annotated[float, typer.Option(help="Discount rate of the loss-based amount.")] = 0.03,
) -> None:
    """County ecological compensation: priorities and amounts per county and year.

    Example: ecodask compensation --stats stats.csv --esv out/tables/esv_by_service.csv
    --zones counties.gpkg --out comp
    """
    from pydantic import ValidationError

    from ecodask.compensation_stage import compensation_from_files
    from ecodask.config import CompensationConfig

    try:
        try:
            opts = CompensationConfig(r_form=r_form, reference_gdp_per_capita=reference_gdp_per_capita,
                                      reference_income=reference_income, horizon_years=horizon_years,
                                      discount_rate=discount_rate)
        except ValidationError as exc:
            raise EcodaskError("; ".join(f"--{str(e['loc'][0]).replace('_', '-')} = {e.get('input')!r}: "
                                         f"{e['msg']}" for e in exc.errors())) from None
        table, paths = compensation_from_files(stats, esv, zones, id_field, name_field, out_dir, opts,
                                               transitions)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    last = table[table["year"] == table["year"].max()]
    summary = last.groupby(["variant", "direction"])["amount_1e8cny"].sum()
    for (variant, direction), v in summary.items():
        out.print(f"{variant:<10} {direction:<8} {v:12.4f} x 10^8 CNY/yr ({int(table['year'].max())})")
    _print_outputs({k: str(v) for k, v in paths.items()})


def main() -> None:  # pragma: no cover
    app(prog_name="ecodask")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
