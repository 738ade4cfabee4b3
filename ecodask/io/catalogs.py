"""Catalogs: class schemes, ESV coefficient tables, footprint tables, GDP series and land-cover error
matrices as YAML data.

A catalog folder holds one subfolder of ``*.yaml`` per kind (``class_schemes``, ``esv_tables``,
``footprint_tables``, ``gdp_per_capita``, ``error_matrices``).
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
from ecodask.science.catalogs import ClassScheme, ErrorMatrix, EsvTable, FootprintTable, GdpPerCapita


def builtin_catalog_dir() -> Path:
    """The project's own catalog folder."""
    here = Path(__file__).resolve().parent.parent
    for cand in (here.parent / "catalogs", here / "_catalogs"):
        if (cand / "class_schemes").is_dir():
            return cand
    raise CatalogError([problem(here, "catalogs", None, "the built-in catalog folder is missing")])


_KINDS = {"class_schemes": ClassScheme, "esv_tables": EsvTable, "footprint_tables": FootprintTable,
          "gdp_per_capita": GdpPerCapita, "error_matrices": ErrorMatrix}


def _search_dirs(extra: Sequence[Path]) -> list[Path]:
    return [Path(p) for p in extra] + [builtin_catalog_dir()]


def catalog_files(kind: str, extra: Sequence[Path] = ()) -> dict[str, Path]:
    """Name -> YAML file of every entry of ``kind``: 'class_schemes', 'esv_tables', 'footprint_tables',
    'gdp_per_capita' or 'error_matrices'."""
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


def load_error_matrix(name: str, extra: Sequence[Path] = ()) -> ErrorMatrix:
    """The land-cover error matrix ``name`` (sample counts, map x reference codes)."""
    return _load("error_matrices", name, extra)  # type: ignore[return-value]


def load_footprint_table(name: str, extra: Sequence[Path] = ()) -> FootprintTable:
    """The footprint table ``name`` (e.g. 'hubei_2017')."""
    return _load("footprint_tables", name, extra)  # type: ignore[return-value]


def load_gdp_per_capita(name: str, extra: Sequence[Path] = ()) -> GdpPerCapita:
    """The reference GDP per capita series ``name`` (e.g. 'china_nbs')."""
    return _load("gdp_per_capita", name, extra)  # type: ignore[return-value]


def scheme_fits_table(scheme: ClassScheme, table: EsvTable, extra: Sequence[Path] = ()) -> list:
    """What keeps ``table`` from valuing every class of ``scheme``, as problems naming the catalog
    file, the key to write and what to write there (empty when the scheme fits the table)."""
    sfile = catalog_files("class_schemes", extra).get(scheme.name, Path(f"{scheme.name}.yaml"))
    tfile = catalog_files("esv_tables", extra).get(table.name, Path(f"{table.name}.yaml"))
    choices = ", ".join(table.classes)
    if table.class_set not in scheme.mappings:
        return [problem(sfile, "mappings", sorted(scheme.mappings),
                        f"no mapping onto class set {table.class_set!r} (ESV table {table.name!r}): add "
                        f"`{table.class_set}: {{<code>: <class>, ...}}` under mappings, one entry per code "
                        f"{sorted(scheme.classes)}, each class one of {choices}")]
    mapping = scheme.mapping_to(table.class_set)
    out = [problem(sfile, f"mappings.{table.class_set}", code,
                   f"class code {code} ({scheme.classes[code].name}) is not mapped: add `{code}: <class>`, "
                   f"the class one of {choices}")
           for code in sorted(set(scheme.classes) - set(mapping))]
    out += [problem(tfile, "classes", cls,
                    f"missing: class scheme {scheme.name!r} maps codes onto it (mappings."
                    f"{table.class_set} in {sfile.name}): add the class and its values here, or map those "
                    f"codes onto one of {choices}")
            for cls in sorted(set(mapping.values()) - set(table.classes))]
    return out
