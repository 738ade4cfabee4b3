"""The command line: errors are one readable line naming file and key, with exit code 2."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from ecodask.cli import app

runner = CliRunner()


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
