"""Start-up stays light: the command line's module imports none of the heavy packages (they are
imported by the command that needs them), so ``ecodask --help`` answers in well under a second, and
nothing compiles numba code at import."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import deadline

HEAVY = ("zarr", "dask", "distributed", "numba", "prefect", "xarray", "rasterio", "geopandas",
         "matplotlib", "mapclassify", "pandas")


def _loaded(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         timeout=deadline(120))
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_the_command_line_imports_no_heavy_package() -> None:
    loaded = _loaded("import ecodask.cli")
    assert not [m for m in HEAVY if m in loaded]


def test_planning_a_run_imports_no_heavy_package() -> None:
    # A rerun of a finished run plans (stage keys from the records) and stops: the stage modules
    # import their Dask, xarray, matplotlib and scipy dependencies only when a stage runs.
    loaded = _loaded("import ecodask.run.resume, ecodask.run.record")
    heavy = [m for m in (*HEAVY, "scipy", "pyogrio") if m in loaded]
    assert not heavy


def test_importing_the_stages_compiles_no_numba_code() -> None:
    # numba compiles on a function's first call; an import that ran one (mapclassify did, ~10 s CPU)
    # would leave compiled dispatchers with signatures behind.
    code = ("import ecodask.run.stages, ecodask.on_tables, numba\n"
            "from numba.core.registry import CPUDispatcher\n"
            "import gc\n"
            "compiled = [d for d in gc.get_objects() if isinstance(d, CPUDispatcher) and d.signatures]\n"
            "assert not compiled, compiled")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=deadline(120))
    assert "mapclassify" not in _loaded("import ecodask.run.stages, ecodask.on_tables")


def test_zarr_uses_the_fused_codec_pipeline_whether_imported_before_or_after() -> None:
    for code in ("import ecodask, zarr", "import zarr, ecodask"):
        probe = f"{code}\nprint(zarr.config.get('codec_pipeline.path'))"
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                             env={"PATH": ""}, timeout=deadline(120))
        assert out.stdout.strip() == "zarr.core.codec_pipeline.FusedCodecPipeline"
