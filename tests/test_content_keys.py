"""Stage keys come from content, not places: the same input bytes at other paths (renamed, in
another folder, catalogs moved too) give the same key for every stage, and a finished run read
from moved inputs is skipped whole; the output and the work folder are in no key; one changed byte
of one input changes the keys of the stages that read it and of those built on them only; a
setting that is not a path (a zone field) still changes keys. (Fetched from object storage: see
tests/test_objstore.py.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ecodask.run import resume
from ecodask.run.config import load_config
from ecodask.run.stages import NAMES

from conftest import make_tiny_region
from helpers import edit_yaml, stage_call

#: The tiny region's inputs, and the names their copies get.
INPUTS = {"lc_2000.tif": "landcover-2000.tif", "lc_2010.tif": "lc2010_copy.tif",
          "zones.gpkg": "counties.gpkg", "elev.tif": "dem.tif"}
CATALOG = Path(__file__).resolve().parents[1] / "catalogs"


def _changed(a: dict[str, str], b: dict[str, str]) -> set[str]:
    return {s for s in NAMES if a[s] != b[s]}


def _region(folder: Path) -> Path:
    """The tiny region with its own catalog folder (a copy of the shipped ESV tables)."""
    config = make_tiny_region(folder)
    shutil.copytree(CATALOG / "esv_tables", folder / "cat" / "esv_tables")
    return edit_yaml(config, lambda d: d.update(catalogs=["cat"]))


def _moved(config: Path, folder: Path, **changes) -> Path:
    """The region's inputs and catalog folder copied to ``folder`` under other names, and its
    configuration naming them there (the output where ``changes`` puts it, else in ``folder``)."""
    (folder / "data").mkdir(parents=True)
    for old, new in INPUTS.items():
        shutil.copy2(config.parent / old, folder / "data" / new)
    shutil.copytree(config.parent / "cat", folder / "catalogs-moved")

    def edit(d: dict) -> None:
        years = d["landcover"]["years"]
        d["landcover"]["years"] = {y: f"data/{INPUTS[Path(p).name]}" for y, p in years.items()}
        d["zones"]["path"] = f"data/{INPUTS['zones.gpkg']}"
        d["drivers"]["elevation"]["path"] = f"data/{INPUTS['elev.tif']}"
        d["catalogs"] = ["catalogs-moved"]
        d.update(changes)

    target = folder / "config.yaml"
    shutil.copy2(config, target)
    return edit_yaml(target, edit)


def test_same_bytes_elsewhere_give_the_same_keys_and_no_key_holds_a_path(tmp_path: Path) -> None:
    here = load_config(_region(tmp_path / "a"))
    there = load_config(_moved(tmp_path / "a" / "config.yaml", tmp_path / "b", work_dir="work"))
    assert there.zones.path.parent != here.zones.path.parent and there.output != here.output
    assert resume.plan(there) == resume.plan(here)
    for stage in NAMES:  # nothing of either place, not even a file's name, is hashed
        doc = json.dumps(resume.key_doc(there, stage))
        assert str(tmp_path) not in doc and not any(n in doc for n in (*INPUTS, *INPUTS.values())), stage
    # The output and the work folder are places too.
    assert resume.plan(here.model_copy(update={"output": tmp_path / "elsewhere",
                                               "work_dir": tmp_path / "w"})) == resume.plan(here)
    # A setting that is not a path still counts: another zone name field reaches every stage.
    renamed = here.model_copy(update={"zones": here.zones.model_copy(update={"name_field": "code"})})
    assert _changed(resume.plan(here), resume.plan(renamed)) == set(NAMES)


def test_one_changed_byte_changes_the_stages_that_read_it_and_theirs_only(tmp_path: Path) -> None:
    cfg = load_config(_region(tmp_path / "a"))
    base = resume.plan(cfg)
    table = tmp_path / "a" / "cat" / "esv_tables" / "xinzhou_2023.yaml"  # read by transitions_esv
    data = bytearray(table.read_bytes())
    data[data.index(b"Xinzhou")] = ord("x")  # one byte of the title
    table.write_bytes(bytes(data))
    assert _changed(base, resume.plan(cfg)) == {"transitions_esv", "driver_analysis", "compensation",
                                                "figures"}
    lc = cfg.landcover.years[2010]  # read by ingest, on which every stage builds
    data = bytearray(lc.read_bytes())
    data[-1] ^= 1
    lc.write_bytes(bytes(data))
    assert _changed(base, resume.plan(cfg)) == set(NAMES)


@pytest.mark.usefixtures("dask_threads")
def test_a_finished_run_read_from_moved_inputs_is_skipped_whole(tmp_path: Path) -> None:
    here = load_config(_region(tmp_path / "a"))
    keys = resume.plan(here)
    store = None
    for name in NAMES:
        outputs, ran = resume.run_stage(here, name, keys[name], stage_call(here, name, store),
                                        log=lambda _: None)
        assert ran, name
        store = outputs.get("store", store)
    # The inputs moved (the old ones gone), the same output folder.
    config = _moved(tmp_path / "a" / "config.yaml", tmp_path / "b", output=str(here.output))
    for old in INPUTS:
        (tmp_path / "a" / old).unlink()
    shutil.rmtree(tmp_path / "a" / "cat")
    there = load_config(config)
    todo, done = resume.pending(there)
    assert todo == {} and set(done) == set(NAMES)
    lines: list[str] = []
    for name in NAMES:
        assert not resume.run_stage(there, name, resume.plan(there)[name], stage_call(there, name),
                                    log=lines.append)[1], name
    assert all("skipped" in line for line in lines) and len(lines) == len(NAMES)


def test_a_shapefile_checksum_covers_its_attribute_table(tmp_path: Path) -> None:
    """Zones as a shapefile: new zone ids in its .dbf alone (the .shp untouched) give another
    checksum, and so other keys; a copy under another name gives the same."""
    import geopandas as gpd
    from shapely.geometry import box

    from ecodask.io.provenance import file_checksum
    from ecodask.run.inputs import checksum

    def write(folder: Path, ids: list[int]) -> Path:
        folder.mkdir()
        zones = gpd.GeoDataFrame({"zone_id": ids}, geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)],
                                 crs="EPSG:4326")
        zones.to_file(folder / "zones.shp")
        return folder / "zones.shp"

    first, other = write(tmp_path / "a", [1, 2]), write(tmp_path / "b", [1, 3])
    assert (first.read_bytes() == other.read_bytes()
            and first.with_suffix(".dbf").read_bytes() != other.with_suffix(".dbf").read_bytes())
    before = file_checksum(first)
    assert checksum(first) == before  # memoised for this process, the .dbf's stamp with it
    shutil.copyfile(other.with_suffix(".dbf"), first.with_suffix(".dbf"))
    assert file_checksum(first) != before
    assert checksum(first) == file_checksum(first)  # the memo saw the .dbf change
    moved = tmp_path / "c"
    moved.mkdir()
    for f in first.parent.iterdir():
        shutil.copyfile(f, moved / f.name.replace("zones", "counties"))
    assert file_checksum(moved / "counties.shp") == file_checksum(first)
