"""Charts of the driver analysis (PNG, matplotlib without pyplot: no global state, no display).

- :func:`q_bar_chart`: the factor detector's q per factor, highest first, significant ones marked;
- :func:`interaction_heatmap`: q of every pair's overlay (the diagonal holds each factor's own q),
  with the interaction type abbreviated in each cell.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

#: Abbreviations of the five interaction types written in the heat map's cells.
INTERACTION_ABBREVIATIONS = {
    "nonlinear weakening": "NW",
    "univariate nonlinear weakening": "UW",
    "bivariate enhancement": "BE",
    "independent": "IN",
    "nonlinear enhancement": "NE",
}


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        fig.savefig(tmp, dpi=150, bbox_inches="tight", format="png")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def q_bar_chart(factor: pd.DataFrame, path: str | Path, title: str = "Factor detector") -> Path:
    """Horizontal bars of q (0..1) per factor from a ``geodetector_factor`` table; a bar is dark
    when p < alpha."""
    t = factor.sort_values("q")
    alpha = float(t["alpha"].iloc[0]) if "alpha" in t else 0.05
    fig = Figure(figsize=(6, 0.45 * len(t) + 1.2))
    ax = fig.add_subplot()
    colours = ["#1f4e79" if p < alpha else "#9dc3e6" for p in t["p"]]
    ax.barh(t["factor"].astype(str), t["q"], color=colours)
    for i, q in enumerate(t["q"]):
        ax.text(q, i, f" {q:.3f}", va="center", fontsize=8)
    ax.set_xlim(0, min(1.0, max(0.05, float(t["q"].max()) * 1.2)))
    ax.set_xlabel("q (share of the variance of y explained)")
    ax.set_title(f"{title} (dark: p < {alpha:g})")
    return _save(fig, Path(path))


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
    return _save(fig, Path(path))


def compensation_maps(geo, folder: str | Path) -> dict[str, Path]:
    """One PNG per variant and role for the last year of a compensation table with county geometry:
    the amount (10^8 CNY/yr) and the priority level (1 = most urgent) side by side, the other
    counties in grey."""
    folder = Path(folder)
    paths = {}
    year = int(geo["year"].max())
    last = geo[geo["year"] == year]
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
                ax.set_axis_off()
                ax.set_title(label, fontsize=9)
            direction = str(r["direction"].iloc[0])
            fig.suptitle(f"Compensation {year}, {variant.replace('_', ' ')}: {role.replace('_', ' ')} "
                         f"({direction})", fontsize=10)
            path = folder / f"compensation_{variant}_{role}.png"
            paths[path.name] = _save(fig, path)
    return paths
