"""The command line: help with examples and exit codes; errors are one readable line naming file
and key (exit 2), tracebacks only with --debug; Ctrl-C exits 130; --quiet; the progress lines of a
run."""

from __future__ import annotations

import io
import logging
import os
import sys
import types
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from ecodask import cli
from ecodask.cli import app

runner = CliRunner()
#: --quiet sets this for Prefect; invoking with it here restores it after the command.
QUIET_ENV = {"PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": None, "PREFECT_LOGGING_ROOT_LEVEL": None}


def test_help_lists_commands_with_examples() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for cmd in ("demo", "run", "validate", "synth"):
        assert cmd in result.output
    sub = runner.invoke(app, ["run", "--help"])
    assert "Example: ecodask run" in sub.output


def test_validate_ok_and_bad(tiny_region: Path) -> None:
    ok = runner.invoke(app, ["validate", str(tiny_region)])
    assert ok.exit_code == 0 and "ok" in ok.output
    data = yaml.safe_load(tiny_region.read_text())
    data["landcover"]["scheme"] = "nope"
    tiny_region.write_text(yaml.safe_dump(data))
    bad = runner.invoke(app, ["validate", str(tiny_region)])
    assert bad.exit_code == 2
    assert "landcover.scheme = 'nope'" in bad.output and "config.yaml" in bad.output
    assert "Traceback" not in bad.output


def test_synth_writes_a_valid_region(tmp_path: Path) -> None:
    result = runner.invoke(app, ["synth", str(tmp_path / "r"), "--seed", "3", "--width-km", "10",
                                 "--height-km", "8", "--counties", "3"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["validate", str(tmp_path / "r" / "config.yaml")]).exit_code == 0
    bad = runner.invoke(app, ["synth", str(tmp_path / "q"), "--counties", "1"])
    assert bad.exit_code == 2
    assert "n_counties" in bad.output


def _commands() -> list[str]:
    return sorted(typer.main.get_command(app).commands)


def test_every_command_has_help_with_an_example() -> None:
    top = runner.invoke(app, ["--help"])
    assert top.exit_code == 0 and "Example: ecodask" in top.output
    assert len(_commands()) >= 7
    for cmd in _commands():
        sub = runner.invoke(app, [cmd, "--help"])
        assert sub.exit_code == 0, (cmd, sub.output)
        assert f"Example: ecodask {cmd}" in sub.output or "Example: ecodask --" in sub.output, cmd


def test_run_help_names_every_stage_force_accepts() -> None:
    from ecodask.run.stages import NAMES

    text = " ".join(runner.invoke(app, ["run", "--help"]).output.replace("│", " ").split())
    assert "repeatable): " + ", ".join(NAMES) + "." in text


def test_top_level_help_documents_the_exit_codes_and_options() -> None:
    text = " ".join(runner.invoke(app, ["--help"]).output.split())
    for code in ("0 success", "1 unexpected failure", "2 invalid configuration, catalog or input data",
                 "130 interrupted"):
        assert code in text
    assert "--quiet" in text and "--debug" in text


def _unknown_key(region: Path) -> Path:
    data = yaml.safe_load(region.read_text())
    data["bogus"] = 1
    region.write_text(yaml.safe_dump(data))
    return region


def _missing_raster(region: Path) -> Path:
    data = yaml.safe_load(region.read_text())
    data["landcover"]["years"][2010] = "lc_2011.tif"
    region.write_text(yaml.safe_dump(data))
    return region


def _bad_yaml(region: Path) -> Path:
    region.write_text("name: tiny\n grid: [\n")
    return region


@pytest.mark.parametrize(("make", "expected"), [
    (lambda p: p.parent / "absent.yaml", ["absent.yaml: cannot read the configuration"]),
    (_bad_yaml, ["config.yaml: not valid YAML at line 2, column 6"]),
    (_unknown_key, ["config.yaml: bogus = 1: unknown key"]),
    (_missing_raster, ["config.yaml: landcover.years.2010 = 'lc_2011.tif': file not found"]),
])
@pytest.mark.parametrize("command", ["run", "validate"])
def test_user_errors_exit_2_with_one_line_naming_file_and_field(tiny_region: Path, make, expected,
                                                                command: str) -> None:
    config = make(tiny_region)
    result = runner.invoke(app, [command, str(config)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    for text in expected:
        assert text in lines[0]
    assert "Traceback" not in result.output


def test_several_problems_first_line_names_the_file_then_one_line_each(tiny_region: Path) -> None:
    data = yaml.safe_load(tiny_region.read_text())
    data["bogus"] = 2
    data["landcover"]["years"][2010] = "lc_2011.tif"
    tiny_region.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["run", str(tiny_region)])
    assert result.exit_code == 2
    first, *rest = result.output.strip().splitlines()
    assert first == f"error: 2 problems in {tiny_region}:"
    assert sorted(line.strip().split(" = ")[0] for line in rest) == ["bogus", "landcover.years.2010"]


def test_debug_shows_the_traceback_and_keeps_the_exit_code(tmp_path: Path) -> None:
    missing = str(tmp_path / "absent.yaml")
    plain = runner.invoke(app, ["run", missing])
    debug = runner.invoke(app, ["--debug", "run", missing])
    assert plain.exit_code == debug.exit_code == 2
    assert "Traceback" not in plain.output
    assert "Traceback (most recent call last)" in debug.output and "ConfigError" in debug.output
    assert debug.output.rstrip().splitlines()[-1] == plain.output.rstrip()


def test_interrupted_exits_130_and_unexpected_errors_exit_1(tiny_region: Path, monkeypatch) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    def bug(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(cli, "_run", interrupted)
    result = runner.invoke(app, ["run", str(tiny_region)])
    assert result.exit_code == 130 and result.output.strip() == "interrupted"
    monkeypatch.setattr(cli, "_run", bug)
    result = runner.invoke(app, ["run", str(tiny_region)])
    assert result.exit_code == 1
    assert result.output.strip() == ("unexpected error (ZeroDivisionError; rerun with --debug): "
                                     "division by zero")


def test_quiet_leaves_out_the_outputs_listing_not_the_errors(tiny_region: Path, monkeypatch) -> None:
    monkeypatch.setattr(cli, "_run", lambda config, force=None, wait=0.0, verify=False: {"store": "out/x"})
    loud = runner.invoke(app, ["run", str(tiny_region)])
    assert loud.exit_code == 0 and "out/x" in loud.output
    for flag in ("--quiet", "-q"):
        quiet = runner.invoke(app, [flag, "run", str(tiny_region)], env=QUIET_ENV)
        assert quiet.exit_code == 0 and quiet.output == ""
    monkeypatch.undo()
    bad = runner.invoke(app, ["--quiet", "run", str(tiny_region.parent / "absent.yaml")], env=QUIET_ENV)
    assert bad.exit_code == 2 and "absent.yaml" in bad.output


def _fake_flow(monkeypatch, seen: list) -> None:
    """A stand-in for flows.run (importing the real flow takes long): reports two stages to the
    display sinks the command line registered, and records the console level Prefect would use."""
    from ecodask.present.progress import ChunkProgress, NullCounter, display_sinks, tee
    from ecodask.present.progress_bar import prefect_console_handlers

    def run_flow(config_path: str, force: list[str], verify: bool = False) -> dict[str, str]:
        seen.append(([h.level for h in prefect_console_handlers()],
                     os.environ.get("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"),
                     os.environ.get("PREFECT_LOGGING_ROOT_LEVEL")))
        with ChunkProgress(tee(*display_sinks()), counter=NullCounter(), interval=0.01) as chunks:
            for stage in ("ingest", "transitions_esv"):
                with chunks.stage(stage):
                    pass
        return {"store": "out/x.zarr"}

    fake = types.ModuleType("flows.run")
    fake.run_flow = run_flow
    monkeypatch.setitem(sys.modules, "flows.run", fake)


def test_run_shows_stage_lines_when_not_a_terminal_and_none_when_quiet(tiny_region: Path,
                                                                        monkeypatch) -> None:
    from prefect.logging.handlers import PrefectConsoleHandler

    from ecodask.run import resume
    from ecodask.run.stages import NAMES

    (tiny_region.parent / "out").mkdir()  # an earlier run: transitions_esv finished, ingest not
    forced: list = []

    def pending(cfg, force=(), keys=None, chunks="sample"):
        forced.append(list(force))
        return {"ingest": "k"}, {"transitions_esv": {"esv": "out/esv.csv"}}

    monkeypatch.setattr(resume, "pending", pending)
    handler = PrefectConsoleHandler(stream=io.StringIO(), level=logging.INFO)
    logging.getLogger("ecodask.test_cli").addHandler(handler)
    seen: list = []
    _fake_flow(monkeypatch, seen)
    try:
        result = runner.invoke(app, ["run", str(tiny_region)], env=QUIET_ENV)
        assert result.exit_code == 0, result.output
        assert "stage ingest: done in 0:00:00 (no Dask tasks)" in result.output
        assert "stage transitions_esv: skipped (finished earlier with the same inputs)" in result.output
        assert "\x1b" not in result.output and "out/x.zarr" in result.output
        quiet = runner.invoke(app, ["--quiet", "run", str(tiny_region), "--force", NAMES[-1]],
                              env=QUIET_ENV)
        assert quiet.exit_code == 0 and quiet.output == ""
        verbose = runner.invoke(app, ["--verbose", "run", str(tiny_region)], env=QUIET_ENV)
        assert verbose.exit_code == 0 and "stage ingest: done" in verbose.output
    finally:
        logging.getLogger("ecodask.test_cli").removeHandler(handler)
    # Prefect's console: warnings only, unless --verbose (the handlers there, and for a Prefect set
    # up later: the environment variable); the display says what the stages do.
    assert logging.WARNING in seen[0][0] and logging.WARNING in seen[1][0] and logging.INFO in seen[2][0]
    assert seen[0][1] == seen[1][1] == "WARNING" and seen[2][1] is None
    assert seen[0][2] == seen[1][2] == "CRITICAL" and seen[2][2] is None  # other libraries' records
    assert "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL" not in os.environ
    assert "PREFECT_LOGGING_ROOT_LEVEL" not in os.environ
    assert handler.level == logging.INFO
    assert forced == [[], resume.with_downstream([NAMES[-1]]), []]
    bad = runner.invoke(app, ["run", str(tiny_region), "--force", "ingets"])
    assert bad.exit_code == 2 and "--force: stage = ['ingets']: stages are ingest" in bad.output


@pytest.mark.parametrize("verbose", [False, True])
def test_other_libraries_log_records_reach_the_console_only_when_verbose(verbose: bool) -> None:
    """What the temporary Prefect server (a child process with the command's environment) does when
    it is stopped at exit while a request holds a database connection: SQLAlchemy logs an error with
    a traceback through Prefect's root logger. Not on a run's console unless --verbose."""
    import subprocess

    from helpers import deadline

    code = ("import logging, sys\nfrom ecodask import cli\n"
            "cli._main(debug=False, quiet=False, verbose=sys.argv[1] == 'v')\n"
            "from prefect.logging.configuration import setup_logging\nsetup_logging()\n"
            "try:\n    raise ValueError('cancelled')\nexcept ValueError:\n"
            "    logging.getLogger('sqlalchemy.pool.impl.AsyncAdaptedQueuePool').exception("
            "'Exception during reset or similar')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_LOGGING_")}
    done = subprocess.run([sys.executable, "-c", code, "v" if verbose else "q"], env=env, capture_output=True,
                          text=True, timeout=deadline(120), check=True)
    assert ("Exception during reset" in done.stderr) is verbose, done.stderr
    assert ("Traceback" in done.stderr) is verbose, done.stderr
