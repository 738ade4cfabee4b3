"""The ``ecodask`` command.

Exit codes: 0 success; 1 unexpected failure (a bug: rerun with --debug and report it);
2 invalid configuration, catalog or input data (the message names the file, key and value);
130 interrupted (Ctrl-C).

While ``run`` and ``demo`` compute, stderr shows a progress display of the stages
(:mod:`ecodask.present.progress_bar`): live bars on a terminal, a plain line per stage otherwise.
Prefect's own console log shows warnings and errors only unless ``--verbose`` (the Prefect UI has
every line). ``--quiet`` turns the display off and prints no listing of outputs (warnings and
errors are still printed; the exit code tells the outcome).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import traceback
import warnings
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from typer.core import TyperGroup

from ecodask.errors import EcodaskError, InputWarning, ProblemsError

# Runs are often offline (clusters, scheduled jobs): no anonymous usage pings from a local server.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# A run without a Prefect server starts a temporary one; its first start on a fresh machine (database
# migrations, cold imports) can take longer than Prefect's default 20 s.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

EXIT_CODES = (
    "Exit codes: 0 success; 1 unexpected failure (a bug: rerun with --debug and report it); "
    "2 invalid configuration, catalog or input data (the message names the file, field and value); "
    "130 interrupted (Ctrl-C)."
)

err = Console(stderr=True)
out = Console()
_state = {"debug": False, "quiet": False, "verbose": False}


class _Group(TyperGroup):
    """Ctrl-C anywhere in a command: one line and exit code 130."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            if _state["debug"]:
                traceback.print_exc()
            err.print("interrupted", highlight=False)
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=_Group,
    help="ecodask: ecosystem service value, land-use transitions and ecological compensation "
    "from multi-year land-use rasters, on Dask + Zarr + Prefect.\n\n"
    "Example: ecodask demo --out demo-output\n\n"
    "Example: ecodask --quiet run region.yaml",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="For scheduled runs: no progress display and no listing of outputs "
        "(warnings and errors only).")] = False,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Also show Prefect's log (task runs, the temporary server) and other "
        "libraries' log records on the console; the Prefect UI has Prefect's in any case.")] = False,
) -> None:
    _state["debug"] = debug
    _state["quiet"] = quiet
    _state["verbose"] = verbose
    warnings.showwarning = _show_warning
    if not verbose and "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL" not in os.environ:
        # Prefect reads it when it sets up logging (on import, later in the command), so its console
        # handler, and the temporary server's, stay quiet to the end of the process (the server
        # says it stops at exit); its API handler still sends every record to the UI. The progress
        # display says what the stages do.
        os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "WARNING"
    if not verbose and "PREFECT_LOGGING_ROOT_LEVEL" not in os.environ:
        # Other libraries' records reach the console through Prefect's root logger: in the temporary
        # server (a child process, which inherits this environment) SQLAlchemy logs a traceback
        # when the server is stopped at exit while a request holds a connection, even after a clean
        # run. Only --verbose shows them.
        os.environ["PREFECT_LOGGING_ROOT_LEVEL"] = "CRITICAL"


_default_showwarning = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """An :class:`InputWarning` as one ``warning:`` line on stderr; other warnings as Python shows them."""
    if not issubclass(category, InputWarning):
        _default_showwarning(message, category, filename, lineno, file, line)
        return
    err.print("[bold yellow]warning:[/] ", end="", markup=True)
    err.print(_one_line(str(message)), markup=False, highlight=False, soft_wrap=True)


def _one_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text.strip())


def _yaml_reason(exc: BaseException | None) -> str | None:
    """A one-line reason of a YAML syntax error (``line L, column C: problem``), if ``exc`` is one."""
    import yaml

    if not isinstance(exc, yaml.YAMLError):
        return None
    mark = getattr(exc, "problem_mark", None)
    what = " ".join(str(p) for p in (getattr(exc, "context", None), getattr(exc, "problem", None)) if p)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"not valid YAML{where}: {what or _one_line(str(exc))}"


def describe(exc: BaseException) -> str:
    """The message of an error: one line per located problem (the first says what failed, naming
    the file), no traceback."""
    if isinstance(exc, ProblemsError) and exc.problems:
        yaml_reason = _yaml_reason(exc.__context__) if len(exc.problems) == 1 else None
        files = list(dict.fromkeys(p.file for p in exc.problems))
        one_file = len(exc.problems) > 1 and len(files) == 1  # named once, in the first line
        lines = []
        for p in exc.problems:
            where = (p.key or p.file) if one_file else (f"{p.file}: {p.key}" if p.key else p.file)
            message = yaml_reason or p.message
            value = "" if p.value is None and not p.key else f" = {p.value!r}"
            lines.append(_one_line(f"{where}{value}: {message}"))
        if len(lines) == 1:
            return lines[0]
        return f"{len(lines)} problems in {', '.join(files)}:\n  " + "\n  ".join(lines)
    return _one_line(str(exc)) or type(exc).__name__


def _number_or_name(value: str) -> float | str:
    """A command-line value that is a number (``59592``) or a name (``china_nbs``)."""
    try:
        return float(value)
    except ValueError:
        return value


def _fail(exc: BaseException) -> None:
    """Report ``exc`` and exit: 2 for a user's error (EcodaskError), 1 for anything else; with
    --debug the traceback first."""
    if _state["debug"]:
        err.print("".join(traceback.format_exception(exc)), markup=False, highlight=False, end="",
                  soft_wrap=True)
    code = 2 if isinstance(exc, EcodaskError) else 1
    kind = "error" if code == 2 else f"unexpected error ({type(exc).__name__}; rerun with --debug)"
    err.print(f"[bold red]{kind}:[/] ", end="", markup=True)
    err.print(describe(exc), markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _say(text: str) -> None:
    """A progress note on stdout, unless --quiet."""
    if not _state["quiet"]:
        out.print(text, highlight=False, soft_wrap=True)


def _run(config: Path, force: list[str] | None = None, wait: float = 0.0, verify: bool = False,
         ) -> dict[str, str]:
    """Check the configuration and its inputs, then run the flow with a progress display on
    stderr; unless every stage finished earlier with the same inputs (and none is forced): then say
    so and return the recorded outputs without starting Prefect or Dask, writing nothing."""
    from ecodask.io.commit import settle
    from ecodask.io.layout import RunFolder
    from ecodask.run import inputs, resume

    force = resume.forced(force)
    cfg = inputs.load(config)
    done: dict[str, dict[str, str]] = {}
    if cfg.output.exists():
        settle(cfg.output)  # a commit a killed run left half-done is finished first
        todo, done = resume.pending(cfg, force, chunks="all" if verify else "sample")
        if not todo:
            for stage in done:
                _say(f"stage {stage}: finished earlier with the same inputs, skipped")
            outputs = {k: v for stage in done.values() for k, v in stage.items()}
            run_record = RunFolder(cfg.output).run_record
            if run_record.exists():
                outputs["run_record"] = str(run_record)
            return outputs
    # Every stage finished with the same inputs needs no check of them (a rerun stays quick);
    # otherwise input errors are one line here, before Prefect starts.
    inputs.checked(cfg)  # the flow's own check (same process) finds it done
    from ecodask.io.lock import run_lock
    from ecodask.present.progress import displaying
    from ecodask.present.progress_bar import (
        StageProgressDisplay,
        quiet_console_logs,
        user_errors_without_tracebacks,
    )
    from ecodask.run.stages import NAMES
    from flows.run import run_flow  # imports Prefect, which sets up its console logging
    from flows.server import temporary_api

    # A bad input found inside a stage is the user's to fix: Prefect's log keeps its line, and the
    # traceback only with --debug (the error itself is printed once, at the end). Without a Prefect
    # server the run has a temporary one, as Prefect would start it (without importing it here).
    with (run_lock(RunFolder(cfg.output).state, cfg.remote_output, wait_s=wait),  # one run per output
          temporary_api(),
          contextlib.nullcontext() if _state["debug"] else user_errors_without_tracebacks()):
        if _state["quiet"]:
            with quiet_console_logs():
                return run_flow(str(config), force=force, verify=verify)
        with (StageProgressDisplay(err, stages=NAMES) as display, displaying(display),
              contextlib.nullcontext() if _state["verbose"] else quiet_console_logs()):
            for stage in done:  # the flow skips them too: same inputs, same outputs present
                display.skipped(stage)
            return run_flow(str(config), force=force, verify=verify)


def _print_outputs(outputs: dict[str, str]) -> None:
    record = outputs.get("run_record")
    if record:  # a run's outputs: say which zones its land cover covers only in part
        from ecodask.present.summaries import coverage_warning

        line = coverage_warning(Path(record).parent)
        if line:
            err.print("[bold yellow]warning:[/] ", end="", markup=True)
            err.print(line, markup=False, highlight=False, soft_wrap=True)
    if _state["quiet"]:
        return
    out.print("[bold green]Done.[/] Outputs:")
    for key, path in outputs.items():
        out.print(f"  {key:<22} {path}", highlight=False, soft_wrap=True)


@app.command()
def validate(
    config: Annotated[Path, typer.Argument(help="Run configuration (YAML).")],
    quick: Annotated[bool, typer.Option(
        "--quick", help="Check the configuration and the inputs' headers only; do not read the land "
        "cover's pixels.")] = False,
) -> None:
    """Check a run configuration and every input it names; write nothing.

    Then read the land cover on the run's grid, as a run would (skip with
    --quick): codes the class scheme lacks are errors, with their pixel
    counts; the classes' shares inside the zones are printed per year (a
    wrong scheme shows); zones the land cover covers only in part are named.

    Example: ecodask validate region.yaml
    """
    from ecodask.errors import InputError
    from ecodask.run.inputs import survey
    from ecodask.run.inputs import validate as _validate

    try:
        cfg = _validate(config)
        found = None if quick else survey(cfg)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    if found is not None:
        from ecodask.present.summaries import coverage_line

        out.print(f"Land cover inside the zones, % of the classified pixels (class scheme "
                  f"{cfg.landcover.scheme!r}):", highlight=False)
        width = max(len(str(c)) for c in found.shares.index)
        out.print("  " + " " * width + "".join(f"{y:>9}" for y in found.shares.columns), highlight=False)
        for name, row in found.shares.iterrows():
            out.print(f"  {name:<{width}}" + "".join(f"{v * 100:>8.1f}%" for v in row), highlight=False)
        line = coverage_line(found.coverage)
        if line:
            err.print("[bold yellow]warning:[/] ", end="", markup=True)
            err.print(line.replace(" (tables/coverage, figures/coverage.png; zones.exclude_partial leaves "
                                   "them out of compensation)", ""), markup=False, highlight=False,
                      soft_wrap=True)
        if found.problems:
            _fail(InputError(found.problems))
    out.print(f"[green]ok[/]: {config} ({len(cfg.years)} years, {len(cfg.drivers)} drivers)")


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="Run configuration (YAML).")],
    force: Annotated[list[str] | None, typer.Option(
        help="Redo this stage, and the stages built on it, even if it finished earlier with the same "
        "inputs (repeatable): ingest, transitions_esv, driver_analysis, compensation, "
        "figures.")] = None,
    wait: Annotated[float, typer.Option(
        help="Seconds to wait for another run on the same output to finish (default: exit 2 at once).",
        min=0)] = 0.0,
    verify: Annotated[bool, typer.Option(
        "--verify", help="Before skipping a finished stage, read back every chunk it wrote and compare "
        "checksums, on disk or in a bucket (default: sizes of all, content of the tables and of a 1 % "
        "sample of chunks).")] = False,
) -> None:
    """Run the whole flow for a configuration, showing progress on stderr.

    Stages that finished earlier with the same inputs are skipped.
    A terminal shows a bar per stage: Dask chunk tasks done of those
    submitted, time spent and time left; a pipe or a job's log gets a line
    per stage. The outputs are listed at the end. For scheduled runs, put
    --quiet before the command.

    Example: ecodask run region.yaml --force driver_analysis

    Example: ecodask --quiet run region.yaml
    """
    try:
        outputs = _run(config, force, wait, verify)
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
    """Serve the run flow as a scheduled Prefect deployment.

    Creates (or updates) the deployment with its cron schedule and the
    config path as its parameter, then runs each scheduled or triggered flow
    run in this process until stopped (Ctrl-C). Needs a Prefect server
    (PREFECT_API_URL).

    Example: ecodask serve national.yaml --cron "0 2 1 * *"
    """
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.schedules import Cron

    from flows.run import run_flow

    try:
        from ecodask.run.inputs import load

        load(config)  # a bad configuration fails here, not at 2 a.m.
        try:
            CronSchedule(cron=cron, timezone=timezone)
        except ValueError as exc:
            reason = "; ".join(e["msg"] for e in getattr(exc, "errors", lambda: [])()) or str(exc)
            raise EcodaskError(f"--cron {cron!r} --timezone {timezone!r}: {reason}") from None
        schedule = Cron(cron, timezone=timezone)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    from ecodask.present.progress_bar import quiet_console_logs

    with quiet_console_logs() if _state["quiet"] else contextlib.nullcontext():
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
    """Generate a synthetic region and run the whole flow on it.

    A rerun reuses the region when its files are unchanged and skips the
    stages that finished with the same inputs. Progress shows as for run.

    Example: ecodask demo --out demo-output
    """
    from ecodask.demo import prepare_region

    try:
        cfg, generated = prepare_region(out_dir, seed=seed)
        if not generated:
            _say(f"synthetic region in {out_dir} is current (same seed, files unchanged): reused")
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
    quantile_rule: Annotated[str, typer.Option(
        help="Quantile breaks: type7 (R's quantile(), as GD and gdverse) or type1 (an order "
        "statistic).")] = "type7",
    select: Annotated[str, typer.Option(
        help="none, or p, aic, bic: first a forward selection of y on the numeric factors not named "
        "by --categorical (p: enter while p < 0.05), then the detectors on the selected and "
        "categorical factors only (seed 002's Algorithm A1); writes regression tables too.")] = "none",
) -> None:
    """Geographical Detector on a table (factor, interaction, risk, ecological).

    Example: ecodask geodetector ntd.csv --y incidence --factors type region

    Example: ecodask geodetector t.csv --y esv --factors dem --discretize optimal

    Example (seed 002's A1): ecodask geodetector t.csv --y esv --factors x1,x2,x3 --select p
    --discretize natural --k 5
    """
    from ecodask.on_tables import geodetector_on_table

    names = [f for v in [*factors, *(more_factors or [])] for f in v.split(",") if f]
    cats = [f for v in (categorical or []) for f in v.split(",") if f]
    choices = ("none", "optimal", "equal", "quantile", "natural", "geometric", "sd")
    try:
        if discretize not in choices:
            raise EcodaskError(f"--discretize = {discretize!r}: one of {', '.join(choices)}")
        if variance not in ("population", "sample"):
            raise EcodaskError(f"--variance = {variance!r}: population or sample")
        if quantile_rule not in ("type7", "type1"):
            raise EcodaskError(f"--quantile-rule = {quantile_rule!r}: type7 or type1")
        if select not in ("none", "p", "aic", "bic"):
            raise EcodaskError(f"--select = {select!r}: none, p, aic or bic")
        results, paths = geodetector_on_table(
            table, y, names, out_dir, select=None if select == "none" else select,
            discretize=None if discretize == "none" else discretize, k=k,
            categorical=cats, variance=variance, drop_singletons=not keep_singletons, alpha=alpha,
            dropna=dropna, quantile_rule=quantile_rule)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    from rich.table import Table

    if "regression" in results:
        chosen = [t for t in results["regression_selected"].term if t != "(constant)"]
        _say(f"forward selection by {select}: {', '.join(chosen) or 'none selected'}")
    if "factor" in results:
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
    name_field: Annotated[str, typer.Option(
        help="County name field of the polygons (\"\" for none: the ids are the names).")] = "name",
    variant: Annotated[list[str] | None, typer.Option(
        help="Variant to compute (repeatable): all_land (needs --esv) or cultivated (needs the crop "
        "columns of the statistics). Default: all_land when --esv is given, and cultivated.")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the tables and maps.")] = Path(
        "compensation-output"),
    r_form: Annotated[str, typer.Option(help="Development stage R: pearl (t = 1/En - 3, R rises with "
                                        "wealth) or seed (t = En, as printed).")] = "pearl",
    reference_gdp_per_capita: Annotated[str, typer.Option(
        help="G's reference: a GDP per capita series by name (china_nbs: China's national figure by "
        "year), 'counties' (their GDP over their population) or a number, CNY per person.")] = "china_nbs",
    reference_income: Annotated[float | None, typer.Option(
        help="CNY per person for the opportunity cost (default: the counties' mean).")] = None,
    horizon_years: Annotated[int, typer.Option(help="Years over which a loss is valued.")] = 20,
    discount_rate: Annotated[float, typer.Option(help="Discount rate of the loss-based amount.")] = 0.03,
) -> None:
    """County ecological compensation: priorities and amounts per county, year.

    The all-land variant needs a run's ESV table (--esv), the loss-based
    amount its transitions table (--transitions).

    Example: ecodask compensation --stats stats.csv --zones counties.gpkg

    Example: ecodask compensation --stats s.csv --zones c.gpkg --esv esv.csv
    """
    from pydantic import ValidationError

    from ecodask.on_tables import compensation_from_files
    from ecodask.run.config import CompensationConfig

    try:
        try:
            chosen = {"variants": variant} if variant else {}
            opts = CompensationConfig(r_form=r_form,
                                      reference_gdp_per_capita=_number_or_name(reference_gdp_per_capita),
                                      reference_income=reference_income, horizon_years=horizon_years,
                                      discount_rate=discount_rate, **chosen)
        except ValidationError as exc:
            raise EcodaskError("; ".join(f"--{str(e['loc'][0]).replace('_', '-')} = {e.get('input')!r}: "
                                         f"{e['msg']}" for e in exc.errors())) from None
        if variant and "all_land" in variant and esv is None:
            raise EcodaskError("--variant = 'all_land': needs a run's ESV table, --esv")
        table, paths = compensation_from_files(stats, esv, zones, id_field, name_field or None, out_dir, opts,
                                               transitions)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    last = table[table["year"] == table["year"].max()]
    summary = last.groupby(["variant", "direction"])["amount_1e8cny"].sum()
    for (variant, direction), v in summary.items():
        out.print(f"{variant:<10} {direction:<8} {v:12.4f} x 10^8 CNY/yr ({int(table['year'].max())})")
    _print_outputs({k: str(v) for k, v in paths.items()})


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="Output folder of a finished run (holds run.json).")],
    cog: Annotated[bool, typer.Option("--cog", help="Also write every grid of the store as a "
                                      "Cloud-Optimized GeoTIFF.")] = False,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Folder to write into "
                                                 "(default: RUN_DIR/export).")] = None,
) -> None:
    """Export a finished run for GIS (QGIS, ArcGIS, GDAL).

    Writes the county tables with their polygons (GeoPackage layers and
    GeoParquet files) and, with --cog, every grid of the store as a
    Cloud-Optimized GeoTIFF (one per year), in the run's CRS.

    Example: ecodask export demo-output/output --cog
    """
    from ecodask.export import export_run

    try:
        paths = export_run(run_dir, cog=cog, out=out_dir, log=_say)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    _print_outputs({k: str(v) for k, v in paths.items()})


@app.command()
def catalogs(
    check: Annotated[str | None, typer.Option(
        "--check", help="A class scheme to check against the ESV tables (every table, or --table).")] = None,
    table: Annotated[str | None, typer.Option(
        "--table", help="The ESV table to check --check against.")] = None,
    catalog: Annotated[list[Path] | None, typer.Option(
        "--catalog", help="An extra catalog folder (with class_schemes/, esv_tables/, ...), searched first "
        "(repeatable; a run's `catalogs:`).")] = None,
) -> None:
    """List the class schemes, ESV tables and GDP series a run can name; check a scheme of your own.

    A class scheme (class_schemes/<name>.yaml) names the codes of a land-cover
    product and maps them onto the class set of each ESV table it is used
    with; --check SCHEME says, for each table, whether every code is mapped
    and onto a class the table values, and what to write where if not.

    Example: ecodask catalogs

    Example: ecodask catalogs --catalog my-catalogs --check plus --table xinzhou_2023
    """
    from ecodask.errors import CatalogError
    from ecodask.io.catalogs import (
        catalog_files,
        load_class_scheme,
        load_esv_table,
        load_gdp_per_capita,
        scheme_fits_table,
    )

    extra = list(catalog or [])
    try:
        schemes = {n: load_class_scheme(n, extra) for n in catalog_files("class_schemes", extra)}
        tables = {n: load_esv_table(n, extra) for n in catalog_files("esv_tables", extra)}
        series = {n: load_gdp_per_capita(n, extra) for n in catalog_files("gdp_per_capita", extra)}
    except CatalogError as exc:
        _fail(exc)
    if check is None:
        out.print("[bold]Class schemes[/] (landcover.scheme):")
        for name, s in schemes.items():
            out.print(f"  {name:<16} {len(s.classes)} classes, codes {sorted(s.classes)}, no data "
                      f"{s.nodata}; maps onto: {', '.join(s.mappings)}  ({s.title})", highlight=False,
                      soft_wrap=True)
        out.print("[bold]ESV tables[/] (esv.table):")
        for name, t in tables.items():
            fits = [s for s, sc in schemes.items() if not scheme_fits_table(sc, t, extra)]
            out.print(f"  {name:<22} class set {t.class_set!r}, {t.units}; schemes that fit: "
                      f"{', '.join(fits) or 'none'}; market: {', '.join(t.market_services) or 'none'}  "
                      f"({t.title})", highlight=False, soft_wrap=True)
        out.print("[bold]GDP per capita series[/] (compensation.reference_gdp_per_capita):")
        for name, g in series.items():
            out.print(f"  {name:<22} {g.years}, {g.units}, {g.prices} prices  ({g.title})", highlight=False,
                      soft_wrap=True)
        return
    try:
        if check not in schemes:
            raise EcodaskError(f"--check = {check!r}: no such class scheme (have: {', '.join(schemes)})")
        if table is not None and table not in tables:
            raise EcodaskError(f"--table = {table!r}: no such ESV table (have: {', '.join(tables)})")
        problems = []
        for name in [table] if table else list(tables):
            found = scheme_fits_table(schemes[check], tables[name], extra)
            out.print(f"{check} with {name}: " + ("fits" if not found else f"{len(found)} problems"),
                      highlight=False)
            problems += found
        if table is not None and problems:
            raise CatalogError(problems)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="Output folder of a finished run (holds run.json).")],
) -> None:
    """Write a finished run's HTML report again (RUN_DIR/report.html).

    One self-contained file: key figures, maps and charts, tables,
    conventions, configuration, versions and timings. A run writes it at
    its end; this rebuilds it from the run's files.

    Example: ecodask report demo-output/output
    """
    from ecodask.io.commit import settle
    from ecodask.present.report import write_report

    try:
        settle(run_dir)  # a commit a killed run left half-done is finished first
        path = write_report(run_dir)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    _print_outputs({"report": str(path)})


def main() -> None:  # pragma: no cover
    app(prog_name="ecodask")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
