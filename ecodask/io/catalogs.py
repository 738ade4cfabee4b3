"""Catalogs: class schemes, ESV coefficient tables and footprint tables as YAML data.

A catalog folder holds ``class_schemes/*.yaml``, ``esv_tables/*.yaml`` and ``footprint_tables/*.yaml``.
The project's own folder (``catalogs/`` at the top of the source tree, ``ecodask/_catalogs`` in a
wheel) is always searched; a run configuration may add folders, which win on a name clash. A new region
or table is a new YAML file, never code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from ecodask.errors import CatalogError, problem
from ecodask.science.catalogs import ClassScheme, EsvTable, FootprintTable


def builtin_catalog_dir() -> Path:
    """The project's own catalog folder."""
    here = Path(__file__).resolve().parent.parent
    for cand in (here.parent / "catalogs", here / "_catalogs"):
        if (cand / "class_schemes").is_dir():
            return cand
    raise CatalogError([problem(here, "catalogs", None, "the built-in catalog folder is missing")])


_KINDS = {"class_schemes": ClassScheme, "esv_tables": EsvTable, "footprint_tables": FootprintTable}


def _search_dirs(extra: Sequence[Path]) -> list[Path]:
    return [Path(p) for p in extra] + [builtin_catalog_dir()]


def catalog_files(kind: str, extra: Sequence[Path] = ()) -> dict[str, Path]:
    """Name -> YAML file of every entry of ``kind``: 'class_schemes', 'esv_tables' or 'footprint_tables'."""
    found: dict[str, Path] = {}
    for d in reversed(_search_dirs(extra)):  # later (extra) folders win
        for f in sorted((Path(d) / kind).glob("*.yaml")):
            found[f.stem] = f
    return found


@cache
def _load_file(path: Path, kind: str) -> BaseModel:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError([problem(path, "", None, f"cannot read catalog entry: {exc}")]) from exc
    try:
        entry = _KINDS[kind].model_validate(data)
    except ValidationError as exc:
        raise CatalogError(
            problem(path, ".".join(map(str, e["loc"])), e.get("input"), e["msg"])
            for e in exc.errors()
        ) from None
    if entry.name != path.stem:
        raise CatalogError([problem(path, "name", entry.name, f"must equal the file name {path.stem!r}")])
    return entry


def _load(kind: str, name: str, extra: Iterable[Path]) -> BaseModel:
    files = catalog_files(kind, tuple(extra))
    if name not in files:
        raise CatalogError(
            [problem(kind, "name", name, f"unknown; known: {', '.join(sorted(files)) or 'none'}")]
        )
    return _load_file(files[name].resolve(), kind)


def load_class_scheme(name: str, extra: Sequence[Path] = ()) -> ClassScheme:
    """The class scheme ``name`` (e.g. 'clcd')."""
    return _load("class_schemes", name, extra)  # type: ignore[return-value]


def load_esv_table(name: str, extra: Sequence[Path] = ()) -> EsvTable:
    """The ESV coefficient table ``name`` (e.g. 'xinzhou_2023')."""
    return _load("esv_tables", name, extra)  # type: ignore[return-value]


def load_footprint_table(name: str, extra: Sequence[Path] = ()) -> FootprintTable:
    """The footprint table ``name`` (e.g. 'hubei_2017')."""
    return _load("footprint_tables", name, extra)  # type: ignore[return-value]
