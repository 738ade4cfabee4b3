"""Intensity analysis (Aldwaik & Pontius 2012) and quantity / exchange / shift (Pontius & Santacruz
2014) against a case worked by hand and the numbers four public packages print:
intensity.analysis' vignette (a 3 x 3 toy, two intervals), learning-intensity-analysis' Tanintharyi
1992-2015 (6 categories, three intervals, up to the transition level), OpenLand's São Lourenço
2002-2014 (11 categories, four intervals: the transition level of a gain and a loss, stationarity)
and pontiPy's MapBiomas matrices (quantity and exchange)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecodask.science import intensity as ia

from conftest import shared


def _ref(name: str) -> Path:
    return shared(f"reference/intensity/{name}")


def test_a_two_category_case_worked_by_hand() -> None:
    # Over 4 years: 6 px stay A, 2 go A -> B, 1 goes B -> A, 1 stays B. Extent 10, change 3.
    c = np.array([[6.0, 2.0], [1.0, 1.0]])
    iv = ia.interval_level(c, 4)
    assert (iv.change, iv.extent) == (3, 10) and iv.S == pytest.approx(100 * 3 / 10 / 4)  # 7.5 %/yr
    cat = ia.category_level(c, 4)
    # A: gains 1 px (of 7 at the end), loses 2 (of 8 at the start); B: gains 2 (of 3), loses 1 (of 2).
    np.testing.assert_allclose(cat.G, [100 * 1 / 4 / 7, 100 * 2 / 4 / 3])
    np.testing.assert_allclose(cat.L, [100 * 2 / 4 / 8, 100 * 1 / 4 / 2])
    assert list(ia.behaviour(cat.G, iv.S, "active", "dormant")) == ["dormant", "active"]
    tr = ia.transition_level(c, 4)
    # B's gain takes 2 px of A's 8: R = 6.25 %/yr; spread over the non-B start area (8 px) the same.
    assert tr.R[0, 1] == pytest.approx(6.25) and tr.W[1] == pytest.approx(6.25)
    assert ia.behaviour(tr.R[0, 1], tr.W[1], "targeted", "avoided") == "uniform"
    assert np.isnan(tr.R[0, 0]) and np.isnan(tr.Q[1, 1])  # no transition on the diagonal
    # A's loss (2 px) goes to B, 3 px at the end: Q = 2/4/3; spread over non-A end area 3 px: V = 2/4/3.
    assert tr.Q[0, 1] == pytest.approx(100 * 2 / 4 / 3) and tr.V[0] == pytest.approx(100 * 2 / 4 / 3)
    co = ia.components(c)
    # A: gain 1, loss 2 -> quantity 1; exchange 2 * min(1, 2) = 2; shift 3 - 1 - 2 = 0.
    np.testing.assert_array_equal(co.quantity, [1, 1])
    np.testing.assert_array_equal(co.exchange, [2, 2])
    np.testing.assert_array_equal(co.shift, [0, 0])
    assert (co.difference, co.Q, co.E, co.S) == (3, 1, 2, 0)


def test_an_absent_category_gives_no_intensity_rather_than_a_division_by_zero() -> None:
    c = np.array([[5.0, 0.0], [0.0, 0.0]])  # B absent at both ends
    cat = ia.category_level(c, 1)
    assert np.isnan(cat.G[1]) and np.isnan(cat.L[1]) and cat.G[0] == 0
    assert ia.behaviour(cat.G, 0.0, "active", "dormant")[1] == ""


def test_stationarity_needs_the_same_state_in_every_interval() -> None:
    states = np.array([["active", "dormant", "active", ""], ["active", "dormant", "dormant", "active"]],
                      dtype=object)
    assert list(ia.stationary(states)) == [True, True, False, False]


def _toy() -> tuple[np.ndarray, np.ndarray, list[str]]:
    folder = _ref("case1_toy_intensity_analysis")
    frames = [pd.read_csv(folder / f"crosstab_{a}_{b}.csv", index_col=0)
              for a, b in ((2005, 2010), (2010, 2012))]
    return np.stack([f.to_numpy(float) for f in frames]), np.array([5.0, 2.0]), list(frames[0].columns)


def test_the_intensity_analysis_vignette_to_its_printed_digits() -> None:
    c, years, names = _toy()
    iv, cat, tr = ia.interval_level(c, years), ia.category_level(c, years), ia.transition_level(c, years)
    u = ia.uniform_intensity(iv.change, iv.extent, years)
    k = {n: i for i, n in enumerate(names)}
    t = {"2005-2010": 0, "2010-2012": 1}
    ours = {
        "Change.Size": lambda p, i, j: iv.change[p],
        "Uniform.Intensity.of.Change (S_t)": lambda p, i, j: iv.S[p] / 100,
        "Uniform.Change.all.Intervals (U)": lambda p, i, j: u / 100,
        "Annual.Gross.Loss": lambda p, i, j: cat.loss[p, k[i]],
        "Annual.Gross.Gain": lambda p, i, j: cat.gain[p, k[j]],
        "Annual.Loss.Intensity (L_ti)": lambda p, i, j: cat.L[p, k[i]] / 100,
        "Annual.Gain.Intensity (G_tj)": lambda p, i, j: cat.G[p, k[j]] / 100,
        "Annual.Transition.Intensity (R_tin)": lambda p, i, j: tr.R[p, k[i], k[j]] / 100,
        "Uniform.Transition (W_tn)": lambda p, i, j: tr.W[p, k[j]] / 100,
    }
    rows = list(csv.DictReader(open(_ref("case1_toy_intensity_analysis") / "published_values.csv")))
    assert len(rows) == 47 and {r["metric"] for r in rows} == set(ours)
    for r in rows:
        value = ours[r["metric"]](t.get(r["interval"], 0), r["from_i"], r["to_j"])
        assert value == pytest.approx(float(r["printed_value"]), abs=5e-8), r  # 7 digits printed


def test_the_toy_cases_components() -> None:
    # expected_computed.csv is a computed reference (made with the reference data; the vignette prints
    # no quantity, exchange or shift): it guards against a change, it is no outside check.
    c, _, names = _toy()
    co = ia.components(c)
    want = pd.read_csv(_ref("case1_toy_intensity_analysis") / "expected_computed.csv")
    for p, interval in enumerate(("2005-2010", "2010-2012")):
        rows = want[want["interval"] == interval].set_index(["metric", "from_i"])["value"]
        assert (co.Q[p], co.E[p], co.S[p]) == (rows["quantity", np.nan], rows["exchange", np.nan],
                                               rows["shift", np.nan])
        for j, name in enumerate(names):
            assert (co.quantity[p, j], co.exchange[p, j], co.shift[p, j]) == (
                rows["quantity_j", name], rows["exchange_j", name], rows["shift_j", name])


def _tanintharyi() -> tuple[np.ndarray, np.ndarray]:
    folder = _ref("case2_myanmar_dealban")
    intervals = ((1992, 1997), (1997, 2004), (2004, 2015))
    c = np.stack([pd.read_csv(folder / f"crosstab_{a}_{b}.csv", index_col=0).to_numpy(float)
                  for a, b in intervals])
    return c, np.array([b - a for a, b in intervals], float)


def test_tanintharyi_interval_and_category_levels_as_published() -> None:
    # The package labels categories by position (wrong names in two intervals): compared by position.
    c, years = _tanintharyi()
    folder = _ref("case2_myanmar_dealban")
    iv = ia.interval_level(c, years)
    u = ia.uniform_intensity(iv.change, iv.extent, years)
    iia = pd.read_csv(folder / "published_IIA.csv", index_col=0)
    np.testing.assert_allclose(iv.change, iia["Change Size"])
    np.testing.assert_allclose(iv.S / 100, iia["Annual change"], rtol=1e-12)
    np.testing.assert_allclose(u / 100, iia["Uniform Change across Intervals"], rtol=1e-12)
    assert list(ia.behaviour(iv.S, u, "Fast", "Slow")) == list(iia["Interval Behavior"])
    cat = ia.category_level(c, years)
    blocks = Path(folder / "published_CIA.csv").read_text().split("Category level Intensity Analysis")[1:]
    for p, block in enumerate(blocks):
        table = pd.read_csv(pd.io.common.StringIO(block.split("\n", 1)[1]), index_col=0).dropna(how="all")
        np.testing.assert_allclose(cat.loss[p], table["Gross Loss"], rtol=1e-12)
        np.testing.assert_allclose(cat.gain[p], table["Gross Gain"], rtol=1e-12)
        np.testing.assert_allclose(cat.L[p] / 100, table["Loss Intensity"], rtol=1e-12)
        np.testing.assert_allclose(cat.G[p] / 100, table["Gain Intensity"], rtol=1e-12)
        assert list(ia.behaviour(cat.G[p], iv.S[p], "Active", "Dormant")) == list(table["Gain Behavior"])
        assert list(ia.behaviour(cat.L[p], iv.S[p], "Active", "Dormant")) == list(table["Loss Behavior"])


def test_tanintharyi_transition_level_as_published() -> None:
    # learning-intensity-analysis prints, per interval and gaining category n, each other category
    # i's annual transition size (px/yr), R_tin and W_tn (fractions per year) and Target / Avoid: 90
    # rows. By position, as above.
    c, years = _tanintharyi()
    folder = _ref("case2_myanmar_dealban")
    names = list(pd.read_csv(folder / "crosstab_1992_1997.csv", index_col=0).columns)
    tr = ia.transition_level(c, years)
    starts = [1992, 1997, 2004]
    text = (folder / "published_TIA.csv").read_text()
    pieces = re.split(r"Transition level Intensity Analysis for interval:\s*(\d+) - (\d+)", text)
    assert pieces[0].strip() == "" and len(pieces) == 1 + 3 * 3
    rows, gainers = 0, set()
    for a, b, body in zip(pieces[1::3], pieces[2::3], pieces[3::3], strict=True):
        p = starts.index(int(a))
        assert years[p] == int(b) - int(a)
        for block in body.strip().split("\n\n"):
            t = pd.read_csv(io.StringIO(block), index_col=0)
            size, r, w, behaves = t.columns
            n = names.index(size.removeprefix("Annual Transition Size for Gain of "))
            i = [names.index(x) for x in t.index]
            assert sorted(i + [n]) == list(range(len(names)))  # every other category, once
            np.testing.assert_allclose(c[p, i, n] / years[p], t[size], rtol=1e-12)
            np.testing.assert_allclose(tr.R[p, i, n] / 100, t[r], rtol=1e-12, atol=0)
            np.testing.assert_allclose(np.full(len(i), tr.W[p, n] / 100), t[w], rtol=1e-12)
            assert list(ia.behaviour(tr.R[p, i, n], tr.W[p, n], "Target", "Avoid")) == list(t[behaves])
            rows += len(t)
            gainers.add((p, n))
    assert rows == 90 and len(gainers) == 3 * len(names)


_PERIODS = ((2002, 2008), (2008, 2010), (2010, 2012), (2012, 2014))


def _sao_lourenco() -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """OpenLand's São Lourenço matrices (px, 4 intervals), their years, the category names and the
    vignette's printout."""
    folder = _ref("case3_saolourenco_openland")
    frames = [pd.read_csv(folder / f"crosstab_{a}_{b}_pixels.csv", index_col=0) for a, b in _PERIODS]
    names = list(frames[0].columns)
    assert all(list(f.columns) == names == list(f.index) for f in frames)
    text = (folder / "printed_output_vignette_gh-pages_16baebc.txt").read_text()
    return (np.stack([f.to_numpy(float) for f in frames]), np.array([b - a for a, b in _PERIODS], float),
            names, text)


def _printed(text: str, obj: str, slot: str) -> pd.DataFrame:
    """The tibble R prints under ``Slot "<slot>"`` of ``$<obj>`` in ``text``, every cell as printed
    (a text); a stationarity table's label (words with spaces) in one column."""
    lines = text.split(f"\n#> ${obj}\n", 1)[1].split(f'#> Slot "{slot}":\n', 1)[1].split("\n")
    header = next(x for x in lines if re.match(r"#>\s+[A-Za-z]", x)).split()[1:]
    rows = []
    for line in lines[lines.index(next(x for x in lines if x.split()[1:] == header)) + 2:]:
        m = re.match(r"#>\s+\d+\s+(\S.*?)\s*$", line)
        if not m:
            break
        stat = re.fullmatch(r"(\S+)\s+(\d+)\s+(\d+)\s+(.+?)\s+([YN])", m.group(1))
        rows.append(stat.groups() if header[-1] == "Test" and stat else m.group(1).split())
    assert rows and all(len(r) == len(header) for r in rows)
    return pd.DataFrame(rows, columns=header)


def _as_printed(value: float, printed: str) -> None:
    """``value`` rounds to ``printed`` (R's tibble: 3 significant digits, ``537.`` for 537)."""
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    assert abs(value - float(printed)) <= 0.5 * 10.0 ** -decimals * (1 + 1e-9), (value, printed)


def test_sao_lourenco_transition_level_as_openland_prints_it() -> None:
    # OpenLand's vignette: the interval level, and the transition level of the gain of category_n
    # (R_tin, W_tn) and of the loss of category_m (Q_tmj, V_tm), in %/yr, areas in km2, to 3 digits.
    c, years, names, text = _sao_lourenco()
    k = {n: i for i, n in enumerate(names)}
    n, m = re.search(r'category_n = "(\w+)", category_m = "(\w+)"', text).groups()
    km2 = pd.read_csv(_ref("case3_saolourenco_openland") / "totalArea.csv").iloc[0]
    km2_per_px = km2["area_km2"] / km2["QtPixel"]
    assert c[0].sum() == km2["QtPixel"]
    period = {f"{a}-{b}": p for p, (a, b) in enumerate(_PERIODS)}
    iv, tr = ia.interval_level(c, years), ia.transition_level(c, years)
    u = ia.uniform_intensity(iv.change, iv.extent, years)
    interval = _printed(text, "interval_lvl", "intervalData")
    assert sorted(interval["Period"]) == sorted(period)
    for _, r in interval.iterrows():
        p = period[r["Period"]]
        _as_printed(100 * iv.change[p] / iv.extent[p], r["PercentChange"])
        _as_printed(iv.S[p], r["St"])
        _as_printed(u, r["U"])
    gain = _printed(text, "transition_lvlGain_n", "transitionData")
    assert set(gain["To"]) == {n} and len(gain) == 20
    # OpenLand lists the transitions with an area: all of them, as the matrices have them.
    assert {(period[r["Period"]], k[r["From"]]) for _, r in gain.iterrows()} == {
        (p, i) for p, i in zip(*np.nonzero(c[:, :, k[n]]), strict=True) if i != k[n]}
    for _, r in gain.iterrows():
        p, i = period[r["Period"]], k[r["From"]]
        assert float(r["Interval"]) == years[p]
        _as_printed(c[p, i, k[n]] * km2_per_px, r["T_i2n_km2"])
        _as_printed(tr.R[p, i, k[n]], r["Rtin"])
        _as_printed(tr.W[p, k[n]], r["Wtn"])
    loss = _printed(text, "transition_lvlLoss_m", "transitionData")
    assert set(loss["From"]) == {m} and len(loss) == 14
    assert {(period[r["Period"]], k[r["To"]]) for _, r in loss.iterrows()} == {
        (p, j) for p, j in zip(*np.nonzero(c[:, k[m], :]), strict=True) if j != k[m]}
    for _, r in loss.iterrows():
        p, j = period[r["Period"]], k[r["To"]]
        _as_printed(c[p, k[m], j] * km2_per_px, r["T_m2j_km2"])
        _as_printed(tr.Q[p, k[m], j], r["Qtmj"])
        _as_printed(tr.V[p, k[m]], r["Vtm"])


def test_sao_lourenco_stationarity_against_openland_with_its_zero_convention() -> None:
    # OpenLand counts, per category (or transition) and state, the intervals where the gain, loss or
    # transition is not zero, and prints Y where that count is every interval: an interval with none
    # of it counts for no state, and one with none in any interval gets no row. Here a zero is
    # dormant / avoided (0 below the uniform intensity), so these are stationary here and not there:
    # zero in every interval (no row there), or zero in some and dormant / avoided in the others (N).
    c, years, names, text = _sao_lourenco()
    k = {n: i for i, n in enumerate(names)}
    n, m = re.search(r'category_n = "(\w+)", category_m = "(\w+)"', text).groups()
    iv, cat, tr = ia.interval_level(c, years), ia.category_level(c, years), ia.transition_level(c, years)
    S = iv.S[:, None]
    # name: (states (interval, category), present (the same), OpenLand's object, words of its states,
    #        the category itself (no transition to itself), stationary here and not there: (no row
    #        there, N there))
    cases = {
        "gain": (ia.compare(cat.G, S), cat.gain > 0, "category_lvlGain", ("Active Gain", "Dormant Gain"),
                 None, ({"FF", "SF", "SA", "SG"}, {"Im"})),
        "loss": (ia.compare(cat.L, S), cat.loss > 0, "category_lvlLoss", ("Active Loss", "Dormant Loss"),
                 None, ({"Im", "Iu", "Agua"}, set())),
        f"gain of {n}": (ia.compare(tr.R[:, :, k[n]], tr.W[:, k[n], None]), c[:, :, k[n]] > 0,
                         "transition_lvlGain_n", (f"targeted by {n}", f"avoided by {n}"),
                         k[n], ({"Ac", "Im", "Iu", "Agua", "R"}, set())),
        f"loss of {m}": (ia.compare(tr.Q[:, k[m], :], tr.V[:, k[m], None]), c[:, k[m], :] > 0,
                         "transition_lvlLoss_m", (f"targeted {m}", f"avoided {m}"),
                         k[m], ({"FF", "SF", "SA", "Im", "Agua"}, {"Iu", "R"})),
    }
    for what, (states, present, obj, (above, below), itself, (no_row, printed_n)) in cases.items():
        table = _printed(text, obj, f"{obj.split('_')[0]}Stationarity")
        name, count, of, word, test = table.columns
        assert set(table[of]) == {str(len(years))}
        printed = {(r[name], r[word]): (int(r[count]), r[test]) for _, r in table.iterrows()}
        # OpenLand's table from our states: every row, count and Y / N.
        theirs = {}
        for j, cls in enumerate(names):
            for code, label in ((ia.ABOVE, above), (ia.BELOW, below)):
                hits = int(np.sum(present[:, j] & (states[:, j] == code)))
                if hits and j != itself:
                    theirs[cls, label] = (hits, "Y" if hits == len(years) else "N")
        assert theirs == printed, what
        ours = {names[j] for j in np.flatnonzero(ia.stationary(states)) if j != itself}
        there = {cls for (cls, _), (_, test) in printed.items() if test == "Y"}
        assert there <= ours, what  # where OpenLand says Y, so do we
        assert ours - there == no_row | printed_n, what  # the rows that differ, and only they
        for cls in ours - there:  # each dormant / avoided, with no gain, loss or transition somewhere
            assert (states[:, k[cls]] == ia.BELOW).all() and not present[:, k[cls]].all(), (what, cls)
        assert not any(cls in no_row for cls, _ in printed), what
        assert all(printed[cls, below][1] == "N" for cls in printed_n), what


def test_mapbiomas_quantity_exchange_and_shift() -> None:
    folder = _ref("qes")
    want = pd.read_csv(folder / "expected_qes_mapbiomas.csv")
    assert len(want) == 7
    for _, row in want.iterrows():
        c = pd.read_csv(folder / "mapbiomas_pontipy" / row["matrix_file"], index_col=0).to_numpy(float)
        co = ia.components(c)
        assert (c.sum(), co.difference, co.Q, co.E, co.S) == (
            row["extent"], row["difference_D"], row["quantity_Q"], row["exchange_E"], row["shift_S"])
        # pontiPy prints Q and E per year of the interval (its divisor); its S is not D - Q - E.
        assert co.Q / row["pontiPy_divisor"] == pytest.approx(row["pontiPy_Q_published"])
        assert co.E / row["pontiPy_divisor"] == pytest.approx(row["pontiPy_E_published"])


def test_the_runs_tables_lay_out_the_hand_case_per_zone_and_interval() -> None:
    from types import SimpleNamespace

    from ecodask.science.intensity_tables import ALL_CLASSES, intensity_tables

    # One zone (and the region, the same): the hand case (6, 2 / 1, 1) over 2000-2004, then
    # everything staying over 2004-2010. Pixels of 0.09 ha.
    index = SimpleNamespace(codes=[1, 2], names=["cropland", "forest"])
    zones = pd.DataFrame({"zone": [1], "zone_id": ["420101"], "zone_name": ["West"]})
    hand, still = np.array([[6.0, 2.0], [1.0, 1.0]]), np.array([[7.0, 0.0], [0.0, 3.0]])
    tm = np.stack([np.stack([hand, hand]), np.stack([still, still])])  # (intervals, zone + region, 2, 2)
    t = intensity_tables(tm, [(0, 1), (1, 2)], [2000, 2004, 2010], zones, index, 0.09)
    iv = t["intensity_interval"]
    west = iv[iv["zone_id"] == "420101"]
    assert list(west["S_pct_per_yr"]) == pytest.approx([7.5, 0.0])
    assert list(west["U_pct_per_yr"]) == pytest.approx([100 * 3 / (10 * 4 + 10 * 6)] * 2)  # 3 %/yr
    assert list(west["pace"]) == ["fast", "slow"] and list(west["change_px"]) == [3, 0]
    cat = t["intensity_category"].query("zone_id == '420101' and year_from == 2000")
    assert list(cat["gain_behaviour"]) == ["dormant", "active"]
    assert list(cat["gross_loss_ha_per_yr"]) == pytest.approx([2 / 4 * 0.09, 1 / 4 * 0.09])
    later = t["intensity_category"].query("zone_id == '420101' and year_from == 2004")
    assert list(later["gain_behaviour"]) == ["uniform", "uniform"]  # no change at all: S = G = 0
    assert not t["intensity_category"]["gain_stationary"].any()  # not the same state twice
    tr = t["intensity_transition"].query("zone_id == '420101'")
    assert len(tr) == 2 and set(tr["year_from"]) == {2000}  # 2004-2010: nothing moved
    a_to_b = tr[tr["class_from"] == 1].iloc[0]
    b_gain = cat[cat["class_code"] == 2].iloc[0]["gain_uniform_transition_pct_per_yr"]
    assert (a_to_b["gain_intensity_pct_per_yr"], b_gain) == pytest.approx((6.25, 6.25))
    assert a_to_b["gain_behaviour"] == "uniform"
    co = t["intensity_components"].query("zone_id == '420101' and year_from == 2000")
    total = co[co["class_code"] == ALL_CLASSES].iloc[0]
    assert (total["difference_ha"], total["quantity_ha"], total["exchange_ha"], total["shift_ha"]) == \
        pytest.approx((3 * 0.09, 1 * 0.09, 2 * 0.09, 0.0))
    assert list(co["class_name"]) == ["cropland", "forest", "all"]


def test_a_class_absent_from_every_map_has_no_stationarity(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from ecodask.io.tables import write_tables
    from ecodask.science.intensity_tables import intensity_tables

    # The hand case over 2000-2004, then 2 px of cropland to forest over 2004-2010; snow_ice nowhere.
    index = SimpleNamespace(codes=[1, 2, 6], names=["cropland", "forest", "snow_ice"])
    zones = pd.DataFrame({"zone": [1], "zone_id": ["420101"], "zone_name": ["West"]})
    first = np.array([[6.0, 2.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    then = np.array([[5.0, 2.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 0.0]])
    tm = np.stack([np.stack([first, first]), np.stack([then, then])])
    t = intensity_tables(tm, [(0, 1), (1, 2)], [2000, 2004, 2010], zones, index, 0.09)
    write_tables(t, tmp_path)
    for cat in (t["intensity_category"], pd.read_parquet(tmp_path / "intensity_category.parquet")):
        cat = cat[(cat["zone_id"] == "420101") & (cat["year_from"] == 2000)].set_index("class_name")
        assert cat.loc["snow_ice", ["gain_intensity_pct_per_yr", "loss_intensity_pct_per_yr"]].isna().all()
        assert cat.loc["snow_ice", ["gain_stationary", "loss_stationary"]].isna().all()
        # S = 7.5 then 100 * 2 / 10 / 6 = 3.33 %/yr. Cropland's gain 3.57 then 0: dormant twice; its loss
        # 6.25 then 4.76: dormant, active. Forest's gain 16.7 then 6.67: active twice; its loss 12.5, 0.
        assert list(cat.loc[["cropland", "forest"], "gain_stationary"]) == [True, True]
        assert list(cat.loc[["cropland", "forest"], "loss_stationary"]) == [False, False]
    csv_rows = pd.read_csv(tmp_path / "intensity_category.csv")
    assert (csv_rows["gain_stationary"].isna() == (csv_rows["class_name"] == "snow_ice")).all()
    tr = t["intensity_transition"].query("class_from_name == 'snow_ice'")
    assert len(tr) and tr["gain_intensity_pct_per_yr"].isna().all() and tr["gain_stationary"].isna().all()


@pytest.mark.usefixtures("dask_threads")
def test_the_tables_made_an_interval_at_a_time_equal_the_levels_of_all_intervals_at_once() -> None:
    from types import SimpleNamespace

    from ecodask.science import intensity as ia
    from ecodask.science.intensity_tables import intensity_tables

    rng = np.random.default_rng(5)
    index = SimpleNamespace(codes=[1, 2, 5], names=["cropland", "forest", "water"])
    zones = pd.DataFrame({"zone": [1, 2, 3], "zone_id": ["a", "b", "c"], "zone_name": ["A", "B", "C"]})
    tm = rng.integers(0, 5, (3, 4, 3, 3)).astype(float)  # 3 intervals, 3 zones + region
    tm[1, 2] = np.diag([4.0, 2.0, 1.0])  # a zone where nothing moved in an interval: no rows there
    tm[:, 1] = [[3.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 2.0]]  # forest in no map; water gains cropland
    tm[0, 0, 2, :] = tm[0, 0, :, 2] = 0.0  # water in no map of the first interval only: not missing
    years, pairs = [2000, 2005, 2010, 2015], [(0, 1), (1, 2), (2, 3)]
    whole = intensity_tables(tm, pairs, years, zones, index, 0.09)
    parts = intensity_tables(tm, pairs, years, zones, index, 0.09, parts=True)
    for name, table in whole.items():
        frames = list(parts[name])
        assert len(frames) == 3 and [set(f["year_from"]) for f in frames] == [{2000}, {2005}, {2010}]
        pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), table)

    # Each column against the levels of every interval at once and their stationarity across them.
    dur = np.array([5.0, 5.0, 5.0])
    iv, cat, tr = ia.interval_level(tm, dur[:, None]), ia.category_level(tm, dur[:, None]), \
        ia.transition_level(tm, dur[:, None])
    u = ia.uniform_intensity(iv.change, iv.extent, dur[:, None])
    interval = whole["intensity_interval"]
    assert np.allclose(interval["S_pct_per_yr"], iv.S.reshape(-1), equal_nan=True)
    assert np.allclose(interval["U_pct_per_yr"], np.tile(u, 3), equal_nan=True)
    category = whole["intensity_category"]
    assert np.allclose(category["gain_intensity_pct_per_yr"], cat.G.reshape(-1), equal_nan=True)
    assert np.allclose(category["loss_uniform_transition_pct_per_yr"], tr.V.reshape(-1), equal_nan=True)
    gain = ia.compare(cat.G, iv.S[..., None])
    held = np.tile(ia.stationary(gain).reshape(-1), 3)
    missing = np.tile(np.all(gain == ia.NONE, axis=0).reshape(-1), 3)
    assert (category["gain_stationary"].isna().to_numpy() == missing).all() and missing.any()
    assert (category["gain_stationary"].fillna(False).to_numpy(bool) == (held & ~missing)).all()
    assert held.any()
    transition = whole["intensity_transition"]
    moved = ((cat.gain[..., None, :] > 0) | (cat.loss[..., :, None] > 0)) & ~np.eye(3, dtype=bool)
    loss = ia.compare(tr.Q, tr.V[..., :, None])
    assert len(transition) == moved.sum()
    assert np.allclose(transition["loss_intensity_pct_per_yr"], tr.Q[moved], equal_nan=True)
    assert (transition["loss_stationary"].fillna(False).to_numpy(bool)
            == np.broadcast_to(ia.stationary(loss), loss.shape)[moved]).all()
    one = intensity_tables(tm[:1], pairs[:1], years[:2], zones, index, 0.09)  # nothing holds over one
    assert not one["intensity_category"]["gain_stationary"].fillna(False).any()
    assert not one["intensity_transition"]["loss_stationary"].fillna(False).any()


def test_a_run_writes_the_intensity_tables_of_its_transitions_when_asked(tmp_path: Path) -> None:
    from ecodask.io.layout import RunFolder
    from ecodask.run.config import load_config

    from conftest import make_tiny_region
    from helpers import edit_yaml, run_stages

    path = make_tiny_region(tmp_path / "r", years=(2000, 2010, 2020))
    run_stages(load_config(path), "ingest", "transitions_esv")
    assert RunFolder(load_config(path).output).table("intensity_interval") is None  # off by default
    edit_yaml(path, lambda d: d["landcover"].update(intensity=True))
    cfg = load_config(path)
    run_stages(cfg, "transitions_esv")
    out = RunFolder(cfg.output)
    iv, tr = out.table("intensity_interval"), out.table("transitions")
    region = iv[iv["zone_id"] == "ALL"].reset_index(drop=True)
    assert list(zip(region["year_from"], region["year_to"], strict=True)) == [(2000, 2010), (2010, 2020)]
    # The same numbers from the run's own transfer matrices (the region's rows of `transitions`).
    for p, (a, b) in enumerate(((2000, 2010), (2010, 2020))):
        rows = tr[(tr["zone_id"] == "ALL") & (tr["year_from"] == a) & (tr["year_to"] == b)]
        c = rows.pivot(index="class_from", columns="class_to", values="pixels").to_numpy(float)
        want = ia.interval_level(c, b - a)
        got = (region.loc[p, "change_px"], region.loc[p, "S_pct_per_yr"])
        assert got == pytest.approx((want.change, want.S))
    assert {"intensity_category", "intensity_transition", "intensity_components"} <= {
        f.stem for f in out.tables.glob("intensity_*.parquet")}


def _level_row(a: int, b: int, name: str, amount: float, uniform: float, shares: dict[str, float]) -> str:
    """The report's row of a class's gain (or loss) over ``a``-``b``: its size and the uniform intensity
    per year, then the classes whose share exceeds the uniform intensity, largest first."""
    targets = [k for k in sorted(shares, key=lambda k: -shares[k]) if shares[k] > uniform]
    return (f"<td>{a}</td>\n      <td>{b}</td>\n      <td>{name}</td>\n"
            f"      <td>{amount / (b - a):,.4f}</td>\n      <td>{100 * uniform / (b - a):,.4f}</td>\n"
            f"      <td>{', '.join(targets) or '–'}</td>")


def test_the_report_shows_the_regions_transition_level_and_components(tmp_path: Path) -> None:
    import datetime as dt

    from ecodask.present.report import write_report
    from ecodask.run.config import load_config
    from ecodask.run.record import write_run_record

    from conftest import make_tiny_region
    from helpers import edit_yaml, run_stages

    path = make_tiny_region(tmp_path / "r", years=(2000, 2010, 2020))
    edit_yaml(path, lambda d: d["landcover"].update(intensity=True))
    cfg = load_config(path)
    _, outputs = run_stages(cfg, "ingest", "transitions_esv")
    write_run_record(cfg, {"ingest": 1.0, "transitions_esv": 1.0}, dict(outputs), dt.datetime.now(dt.UTC))
    text = write_report(cfg.output).read_text(encoding="utf-8")
    assert "Transition level: the largest gain and the largest loss" in text
    assert "Quantity, exchange and shift of each interval" in text
    # Each interval's numbers from the region's transfer matrix (the `transitions` table, ha), by the
    # papers' formulas: the largest gainer and the classes its gain takes above W, strongest first;
    # D, Q, E and S. The duration cancels in each comparison.
    tr = pd.read_parquet(cfg.output / "tables" / "transitions.parquet")
    region = tr[(tr["zone_id"] == "ALL") & tr["year_from"].isin([2000, 2010])
                & (tr["year_to"] == tr["year_from"] + 10)]  # the intervals: consecutive years
    # snow_ice is on no map of the tiny region: no intensity, no state, and its stationarity missing.
    assert "snow_ice" not in set(tr.loc[tr["pixels"] > 0, "class_from_name"]) | set(
        tr.loc[tr["pixels"] > 0, "class_to_name"])
    for a, b in ((2000, 2010), (2010, 2020)):
        assert re.search(rf"<td>{a}</td>\s*<td>{b}</td>\s*<td>snow_ice</td>\s*<td>–</td>\s*<td>–</td>\s*"
                         r"<td>[\d.]+</td>\s*<td></td>\s*<td></td>\s*<td>–</td>\s*<td>–</td>", text)
    section = text.split("Transition level: the largest gain")[1]
    for (a, b), rows in region.groupby(["year_from", "year_to"]):
        names = rows.drop_duplicates("class_from").set_index("class_from")["class_from_name"]
        c = rows.pivot_table(index="class_from", columns="class_to", values="area_ha", aggfunc="sum",
                             fill_value=0.0)
        codes = sorted(set(c.index) | set(c.columns))
        c = c.reindex(index=codes, columns=codes, fill_value=0.0).to_numpy()
        start, end, stay = c.sum(axis=1), c.sum(axis=0), np.diag(c)
        gain, loss = end - stay, start - stay

        label = [names.get(code, str(code)) for code in codes]
        n = int(np.argmax(gain))  # the largest gain: W, and the classes it takes from (R against W)
        w = gain[n] / (c.sum() - start[n])
        r = {label[i]: c[i, n] / start[i] for i in range(len(codes)) if i != n and start[i] > 0}
        row = _level_row(a, b, label[n], gain[n], w, r)
        assert row in section, row
        m = int(np.argmax(loss))  # the largest loss: V, and the classes it goes to (Q against V)
        v = loss[m] / (c.sum() - end[m])
        q = {label[j]: c[m, j] / end[j] for j in range(len(codes)) if j != m and end[j] > 0}
        row = _level_row(a, b, label[m], loss[m], v, q)
        assert row in section, row
        d = gain.sum()
        q = np.abs(gain - loss).sum() / 2
        e = sum(min(c[i, j], c[j, i]) for i in range(len(codes)) for j in range(len(codes)) if i != j)
        want = "".join(f"\n      <td>{v:,.4f}</td>" for v in (d, q, e, d - q - e))
        assert f"<td>{a}</td>\n      <td>{b}</td>{want}" in section
