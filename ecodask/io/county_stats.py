"""County statistics for the ecological compensation: read one table and check it against the zones.

One row per county and year (CSV or Parquet). Units:

- ``population``: persons; ``gdp_cny``: CNY (the county's GDP); ``income_per_capita_cny``: CNY/person;
- ``engel_urban``, ``engel_rural``: fractions in (0, 1]; ``urbanization_rate``: a fraction in [0, 1]
  (not percent);
- ``role``: the county's main-functional-area role, one of
  :data:`ecodask.science.compensation.ROLES` (see :data:`ROLE_ALIASES`);
- ``cultivated_area_ha``: ha;
- per crop ``<crop>``, optional, any crop name: ``<crop>_sown_ha`` (ha), ``<crop>_price_cny_per_kg``
  (CNY/kg) and ``<crop>_yield_kg_per_ha`` (kg/ha), the suffixes of :data:`ecodask.science.esv.CROP_SUFFIXES`.

Every fault is collected before anything is raised: one :class:`~ecodask.errors.Problem` per
(field, rule), naming the file, the field and every offending county (id and name, and the year).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ecodask.errors import InputError, Problem, problem
from ecodask.science.compensation import ENGEL_RULE, ROLES
from ecodask.science.esv import CROP_SUFFIXES

_ROLE_STEMS = {
    "key_development": "key_development",
    "main_agricultural": "main_agricultural",
    "main_agricultural_production": "main_agricultural",
    "key_ecological": "key_ecological",
    "key_ecological_function": "key_ecological",
}
#: Accepted role labels after normalisation (lower case, runs of spaces/hyphens/underscores -> "_"),
#: each stem optionally followed by "_zone" or "_area": e.g. "Key development zone",
#: "main agricultural production area", "key-ecological-function area".
ROLE_ALIASES: dict[str, str] = {stem + suffix: role for stem, role in _ROLE_STEMS.items()
                                for suffix in ("", "_zone", "_area")}

# persons, CNY, ha: numbers > 0 (a county without cultivated land has no overload index Q)
POSITIVE = ("population", "gdp_cny", "cultivated_area_ha")
ENGEL = ("engel_urban", "engel_rural")  # fractions in (0, 1], the formula's rule (ENGEL_RULE)
FRACTIONS = (*ENGEL, "urbanization_rate")  # fractions in [0, 1]
NON_NEGATIVE = ("income_per_capita_cny",)  # CNY/person: numbers >= 0
#: Columns every table must have besides the id column; ``name`` is optional.
REQUIRED = ("year", *POSITIVE, *FRACTIONS, "role", *NON_NEGATIVE)

#: At most this many counties are spelled out in one message.
MAX_LISTED = 20


def canonical_role(label: object) -> str | None:
    """The canonical role (one of :data:`ROLES`) of a label, or None when it is not recognised."""
    if label is None or (isinstance(label, float) and np.isnan(label)):
        return None
    key = re.sub(r"[\s\-_]+", "_", str(label).strip().lower()).strip("_")
    return ROLE_ALIASES.get(key)


def normalize_ids(values: pd.Series) -> pd.Series:
    """Ids as strings (object dtype), stripped and without a trailing ".0"; missing or blank -> None."""
    missing = values.isna().to_numpy()
    text = values.astype(object).where(~missing, "").astype(str).str.strip()
    text = text.str.replace(r"\.0+$", "", regex=True)
    out = text.astype(object)
    out[missing | (text == "").to_numpy()] = None
    return out


def _read(path: Path, id_column: str) -> pd.DataFrame:
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        if ".csv" in name or name.endswith(".txt"):
            return pd.read_csv(path, encoding="utf-8-sig", dtype={id_column: str})
    except Exception as exc:  # noqa: BLE001 - any reader error is an unreadable file
        raise InputError([problem(path, "", None, f"cannot read the county statistics: {exc}")]) from None
    raise InputError([problem(path, "", path.suffix, "county statistics must be a .csv or .parquet file")])


def _label(cid: object, name: object, year: object, line: str) -> str:
    if cid is None or pd.isna(cid):
        who = f"{line} (no id)"
    else:
        who = str(cid) if name is None or pd.isna(name) or name == "" else f"{cid} ({name})"
    return who if year is None or pd.isna(year) else f"{who} in {year}"


def _listing(rows: pd.DataFrame) -> str:
    """"county 420102 (Hongshan) in 2010" or "counties a, b, ... and 3 more" for the labelled rows."""
    n = len(rows)
    head = rows.iloc[:MAX_LISTED]
    items = [_label(c, nm, y, ln) for c, nm, y, ln in
             zip(head["_id"], head["_name"], head["_year"], head["_line"], strict=True)]
    text = ", ".join(items)
    if n > MAX_LISTED:
        text += f" and {n - MAX_LISTED} more"
    return ("county " if n == 1 else "counties ") + text


def _values(values: pd.Series) -> object:
    """The bad value (one county) or the first :data:`MAX_LISTED` of them (several)."""
    vals = [None if (isinstance(v, float) and np.isnan(v)) else (v.item() if hasattr(v, "item") else v)
            for v in values.iloc[:MAX_LISTED]]
    return vals[0] if len(vals) == 1 else vals


def _blank(values: pd.Series) -> np.ndarray:
    """Missing cells: NaN/None, or text that is empty or only spaces."""
    blank = values.isna().to_numpy()
    if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        text = values.astype(object).where(~blank, "").astype(str).str.strip()
        blank = blank | text.eq("").to_numpy()
    return blank


def _ids_of(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per county (no year) for listings of counties."""
    return rows.drop_duplicates("_id").assign(_year=None)


def read_county_stats(
    path: str | Path,
    zones: pd.DataFrame,
    years: Sequence[int] | None = None,
    id_column: str = "code",
) -> pd.DataFrame:
    """Read and check the county statistics table against the zones; return the clean table.

    ``path``: a CSV (utf-8, a BOM is allowed) or Parquet file, one row per county and year, with
    the columns ``id_column`` and :data:`REQUIRED` (units in the module docstring), optional
    ``name`` and optional crop columns ``<crop>_sown_ha`` (ha), ``<crop>_price_cny_per_kg`` (CNY/kg),
    ``<crop>_yield_kg_per_ha`` (kg/ha). ``zones``: columns ``zone``, ``zone_id``, ``zone_name`` (as
    from :func:`ecodask.io.zones.zone_table`); ids are compared as strings (``420102``,
    ``420102.0`` and ``"420102"`` are the same county). ``years``: the years needed; rows of other
    years are ignored. None: every year in the table is needed.

    Checks, all collected before :class:`InputError` is raised: required and complete crop columns
    present; no missing id or year; no county outside the zones and none of the zones absent; a row
    for every zone and needed year and only one; ``population`` (persons) and ``gdp_cny`` (CNY)
    numbers > 0; Engel coefficients and urbanisation rate fractions in [0, 1]; cultivated area (ha),
    income per capita (CNY) and crop columns numbers >= 0; a known role (roles may change over years).

    Returns: columns ``zone``, ``zone_id`` (str), ``zone_name`` (from the zones), ``year`` (int),
    ``role`` (canonical, one of :data:`ROLES`), the numeric columns of :data:`REQUIRED` and the crop
    columns (float64); rows sorted by the order of ``zones`` then year. Other columns are dropped.
    """
    path = Path(path)
    file = str(path)
    for col in ("zone_id", "zone_name"):
        if col not in zones.columns:
            raise ValueError(f"zones lack the column {col!r}")
    zone_ids = normalize_ids(zones["zone_id"]).tolist()
    zone_names = dict(zip(zone_ids, zones["zone_name"].astype(str), strict=True))

    raw = _read(path, id_column)
    raw.columns = [str(c).strip() for c in raw.columns]
    problems: list[Problem] = []

    # --- columns
    cols = set(raw.columns)
    for col in (id_column, *REQUIRED):
        if col not in cols:
            problems.append(problem(file, col, None, f"column missing (the table has {sorted(cols)})"))
    crops = sorted({c[: -len(s)] for c in cols for s in CROP_SUFFIXES if c.endswith(s) and len(c) > len(s)})
    crop_cols: list[str] = []
    for crop in crops:
        lacking = [crop + s for s in CROP_SUFFIXES if crop + s not in cols]
        if lacking:
            problems.append(problem(file, lacking[0], None, f"crop {crop!r}: column(s) {lacking} missing; "
                                    f"each crop needs {[crop + s for s in CROP_SUFFIXES]}"))
        crop_cols += [crop + s for s in CROP_SUFFIXES if crop + s in cols]
    if id_column not in cols or "year" not in cols:
        raise InputError(problems)

    # --- labels: id, name, year, line of every row
    ids = normalize_ids(raw[id_column])
    table_names = (raw["name"].astype(object).where(raw["name"].notna(), None) if "name" in cols
                   else pd.Series(None, index=raw.index, dtype=object))
    names = ids.map(zone_names).astype(object)
    names = names.where(names.notna(), table_names)
    year_num = pd.to_numeric(raw["year"], errors="coerce")
    year_ok = (year_num.notna() & np.isfinite(year_num) & (year_num == np.round(year_num))).to_numpy()
    is_csv = path.suffix.lower() not in (".parquet", ".pq")  # CSV: file line numbers, header = line 1
    lines = pd.Series(np.arange(len(raw)) + (2 if is_csv else 0)).astype(str)
    year_obj = np.full(len(raw), None, dtype=object)
    year_obj[year_ok] = year_num[year_ok].astype(np.int64).tolist()
    lab = pd.DataFrame({
        "_id": ids.to_numpy(),
        "_name": names.to_numpy(),
        "_year": year_obj,
        "_line": (("line " if is_csv else "row ") + lines).to_numpy(),
    })
    has_id = ids.notna().to_numpy()

    if not has_id.all():
        bad = lab[~has_id]
        problems.append(problem(file, id_column, None, f"{_listing(bad)}: id missing"))
    if not year_ok.all():
        bad = lab[~year_ok].assign(_year=None)
        problems.append(problem(file, "year", _values(raw["year"][~year_ok]),
                                f"{_listing(bad)}: year missing or not a whole number"))

    # --- counties: the table's against the zones'
    zone_set = set(zone_ids)
    unknown = has_id & ~ids.isin(zone_set).to_numpy()
    if unknown.any():
        bad = _ids_of(lab[unknown])
        problems.append(problem(file, id_column, _values(bad["_id"]),
                                f"{_listing(bad)}: not in the zones ({len(zone_set)} counties)"))
    present = set(ids[has_id])
    absent = [z for z in zone_ids if z not in present]
    if absent:
        bad = pd.DataFrame({"_id": absent, "_name": [zone_names[z] for z in absent], "_year": None,
                            "_line": ""})
        problems.append(problem(file, id_column, _values(bad["_id"]),
                                f"{_listing(bad)}: in the zones but not in the table"))

    # --- the rows of the needed years
    table_years = sorted({int(y) for y in year_num[year_ok]})
    need = table_years if years is None else sorted({int(y) for y in years})
    keep = has_id & year_ok & lab["_year"].isin(need).to_numpy()
    rows, rlab = raw[keep], lab[keep]
    order = {z: i for i, z in enumerate(zone_ids)}
    rank = rlab["_id"].map(order).fillna(len(order)).to_numpy()
    sort = np.lexsort((rlab["_year"].to_numpy(dtype=np.int64), rank))  # zone order, then year
    rows, rlab = rows.iloc[sort], rlab.iloc[sort]
    for year in need:
        if year not in table_years:
            problems.append(problem(file, "year", year,
                                    f"no rows for this year (the table has {table_years})"))

    key = pd.MultiIndex.from_arrays([rlab["_id"], rlab["_year"]])
    dup = key.duplicated(keep=False)
    if dup.any():
        bad = rlab[dup & ~key.duplicated(keep="first")]
        counts = key[dup].value_counts()
        many = sorted({int(counts[(c, y)]) for c, y in zip(bad["_id"], bad["_year"], strict=True)})
        problems.append(problem(file, id_column, _values(bad["_id"]),
                                f"{_listing(bad)}: duplicated ({'/'.join(map(str, many))} rows); "
                                "give one row per county and year"))
    expected = pd.MultiIndex.from_product([[z for z in zone_ids if z in present],
                                           [y for y in need if y in table_years]])
    lacking = expected.difference(key, sort=False)
    if len(lacking):
        pairs = sorted(lacking.tolist(), key=lambda p: (order[p[0]], p[1]))
        bad = pd.DataFrame({"_id": [p[0] for p in pairs], "_name": [zone_names[p[0]] for p in pairs],
                            "_year": [p[1] for p in pairs], "_line": ""})
        problems.append(problem(file, "year", _values(bad["_year"]), f"{_listing(bad)}: no row in the table"))

    # --- values
    numeric: dict[str, pd.Series] = {}
    rules = [(c, "positive") for c in POSITIVE] + [(c, "fraction") for c in FRACTIONS] + \
        [(c, "non_negative") for c in (*NON_NEGATIVE, *crop_cols)]
    for col, rule in rules:
        if col not in cols:
            continue
        values = rows[col]
        blank = _blank(values)
        num = pd.to_numeric(values.where(~blank), errors="coerce").astype(np.float64)
        text = ~blank & num.isna().to_numpy()
        arr = num.to_numpy()
        checks = [(blank, "missing"), (text, "not a number"),
                  (np.isinf(arr), "not finite")]
        ok = np.isfinite(arr)
        if rule == "positive":
            checks.append((ok & (arr <= 0), "must be > 0"))
        elif rule == "non_negative":
            checks.append((ok & (arr < 0), "must be >= 0"))
        elif col in ENGEL:
            checks.append((ok & (arr <= 0), f"must be > 0: {ENGEL_RULE}"))
            checks.append((ok & (arr > 1), "must be <= 1: give fractions in (0, 1], not percent"))
        else:
            checks.append((ok & (arr < 0), "must be >= 0 (a fraction in [0, 1])"))
            checks.append((ok & (arr > 1), "must be <= 1: give fractions in [0, 1], not percent"))
        for mask, message in checks:
            if mask.any():
                shown = values[mask] if message == "not a number" else num[mask]
                problems.append(problem(file, col, _values(shown), f"{_listing(rlab[mask])}: {message}"))
        numeric[col] = num

    roles = rows["role"].map(canonical_role) if "role" in cols else None
    if roles is not None:
        blank = _blank(rows["role"])
        unknown_role = roles.isna().to_numpy() & ~blank
        if blank.any():
            problems.append(problem(file, "role", None, f"{_listing(rlab[blank])}: missing"))
        if unknown_role.any():
            problems.append(problem(
                file, "role", _values(rows["role"][unknown_role]),
                f"{_listing(rlab[unknown_role])}: unknown role; accepted: {', '.join(ROLES)} (any case, "
                "spaces or hyphens for '_', aliases such as 'key development zone', 'main agricultural "
                "production area', 'key ecological function area')"))

    if problems:
        raise InputError(problems)

    # --- the clean table
    out = pd.DataFrame({
        "zone_id": rlab["_id"].astype(str).to_numpy(),
        "zone_name": [zone_names[z] for z in rlab["_id"]],
        "year": rlab["_year"].astype(np.int64).to_numpy(),
        "role": roles.astype(str).to_numpy(),
    })
    if "zone" in zones.columns:
        zone_of = dict(zip(zone_ids, zones["zone"], strict=True))
        out.insert(0, "zone", [zone_of[z] for z in rlab["_id"]])
    for col, num in numeric.items():
        out[col] = num.to_numpy()
    return out  # rows already in zone order, then year


def population_and_gdp(path: str | Path, zones: pd.DataFrame, years: Sequence[int],
                       id_column: str = "code") -> pd.DataFrame:
    """The ``population`` (persons) and ``gdp_cny`` (CNY) of each zone and year of ``years`` the table
    holds, for ESV per capita and per unit GDP (those columns only: a table that values only the
    standard equivalent may lack the others). Returns zone_id (str), year, population, gdp_cny (NaN
    where a column or a row is missing); a value that is not a number > 0 is an :class:`InputError`
    naming the file, the column and the counties."""
    path = Path(path)
    raw = _read(path, id_column)
    if id_column not in raw.columns or "year" not in raw.columns:
        return pd.DataFrame(columns=["zone_id", "year", "population", "gdp_cny"])
    t = pd.DataFrame({"zone_id": normalize_ids(raw[id_column]),
                      "year": pd.to_numeric(raw["year"], errors="coerce")})
    problems = []
    for col in ("population", "gdp_cny"):
        if col not in raw.columns:
            t[col] = np.nan
            continue
        v = pd.to_numeric(raw[col], errors="coerce")
        bad = raw[col].notna() & ~(v > 0)
        if bad.any():
            lines = ", ".join(str(i + 2) for i in np.flatnonzero(bad)[:MAX_LISTED])
            problems.append(problem(path, col, _values(raw.loc[bad, col]),
                                    f"lines {lines}: must be a number > 0"))
        t[col] = v
    if problems:
        raise InputError(problems)
    known = set(normalize_ids(zones["zone_id"]).dropna())
    t = t[t["zone_id"].isin(known) & t["year"].isin([int(y) for y in years])]
    return t.astype({"year": "int64"}).drop_duplicates(["zone_id", "year"]).reset_index(drop=True)
