"""Charts of a run (PNG, matplotlib without pyplot: no global state, no display).

- :func:`q_bar_chart`: the factor detector's q per factor, highest first, significant ones marked;
- :func:`interaction_heatmap`: q of every pair's overlay (the diagonal holds each factor's own q),
  with the interaction type abbreviated in each cell;
- :func:`esv_stacked_bars`: ESV per year stacked by service (10^8 CNY/yr);
- :func:`land_use_flows`: land-use transitions between consecutive years as a Sankey (alluvial)
  diagram, band width proportional to area (km²);
- :func:`compensation_maps`: choropleths of compensation amount and priority level per role;
- :func:`coverage_map`: each zone's land-cover coverage (its lowest year), partial zones outlined;
- :func:`scenario_lines`: the observed ESV and each land-use scenario's projected ESV over the years;
- :func:`scale_chart`: each driver's q by analysis cell size (the scale effect of q);
- :func:`tradeoff_heatmap`: Spearman's rho between services, significant pairs marked.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, PathPatch
from matplotlib.path import Path as MplPath

from ecodask.present.maps import GridFrame, decorate, save

#: Abbreviations of the five interaction types written in the heat map's cells.
INTERACTION_ABBREVIATIONS = {
    "nonlinear weakening": "NW",
    "univariate nonlinear weakening": "UW",
    "bivariate enhancement": "BE",
    "independent": "IN",
    "nonlinear enhancement": "NE",
}


def q_bar_chart(factor: pd.DataFrame, path: str | Path, title: str = "Factor detector", y: str = "y") -> Path:
    """Horizontal bars of q (0..1) per factor from a ``geodetector_factor`` table; a bar is dark
    when p < alpha; ``y`` names what q explains."""
    t = factor.sort_values("q")
    alpha = float(t["alpha"].iloc[0]) if "alpha" in t else 0.05
    fig = Figure(figsize=(6, 0.45 * len(t) + 1.2))
    ax = fig.add_subplot()
    colours = ["#1f4e79" if p < alpha else "#9dc3e6" for p in t["p"]]
    ax.barh(t["factor"].astype(str), t["q"], color=colours)
    for i, q in enumerate(t["q"]):
        ax.text(q, i, f" {q:.3f}", va="center", fontsize=8)
    ax.set_xlim(0, min(1.0, max(0.05, float(t["q"].max()) * 1.2)))
    ax.set_xlabel(f"q (share of the variance of {y} explained)")
    ax.set_title(f"{title} (dark: p < {alpha:g})")
    return save(fig, Path(path))


def interaction_heatmap(interaction: pd.DataFrame, factor: pd.DataFrame, path: str | Path,
                        title: str = "Interaction detector") -> Path:
    """A factor × factor heat map of q: each pair's overlay q off the diagonal (with its interaction
    type abbreviated: :data:`INTERACTION_ABBREVIATIONS`), each factor's q on it."""
    names = list(factor["factor"].astype(str))
    pos = {n: i for i, n in enumerate(names)}
    m = np.full((len(names), len(names)), np.nan)
    kinds = np.full(m.shape, "", dtype=object)
    for n, q in zip(names, factor["q"], strict=True):
        m[pos[n], pos[n]] = q
    for r in interaction.itertuples():
        i, j = pos[str(r.factor_a)], pos[str(r.factor_b)]
        m[i, j] = m[j, i] = r.q_ab
        kinds[i, j] = kinds[j, i] = INTERACTION_ABBREVIATIONS.get(r.interaction, "")
    size = 0.7 * len(names) + 2.0
    fig = Figure(figsize=(size + 1.2, size))
    ax = fig.add_subplot()
    im = ax.imshow(np.ma.masked_invalid(m), cmap="viridis", vmin=0.0, vmax=max(1e-9, float(np.nanmax(m))))
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    if len(names) <= 12:
        for i in range(len(names)):
            for j in range(len(names)):
                if np.isfinite(m[i, j]):
                    text = f"{m[i, j]:.2f}" + (f"\n{kinds[i, j]}" if kinds[i, j] else "")
                    ax.text(j, i, text, ha="center", va="center", fontsize=7,
                            color="white" if m[i, j] < 0.6 * np.nanmax(m) else "black")
    fig.colorbar(im, ax=ax, label="q")
    legend = textwrap.fill(", ".join(f"{v} {k}" for k, v in INTERACTION_ABBREVIATIONS.items()), 60)
    ax.set_title(f"{title}\n{legend}", fontsize=8)
    return save(fig, Path(path))


def compensation_maps(geo, folder: str | Path) -> dict[str, Path]:
    """One PNG per variant and role for the last year of a compensation table with county geometry:
    the amount (10^8 CNY/yr) and the priority level (1 = most urgent) side by side, the other
    counties in grey; north arrow, scale bar and CRS on each map."""
    folder = Path(folder)
    paths = {}
    year = int(geo["year"].max())
    last = geo[geo["year"] == year]
    frame = GridFrame.around(geo.total_bounds, geo.crs)
    for variant, v in last.groupby("variant", sort=True):
        for role, r in v.groupby("role", sort=True):
            fig = Figure(figsize=(11, 5))
            panels = (("amount_1e8cny", "amount, 10^8 CNY/yr", "YlOrRd"),
                      ("level", "priority level (1 most urgent)", "viridis_r"))
            for i, (column, label, cmap) in enumerate(panels):
                ax = fig.add_subplot(1, 2, i + 1)
                v.plot(ax=ax, color="#dddddd", edgecolor="white", linewidth=0.3)
                legend = ({"title": "level", "loc": "upper left", "bbox_to_anchor": (1.0, 1.0)}
                          if column == "level" else {"label": label, "shrink": 0.7})
                r.plot(ax=ax, column=column, cmap=cmap, legend=True, edgecolor="white", linewidth=0.3,
                       categorical=column == "level", legend_kwds=legend)
                decorate(ax, frame)
                ax.set_title(label, fontsize=9)
            direction = str(r["direction"].iloc[0])
            fig.suptitle(f"Compensation {year}, {variant.replace('_', ' ')}: {role.replace('_', ' ')} "
                         f"({direction})", fontsize=10)
            path = folder / f"compensation_{variant}_{role}.png"
            paths[path.name] = save(fig, path)
    return paths


def coverage_map(geo, path: str | Path, min_coverage: float, title: str) -> Path:
    """A choropleth of each zone's coverage (``coverage``, 0..1: its lowest year's share of pixels
    with land cover), zones under ``min_coverage`` outlined in red and labelled with the share;
    north arrow, scale bar and CRS."""
    fig = Figure(figsize=(7.5, 6))
    ax = fig.add_subplot(1, 1, 1)
    pct = geo.assign(coverage_pct=geo["coverage"] * 100.0)
    pct.plot(ax=ax, column="coverage_pct", cmap="Greens", vmin=0.0, vmax=100.0, edgecolor="white",
             linewidth=0.4, legend=True, legend_kwds={"label": "land cover on the zone, % of its pixels",
                                                      "shrink": 0.7})
    partial = pct[pct["coverage"] < min_coverage]
    if len(partial):
        partial.boundary.plot(ax=ax, color="#c0392b", linewidth=1.2)
        for _, row in partial.iterrows():
            p = row.geometry.representative_point()
            ax.annotate(f"{row['zone_name']}\n{row['coverage_pct']:.1f} %", (p.x, p.y), fontsize=7,
                        ha="center", color="#7b241c")
    decorate(ax, GridFrame.around(geo.total_bounds, geo.crs))
    ax.set_title(f"{title}\n(red: under {min_coverage * 100:g} %, figures there miss part of the zone)",
                 fontsize=9)
    return save(fig, path)


#: Colours of the service groups' bars (methods.md section 3), shades within a group.
GROUP_COLOURS = {"provisioning": ("#8c510a", "#bf812d", "#dfc27d", "#f6e8c3"),
                 "regulating": ("#01665e", "#35978f", "#80cdc1", "#c7eae5"),
                 "supporting": ("#542788", "#8073ac", "#b2abd2", "#d8daeb"),
                 "cultural": ("#b2182b", "#d6604d", "#f4a582", "#fddbc7")}


def esv_stacked_bars(esv: pd.DataFrame, path: str | Path, title: str = "ESV by service") -> Path:
    """Bars of the region's ESV per year (10^8 CNY/yr), stacked by service, coloured by service group
    (one legend entry per service). ``esv``: rows of an ``esv_by_service`` table with ``level ==
    'service'`` for one zone (columns ``year``, ``item``, ``group``, ``esv_1e8cny``)."""
    t = esv[esv["level"] == "service"]
    wide = t.pivot_table(index="year", columns="item", values="esv_1e8cny", sort=False, aggfunc="sum")
    groups = t.drop_duplicates("item").set_index("item")["group"]
    rank = {g: k for k, g in enumerate(GROUP_COLOURS)}
    order = sorted(wide.columns, key=lambda i: (rank.get(groups[i], 99), list(wide.columns).index(i)))
    used: dict[str, int] = {}
    fig = Figure(figsize=(8, 5))
    ax = fig.add_subplot()
    bottom = np.zeros(len(wide))
    labels = [str(y) for y in wide.index]
    for item in order:
        shades = GROUP_COLOURS.get(groups[item], ("#777777", "#999999", "#bbbbbb", "#dddddd"))
        colour = shades[used.get(groups[item], 0) % len(shades)]
        used[groups[item]] = used.get(groups[item], 0) + 1
        values = wide[item].to_numpy(float)
        ax.bar(labels, values, bottom=bottom, color=colour, edgecolor="white", linewidth=0.4,
               label=f"{item.replace('_', ' ')} ({groups[item]})")
        bottom += values
    for i, total in enumerate(bottom):
        ax.text(i, total, f"{total:.3f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("ESV, 10^8 CNY/yr")
    ax.set_xlabel("year")
    ax.set_ylim(0, float(bottom.max()) * 1.1 if bottom.size and bottom.max() > 0 else 1.0)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False, title="service",
              title_fontsize=8)
    ax.set_title(title, fontsize=10)
    return save(fig, Path(path))


def scenario_lines(observed: pd.DataFrame, scenarios: pd.DataFrame, path: str | Path,
                   title: str = "ESV under land-use scenarios") -> Path:
    """Lines of total ESV (10^8 CNY/yr): ``observed`` (columns ``year``, ``esv_1e8cny``) and, from the
    base year, each scenario's projection (columns ``scenario``, ``year``, ``esv_cny``, ``change_cny``:
    the rows of one zone's ``scenario_esv`` with item ``total``)."""
    fig = Figure(figsize=(8, 5))
    ax = fig.add_subplot()
    obs = observed.sort_values("year")
    ax.plot(obs["year"], obs["esv_1e8cny"], color="black", marker="o", linewidth=2, label="observed")
    colours = ["#777777", "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02"]
    for k, (name, rows) in enumerate(scenarios.groupby("scenario", sort=False)):
        rows = rows.sort_values("year")
        first = rows.iloc[0]
        base = (first["esv_cny"] - first["change_cny"]) * 1e-8
        base_year = int(obs["year"].max())
        years = [base_year, *rows["year"].astype(int)]
        values = [base, *(rows["esv_cny"] * 1e-8)]
        ax.plot(years, values, color=colours[k % len(colours)], marker="s", linestyle="--",
                label=name.replace("_", " "))
    ax.set_xlabel("year")
    ax.set_ylabel("ESV, 10^8 CNY/yr")
    ax.legend(fontsize=8, frameon=False)
    ax.set_title(title, fontsize=10)
    return save(fig, Path(path))


def scale_chart(rows: pd.DataFrame, path: str | Path,
                title: str = "q by analysis cell size") -> dict[str, Path]:
    """Lines of each driver's q by cell size (m, rows of ``geodetector_scale`` for one year); filled
    markers where the factor detector's p < 0.05, hollow where p >= 0.05 (not significant), both
    explained in the legend. Returns ``{file name: path}``, as :func:`detector_charts` does."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    for name, g in rows.groupby("factor", sort=True):
        g = g.sort_values("size_m")
        line = ax.plot(g["size_m"], g["q"], marker=None, linewidth=1.2, label=str(name))[0]
        sig = g["p"] < 0.05
        ax.scatter(g["size_m"][sig], g["q"][sig], color=line.get_color(), s=28, zorder=3)
        ax.scatter(g["size_m"][~sig], g["q"][~sig], facecolors="none", edgecolors=line.get_color(), s=28,
                   zorder=3)
    sizes = sorted(rows["size_m"].unique())
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [f"{s:g}" for s in sizes])
    ax.minorticks_off()
    ax.set_xlabel("analysis cell size, m")
    ax.set_ylabel("q")
    handles, _ = ax.get_legend_handles_labels()
    handles += [Line2D([], [], linestyle="none", marker="o", color="0.3", label="p < 0.05"),
                Line2D([], [], linestyle="none", marker="o", markerfacecolor="none", color="0.3",
                       label="p ≥ 0.05 (not significant)")]
    ax.legend(handles=handles, fontsize=8, frameon=False)
    ax.set_title(title, fontsize=10)
    out = save(fig, Path(path))
    return {out.name: out}


def tradeoff_heatmap(rows: pd.DataFrame, path: str | Path,
                     title: str = "Trade-offs and synergies between services", across: str = "zones",
                     marked: str = "p < 0.05") -> Path:
    """A service x service heat map of Spearman's rho (diverging, -1 to 1) from the rows of
    ``service_tradeoffs`` (or ``service_tradeoffs_cells``: ``across="analysis cells"``) for one year;
    a dot marks the pairs whose ``relation`` is not ``none`` (``marked`` says the rule in the title)."""
    names = list(dict.fromkeys([*rows["service_a"], *rows["service_b"]]))
    pos = {n: i for i, n in enumerate(names)}
    m = np.full((len(names), len(names)), np.nan)
    np.fill_diagonal(m, 1.0)
    sig = np.zeros(m.shape, dtype=bool)
    for r in rows.itertuples():
        i, j = pos[r.service_a], pos[r.service_b]
        m[i, j] = m[j, i] = r.rho
        sig[i, j] = sig[j, i] = r.relation != "none"
    size = 0.45 * len(names) + 2.5
    fig = Figure(figsize=(size + 1.5, size))
    ax = fig.add_subplot()
    im = ax.imshow(np.ma.masked_invalid(m), cmap="RdBu", vmin=-1.0, vmax=1.0)
    labels = [n.replace("_", " ") for n in names]
    ax.set_xticks(range(len(names)), labels, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(names)), labels, fontsize=7)
    ii, jj = np.nonzero(sig)
    ax.scatter(jj, ii, s=10, color="black")
    fig.colorbar(im, ax=ax, label=f"Spearman's rho (across the {across})")
    ax.set_title(f"{title}\n(dots: {marked}; blue synergy, red trade-off)", fontsize=9)
    return save(fig, Path(path))


def _band(x0: float, x1: float, a0: float, a1: float, b0: float, b1: float) -> MplPath:
    """A band from [a0, a1] at x0 to [b0, b1] at x1 with cubic Bézier edges."""
    xm = (x0 + x1) / 2
    verts = [(x0, a0), (xm, a0), (xm, b0), (x1, b0), (x1, b1), (xm, b1), (xm, a1), (x0, a1), (x0, a0)]
    codes = [MplPath.MOVETO, MplPath.CURVE4, MplPath.CURVE4, MplPath.CURVE4, MplPath.LINETO,
             MplPath.CURVE4, MplPath.CURVE4, MplPath.CURVE4, MplPath.CLOSEPOLY]
    return MplPath(verts, codes)


def land_use_flows(transitions: pd.DataFrame, classes: list[tuple[int, str, str]], path: str | Path,
                   title: str = "Land-use transitions") -> Path:
    """A Sankey (alluvial) diagram of land-use transitions: one column of class bars per year (height
    = area, km²), bands between consecutive years from each class to each class (width = area that
    changed from one to the other; staying areas drawn paler). ``transitions``: rows of a
    ``transitions`` table for one zone (``year_from``, ``year_to``, ``class_from``, ``class_to``,
    ``area_ha``); ``classes``: ``(code, name, colour)``. The legend names the classes drawn."""
    t = transitions[transitions["area_ha"] > 0]
    years = sorted({int(y) for y in t["year_from"]} | {int(y) for y in t["year_to"]})
    pairs = list(zip(years[:-1], years[1:], strict=True))  # consecutive years (the table may add others)
    colour = {c: col for c, _, col in classes}
    name = {c: n for c, n, _ in classes}
    codes = [c for c, _, _ in classes if c in set(t["class_from"]) | set(t["class_to"])]
    fig = Figure(figsize=(max(7.0, 2.6 * len(years) + 2.5), 6))
    ax = fig.add_subplot()
    total = float(t[t["year_from"] == pairs[0][0]]["area_ha"].sum()) / 100 if pairs else 1.0
    gap = 0.015 * total
    bar_w = 0.06

    def stack(areas: dict[int, float]) -> dict[int, float]:
        tops, y = {}, 0.0
        for c in codes:
            tops[c] = y
            y += areas.get(c, 0.0) + (gap if areas.get(c, 0.0) > 0 else 0.0)
        return tops

    for k, (y0, y1) in enumerate(pairs):
        p = t[(t["year_from"] == y0) & (t["year_to"] == y1)]
        m = p.groupby(["class_from", "class_to"])["area_ha"].sum() / 100.0  # km²
        out_area = m.groupby(level=0).sum().to_dict()
        in_area = m.groupby(level=1).sum().to_dict()
        left, right = stack(out_area), stack(in_area)
        x0, x1 = k + bar_w / 2, k + 1 - bar_w / 2
        lo = dict(left)
        ri = dict(right)
        for a in codes:
            for b in codes:
                v = float(m.get((a, b), 0.0))
                if v <= 0:
                    continue
                band = _band(x0, x1, lo[a], lo[a] + v, ri[b], ri[b] + v)
                ax.add_patch(PathPatch(band, facecolor=colour[a], edgecolor="none",
                                       alpha=0.25 if a == b else 0.75, zorder=1))
                lo[a] += v
                ri[b] += v
        for x, areas, tops in ((k, out_area, left), (k + 1, in_area, right)):
            for c in codes:
                if areas.get(c, 0.0) > 0:
                    ax.bar(x, areas[c], bottom=tops[c], width=bar_w, color=colour[c], edgecolor="#333333",
                           linewidth=0.4, zorder=2)
    ax.set_xticks(range(len(years)), [str(y) for y in years])
    ax.set_xlim(-0.3, len(years) - 0.7)
    ax.invert_yaxis()
    # No area axis: the stacked classes are drawn with gaps between them, which an axis would read
    # as area. A scale bar gives the band heights instead.
    ax.set_yticks([])
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    unit = 10 ** math.floor(math.log10(max(total * 0.2, 1e-9)))
    ax.plot([-0.27, -0.27], [0.0, unit], color="#333333", linewidth=2.0, clip_on=False)
    ax.text(-0.25, unit / 2, f" {unit:g} km²", va="center", fontsize=8)
    ax.set_ylabel(f"classes stacked, {total:,.0f} km² with data in all (bar: {unit:g} km²)")
    handles = [Patch(facecolor=colour[c], edgecolor="#333333", linewidth=0.4, label=name[c]) for c in codes]
    ax.legend(handles=handles, title="class", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              title_fontsize=8, frameon=False)
    ax.set_title(f"{title} (band width: area changed; pale: unchanged)", fontsize=10)
    return save(fig, Path(path))


def detector_charts(results: dict[str, pd.DataFrame], folder: Path, suffix: str = "",
                    y: str = "y") -> dict[str, Path]:
    """The q bar chart and the interaction heat map of one set of detector results (``y``: what
    the detector explains, for the labels)."""
    label = f", {suffix.strip('_')}" if suffix else ""
    q_png = folder / f"geodetector_q{suffix}.png"
    paths = {q_png.name: q_bar_chart(results["factor"], q_png, title=f"Factor detector{label}: {y}", y=y)}
    if len(results["interaction"]):
        paths[f"geodetector_interaction{suffix}.png"] = interaction_heatmap(
            results["interaction"], results["factor"], folder / f"geodetector_interaction{suffix}.png",
            title=f"Interaction detector{label}")
    return paths
