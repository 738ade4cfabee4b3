"""The run report: one self-contained HTML file (``<output>/report.html``, images embedded as data
URIs, no external resources) to read a run and hand it on.

Built from what the run wrote, nothing recomputed: ``run.json`` (configuration, versions, input
checksums, stage timings), the tables (``tables/*.parquet``) and the figures (``figures/*.png``).
Sections: key figures (the region's ESV per year, top counties, strongest drivers, compensation
totals: :func:`ecodask.present.summaries.key_figures_markdown`), maps and charts, tables (ESV by service
and year for the region, every county's total ESV, the last year's Geographical Detector: q with its
95 % interval and each pair's interaction with its nested F test, the scale effect of q with its
chart, compensation per role), the conventions used,
the run configuration, versions and timings, and a list of the output files.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import yaml
from markdown_it import MarkdownIt

from ecodask.errors import InputError, problem
from ecodask.io.atomic import write_atomic
from ecodask.io.layers import STAGES
from ecodask.io.layout import (
    REPORT,
    SCENARIOS_FIGURE,
    STATE_DIR,
    STORE,
    RunFolder,
    scale_figure,
    tradeoffs_figure,
)
from ecodask.present import summaries
from ecodask.science.landuse import REGION_ID, TOTAL

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK SC",sans-serif;
margin:0;color:#1f2933;background:#f5f7f8;line-height:1.45}
header{background:#184e3b;color:#fff;padding:18px 32px}
header h1{margin:0 0 4px 0;font-size:24px}
header p{margin:2px 0;opacity:.9;font-size:14px}
nav{background:#e3ece7;padding:8px 32px;font-size:14px;position:sticky;top:0;z-index:2}
nav a{margin-right:16px;color:#184e3b;text-decoration:none;font-weight:600}
main{padding:8px 32px 40px 32px;max-width:1400px}
section{background:#fff;border-radius:6px;padding:12px 20px;margin:16px 0;
box-shadow:0 1px 2px rgba(0,0,0,.08)}
h2{color:#184e3b;border-bottom:2px solid #e3ece7;padding-bottom:4px}
h3{margin-bottom:6px}
table{border-collapse:collapse;font-size:13px;margin:6px 0 14px 0}
th,td{border:1px solid #d5dde0;padding:3px 8px;text-align:right}
th{background:#eef3f1}
td:first-child,th:first-child{text-align:left}
.figs{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:14px}
figure{margin:0;background:#fff}
figure img{width:100%;height:auto;border:1px solid #e3e8ea}
figcaption{font-size:12px;color:#52606d}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:8px 0}
.card{background:#eef3f1;border-radius:6px;padding:10px 16px;min-width:180px}
.card b{display:block;font-size:22px;color:#184e3b}
pre{background:#f3f5f6;padding:10px;font-size:12px;overflow-x:auto}
details summary{cursor:pointer;font-weight:600;margin:6px 0}
"""

#: Figures shown first (by file-name prefix), in this order; the rest follow under "All figures".
KEY_PREFIXES = ("landuse_", "esv_change_", "esv_", "hotspots_", "esv_by_service", "landuse_flows",
                "geodetector_q_", "geodetector_interaction_", "compensation_")


#: Where a figure's data goes in :func:`render`'s text: the marker, the PNG's path, the marker again
#: (NUL never occurs in HTML text); :func:`write_report` streams each figure's base64 into its place,
#: so the process holds one figure at a time, not every year's maps (200 PNGs at 39 years).
_DATA = "\0"


def _img(path: Path, caption: str) -> str:
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{_DATA}{path}{_DATA}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _write_with_figures(text: str, out: Path) -> None:
    """``text`` into the file ``out`` (UTF-8), each figure's marked path replaced by the base64 of its
    PNG, read and encoded one at a time (in blocks of 3 MiB, a multiple of 3 bytes)."""
    with open(out, "w", encoding="utf-8", newline="") as f:
        for i, piece in enumerate(text.split(_DATA)):
            if i % 2 == 0:
                f.write(piece)
                continue
            with open(piece, "rb") as png:
                while block := png.read(3 * 2**20):
                    f.write(base64.b64encode(block).decode("ascii"))


def _caption(path: Path) -> str:
    return path.stem.replace("_", " ")


def _run_figure(output: Path, name: str) -> list[str]:
    """The run's ``figures/<name>`` embedded in a section; nothing where the run did not draw it."""
    path = RunFolder(output).figures / name
    return [f'<div class="figs">{_img(path, _caption(path))}</div>'] if path.is_file() else []


def _frame(df: pd.DataFrame, digits: int = 4) -> str:
    """``df`` as an HTML table, numbers to ``digits`` decimals, a missing value as –."""
    nullable = [c for c in df.columns if isinstance(df[c].dtype, pd.BooleanDtype)]  # to_html shows <NA>
    df = df.assign(**{c: df[c].astype(object).where(df[c].notna(), "–") for c in nullable})
    return df.to_html(index=False, border=0, na_rep="–", float_format=lambda v: f"{v:,.{digits}f}",
                      escape=True)


def figure_files(output: Path) -> list[Path]:
    """Every PNG of the run (``figures/``), sorted by name."""
    return sorted(RunFolder(output).figures.glob("*.png"))


def _key_figures(figures: list[Path], years: list[int]) -> list[Path]:
    """One of each kind, for the first screen: land use and hot spots of the last year, ESV of the
    last year, the change map, the bars and flows, the last year's q chart."""
    last = str(years[-1]) if years else ""
    wanted = [f"landuse_{last}", f"esv_{last}", "esv_change_", f"hotspots_{last}", "esv_by_service",
              "landuse_flows", f"geodetector_q_{last}", f"geodetector_interaction_{last}"]
    by_name = {p.stem: p for p in figures}
    out: list[Path] = []
    for w in wanted:
        hit = next((p for s, p in by_name.items() if s == w or (w.endswith("_") and s.startswith(w))), None)
        if hit is not None and hit not in out:
            out.append(hit)
    return out


def _region_esv(output: Path) -> pd.DataFrame | None:
    t = summaries.read_output_table(output, "esv_by_service")
    if t is None:
        return None
    r = t[(t["zone_id"].astype(str) == REGION_ID)]
    wide = r.pivot_table(index=["level", "group", "item"], columns="year", values="esv_1e8cny", sort=False)
    wide.columns = [str(c) for c in wide.columns]
    return wide.reset_index().rename(columns={"item": "service / group"})


def _cards(output: Path, record: dict) -> str:
    cards = []
    rows = summaries.county_esv_rows(output) or []
    esv = summaries.read_output_table(output, "esv_by_service")
    years = [int(y) for y in record.get("config", {}).get("landcover", {}).get("years", {})]
    if esv is not None and years:
        tot = esv[(esv["level"] == TOTAL) & (esv["zone_id"].astype(str) == REGION_ID)].set_index("year")
        if years[-1] in tot.index:
            v = float(tot.loc[years[-1], "esv_1e8cny"])
            cards.append((f"{v:,.3f}", f"ESV {years[-1]}, 10^8 CNY/yr"))
        if len(years) > 1 and years[0] in tot.index and years[-1] in tot.index:
            a, b = float(tot.loc[years[0], "esv_1e8cny"]), float(tot.loc[years[-1], "esv_1e8cny"])
            cards.append((f"{100 * (b - a) / a:+.2f} %" if a else "–", f"ESV change {years[0]}–{years[-1]}"))
    cards.append((str(len(rows)), "counties"))
    cards.append((str(len(years)), f"years ({years[0]}–{years[-1]})" if years else "years"))
    totals = summaries.read_output_table(output, "compensation_totals")
    if totals is not None and len(totals):
        last = totals[totals["year"] == totals["year"].max()]
        for variant, g in last.groupby("variant", sort=True):
            pay = float(g.loc[g["direction"] == "pay", "amount_1e8cny"].sum())
            rec = float(g.loc[g["direction"] == "receive", "amount_1e8cny"].sum())
            cards.append((f"{rec:,.2f} / {pay:,.2f}", f"compensation {variant.replace('_', ' ')} "
                          f"{int(last['year'].iloc[0])}: received / paid, 10^8 CNY/yr"))
    return '<div class="cards">' + "".join(
        f'<div class="card"><b>{html.escape(v)}</b>{html.escape(k)}</div>' for v, k in cards) + "</div>"


_ANNUAL = {"seed001": "that total over the horizon (seed 001's reading)",
           "annuity": "the equal annual payment of that total (an annuity)"}


_R_FORMS = {"pearl": "t = 1/En − 3 (the Pearl form)", "seed": "t = En (seed 003's eq. 8 as printed)"}


def _r_line(form: str) -> str:
    """R's form in use, the other one, and why the default is the default."""
    other = "seed" if form == "pearl" else "pearl"
    return (f"Development stage R = 1/(1 + e^−t) with {_R_FORMS.get(form, form)}, used here; the other "
            f"reading is {_R_FORMS[other]} (compensation.r_form: {other}). The Pearl form is the default "
            "because seed 003's prose makes R = 1 the 'extremely rich' stage, and only it lets R rise as "
            "the Engel coefficient falls; the printed t = En keeps R between 0.5 and 0.73 and raises it "
            "with the food share.")


def _g_line(ref: object) -> str:
    """What G = county GDP per capita / reference divides by."""
    if ref == "counties":
        what = "the counties' total GDP over their total population, per year"
    elif isinstance(ref, int | float):
        what = f"{ref:,.0f} CNY per person in every year"
    else:
        what = f"the series {ref} by year (catalogs/gdp_per_capita; china_nbs: China's national figure)"
    return (f"Affordability G = county GDP per capita / {what}; seed 003's eq. 9 divides by the national "
            "figure.")


def _compensated(config: dict) -> bool:
    """Whether the run computed compensation (it needs county statistics and the stage enabled)."""
    return bool(config.get("county_stats")) and bool(config.get("compensation", {}).get("enabled", True))


def _title(config: dict) -> str:
    return ("Ecosystem service value and ecological compensation" if _compensated(config)
            else "Ecosystem service value")


def _table_lines(tables: dict) -> list[str]:
    """Each ESV table's market split and notes (run.json's ``tables``)."""
    lines = []
    for key, t in tables.items():
        market = ", ".join(t.get("market_services", [])) or "none"
        lines.append(f"Market part of the ESV ({key} {t.get('name')}): {market}; every other service is "
                     f"non-market (the groups {', '.join(t.get('market_groups', [])) or 'none'} are market, "
                     "seed 003's Table 3).")
        lines += [f"Note on {t.get('name')}: {n}" for n in t.get("notes", [])]
    return lines


_DETECTOR_FACTORS = {
    "all": "factors: every driver",
    "selected": "factors: per year, the continuous drivers the regression selected, and every "
                "categorical driver (the regression does not test those)",
}


def _terrain_lines(drivers: dict) -> list[str]:
    """How drivers derived from a DEM were made (drivers.<name>.derive)."""
    from ecodask.io.terrain import TERRAIN_RESAMPLING, TERRAIN_UNITS

    return [f"Driver {name}: {d['derive']} of the DEM {Path(str(d.get('path', ''))).name} by Horn's (1981) "
            f"3 x 3 method at the DEM's own resolution ({TERRAIN_UNITS[d['derive']]}), then per analysis "
            f"cell the {TERRAIN_RESAMPLING[d['derive']]}; flat pixels have no aspect."
            for name, d in sorted(drivers.items())
            if isinstance(d, dict) and d.get("derive", "none") in TERRAIN_UNITS]


def _preset_line(an: dict) -> list[str]:
    if an.get("preset", "none") == "none":
        return []
    return [f"Driver analysis preset {an['preset']}: seed 002's Algorithm A1 (forward selection, the "
            "detector on the selected drivers, natural breaks, the regression table in the seed's "
            "layout); the resolved choices follow."]


def _regression_line(an: dict) -> str:
    """How the regression selected its variables and how its table lists them."""
    method, crit = an.get("regression_method", "stepwise"), an.get("regression_criterion", "p")
    if method == "enter":
        rule = "enter (all continuous drivers, no selection)"
    elif crit == "p":
        limits = ([f"enter p < {an.get('p_enter')}"] if method != "backward" else []) + \
            ([f"remove p > {an.get('p_remove')}"] if method != "forward" else [])
        rule = f"{method} by p ({', '.join(limits)})"
    else:
        rule = f"{method} by {crit.upper()} (the move lowering it most)"
    if an.get("regression_table") == "enter":
        table = ("table regression: every continuous driver per year with its coefficients in the model "
                 "of all drivers (seed 002's layout; sig ** p < 0.01, * p < 0.05), column selected "
                 "marking the selection; table regression_selected: the selected model")
    else:
        table = "table regression: the selected model's terms"
    return f"Regression of ESV density on the continuous drivers: {rule}; {table}."


def conventions(config: dict, tables: dict | None = None) -> list[str]:
    """The conventions a reader needs to read the run's numbers, from its configuration and its ESV
    tables' facts (run.json's ``tables``)."""
    esv = config.get("esv", {})
    an = config.get("analysis", {})
    comp = config.get("compensation", {})
    grid = config.get("grid", {})
    se = esv.get("standard_equivalent")
    return [
        "Money: ESV in CNY/yr (tables *_cny) or 10^8 CNY/yr (*_1e8cny); ESV density in CNY/ha/yr.",
        f"ESV table: {esv.get('table')} (equivalent-factor method); standard equivalent Ea: "
        f"{'from the county crop statistics' if se == 'from_county_stats' else (se or 'the table value')}"
        " (CNY/ha/yr).",
        *_table_lines(tables or {}),
        f"Areas on the run's equal-area grid: {grid.get('resolution')} m pixels; analysis cells of "
        f"{grid.get('analysis_factor')} × {grid.get('analysis_factor')} pixels; CRS {grid.get('crs')}.",
        "Land-use maps: the modal class of each analysis cell; ESV maps: ESV density of each analysis cell.",
        "Transitions: pixels with a class in both years; dynamic degrees in % per year.",
        *_terrain_lines(config.get("drivers", {})),
        *_preset_line(an),
        f"Geographical Detector: q on ESV density per analysis cell; discretization {an.get('discretize')}"
        f"{'' if an.get('k') is None else ' with k = ' + str(an.get('k'))}"
        f" (quantile breaks by R's {'type 1' if an.get('quantile_rule') == 'type1' else 'type 7'} rule); "
        f"F test λ on {an.get('variance')} variance; risk/ecological detectors at α = {an.get('alpha')}; "
        f"{_DETECTOR_FACTORS.get(an.get('detector_factors', 'all'), _DETECTOR_FACTORS['all'])}.",
        _regression_line(an),
        "Hot spots: Getis-Ord Gi* with queen contiguity including the cell itself; classes at 90/95/99 % "
        "(|z| ≥ 1.645/1.960/2.576).",
        *([_r_line(comp.get("r_form", "pearl")), _g_line(comp.get("reference_gdp_per_capita", "china_nbs")),
           f"Compensation: loss valued over "
           f"{comp.get('horizon_years')} years at a discount rate of {comp.get('discount_rate')}, the annual "
           f"amount {_ANNUAL.get(comp.get('annual_form'), _ANNUAL['seed001'])}; "
           "priority level 1 = most urgent."] if _compensated(config) else
          ["Compensation: not computed (no county_stats in the configuration, or compensation.enabled "
           "false)."]),
    ]


def _transition_summary(cats: pd.DataFrame, trans: pd.DataFrame, side: str) -> pd.DataFrame:
    """Per interval, the class with the largest gross ``side`` (``gain`` or ``loss``, ha/yr), its
    uniform transition intensity (W or V, %/yr) and the classes its gain takes or its loss goes to
    more intensively (targets) or less (avoids) than that, strongest first; from one zone's rows of
    intensity_category and intensity_transition."""
    size, uniform = f"gross_{side}_ha_per_yr", f"{side}_uniform_transition_pct_per_yr"
    who, other = ("class_to", "class_from_name") if side == "gain" else ("class_from", "class_to_name")
    heads = [f"largest {side}", f"gross {side}, ha/yr", f"{'W' if side == 'gain' else 'V'}, %/yr",
             "targets", "avoids"]
    rows = []
    for (a, b), g in cats.groupby(["year_from", "year_to"], sort=True):
        row: dict[str, object] = {"year_from": a, "year_to": b} | dict.fromkeys(heads)
        if (g[size] > 0).any():
            top = g.loc[g[size].idxmax()]
            here = trans[(trans["year_from"] == a) & (trans["year_to"] == b)]
            mine = here[here[who] == top["class_code"]].sort_values(f"{side}_intensity_pct_per_yr",
                                                                   ascending=False)
            row |= dict(zip(heads[:3], (top["class_name"], top[size], top[uniform]), strict=True))
            for word, col in (("targeted", "targets"), ("avoided", "avoids")):
                row[col] = ", ".join(map(str, mine.loc[mine[f"{side}_behaviour"] == word, other])) or "–"
        rows.append(row)
    return pd.DataFrame(rows)


def _intensity(output: Path) -> list[str]:
    """The whole region's intensity analysis: each interval's pace, each class's gain and loss
    against it, the transition level of the largest gain and loss, and the quantity, exchange and
    shift of each interval's change (tables/intensity_*)."""
    from ecodask.science.intensity_tables import ALL_CLASSES
    from ecodask.science.landuse import REGION_ID

    region_only = [("zone_id", "==", REGION_ID)]
    interval = summaries.read_output_table(output, "intensity_interval", region_only)
    category = summaries.read_output_table(output, "intensity_category", region_only)
    if interval is None or category is None or not len(interval):
        return []
    cols = ["year_from", "year_to", "class_name", "gain_intensity_pct_per_yr", "loss_intensity_pct_per_yr",
            "S_pct_per_yr", "gain_behaviour", "loss_behaviour", "gain_stationary", "loss_stationary"]
    out = ["<h3>Intensity analysis of the whole region (Aldwaik &amp; Pontius 2012), % per year</h3>",
           "<p>Interval level: the annual change of each interval (S) against the uniform change of "
           "all intervals (U); category level: each class's gain and loss against S (stationary: the "
           "same in every interval; – where a class is absent from every map). Per zone, and every "
           "transition: tables/intensity_*.</p>",
           _frame(interval[["year_from", "year_to", "change_px", "change_pct", "S_pct_per_yr", "U_pct_per_yr",
                            "pace"]]),
           _frame(category[cols])]
    transition = summaries.read_output_table(output, "intensity_transition", region_only)
    if transition is not None:
        out += ["<h4>Transition level: the largest gain and the largest loss of each interval</h4>",
                "<p>The class that gained most (ha/yr) and the classes its gain targets (takes at an "
                "intensity above W, its gain spread evenly over the other classes) or avoids (below W); "
                "the class that lost most and the classes its loss targets or avoids against V. "
                "Strongest first.</p>",
                _frame(_transition_summary(category, transition, "gain")),
                _frame(_transition_summary(category, transition, "loss"))]
    parts = summaries.read_output_table(output, "intensity_components", region_only)
    if parts is not None:
        total = parts[parts["class_code"] == ALL_CLASSES]
        out += ["<h4>Quantity, exchange and shift of each interval's change (Pontius &amp; Santacruz "
                "2014), ha</h4>",
                "<p>The difference between the two maps (D, half the classes' gains and losses) split "
                "into quantity (net change of the classes' sizes), exchange (pairs of pixels that swap "
                "classes) and shift (D − quantity − exchange). Per class: tables/intensity_components.</p>",
                _frame(total[["year_from", "year_to", "difference_ha", "quantity_ha", "exchange_ha",
                              "shift_ha"]])]
    return out


def _tradeoffs(output: Path, name: str = "service_tradeoffs", across: str = "zones") -> list[str]:
    """The last year's trade-offs and synergies between services across the zones
    (tables/service_tradeoffs: p < 0.05) or the analysis cells (``name="service_tradeoffs_cells"``,
    ``across="cells"``: ``|rho| >= RHO_MIN``, p not used)."""
    from ecodask.science.tradeoffs import EXACT_MAX, RHO_MIN

    t = summaries.read_output_table(output, name)
    if t is None or not len(t):
        return []
    last = t[(t["year"] == t["year"].max()) & (t["relation"] != "none")]
    where = "analysis cells" if across == "cells" else across
    if across == "cells":
        rule = (f"|rho| ≥ {RHO_MIN:g} (p not used: over so many cells every p is ~0, and neighbouring "
                "cells share their land cover, so they are not independent)")
    else:
        rule = (f"p &lt; 0.05 (exact up to {EXACT_MAX} zones, every pairing of the ranks enumerated; "
                "beyond, Student's t: column p_method)")
    head = (f"<h3>Trade-offs and synergies between services across the {where}, {int(t['year'].max())}</h3>"
            f"<p>Spearman's rho of the {where}' ESV densities, {rule}; every year and pair: "
            f"tables/{name}. Every service's density mixes the same land-cover shares, so part of "
            "a correlation comes from the ESV table's coefficients themselves.</p>")
    head += "".join(_run_figure(output, tradeoffs_figure(name)))
    if not len(last):
        what = "correlated that strongly" if across == "cells" else "significantly correlated"
        return [head, f"<p>No pair of services is {what} that year.</p>"]
    p = ["p_value", "p_method"] if across != "cells" else []
    columns = ["service_a", "service_b", "rho", *p, across, "relation"]
    return [head, _frame(last.sort_values("rho")[[c for c in columns if c in last.columns]])]


def _uncertainty(output: Path) -> list[str]:
    """The whole region's total ESV with its 5-95 % interval per year and of each change, with the
    probability that it fell (tables/esv_uncertainty, tables/esv_change_uncertainty)."""
    from ecodask.science.landuse import REGION_ID, TOTAL

    level = summaries.read_output_table(output, "esv_uncertainty")
    change = summaries.read_output_table(output, "esv_change_uncertainty")
    if level is None or change is None or not len(level):
        return []

    def region(t):
        return t[(t["zone_id"].astype(str) == REGION_ID) & (t["item"] == TOTAL)]

    def in_1e8(t, cols):
        return t.assign(**{c.replace("_cny", "_1e8cny"): t[c] * 1e-8 for c in cols}).drop(columns=cols)

    money = ["mean_cny", "p05_cny", "p95_cny"]
    lv = in_1e8(region(level)[["year", "esv_cny", *money]], ["esv_cny", *money])
    ch = in_1e8(region(change)[["year_from", "year_to", "change_cny", *money, "p_fell"]],
                ["change_cny", *money])
    adjusted = _area_adjusted(output)
    error = ("the land-cover error of the map's error matrix" if adjusted else
             "no land-cover error: the run names no error matrix (esv.uncertainty.error_matrix), so every "
             "pixel's class counts as right")
    return ["<h3>Uncertainty of the whole region's ESV (Monte Carlo), 10<sup>8</sup> CNY/yr</h3>",
            "<p>The run's ESV beside the mean and the 5 % and 95 % quantiles of the draws (coefficients "
            f"within their ranges and the alternative tables; {error}), and the probability that ESV "
            "fell. Per zone and service: tables/esv_uncertainty and tables/esv_change_uncertainty.</p>",
            *_draw_tables(output), _frame(lv, 3), _frame(ch, 3), *adjusted]


def _draw_tables(output: Path) -> list[str]:
    """One line: the ESV tables the draws took, each with its price basis and its number of draws
    (tables/esv_uncertainty_tables)."""
    t = summaries.read_output_table(output, "esv_uncertainty_tables")
    if t is None or not len(t):
        return []
    said = []
    for name, rows in t.groupby("table", sort=False):
        ea = rows["standard_equivalent_cny_per_ha"].dropna().unique()
        priced = ("its values" if not len(ea) else
                  f"{ea[0]:,.2f} CNY/ha/yr per equivalent" if len(ea) == 1 else
                  f"{ea.min():,.2f}–{ea.max():,.2f} CNY/ha/yr per equivalent by year")
        basis = rows["price_basis"].iloc[0]
        said.append(f"{name} ({priced}{', ' + basis if basis else ''}): {int(rows['draws'].iloc[0]):,} draws")
    return [f"<p>Tables the draws took: {html.escape('; '.join(said))}.</p>"]


def _area_adjusted(output: Path) -> list[str]:
    """The whole region's mapped and area-adjusted class areas of the last year, with the map's
    overall accuracy (tables/area_adjusted, tables/map_accuracy: Olofsson et al. 2014)."""
    from ecodask.science.landuse import REGION_ID

    adj = summaries.read_output_table(output, "area_adjusted")
    acc = summaries.read_output_table(output, "map_accuracy")
    if adj is None or not len(adj):
        return []
    last = adj[(adj["zone_id"].astype(str) == REGION_ID) & (adj["year"] == adj["year"].max())]
    cols = ["class_name", "mapped_ha", "adjusted_ha", "se_ha", "ci95_low_ha", "ci95_high_ha"]
    line = ""
    if acc is not None and len(acc):
        row = acc[acc["year"] == acc["year"].max()].iloc[0]
        line = (f" The map's overall accuracy: {row['overall_accuracy']:.3f} "
                f"(standard error {row['overall_se']:.3f}).")
    return [f"<h4>Area-adjusted class areas of the whole region, {int(adj['year'].max())}, ha</h4>",
            "<p>From the map's error matrix (Olofsson et al. 2014); the draws' land-cover error centres on "
            f"these. Per zone and year: tables/area_adjusted; accuracies: tables/map_accuracy.{line}</p>",
            _frame(last[cols], 1)]


def _restriction_lines(rules: pd.DataFrame | None, names: list[str]) -> list[str]:
    """One line per scenario of ``names``: the transitions it restricts and by what factor, from the
    run's tables/scenario_rules (none where the run wrote no such table)."""
    if rules is None:
        return []
    out = []
    for name in names:
        rows = rules[rules["scenario"] == name].sort_values("rule")
        said = "; ".join(f"out of {r.out_of} into {r.into or 'any other class'} × {r.factor:g}"
                         for r in rows.itertuples())
        out.append(f"<li>{html.escape(name.replace('_', ' '))}: "
                   f"{html.escape(said) if said else 'no restriction (the observed transitions)'}</li>")
    return ["<p>Transitions each scenario restricts (a factor scales their probabilities, what it takes "
            "stays in the class):</p><ul>", *out, "</ul>"]


def _scenarios(output: Path) -> list[str]:
    """The whole region's ESV and land use under each land-use scenario (tables/scenario_esv,
    tables/scenario_area, tables/scenario_rules, figures/scenarios.png)."""
    from ecodask.science.landuse import REGION_ID, TOTAL

    esv = summaries.read_output_table(output, "scenario_esv")
    area = summaries.read_output_table(output, "scenario_area")
    if esv is None or area is None or not len(esv):
        return []
    e = esv[(esv["zone_id"].astype(str) == REGION_ID) & (esv["item"] == TOTAL)]
    cols = ["scenario", "year", "esv_1e8cny", "change_1e8cny"]
    e = e.assign(esv_1e8cny=e["esv_cny"] * 1e-8, change_1e8cny=e["change_cny"] * 1e-8)
    vs = "vs_business_as_usual_cny" in e  # only where business as usual is one of the scenarios
    if vs:
        e = e.assign(vs_business_as_usual_1e8cny=e["vs_business_as_usual_cny"] * 1e-8)
        cols.append("vs_business_as_usual_1e8cny")
    a = area[(area["zone_id"].astype(str) == REGION_ID) & (area["year"] == area["year"].max())]
    wide = a.pivot_table(index="class_name", columns="scenario", values="area_ha", sort=False).reset_index()
    wide.columns.name = None
    base = f"{int(a['base_from'].iloc[0])}-{int(a['base_to'].iloc[0])}" if len(a) else ""
    names = list(dict.fromkeys(e["scenario"].astype(str)))
    return ["<h3>Land-use scenarios: the whole region's ESV, 10<sup>8</sup> CNY/yr</h3>",
            f"<p>The Markov projection of the {base} transitions zone by zone (the whole region: the sum "
            "of its zones), each scenario restricting some of them (docs/science.md); ESV at the last "
            "year's coefficients, its change from the last year"
            + (" and its difference from business as usual" if vs else "")
            + ". Per zone and service: tables/scenario_esv and tables/scenario_area.</p>",
            *_restriction_lines(summaries.read_output_table(output, "scenario_rules"), names),
            *_run_figure(output, SCENARIOS_FIGURE),
            _frame(e[cols], 3),
            f"<p>Class areas (ha) in {int(a['year'].max()) if len(a) else ''} by scenario:</p>",
            _frame(wide, 0)]


def _geodetector(output: Path) -> list[str]:
    """The last year's factor detector (q, its 95 % interval, p) and interaction detector (q of each
    pair's overlay, its type and the nested F test against the stronger factor), from
    tables/geodetector_factor and tables/geodetector_interaction. Columns a run of an older version
    did not write are left out."""
    factor = summaries.read_output_table(output, "geodetector_factor")
    if factor is None or not len(factor) or "year" not in factor:
        return []
    year = int(factor["year"].max())
    f = factor[factor["year"] == year].sort_values("q", ascending=False).rename(columns={"factor": "driver"})
    parts = [f"<h3>Geographical Detector, {year}: the factor detector</h3>",
             "<p>q (share of the variance of ESV density explained by a driver's strata), its two-sided "
             "95 % interval (q_low, q_high) and GD's one-sided p; q_low can be 0 with p &lt; 0.05 (see "
             "docs/science.md). Every year: tables/geodetector_factor.</p>",
             _frame(f[[c for c in ("driver", "q", "q_low", "q_high", "p") if c in f]], 4)]
    inter = summaries.read_output_table(output, "geodetector_interaction")
    if inter is None or "year" not in inter:
        return parts
    i = inter[inter["year"] == year]
    if not len(i):
        return parts
    i = i.assign(pair=i["factor_a"].astype(str) + " ∩ " + i["factor_b"].astype(str),
                 type=i["interaction"]).sort_values("q_ab", ascending=False)
    cols = [c for c in ("pair", "q_ab", "type", "stronger", "p_interaction") if c in i]
    parts += [f"<h3>Geographical Detector, {year}: the interaction detector</h3>",
              "<p>q of each pair's overlay and its type (GD's, from the q alone); p_interaction: the "
              "nested F test of whether the overlay explains more than the stronger driver alone (an "
              "enhancement with p_interaction ≥ 0.05 cannot be told apart from that driver alone). "
              "Every year, with the overlay's own test: tables/geodetector_interaction.</p>",
              _frame(i[cols], 4)]
    return parts


def _scale_effect(output: Path) -> list[str]:
    """The last year's q of each driver by analysis cell size, the sizes the two rules pick and the
    chart of that year, embedded (tables/geodetector_scale, tables/geodetector_scale_summary,
    figures/geodetector_scale_<year>.png)."""
    rows = summaries.read_output_table(output, "geodetector_scale")
    summary = summaries.read_output_table(output, "geodetector_scale_summary")
    if rows is None or summary is None or not len(rows):
        return []
    year = int(rows["year"].max())
    last = rows[rows["year"] == year]
    q = last.pivot(index="factor", columns="size_m", values="q").sort_index()
    p = last.pivot(index="factor", columns="size_m", values="p").reindex_like(q)
    # a q with p >= 0.05 (not significant: a hollow marker in the chart) in parentheses
    table = pd.DataFrame({f"q at {c:g} m": ["–" if v != v else f"{v:,.3f}" if pv < 0.05 else f"({v:,.3f})"
                                            for v, pv in zip(q[c], p[c], strict=True)] for c in q.columns},
                         index=q.index)
    if "levels_off" in last:  # each driver's own size where its significant q levels off
        own = last[last["levels_off"].astype(bool)].set_index("factor")["size_m"]
        table["q levels off at"] = [f"{own[n]:g} m" if n in own.index else "–" for n in table.index]
    s = summary[summary["year"] == year]
    best = s.loc[s["best_q90"], "size_m"].tolist()
    flat = s.loc[s["levels_off"], "size_m"].tolist()

    def said(v: list) -> str:
        return f"{v[0]:g} m" if v else "none (no significant q)"

    return [f"<h3>The scale effect of q, {year}</h3>",
            "<p>The factor detector on cells of several sizes, aggregated from the one pass's analysis "
            f"grid. Highest 90 % quantile of the significant q (GD's sesu): {said(best)}; where the "
            f"mean significant q levels off (grows by 5 % or less): {said(flat)}; each driver's own "
            "such size in the last column. A q in parentheses, "
            "and a hollow marker in the chart, is not significant (p ≥ 0.05); filled markers are "
            "p &lt; 0.05. Every year, with p and the 95 % interval of q: tables/geodetector_scale.</p>",
            _frame(table.reset_index(), 3), *_run_figure(output, scale_figure(year))]


def _per_capita(output: Path) -> list[str]:
    """The whole region's ESV per capita and per unit GDP by year and source (tables/esv_per_capita);
    population and GDP as whole numbers."""
    from ecodask.science.landuse import REGION_ID

    t = summaries.read_output_table(output, "esv_per_capita")
    if t is None or not len(t):
        return []
    region = t[t["zone_id"].astype(str) == REGION_ID]
    shown = region[["year", "source", "population", "esv_per_capita_cny", "gdp_cny", "esv_per_gdp"]]
    shown = shown.assign(**{c: shown[c].map(lambda v: "–" if pd.isna(v) else f"{v:,.0f}")
                            for c in ("population", "gdp_cny")})
    parts = ["<h3>ESV per capita and per unit GDP, the whole region</h3>",
             "<p>ESV (CNY/yr) over the population (persons) and over the GDP (CNY/yr), from each source "
             "the run has: the county statistics, and drivers that are densities. Per zone: "
             "tables/esv_per_capita.</p>"]
    if region["source"].astype(str).str.startswith("driver:").any():
        parts.append("<p>A driver's population or GDP is one raster, applied to every year: its rows "
                     "change only with ESV, so their trend is the ESV's, not a per-capita trend.</p>")
    return [*parts, _frame(shown, 4)]


def _status(stage: str, record: dict, config: dict) -> str:
    """A stage's line in the timings: ran, skipped (finished earlier) or not applicable and why."""
    if stage == "compensation" and not _compensated(config):
        return "not computed: no county_stats (or compensation.enabled false)"
    return "ran" if record.get("stage_ran", {}).get(stage, True) else "skipped: finished earlier, same inputs"


def _outputs(output: Path) -> Iterable[str]:
    for path in sorted(output.rglob("*")):
        rel = path.relative_to(output)
        hidden = rel.parts[0] in (STORE, STATE_DIR, STAGES) or path.name.startswith(".") or rel.name == REPORT
        if path.is_file() and not hidden:
            yield rel.as_posix()


def render(output: str | Path, shown_as: Path | None = None) -> str:
    """The report of the finished run in ``output`` as an HTML string (naming its folder
    ``shown_as``, where it is read once published, if not ``output``), each figure's data marked by
    its path (:data:`_DATA`) for :func:`write_report` to fill in."""
    output = Path(output)
    folder = RunFolder(output)
    if not folder.run_record.is_file():
        raise InputError([problem(folder.run_record, "", None,
                                  "missing: not a finished run's output folder")])
    record = folder.record() or {}
    config = record.get("config", {})
    name = str(config.get("name", output.name))
    years = sorted(int(y) for y in config.get("landcover", {}).get("years", {}))
    md = MarkdownIt("commonmark").enable("table")
    key_md = summaries.key_figures_markdown(output, name, record.get("stage_ran"),
                                            record.get("stage_seconds"))
    key_md = key_md.split("\n", 1)[1] if key_md.startswith("## ") else key_md  # the page has its title
    figures = figure_files(output)
    key = _key_figures(figures, years)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>ecodask report: {html.escape(name)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{_title(config)}: {html.escape(name)}</h1>",
        f"<p>Years {', '.join(map(str, years))} · ESV table "
        f"{html.escape(str(config.get('esv', {}).get('table')))}"
        f" · run finished {html.escape(str(record.get('finished', '')))} · ecodask "
        f"{html.escape(str(record.get('ecodask_version', '')))}</p>",
        f"<p>Output folder {html.escape(str((shown_as or output).resolve()))}</p></header>",
        '<nav><a href="#key">Key figures</a><a href="#maps">Maps and charts</a><a href="#tables">Tables</a>'
        '<a href="#conventions">Conventions</a><a href="#run">Run</a><a href="#all">All figures</a></nav>',
        "<main>",
        f'<section id="key"><h2>Key figures</h2>{_cards(output, record)}',
        '<div class="figs">' + "".join(_img(p, _caption(p)) for p in key[:4]) + "</div>",
        md.render(key_md), "</section>",
        '<section id="maps"><h2>Maps and charts</h2><div class="figs">'
        + "".join(_img(p, _caption(p)) for p in key[4:]) + "</div></section>",
        '<section id="tables"><h2>Tables</h2>',
    ]
    partial = summaries.partial_zones(output)
    if partial is not None and len(partial):
        shown = partial.assign(coverage_pct=(partial["coverage"] * 100).round(1))
        parts += ["<h3>Zones the land cover covers only in part (lowest year)</h3>",
                  "<p>Their areas, ESV and changes count the part with data only; see "
                  "figures/coverage.png and tables/coverage.</p>",
                  _frame(shown[["zone_id", "zone_name", "coverage_pct", "year", "data_area_ha"]])]
    region = _region_esv(output)
    if region is not None:
        parts += ["<h3>ESV of the whole region by service, 10^8 CNY/yr</h3>", _frame(region)]
    rows = summaries.county_esv_rows(output)
    if rows:
        parts += ["<h3>Total ESV per county, 10^8 CNY/yr</h3>", _frame(pd.DataFrame(rows))]
    parts += _intensity(output)
    parts += _tradeoffs(output)
    parts += _tradeoffs(output, "service_tradeoffs_cells", "cells")
    parts += _per_capita(output)
    parts += _uncertainty(output)
    parts += _scenarios(output)
    parts += _geodetector(output)
    parts += _scale_effect(output)
    totals = summaries.read_output_table(output, "compensation_totals")
    if totals is not None and len(totals):
        cols = ["variant", "year", "role", "direction", "counties", "amount_1e8cny", "sign_mismatches"]
        parts += ["<h3>Compensation per role, 10^8 CNY/yr</h3>",
                  _frame(totals[[c for c in cols if c in totals]])]
    parts.append("</section>")
    parts += ['<section id="conventions"><h2>Conventions</h2><ul>',
              *[f"<li>{html.escape(c)}</li>" for c in conventions(config, record.get("tables"))],
              "</ul></section>"]
    shown = {p for p in figures if f"{_DATA}{p}{_DATA}" in "".join(parts)}  # in a section above
    timing = pd.DataFrame([{"stage": s, "seconds": v, "status": _status(s, record, config)}
                           for s, v in record.get("stage_seconds", {}).items()])
    versions = pd.DataFrame(list(record.get("versions", {}).items()), columns=["package", "version"])
    inputs = pd.DataFrame([{"input": k, "path": v.get("path"), "checksum": str(v.get("checksum", ""))[:24]}
                           for k, v in record.get("inputs", {}).items()])
    parts += ['<section id="run"><h2>Run</h2>',
              f"<p>Started {html.escape(str(record.get('started')))}, finished "
              f"{html.escape(str(record.get('finished')))}; configuration file "
              f"{html.escape(str(record.get('config_file')))}.</p>",
              "<h3>Stage timings, s</h3>", _frame(timing, 1) if len(timing) else "<p>–</p>",
              "<h3>Inputs</h3>", _frame(inputs) if len(inputs) else "<p>–</p>",
              "<h3>Versions</h3>", _frame(versions),
              "<details><summary>Run configuration (YAML)</summary><pre>"
              + html.escape(yaml.safe_dump(config, sort_keys=False, allow_unicode=True)) + "</pre></details>",
              "<details><summary>Output files</summary><pre>" + html.escape("\n".join(_outputs(output)))
              + "</pre></details></section>",
              '<section id="all"><h2>All figures</h2><div class="figs">'
              + "".join(_img(p, _caption(p)) for p in figures if p not in key and p not in shown)
              + "</div></section>",
              "</main><footer style='padding:0 32px 24px;font-size:12px;color:#52606d'>Written by ecodask "
              f"{html.escape(str(record.get('ecodask_version', '')))} from the run's files.</footer>"
              "</body></html>"]
    return "\n".join(parts) + "\n"


def write_report(output: str | Path, shown_as: Path | None = None) -> Path:
    """Write ``<output>/report.html`` atomically from the finished run in ``output``; return it."""
    output = Path(output)
    text = render(output, shown_as)
    return write_atomic(output / REPORT, lambda tmp: _write_with_figures(text, tmp))


def published_report(output: str | Path, remote_output: str | None = None) -> str:
    """Where a reader finds the report of the run in ``output``: the local path, or its URL."""
    if remote_output is None:
        return str((Path(output) / REPORT).resolve())
    from ecodask.io import objstore

    return objstore.join(remote_output, REPORT)


def write_run_report(output: str | Path, remote_output: str | None = None,
                     shown_as: Path | None = None) -> str:
    """Write the report of the run in ``output`` (naming its folder ``shown_as`` if not
    ``output``); with a remote output upload it beside the other outputs. Returns where a reader
    finds it (:func:`published_report`, of ``shown_as`` or ``output``)."""
    path = write_report(output, shown_as)
    if remote_output is not None:
        from ecodask.io import objstore

        objstore.put_file(path, objstore.join(remote_output, REPORT))
    return published_report(shown_as or output, remote_output)
