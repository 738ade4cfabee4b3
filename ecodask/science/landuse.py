"""Land use: class areas per zone and year (methods.md section 1; transitions follow in section 4).

Areas are pixel counts on the equal-area grid times the pixel area (0.09 ha at 30 m).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from ecodask.errors import InputError, problem
from ecodask.science.catalogs import ClassScheme

#: Zone id used for whole-region rows.
REGION_ID = "ALL"
#: The item (and level) of the sum over services in the ESV tables.
TOTAL = "total"


def check_codes(
    counts: np.ndarray, years: list[int], scheme: ClassScheme, sources: Mapping[int, object]
) -> None:
    """Raise :class:`InputError` for any code inside the zones that the scheme does not know.

    ``counts`` as from :func:`zone_class_pixel_counts`; see :func:`check_unknown`.
    """
    unknown = counts[:, 1:, :].sum(axis=1)  # pixels inside any zone, per code
    unknown[:, sorted(scheme.classes)] = 0
    unknown[:, scheme.nodata] = 0
    check_unknown(unknown, years, scheme, sources)


def class_area_table(
    counts: np.ndarray,
    years: list[int],
    zones: pd.DataFrame,
    scheme: ClassScheme,
    pixel_area_ha: float,
) -> pd.DataFrame:
    """Class areas per zone and year from raw-code counts (year, zone 0..n, 256): see
    :func:`class_area_from_pixels`."""
    codes = sorted(scheme.classes)
    names = [scheme.classes[c].name for c in codes]
    order = zones.sort_values("zone")["zone"].to_numpy()
    return class_area_from_pixels(counts[:, order, :][:, :, codes], years, zones, codes, names, pixel_area_ha)


def class_area_from_pixels(
    pixels: np.ndarray,
    years: list[int],
    zones: pd.DataFrame,
    codes: list[int],
    names: list[str],
    pixel_area_ha: float,
) -> pd.DataFrame:
    """Class areas per zone and year, and for the whole region (zone_id ``ALL``).

    ``pixels``: (year, zone in zone-index order, class) counts of the classes ``codes``.
    Columns: zone_id, zone_name, year, class_code, class_name, pixels, area_ha (pixels x pixel
    area, ha), share (of the zone's classified area, 0..1). Every class appears for every zone and
    year (zero where absent); no-data pixels are not counted.
    """
    ids, znames = zone_labels(zones)
    allz = with_region(pixels, axis=1)
    ny, nz, nc = allz.shape
    flat = allz.reshape(-1)
    tot = allz.sum(axis=2, keepdims=True)
    share = np.divide(allz, tot, out=np.zeros(allz.shape), where=tot > 0).reshape(-1)
    return pd.DataFrame(
        {
            "zone_id": repeat_text(tile_text(ids, ny), nc),
            "zone_name": repeat_text(tile_text(znames, ny), nc),
            "year": np.repeat(np.asarray(years, dtype=np.int64), nz * nc),
            "class_code": np.tile(codes, ny * nz).astype(np.int64),
            "class_name": tile_text(text(names), ny * nz),
            "pixels": flat.astype(np.int64),
            "area_ha": flat * pixel_area_ha,
            "share": share,
        }
    )


def coverage_table(data_pixels: np.ndarray, zone_pixels: np.ndarray, years: list[int],
                   zones: pd.DataFrame, pixel_area_ha: float, min_coverage: float) -> pd.DataFrame:
    """How much of each zone (and of the whole region, ``ALL``) the land cover covers, per year.

    ``data_pixels``: (years, zones in zone-index order) pixels of a known class; ``zone_pixels``:
    (zones,) the zone's pixels on the run's grid. Columns: zone_id, zone_name, year, zone_pixels,
    data_pixels, coverage (data_pixels / zone_pixels, 0..1; 0 for a zone with no pixel on the
    grid), data_area_ha (data_pixels x pixel area: the area every per-hectare figure divides by)
    and partial (coverage below ``min_coverage``: the zone's figures miss part of it).
    """
    ids, names = zone_labels(zones)
    data = with_region(np.asarray(data_pixels, dtype=np.int64), axis=1)  # (t, z+1)
    full = np.append(np.asarray(zone_pixels, dtype=np.int64), int(np.sum(zone_pixels)))  # (z+1,)
    ny, nz = data.shape
    full_t = np.broadcast_to(full, data.shape)
    cover = np.divide(data, full_t, out=np.zeros(data.shape), where=full_t > 0)
    return pd.DataFrame({
        "zone_id": tile_text(ids, ny),
        "zone_name": tile_text(names, ny),
        "year": np.repeat(np.asarray(years, dtype=np.int64), nz),
        "zone_pixels": full_t.reshape(-1),
        "data_pixels": data.reshape(-1),
        "coverage": cover.reshape(-1),
        "data_area_ha": data.reshape(-1) * pixel_area_ha,
        "partial": cover.reshape(-1) < min_coverage,
    })


# --------------------------------------------------------------------------------------
# Transitions (methods.md section 4)


class ClassIndex:
    """Compact indices of a scheme's class codes: known codes (sorted) 0..n-1, then no data (n),
    then unknown (n+1). ``lut`` maps every uint8 code to its index."""

    def __init__(self, scheme: ClassScheme):
        self.codes: list[int] = sorted(scheme.classes)
        self.names: list[str] = [scheme.classes[c].name for c in self.codes]
        self.n = len(self.codes)
        self.nodata = self.n
        self.unknown = self.n + 1
        self.k = self.n + 2
        lut = np.full(256, self.unknown, dtype=np.uint8)
        lut[self.codes] = np.arange(self.n, dtype=np.uint8)
        lut[scheme.nodata] = self.nodata
        self.lut = lut


def year_pairs(years: list[int]) -> list[tuple[int, int]]:
    """Index pairs of the years compared: every consecutive pair, then first-to-last when there
    are more than two years. A single year gives (0, 0): its class histogram."""
    n = len(years)
    if n == 1:
        return [(0, 0)]
    pairs = [(i, i + 1) for i in range(n - 1)]
    if n > 2:
        pairs.append((0, n - 1))
    return pairs


def check_unknown(unknown: np.ndarray, years: list[int], scheme: ClassScheme,
                  sources: Mapping[int, object]) -> None:
    """Raise :class:`InputError` naming each year's file, unknown code and its pixel count.

    ``unknown``: (years, 256) pixel counts inside zones of codes the scheme does not know."""
    problems = [
        problem(sources.get(year, f"landcover {year}"), "class code", int(code),
                f"not in class scheme {scheme.name!r} ({int(unknown[t, code])} pixels)")
        for t, year in enumerate(years)
        for code in np.flatnonzero(unknown[t])
    ]
    if problems:
        raise InputError(problems)


def check_years_have_data(pixels: np.ndarray, years: list[int], sources: Mapping[int, object]) -> None:
    """Raise :class:`InputError` naming each year's file that has no classified pixel inside the
    zones (all no data there, or zones beside the raster): its areas, ESV and transitions would
    all read 0. ``pixels``: (years, zones, classes) counts (:func:`year_class_pixels`)."""
    totals = pixels.reshape(len(years), -1).sum(axis=1)
    problems = [problem(sources.get(year, f"landcover {year}"), "band 1", 0,
                        f"no classified pixel inside the zones in {year}: all no data there, or the "
                        "raster does not cover the zones")
                for year, total in zip(years, totals, strict=True) if total == 0]
    if problems:
        raise InputError(problems)


def check_landcover_counts(inside: np.ndarray, years: list[int], scheme: ClassScheme,
                           sources: Mapping[int, object]) -> None:
    """Raise :class:`InputError`, once, naming every code inside the zones that ``scheme`` lacks
    (with its year's file and pixel count) and every year without a classified pixel inside them.

    ``inside``: (years, 256) pixel counts inside the zones by raw code (the ingest pass's)."""
    known = sorted(scheme.classes)
    unknown = np.array(inside, dtype=np.int64, copy=True)
    unknown[:, known] = 0
    unknown[:, scheme.nodata] = 0
    problems = []
    for check in (lambda: check_unknown(unknown, years, scheme, sources),
                  lambda: check_years_have_data(inside[:, known].reshape(len(years), 1, -1), years, sources)):
        try:
            check()
        except InputError as exc:
            problems += exc.problems
    if problems:
        raise InputError(problems)


def year_class_pixels(counts: np.ndarray, pairs: list[tuple[int, int]], n_years: int, n: int) -> np.ndarray:
    """Pixels per (year, zone, known class) from the pair histograms' margins.

    ``counts``: (pairs, zones, K, K). Year t's areas are the row margins of a pair starting at t or
    the column margins of one ending at t (pixels whose other year is no data included)."""
    out = None
    for t in range(n_years):
        p = next((p for p, (a, _) in enumerate(pairs) if a == t), None)
        if p is not None:
            m = counts[p].sum(axis=2)[:, :n]
        else:
            p = next(p for p, (_, b) in enumerate(pairs) if b == t)
            m = counts[p].sum(axis=1)[:, :n]
        if out is None:
            out = np.zeros((n_years, *m.shape), dtype=np.int64)
        out[t] = m
    return out


def with_region(a: np.ndarray, axis: int) -> np.ndarray:
    """Append the whole-region total (sum over zones) along the zone ``axis``."""
    return np.concatenate([a, a.sum(axis=axis, keepdims=True)], axis=axis)


Text = pd.api.extensions.ExtensionArray


def zone_labels(zones: pd.DataFrame) -> tuple[Text, Text]:
    """Zone ids and names in zone-index order, then the whole region (``ALL``), as text arrays
    (:func:`repeat_text`, :func:`tile_text` and :func:`take_text` lay them out as a table's
    categorical columns)."""
    z = zones.sort_values("zone")
    return (text(np.append(z["zone_id"].astype(str).to_numpy(dtype=object), REGION_ID)),
            text(np.append(z["zone_name"].to_numpy(dtype=object), "whole region")))


def text(values: Sequence[object]) -> Text:
    """``values`` as a text array (pandas' string dtype, Arrow underneath)."""
    return pd.array(values, dtype="str")


def _codes(labels: Text | pd.Categorical) -> tuple[np.ndarray, pd.Index]:
    """A text array's (or a categorical's) codes and its distinct values."""
    if isinstance(labels, pd.Categorical):
        return labels.codes, labels.categories
    codes, uniques = pd.factorize(labels)
    return codes, pd.Index(uniques)


def repeat_text(labels: Text | pd.Categorical, n: int) -> pd.Categorical:
    """``np.repeat(labels, n)`` as a categorical column: a code of 1-4 B a row instead of a string
    (40,000 zones' labels over a table of 18.7 M rows: ~1 GB as strings, ~0.2 GB as codes; and no
    Python string per row). Written as plain text (:func:`ecodask.io.tables.write_table`), so the
    files are as with the labels themselves; a table read back has them as text."""
    codes, values = _codes(labels)
    return pd.Categorical.from_codes(np.repeat(codes, n), categories=values)


def tile_text(labels: Text | pd.Categorical, n: int) -> pd.Categorical:
    """``np.tile(labels, n)`` as a categorical column (:func:`repeat_text`)."""
    codes, values = _codes(labels)
    return pd.Categorical.from_codes(np.tile(codes, n), categories=values)


def take_text(labels: Text | pd.Categorical, positions: np.ndarray) -> pd.Categorical:
    """``labels[positions]`` as a categorical column (:func:`repeat_text`)."""
    codes, values = _codes(labels)
    return pd.Categorical.from_codes(codes[positions], categories=values)


def transfer_matrices(counts: np.ndarray, n: int) -> np.ndarray:
    """Known-class transfer matrices (pixels) per (pair, zone + region, i, j) from the histograms."""
    return with_region(counts[:, :, :n, :n], axis=1)


TRANSITION_COLUMNS = ["zone_id", "zone_name", "year_from", "year_to", "class_from", "class_from_name",
                      "class_to", "class_to_name", "pixels", "area_ha", "esv_change_cny"]
DYNAMIC_COLUMNS = ["zone_id", "zone_name", "year_from", "year_to", "kind", "class_code", "class_name",
                   "area_from_ha", "area_to_ha", "transfer_out_ha", "transfer_in_ha", "net_change_ha",
                   "dynamic_degree_pct_per_yr"]


def transitions_parts(
    tm: np.ndarray,
    pairs: list[tuple[int, int]],
    years: list[int],
    zones: pd.DataFrame,
    index: ClassIndex,
    pixel_area_ha: float,
    esv_per_ha: np.ndarray,
) -> Iterator[pd.DataFrame]:
    """Transfer matrices in long form, the ``transitions`` table: one row per (zone, pair of years,
    class_from, class_to), a frame per pair of years in order (an empty frame of its columns without
    a pair), each made when the one before has been taken: written one after the other
    (:func:`ecodask.io.tables.write_table`), the table is never held whole (at 40,000 zones and 39
    years it has 126 M rows).

    ``tm``: pixels (pairs, zones + region, n, n). ``esv_per_ha``: (years, n) total coefficient of
    each class code, CNY/ha/yr. ``esv_change_cny`` = area (ha) x (VC_to - VC_from), valued with the
    coefficients of the later year (methods.md section 4): negative = ESV lost by the transition."""
    if not len(pairs):
        yield pd.DataFrame(columns=TRANSITION_COLUMNS)
        return
    ids, names = zone_labels(zones)
    n_p, n_z, n, _ = tm.shape
    frm = np.repeat(np.arange(n), n)
    to = np.tile(np.arange(n), n)
    for p, (a, b) in enumerate(pairs):
        vc = esv_per_ha[b]
        area = tm[p].reshape(n_z, n * n) * pixel_area_ha
        yield pd.DataFrame({
            "zone_id": repeat_text(ids, n * n),
            "zone_name": repeat_text(names, n * n),
            "year_from": years[a],
            "year_to": years[b],
            "class_from": np.tile(np.asarray(index.codes)[frm], n_z),
            "class_from_name": tile_text(text(np.asarray(index.names)[frm]), n_z),
            "class_to": np.tile(np.asarray(index.codes)[to], n_z),
            "class_to_name": tile_text(text(np.asarray(index.names)[to]), n_z),
            "pixels": tm[p].reshape(-1),
            "area_ha": area.reshape(-1),
            "esv_change_cny": (area * (vc[to] - vc[frm])[None, :]).reshape(-1),
        })


def dynamic_degree_table(
    tm: np.ndarray,
    pairs: list[tuple[int, int]],
    years: list[int],
    zones: pd.DataFrame,
    index: ClassIndex,
    pixel_area_ha: float,
) -> pd.DataFrame:
    """Transfer-out/in, net change and dynamic degrees per zone, pair of years and class.

    From the transfer matrix T (ha) of years a -> b, span ``T_y = b - a`` years:
    ``U_a = sum_j T[i, j]``, ``U_b = sum_i T[i, j]``, transfer-out ``U_a - T[i, i]``, transfer-in
    ``U_b - T[i, i]``, net ``U_b - U_a``; single dynamic degree ``K = (U_b - U_a) / U_a / T_y x 100``
    (% per year; NaN where U_a = 0); comprehensive (rows with kind ``comprehensive``)
    ``LC = sum_i out_i / (2 sum_i U_a,i) / T_y x 100``. Areas of pixels that are no data in either
    year are left out, so both years cover the same pixels.
    """
    ids, names = zone_labels(zones)
    parts = []
    for p, (a, b) in enumerate(pairs):
        span = years[b] - years[a]
        t = tm[p].astype(np.float64) * pixel_area_ha  # (zones, n, n)
        ua, ub, diag = t.sum(axis=2), t.sum(axis=1), np.diagonal(t, axis1=1, axis2=2)
        out, inn = ua - diag, ub - diag
        with np.errstate(divide="ignore", invalid="ignore"):
            k = np.where(ua > 0, (ub - ua) / ua / span * 100.0, np.nan) if span else np.full(ua.shape, np.nan)
            tot = ua.sum(axis=1)
            lc = np.where(tot > 0, out.sum(axis=1) / (2.0 * tot) / span * 100.0, np.nan) if span else \
                np.full(tot.shape, np.nan)
        n_z, n = ua.shape
        single = pd.DataFrame({
            "zone_id": repeat_text(ids, n), "zone_name": repeat_text(names, n),
            "year_from": years[a], "year_to": years[b], "kind": "single",
            "class_code": pd.array(np.tile(index.codes, n_z), dtype="Int64"),
            "class_name": tile_text(text(index.names), n_z),
            "area_from_ha": ua.reshape(-1), "area_to_ha": ub.reshape(-1),
            "transfer_out_ha": out.reshape(-1), "transfer_in_ha": inn.reshape(-1),
            "net_change_ha": (ub - ua).reshape(-1), "dynamic_degree_pct_per_yr": k.reshape(-1),
        })
        comp = pd.DataFrame({  # labels with the single rows' categories, so that they concatenate as codes
            "zone_id": repeat_text(ids, 1), "zone_name": repeat_text(names, 1), "year_from": years[a],
            "year_to": years[b],
            "kind": "comprehensive", "class_code": pd.array([None] * n_z, dtype="Int64"),
            "class_name": "all classes", "area_from_ha": ua.sum(axis=1), "area_to_ha": ub.sum(axis=1),
            "transfer_out_ha": out.sum(axis=1), "transfer_in_ha": inn.sum(axis=1),
            "net_change_ha": (ub - ua).sum(axis=1), "dynamic_degree_pct_per_yr": lc,
        })
        parts += [single, comp]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=DYNAMIC_COLUMNS)


def transition_probabilities(tm: np.ndarray) -> np.ndarray:
    """Transition probabilities ``P[i, j] = T[i, j] / sum_j T[i, j]`` (zones, n, n) of transfer
    matrices ``tm`` (zones, n, n); a class absent at the start keeps its area (``P[i, i] = 1``)."""
    t = np.asarray(tm, dtype=np.float64)
    rows = t.sum(axis=2, keepdims=True)
    return np.where(rows > 0, t / np.where(rows > 0, rows, 1.0), np.eye(t.shape[1])[None])


def markov_projection(tm: np.ndarray, steps: int, start: np.ndarray | None = None) -> np.ndarray:
    """First-order Markov projection of class areas ``steps`` periods past the pair's end.

    ``tm``: transfer matrices (zones, n, n) of one pair of years (any area unit); probabilities
    :func:`transition_probabilities`; areas at the pair's end ``A = start`` (zones, n; default
    ``sum_i T[i, :]``, which leaves out the pixels without data in the pair's first year);
    projection ``A P^steps``. Returns (zones, n) in the unit of ``start`` (default: of ``tm``).
    """
    p = transition_probabilities(tm)
    area = np.asarray(tm, dtype=np.float64).sum(axis=1) if start is None else np.asarray(start, np.float64)
    for _ in range(steps):
        area = np.einsum("zi,zij->zj", area, p)
    return area
