"""Configuration files a careful user gets wrong or a hostile one crafts: each is exit 2 with one
line per fault naming the file, the key and the value, quickly and in bounded memory, and nothing
is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from ecodask.cli import app
from ecodask.errors import bounded, problem
from ecodask.run.cluster import local_cluster_options
from ecodask.run.config import ClusterConfig

runner = CliRunner()


def test_a_key_given_twice_is_refused_naming_its_path_and_lines(tiny_region: Path) -> None:
    text = tiny_region.read_text(encoding="utf-8")
    lines = text.splitlines()
    year_line = next(i for i, line in enumerate(lines) if line.strip().startswith("2000:"))
    lines.insert(year_line + 1, lines[year_line].replace("lc_2000.tif", "lc_2010.tif"))  # 2000 twice
    lines.append(lines[0])  # name twice
    tiny_region.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["validate", str(tiny_region)])
    assert result.exit_code == 2
    out = " ".join(result.output.split())
    assert str(tiny_region) in out
    assert "landcover.years.2000 = ['lc_2000.tif', 'lc_2010.tif']: given 2 times" in out
    assert "name = ['tiny', 'tiny']: given 2 times" in out
    assert not (tiny_region.parent / "out").exists()


def test_a_yaml_alias_bomb_is_refused_in_bounded_time_and_memory(tmp_path: Path) -> None:
    # 9^9 = 387 million leaves if anything expanded it: the message shows a few levels only.
    lines = ['l0: &l0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 8)]
    lines += [f"name: [{', '.join(['*l7'] * 9)}]"]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    peak = tmp_path / "peak.txt"
    probe = ("import atexit, re, resource, sys\n"
             "resource.setrlimit(resource.RLIMIT_AS, (1 << 31, 1 << 31))  # 2 GiB: an expansion fails\n"
             f"atexit.register(lambda: open({str(peak)!r}, 'w').write("
             "re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)))\n"
             "from ecodask.cli import app\n"
             f"app(['validate', {str(path)!r}], prog_name='ecodask')\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr[-2000:]
    assert str(path) in done.stderr and "name = [[" in done.stderr
    assert len(done.stderr) < 20_000
    # The probe's own peak, VmHWM of its memory (getrusage's maxrss would be the pytest worker's: Linux
    # keeps it across the fork and exec that started the probe).
    assert int(peak.read_text()) < 1_500_000  # KiB


def test_problem_values_are_bounded_and_small_ones_kept() -> None:
    assert problem("f", "k", [1, 2, 3], "m").value == [1, 2, 3]
    assert problem("f", "k", {"a": 1}, "m").value == {"a": 1}
    nested: object = "x"
    for _ in range(9):
        nested = [nested] * 9
    shown = repr(problem("f", "k", nested, "m").value)
    assert len(shown) < 2_000 and shown.startswith("[[")
    long_text = "y" * 100_000
    assert len(repr(bounded(long_text))) < 600
    assert len(problem("f", "k", None, "z" * 100_000).message) < 2_100


def test_the_dashboard_listens_on_localhost_unless_configured() -> None:
    default = local_cluster_options(ClusterConfig(), dashboard_served=True)
    assert default["dashboard_address"] == "127.0.0.1:0" and default["host"] == "127.0.0.1"
    wide = local_cluster_options(ClusterConfig(dashboard_address=":8787"), dashboard_served=True)
    assert wide["dashboard_address"] == ":8787"
    # Without bokeh the scheduler still serves HTTP (health, metrics): on a free localhost port too.
    bare = local_cluster_options(ClusterConfig(), dashboard_served=False)
    assert bare["dashboard_address"] == "127.0.0.1:0"


def test_a_bad_dashboard_address_is_a_config_error(tiny_region: Path) -> None:
    data = yaml.safe_load(tiny_region.read_text(encoding="utf-8"))
    data["cluster"]["dashboard_address"] = "http://0.0.0.0/8787"
    tiny_region.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    result = runner.invoke(app, ["validate", str(tiny_region)])
    assert result.exit_code == 2 and "cluster.dashboard_address" in result.output


def test_an_output_that_is_a_file_is_refused_before_anything(tiny_region: Path) -> None:
    data = yaml.safe_load(tiny_region.read_text(encoding="utf-8"))
    taken = tiny_region.parent / "results.txt"
    taken.write_text("not a folder\n", encoding="utf-8")
    data["output"] = "results.txt/run"  # under a file, too
    tiny_region.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    res = runner.invoke(app, ["validate", str(tiny_region)])
    assert res.exit_code == 2 and "output" in res.output and "is a file, not a folder" in res.output
    data["output"] = "results.txt"
    tiny_region.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    res = runner.invoke(app, ["run", str(tiny_region)])
    assert res.exit_code == 2 and "exists and is not a folder" in " ".join(res.output.split())
    assert taken.read_text(encoding="utf-8") == "not a folder\n"
