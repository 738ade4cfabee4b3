"""Summaries of a finished run for display (no Prefect): the county ESV and compensation tables as
lists of rows (plain Python values, ready for JSON), and the run's key figures as Markdown. All
are read from the run's written tables ``<output>/tables/*.parquet``; a builder whose table is
missing returns ``None`` (or leaves its section out of the Markdown).

Money is in 10^8 CNY/yr (``*_1e8cny``) unless a column says CNY (``*_cny``); changes in percent
(``*_pct``) are relative to the first year.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ecodask.io.layout import REPORT, RunFolder
from ecodask.science.landuse import REGION_ID, TOTAL


def read_output_table(output: str | Path, name: str,
                      filters: list[tuple[str, str, Any]] | None = None) -> pd.DataFrame | None:
    """``<output>/tables/<name>.parquet`` (its rows passing ``filters``: :meth:`RunFolder.table`), or
    None if the run did not write it."""
    return RunFolder(output).table(name, filters)


def _plain(value: Any) -> Any:
    """A JSON-ready Python value (NaN -> None, NumPy scalars -> Python)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _pct(first: float, last: float) -> float | None:
    return 100.0 * (last - first) / first if first else None


def _totals(esv_by_service: pd.DataFrame) -> pd.DataFrame:
    """zone_id (str), zone_name, one column per year: total ESV (10^8 CNY/yr), zones in table order."""
    t = esv_by_service[esv_by_service["level"] == TOTAL]
    t = t.assign(zone_id=t["zone_id"].astype(str))
    wide = t.pivot_table(index=["zone_id", "zone_name"], columns="year", values="esv_1e8cny", sort=False)
    return wide.reset_index()


def county_esv_rows(output: str | Path) -> list[dict[str, Any]] | None:
    """One row per county: ``county_id``, ``county``, ``esv_<year>_1e8cny`` for every year (total
    ESV, 10^8 CNY/yr), then ``change_<first>_<last>_1e8cny`` and ``change_pct`` (first to last
    year); None without an ``esv_by_service`` table."""
    esv = read_output_table(output, "esv_by_service")
    if esv is None:
        return None
    wide = _totals(esv)
    wide = wide[wide["zone_id"] != REGION_ID]
    years = [int(y) for y in wide.columns[2:]]
    rows = []
    for r in wide.itertuples(index=False):
        values = [float(v) for v in r[2:]]
        row: dict[str, Any] = {"county_id": str(r[0]), "county": str(r[1])}
        row |= {f"esv_{y}_1e8cny": v for y, v in zip(years, values, strict=True)}
        if len(years) > 1:
            row[f"change_{years[0]}_{years[-1]}_1e8cny"] = values[-1] - values[0]
            row["change_pct"] = _pct(values[0], values[-1])
        rows.append({k: _plain(v) for k, v in row.items()})
    return rows


def compensation_summary_rows(output: str | Path) -> list[dict[str, Any]] | None:
    """The ``compensation_totals`` table as rows: per variant, year and role its direction, the
    number of counties, the amount (10^8 CNY/yr and CNY/yr), the non-market ESV, the annual loss,
    the opportunity cost (CNY/yr) and the sign mismatches; None without the table."""
    t = read_output_table(output, "compensation_totals")
    if t is None:
        return None
    return [{str(k): _plain(v) for k, v in row.items()} for row in t.to_dict("records")]


def _f(value: float | None, digits: int = 4) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:,.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *["| " + " | ".join(r) + " |" for r in rows], ""]


def key_figures_markdown(
    output: str | Path,
    name: str,
    ran: Mapping[str, bool] | None = None,
    timings: Mapping[str, float] | None = None,
    top: int = 5,
) -> str:
    """The run's key figures as Markdown: the whole region's total ESV per year and its change
    (10^8 CNY/yr, %), the ``top`` counties by ESV in the last year, the Geographical Detector's
    strongest driver per year (largest q), the compensation totals per variant and year (paid and
    received, 10^8 CNY/yr), and the stages run or skipped with their timings (s)."""
    lines = [f"## Run {name}: key figures", ""]
    esv = read_output_table(output, "esv_by_service")
    if esv is not None:
        wide = _totals(esv)
        years = [int(y) for y in wide.columns[2:]]
        region = wide[wide["zone_id"] == REGION_ID]
        if len(region):
            values = [float(v) for v in region.iloc[0, 2:]]
            lines += ["### Total ESV of the region, 10^8 CNY/yr", ""]
            header = ["", *[str(y) for y in years]]
            row = ["total ESV", *[_f(v) for v in values]]
            if len(years) > 1:
                header += [f"change {years[0]}-{years[-1]}", "change %"]
                row += [_f(values[-1] - values[0]), _f(_pct(values[0], values[-1]), 2)]
            lines += _table(header, [row])
        counties = wide[wide["zone_id"] != REGION_ID]
        if len(counties) and years:
            last = years[-1]
            best = counties.sort_values(last, ascending=False, kind="stable").head(top)
            lines += [f"### Top {len(best)} counties by ESV in {last}, 10^8 CNY/yr", ""]
            change = len(years) > 1
            header = ["county", "id", *([str(years[0])] if change else []), str(last),
                      *(["change %"] if change else [])]
            rows = []
            for r in best.itertuples(index=False):
                v = [float(x) for x in r[2:]]
                rows.append([str(r[1]), str(r[0]), *([_f(v[0])] if change else []), _f(v[-1]),
                             *([_f(_pct(v[0], v[-1]), 2)] if change else [])])
            lines += _table(header, rows)
    factor = read_output_table(output, "geodetector_factor")
    if factor is not None and len(factor):
        lines += ["### Strongest driver of the ESV density (Geographical Detector)", ""]
        rows = []
        for year, g in factor.groupby("year", sort=True):
            b = g.loc[g["q"].idxmax()]
            rows.append([str(int(year)), str(b["factor"]), _f(float(b["q"])), _f(float(b["p"]), 4)])
        lines += _table(["year", "driver", "q", "p"], rows)
    totals = read_output_table(output, "compensation_totals")
    if totals is not None and len(totals):
        lines += ["### Compensation, 10^8 CNY/yr", ""]
        sums = totals.pivot_table(index=["variant", "year"], columns="direction", values="amount_1e8cny",
                                  aggfunc="sum", fill_value=0.0, sort=True)
        counts = totals.pivot_table(index=["variant", "year"], columns="direction", values="counties",
                                    aggfunc="sum", fill_value=0, sort=True)
        rows = []
        for (variant, year), r in sums.iterrows():
            c = counts.loc[(variant, year)]
            rows.append([str(variant), str(int(year)),
                         _f(float(r.get("pay", 0.0))), str(int(c.get("pay", 0))),
                         _f(float(r.get("receive", 0.0))), str(int(c.get("receive", 0)))])
        lines += _table(["variant", "year", "paid", "counties paying", "received", "counties receiving"],
                        rows)
    if ran or timings:
        ran = dict(ran or {})
        timings = dict(timings or {})
        lines += ["### Stages", ""]
        names = list(dict.fromkeys([*timings, *ran]))
        rows = [[s, "ran" if ran.get(s, True) else "skipped (finished earlier)",
                 _f(timings.get(s), 1)] for s in names]
        lines += _table(["stage", "status", "seconds"], rows)
    return "\n".join(lines).rstrip() + "\n"


def _wide_markdown(title: str, label: str, wide: pd.DataFrame, missing: str = "nan") -> str:
    lines = [title, "", f"| {label} | " + " | ".join(str(y) for y in wide.columns) + " |",
             "|---" * (len(wide.columns) + 1) + "|"]
    lines += [f"| {item} | " + " | ".join(missing if pd.isna(v) else f"{v:.4f}" for v in row) + " |"
              for item, row in wide.iterrows()]
    return "\n".join(lines) + "\n"


def esv_summary_markdown(output: str | Path, table_name: str) -> str:
    """The whole region's ESV per year (10^8 CNY/yr) by item (services, groups, market parts,
    total) as Markdown, from the written ``esv_by_service`` table (``table_name``: the ESV table
    of the run, for the title)."""
    t = RunFolder(output).table("esv_by_service")
    region = t[(t["zone_id"] == REGION_ID) & (t["level"] != "service")]
    wide = region.pivot_table(index="item", columns="year", values="esv_1e8cny", sort=False)
    return _wide_markdown(f"### ESV of the whole region, 10^8 CNY/yr ({table_name})", "item", wide)


def driver_summary_markdown(output: str | Path) -> str:
    """q of each driver per year (factor detector) as Markdown, from the written table; ``-`` where
    the detector did not take the driver that year (``analysis.detector_factors: selected``)."""
    title = "### Geographical Detector: q of each driver for the ESV density"
    t = RunFolder(output).table("geodetector_factor")
    if t is None or not len(t):
        return f"{title}\n\nNo driver went to the detector (the regression selected none).\n"
    wide = t.pivot_table(index="factor", columns="year", values="q", sort=False, dropna=False)
    return _wide_markdown(title, "driver", wide, missing="-")


def report_markdown(name: str, where: str) -> str:
    """The Prefect artifact that links a run's HTML report (``where``: its path or URL)."""
    link = where if "://" in where else Path(where).resolve().as_uri()
    return (f"## Report of run {name}\n\n[{REPORT}]({link}): one self-contained HTML file (maps, charts, "
            f"tables, configuration, versions and timings); open it in a browser or hand it on.\n\n"
            f"`{where}`\n")


def partial_of(coverage: pd.DataFrame) -> pd.DataFrame:
    """The zones of a coverage table (:func:`ecodask.science.landuse.coverage_table`) that are
    partial in some year: zone_id, zone_name, coverage (lowest, 0..1), year (of the lowest),
    data_area_ha (that year), lowest first."""
    t = coverage[(coverage["zone_id"] != REGION_ID) & coverage["partial"]]
    lowest = t.sort_values(["coverage", "year"]).groupby("zone_id", sort=False).head(1)
    return lowest[["zone_id", "zone_name", "coverage", "year", "data_area_ha"]].reset_index(drop=True)


def partial_zones(output: str | Path) -> pd.DataFrame | None:
    """:func:`partial_of` the run's coverage table; None when the run wrote none (an earlier
    version's)."""
    t = RunFolder(output).table("coverage")
    return None if t is None else partial_of(t)


def coverage_warning(output: str | Path, shown: int = 5) -> str | None:
    """One line naming the run's zones with partial land cover (lowest share and year), or None."""
    t = RunFolder(output).table("coverage")
    return None if t is None else coverage_line(t, shown)


def coverage_line(coverage: pd.DataFrame, shown: int = 5) -> str | None:
    """One line naming the zones of a coverage table with partial land cover, or None."""
    partial = partial_of(coverage)
    if partial.empty:
        return None
    n_zones = coverage["zone_id"].nunique() - 1
    names = ", ".join(f"{r.zone_name} ({r.zone_id}) {r.coverage * 100:.1f} % in {r.year}"
                      for r in partial.head(shown).itertuples())
    more = f" and {len(partial) - shown} more" if len(partial) > shown else ""
    return (f"{len(partial)} of {n_zones} zones have land cover on only part of their area: {names}{more}; "
            "their totals miss the rest (tables/coverage, figures/coverage.png; zones.exclude_partial "
            "leaves them out of compensation)")


def coverage_markdown(output: str | Path) -> str | None:
    """The partial zones as a Markdown table (the Prefect artifact ``coverage``), or None."""
    partial = partial_zones(output)
    if partial is None or partial.empty:
        return None
    rows = [[str(r.zone_id), str(r.zone_name), f"{r.coverage * 100:.1f} %", str(r.year),
             f"{r.data_area_ha:,.0f}"] for r in partial.itertuples()]
    return "\n".join(["### Zones with partial land cover", "",
                      *_table(["zone", "name", "coverage (lowest)", "year", "area with data, ha"], rows),
                      ]) + "\n"
