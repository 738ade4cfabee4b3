"""Remote inputs resolved as a step of their own, before the configuration is validated. Every input
file given as an object-storage URL (``s3://bucket/key``) is looked up; a raster (the land cover of
each year, each driver) stays where it is, named by a :class:`ecodask.io.objstore.RemotePath`,
and the tasks that read it read only their windows from the bucket, on whatever machine they run;
the zones and the county statistics, which the flow reads whole, are copied into the run's work
folder (``<work_dir>/inputs``, downloaded again only when its ETag or size changed, see
:func:`ecodask.io.objstore.fetch`) and the configuration names the local copy, which remembers its
URL. ``run.json`` records the URLs; the stage keys the checksums of the bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ecodask.errors import Problem, problem
from ecodask.io import objstore

#: The first key of the inputs that are rasters, read window by window where they lie.
RASTERS = ("landcover", "drivers")


def input_slots(data: dict[str, Any]) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """``(location, value)`` of every input file of a raw configuration mapping: the land cover
    of each year, the zones, each driver (shorthand or ``path``) and the county statistics."""
    lc = data.get("landcover")
    if isinstance(lc, dict) and isinstance(lc.get("years"), dict):
        for year, value in lc["years"].items():
            yield ("landcover", "years", year), value
    zones = data.get("zones")
    if isinstance(zones, dict) and "path" in zones:
        yield ("zones", "path"), zones["path"]
    drivers = data.get("drivers")
    if isinstance(drivers, dict):
        for name, d in drivers.items():
            if isinstance(d, dict) and "path" in d:
                yield ("drivers", name, "path"), d["path"]
            elif isinstance(d, str | Path):
                yield ("drivers", name), d
    if "county_stats" in data:
        yield ("county_stats",), data["county_stats"]


def _put(data: dict[str, Any], loc: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """A copy of ``data`` with ``value`` at ``loc`` (the mappings along the way copied)."""
    out = dict(data)
    node = out
    for key in loc[:-1]:
        node[key] = dict(node[key])
        node = node[key]
    node[loc[-1]] = value
    return out


def fetch_inputs(data: dict[str, Any], work_dir: Path, file: Path
                 ) -> tuple[dict[str, Any], dict[tuple[str | int, ...], Problem]]:
    """The raw configuration ``data`` with each remote raster replaced by its
    :class:`~ecodask.io.objstore.RemotePath` and each other remote input by its local copy, and
    the problems of those that could not be found or fetched (a URL with credentials, an unknown
    protocol, no such object, no access) by location, named with the configuration ``file`` and
    the dotted key."""
    problems: dict[tuple[str | int, ...], Problem] = {}
    for loc, value in list(input_slots(data)):
        if not objstore.is_remote(value):
            continue
        key = ".".join(str(p) for p in loc)
        try:
            url = objstore.check_url(str(value))
        except ValueError as exc:
            problems[loc] = problem(file, key, objstore.redact(value), str(exc))
            continue
        try:
            found = (objstore.locate(url) if loc[0] in RASTERS
                     else objstore.fetch(url, work_dir / "inputs"))
            data = _put(data, loc, found)
        except ValueError as exc:
            problems[loc] = problem(file, key, url, f"cannot fetch {url}: {exc}")
        except Exception as exc:  # noqa: BLE001 - network, permissions: the user's to fix
            problems[loc] = problem(file, key, url, f"cannot fetch {url}: {type(exc).__name__}: {exc}")
    return data, problems
