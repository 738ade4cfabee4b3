"""County ecological compensation (methods.md section 8; seeds 003, 002, 001, 000).

Pure functions on scalars, numpy arrays or pandas Series (a Series in gives a Series out); no
dask, no I/O. Money is in CNY (per year where it is a flow), ESV in CNY/yr, GDP in CNY/yr,
population in persons; R, G, Q and IND are dimensionless.

Conventions:

- Engel coefficients and the urbanisation rate are fractions in 0..1 (0.30, not 30 %). Seed 003
  writes ``t_d = En_d`` (eq. 8) without units; with percentages every R would be ~1, so fractions
  it is, and values above 1 are an :class:`InputError`.
- ``Q = (EF - EC) / EC`` keeps the formula's sign (Q > 0 deficit, Q < 0 surplus; see
  :mod:`ecodask.science.footprint`). Amounts use ``|Q|`` and are never negative: the ``direction`` column
  (from the county's role) says whether the county receives or pays. A receiving county in
  deficit (Q > 0) or a paying county in surplus (Q < 0) is flagged (``role_sign_mismatch``), not
  dropped.
- Priority: rank 1 is the highest IND (most urgent) within a role, ties share the lowest rank;
  level 1 is the natural-breaks class of the highest IND, level 5 the lowest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Literal

import numpy as np
import pandas as pd

from ecodask.errors import ConfigError, InputError, Problem, problem
from ecodask.science.discretize import classify, natural_breaks

RECEIVE, PAY = "receive", "pay"
#: The county roles of the main functional zone plan, each with its direction: the roles that supply
#: ecosystem services receive compensation, the development role pays. Defined here only.
ROLE_DIRECTION = {"key_development": PAY, "main_agricultural": RECEIVE, "key_ecological": RECEIVE}
ROLES = tuple(ROLE_DIRECTION)
RECEIVING = frozenset(r for r, d in ROLE_DIRECTION.items() if d == RECEIVE)
PAYING = frozenset(r for r, d in ROLE_DIRECTION.items() if d == PAY)
#: Engel coefficients are fractions in (0, 1]: no household spends nothing on food.
ENGEL_RULE = "an Engel coefficient is a fraction in (0, 1] (0.30, not 30 %)"
R_FORMS = ("seed", "pearl")
#: How the loss-based total becomes an annual amount: seed 001's total / n (its printed figures
#: give 229.5956 / 8.8306 = 26.0000 exactly) or the equal annual payment of the discounted total.
ANNUAL_FORMS = ("seed001", "annuity")

ESV_COLUMNS = ("zone_id", "year", "esv_total_cny", "esv_market_cny", "esv_nonmarket_cny")
STATS_COLUMNS = ("zone_id", "zone_name", "year", "role", "population", "gdp_cny", "engel_urban",
                 "engel_rural", "urbanization_rate", "income_per_capita_cny", "cultivated_area_ha")
FP_COLUMNS = ("zone_id", "year", "ef_gha", "ec_gha", "overload_q")
LOSS_COLUMNS = ("zone_id", "year", "esv_loss_cny")
TABLE_COLUMNS = (
    "zone_id", "zone_name", "year", "variant", "role", "direction",
    "esv_total_cny", "esv_market_cny", "esv_nonmarket_cny", "ef_gha", "ec_gha", "overload_q",
    "engel_combined", "r_stage", "gdp_per_capita_cny", "g_affordability", "ind", "rank", "level",
    "amount_cny", "amount_1e8cny", "role_sign_mismatch",
    "loss_cny_per_yr", "loss_total_cny", "loss_annual_cny", "opportunity_cost_cny",
    "r_form", "reference_gdp_per_capita", "horizon_years", "discount_rate", "annual_form",
    "reference_income",
)


# ---------------------------------------------------------------------------------- checks


def _require(values, name: str, ok, message: str, where: str) -> None:
    """InputError naming ``where`` (the function or file), ``name`` and the first bad value."""
    arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    with np.errstate(invalid="ignore"):
        good = np.isfinite(arr) & ok(arr)
    if not good.all():
        bad = arr[~good]
        more = f" ({bad.size} values)" if bad.size > 1 else ""
        raise InputError([problem(where, name, bad[0].item(), message + more)])


def _positive(x):
    return x > 0


def _nonneg(x):
    return x >= 0


def _fraction(x):
    return (x >= 0) & (x <= 1)


def _engel(x):
    return (x > 0) & (x <= 1)


# -------------------------------------------------------------------------------- formulas


def combined_engel(engel_urban, engel_rural, urbanization, *, where: str = "combined_engel()"):
    """Comprehensive Engel coefficient ``En = Ea * theta + Eb * (1 - theta)`` (seed 003 eq. 8).

    ``engel_urban`` Ea and ``engel_rural`` Eb: food share of urban / rural household spending,
    fractions in (0, 1]; ``urbanization`` theta: urban share of the population, 0..1.
    """
    _require(engel_urban, "engel_urban", _engel, ENGEL_RULE, where)
    _require(engel_rural, "engel_rural", _engel, ENGEL_RULE, where)
    _require(urbanization, "urbanization_rate", _fraction, "a fraction in 0..1 (0.60, not 60 %)", where)
    return engel_urban * urbanization + engel_rural * (1 - urbanization)


def development_stage(engel_urban, engel_rural, urbanization, form: Literal["seed", "pearl"] = "pearl"):
    """Social development stage coefficient ``R = 1 / (1 + exp(-t))`` (seed 003 eq. 7), in (0, 1).

    ``En = Ea * theta + Eb * (1 - theta)`` (eq. 8) from the urban and rural Engel coefficients
    Ea, Eb (fractions in (0, 1], not percent) and the urbanisation rate theta (fraction 0..1).
    ``form="pearl"`` (default): the Pearl-curve form of the literature, ``t = 1/En - 3``: R grows as
    the food share falls (R = 0.5 at En = 1/3, R -> 1 as En -> 0), as the seed's prose has it (R = 1,
    the maximum, is "the extremely rich stage"). ``form="seed"``: ``t = En`` exactly as eq. 8 prints
    it; R then stays between 0.5 and 0.73 and *rises* with the Engel coefficient, i.e. with poverty.
    """
    if form not in R_FORMS:
        raise ConfigError([problem("development_stage()", "form", form, "must be 'seed' or 'pearl'")])
    en = combined_engel(engel_urban, engel_rural, urbanization, where="development_stage()")
    t = en if form == "seed" else 1.0 / en - 3.0
    return 1.0 / (1.0 + np.exp(-t))


def affordability(gdp_cny, population, reference_gdp_per_capita):
    """Local government affordability ``G = (GDP / N) / reference GDP per capita`` (seed 003 eq. 9).

    ``gdp_cny`` CNY/yr (>= 0), ``population`` persons (> 0), reference in CNY/person/yr (> 0):
    national or provincial GDP per capita. Dimensionless.
    """
    where = "affordability()"
    _require(gdp_cny, "gdp_cny", _nonneg, "must be a number >= 0", where)
    _require(population, "population", _positive, "must be a number > 0", where)
    _require(reference_gdp_per_capita, "reference_gdp_per_capita", _positive, "must be a number > 0", where)
    return gdp_cny / population / reference_gdp_per_capita


def priority_index(esv_nonmarket_cny, gdp_cny):
    """Compensation priority index ``IND = ESV_nm / GDP`` (seed 003 eq. 5), dimensionless.

    The seed divides non-market ESV per unit area by GDP per unit area; both are over the same
    county area, which cancels. Larger IND: more urgent.
    """
    where = "priority_index()"
    _require(esv_nonmarket_cny, "esv_nonmarket_cny", _nonneg, "must be a number >= 0", where)
    _require(gdp_cny, "gdp_cny", _positive, "must be a number > 0", where)
    return esv_nonmarket_cny / gdp_cny


def natural_break_levels(values: np.ndarray, k: int = 5) -> np.ndarray:
    """Levels 1..k of ``values`` by exact Fisher-Jenks natural breaks, level 1 the highest class.

    With fewer distinct values than ``k`` there are as many levels as distinct values (one level
    when all are equal); levels are always 1..k_eff with no gaps.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return np.zeros(0, np.int64)
    k_eff = min(k, np.unique(v).size)
    if k_eff == 1:
        return np.ones(v.size, np.int64)
    yb = classify(v, natural_breaks(v, k_eff)).astype(np.int64)  # 0 = lowest class
    return k_eff - yb


def priority_levels(ind: pd.Series, roles: pd.Series, k: int = 5) -> tuple[pd.Series, pd.Series]:
    """Rank and natural-breaks level of the priority index within each role.

    ``rank``: 1 = highest IND in the role; ties share the lowest rank (1, 1, 3, ...).
    ``level``: 1..k from :func:`natural_break_levels` (exact Fisher-Jenks,
    :func:`ecodask.science.discretize.natural_breaks`) on
    the IND of the role's counties, level 1 = the class of the highest IND (most urgent); fewer
    distinct values than ``k`` give fewer levels. Both Series share ``ind``'s index. Group by year
    yourself (``compensation_table`` ranks within year and role).
    """
    where = "priority_levels()"
    if not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError([problem(where, "k", k, "must be an integer >= 1")])
    if not ind.index.equals(roles.index):
        raise InputError([problem(where, "roles", None, "must have the same index as ind")])
    _require(ind.to_numpy(), "ind", _nonneg, "must be a number >= 0", where)
    rank = pd.Series(0, index=ind.index, dtype=np.int64, name="rank")
    level = pd.Series(0, index=ind.index, dtype=np.int64, name="level")
    pos = np.arange(len(ind))
    for _, idx in pd.Series(pos).groupby(roles.to_numpy(), sort=False):
        p = idx.to_numpy()
        vals = ind.iloc[p]
        rank.iloc[p] = vals.rank(method="min", ascending=False).to_numpy(np.int64)
        level.iloc[p] = natural_break_levels(vals.to_numpy(), k)
    return rank, level


def amount(esv_nonmarket_cny, r_stage, g_affordability, overload_q):
    """Compensation amount ``P = ESV_nm * R * G * |Q|`` (seed 003 eq. 6 with |Q|), CNY/yr, >= 0.

    The sign of Q is not used: who pays and who receives comes from the role (:func:`direction`).
    """
    return esv_nonmarket_cny * r_stage * g_affordability * np.abs(overload_q)


def direction(role):
    """``"receive"`` for main_agricultural / key_ecological, ``"pay"`` for key_development.

    ``role`` a string (gives a string) or a Series (gives a Series); an unknown role is an
    :class:`InputError`.
    """
    if isinstance(role, str):
        if role not in ROLE_DIRECTION:
            raise InputError([problem("direction()", "role", role, f"must be one of {list(ROLE_DIRECTION)}")])
        return ROLE_DIRECTION[role]
    role = pd.Series(role)
    unknown = sorted(set(role.dropna()) - set(ROLE_DIRECTION)) + (["<missing>"] if role.isna().any() else [])
    if unknown:
        raise InputError([problem("direction()", "role", unknown[0],
                                  f"must be one of {list(ROLE_DIRECTION)}")])
    return role.map(ROLE_DIRECTION).rename("direction")


def role_sign_mismatch(role, overload_q):
    """True where the role and the sign of Q disagree: a receiving county in deficit (Q > 0) or a
    paying county in surplus (Q < 0). Q = 0 (balance) never disagrees.
    """
    d = direction(role)
    if isinstance(d, str):
        return bool((d == RECEIVE and overload_q > 0) or (d == PAY and overload_q < 0))
    q = np.asarray(overload_q, dtype=np.float64)
    dv = d.to_numpy()
    out = ((dv == RECEIVE) & (q > 0)) | ((dv == PAY) & (q < 0))
    return pd.Series(out, index=d.index, name="role_sign_mismatch")


def loss_based(loss_cny, horizon_years: int, discount_rate: float, annual_form: str = "seed001"):
    """Loss-based compensation (seed 001 names it, no formula): an annual ESV loss L over n years at r.

    ``total = sum_{t=1..n} L / (1 + r)^t`` (CNY, present value). The annual amount (CNY/yr), two
    readings of a seed that prints no formula for it:

    - ``seed001`` (default): ``annual = total / n``, the total spread evenly over the horizon;
      seed 001's own figures (229.5956 and 8.8306 x 10^6 CNY) are in this ratio, 26.0000, at
      whatever rate they were discounted;
    - ``annuity``: ``annual = total * r / (1 - (1 + r)^-n)``, the equal annual payment of that
      total (equal to L for a level stream; the seed's ratio only at r = 0).

    r = 0: ``total = n * L`` and both give ``total / n``. ``loss_cny`` CNY/yr, >= 0. Returns
    ``(total, annual)``.
    """
    where = "loss_based()"
    if not isinstance(horizon_years, int | np.integer) or horizon_years < 1:
        raise ConfigError([problem(where, "horizon_years", horizon_years, "must be an integer >= 1")])
    if not isinstance(discount_rate, Real) or not np.isfinite(discount_rate) or discount_rate < 0:
        raise ConfigError([problem(where, "discount_rate", discount_rate, "must be a number >= 0")])
    _require(loss_cny, "esv_loss_cny", _nonneg, "an annual ESV loss must be a number >= 0", where)
    if annual_form not in ANNUAL_FORMS:
        raise ConfigError([problem(where, "annual_form", annual_form, f"one of {', '.join(ANNUAL_FORMS)}")])
    n, r = int(horizon_years), float(discount_rate)
    if r == 0:
        total = loss_cny * n
        return total, total / n
    factor = float(np.sum((1.0 + r) ** -np.arange(1, n + 1, dtype=np.float64)))
    total = loss_cny * factor
    if annual_form == "seed001":
        return total, total / n
    return total, total * r / (1.0 - (1.0 + r) ** -n)


def opportunity_cost(income_per_capita, population, reference_income):
    """Opportunity cost ``OC = max(reference - income, 0) * N`` (CNY/yr; seed 000 names it; ours).

    ``income_per_capita`` and ``reference_income`` in CNY/person/yr, ``population`` persons: the
    income a county forgoes against the reference, the lower bound of the standard range beside
    the ESV-based upper bound (:func:`amount`).
    """
    where = "opportunity_cost()"
    _require(income_per_capita, "income_per_capita_cny", _nonneg, "must be a number >= 0", where)
    _require(population, "population", _positive, "must be a number > 0", where)
    _require(reference_income, "reference_income", _positive, "must be a number > 0", where)
    return np.maximum(reference_income - income_per_capita, 0.0) * population


# ---------------------------------------------------------------------------------- table


def _py(v):
    """A numpy scalar as the Python value (so messages read ``45.0``, not ``np.float64(45.0)``)."""
    return v.item() if isinstance(v, np.generic) else v


def _columns(df: pd.DataFrame, cols: Sequence[str], file: str) -> list[Problem]:
    return [problem(file, c, None, "column missing") for c in cols if c not in df.columns]


def _duplicates(df: pd.DataFrame, file: str) -> list[Problem]:
    dup = df[df.duplicated(["zone_id", "year"], keep="first")]
    return [problem(file, "zone_id", _py(z), f"year {_py(y)}: duplicate county and year")
            for z, y in zip(dup["zone_id"], dup["year"], strict=True)]


def _row_checks(df: pd.DataFrame, col: str, ok, message: str, file: str) -> list[Problem]:
    v = pd.to_numeric(df[col], errors="coerce").to_numpy(np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(v) & ok(v))
    return [problem(file, col, _py(df[col].iloc[i]), f"zone {_py(df['zone_id'].iloc[i])!r}, "
                    f"year {_py(df['year'].iloc[i])}: " + message) for i in np.flatnonzero(bad)]


def _options(variant, reference_gdp_per_capita, r_form, horizon_years, discount_rate,
             reference_income, k, annual_form="seed001") -> list[Problem]:
    where = "compensation options"
    out = []
    if not isinstance(variant, str) or not variant:
        out.append(problem(where, "variant", variant, "must be a non-empty string"))
    if r_form not in R_FORMS:
        out.append(problem(where, "r_form", r_form, "must be 'seed' or 'pearl'"))
    by_year = reference_gdp_per_capita if isinstance(reference_gdp_per_capita, Mapping) else {}
    for name, v in (("reference_gdp_per_capita", None if by_year else reference_gdp_per_capita),
                    ("reference_income", reference_income),
                    *((f"reference_gdp_per_capita[{y}]", by_year[y]) for y in by_year)):
        if v is not None and (not isinstance(v, Real) or not np.isfinite(v) or v <= 0):
            out.append(problem(where, name, v, "must be a number > 0 (or None: from the counties)"))
    if not isinstance(horizon_years, int | np.integer) or horizon_years < 1:
        out.append(problem(where, "horizon_years", horizon_years, "must be an integer >= 1"))
    if not isinstance(discount_rate, Real) or not np.isfinite(discount_rate) or discount_rate < 0:
        out.append(problem(where, "discount_rate", discount_rate, "must be a number >= 0"))
    if not isinstance(k, int | np.integer) or k < 1:
        out.append(problem(where, "k", k, "must be an integer >= 1"))
    if annual_form not in ANNUAL_FORMS:
        out.append(problem(where, "annual_form", annual_form, f"one of {', '.join(ANNUAL_FORMS)}"))
    return out


def compensation_table(
    esv: pd.DataFrame,
    stats: pd.DataFrame,
    fp: pd.DataFrame,
    *,
    variant: str,
    reference_gdp_per_capita: float | Mapping[int, float] | None,
    r_form: Literal["seed", "pearl"] = "pearl",
    loss: pd.DataFrame | None = None,
    horizon_years: int = 20,
    discount_rate: float = 0.03,
    reference_income: float | None = None,
    k: int = 5,
    files: tuple[str, str, str, str] = ("esv", "county_stats", "footprint", "esv_loss"),
    annual_form: str = "seed001",
) -> pd.DataFrame:
    """The compensation table: one row per county and year of ``stats``, every intermediate kept.

    Inputs (extra columns are ignored; rows are matched on ``zone_id`` and ``year``):

    - ``esv``: ``esv_total_cny``, ``esv_market_cny``, ``esv_nonmarket_cny`` (CNY/yr) of the
      ``variant`` (e.g. ``cultivated``: seed 003's cultivated-land ESV; ``all_land``: the grids'
      non-market ESV of every class, seed 002). Total must equal market + non-market.
    - ``stats``: :data:`STATS_COLUMNS`; ``role`` one of :data:`ROLE_DIRECTION`'s keys, population
      (persons), GDP (CNY/yr), Engel coefficients and urbanisation rate as fractions, income per
      capita (CNY/person/yr), cultivated area (ha). Its rows are the table's rows.
    - ``fp``: :func:`ecodask.science.footprint.footprint`'s output (``ef_gha``, ``ec_gha``, ``overload_q``).
    - ``loss``: ``esv_loss_cny``, the annual ESV lost through the land-use transitions ending in
      that year (CNY/yr, >= 0); a county and year without a row, or ``loss=None``, has 0. Rows
      of other zones are ignored (as in ``esv`` and ``fp``), but a ``loss`` table none of whose
      zone_ids is a county of ``stats`` is an error (a key mismatch, not a region without loss).

    Options: ``reference_gdp_per_capita`` (CNY/person/yr) for G: one figure, a figure per year
    (e.g. the national series, as seed 003's eq. 9), or None: the counties' total GDP over their
    total population, per year. A year of the statistics the series lacks is an error.
    ``reference_income`` (CNY/person/yr) for the opportunity cost; None: the population-weighted
    mean income per capita of the counties, per year (``sum(income * N) / sum(N)``).
    ``r_form``: see :func:`development_stage`.
    ``horizon_years``, ``discount_rate``, ``annual_form``: :func:`loss_based`. ``k``: the number of
    levels.
    ``files`` names the four inputs in error messages.

    Output columns :data:`TABLE_COLUMNS`, sorted by year and zone_id. ``rank`` and ``level`` are
    within (year, role). ``amount_cny = ESV_nm R G |Q|`` (CNY/yr) is >= 0 for paying and receiving
    counties alike; ``direction`` says which way it flows, ``role_sign_mismatch`` flags counties
    whose Q has the other sign than their role expects (they keep their amount).
    ``amount_1e8cny`` is the amount in 10^8 CNY as the seeds report it.
    """
    f_esv, f_stats, f_fp, f_loss = files
    problems = _options(variant, reference_gdp_per_capita, r_form, horizon_years, discount_rate,
                        reference_income, k, annual_form)
    if problems:
        raise ConfigError(problems)
    problems = (_columns(esv, ESV_COLUMNS, f_esv) + _columns(stats, STATS_COLUMNS, f_stats)
                + _columns(fp, FP_COLUMNS, f_fp))
    if loss is not None:
        problems += _columns(loss, LOSS_COLUMNS, f_loss)
    if problems:
        raise InputError(problems)
    problems = _duplicates(esv, f_esv) + _duplicates(stats, f_stats) + _duplicates(fp, f_fp)
    if loss is not None:
        problems += _duplicates(loss, f_loss)
        if len(loss) and not loss["zone_id"].isin(stats["zone_id"]).any():
            problems.append(problem(f_loss, "zone_id", _py(loss["zone_id"].iloc[0]),
                                    f"no row matches a county of {f_stats} (same ids and id type?)"))
    if problems:
        raise InputError(problems)

    keys = ["zone_id", "year"]
    t = stats[list(STATS_COLUMNS)].reset_index(drop=True)
    t = t.merge(esv[list(ESV_COLUMNS)], on=keys, how="left", indicator="_esv", validate="one_to_one")
    t = t.merge(fp[list(FP_COLUMNS)], on=keys, how="left", indicator="_fp", validate="one_to_one")
    for ind_col, file in (("_esv", f_esv), ("_fp", f_fp)):
        for i in np.flatnonzero((t[ind_col] != "both").to_numpy()):
            problems.append(problem(file, "zone_id", _py(t["zone_id"].iloc[i]),
                                    f"year {_py(t['year'].iloc[i])}: no row for this county of {f_stats}"))
    if problems:
        raise InputError(problems)
    t = t.drop(columns=["_esv", "_fp"])

    bad_roles = ~t["role"].isin(list(ROLE_DIRECTION))
    problems += [problem(f_stats, "role", _py(t["role"].iloc[i]),
                         f"zone {_py(t['zone_id'].iloc[i])!r}, year {_py(t['year'].iloc[i])}: must be one of "
                         f"{list(ROLE_DIRECTION)}") for i in np.flatnonzero(bad_roles.to_numpy())]
    engel = "an Engel coefficient is a fraction in (0, 1] (0.30, not 30 %)"
    for col, ok, msg, file in (
        ("population", _positive, "must be a number > 0", f_stats),
        ("gdp_cny", _positive, "must be a number > 0", f_stats),
        ("engel_urban", _engel, engel, f_stats),
        ("engel_rural", _engel, engel, f_stats),
        ("urbanization_rate", _fraction, "a fraction in 0..1 (0.60, not 60 %)", f_stats),
        ("income_per_capita_cny", _nonneg, "must be a number >= 0", f_stats),
        ("esv_total_cny", _nonneg, "must be a number >= 0", f_esv),
        ("esv_market_cny", _nonneg, "must be a number >= 0", f_esv),
        ("esv_nonmarket_cny", _nonneg, "must be a number >= 0", f_esv),
        ("ef_gha", _nonneg, "must be a number >= 0", f_fp),
        ("ec_gha", _positive, "must be a number > 0 (EC = 0 has no overload index)", f_fp),
        ("overload_q", lambda x: x >= -1, "must be a number >= -1", f_fp),
    ):
        problems += _row_checks(t, col, ok, msg, file)
    if problems:
        raise InputError(problems)
    for c in ("population", "gdp_cny", "engel_urban", "engel_rural", "urbanization_rate",
              "income_per_capita_cny", "esv_total_cny", "esv_market_cny", "esv_nonmarket_cny",
              "ef_gha", "ec_gha", "overload_q"):
        t[c] = pd.to_numeric(t[c]).astype(np.float64)
    split = t["esv_market_cny"] + t["esv_nonmarket_cny"]
    off = ~np.isclose(t["esv_total_cny"], split, rtol=1e-9, atol=1e-6)
    problems += [problem(f_esv, "esv_total_cny", _py(t["esv_total_cny"].iloc[i]),
                         f"zone {_py(t['zone_id'].iloc[i])!r}, year {_py(t['year'].iloc[i])}: "
                         f"is not market + non-market ({_py(split.iloc[i])!r})") for i in np.flatnonzero(off)]
    if problems:
        raise InputError(problems)

    n = t["population"]
    by_year = t.groupby("year")
    if reference_gdp_per_capita is None:
        ref_gdp = by_year["gdp_cny"].transform("sum") / by_year["population"].transform("sum")
    elif isinstance(reference_gdp_per_capita, Mapping):
        ref_gdp = t["year"].map(lambda y: reference_gdp_per_capita.get(int(y), np.nan)).astype(float)
        missing = sorted({int(y) for y in t.loc[ref_gdp.isna(), "year"]})
        if missing:
            known = f"{min(reference_gdp_per_capita)}-{max(reference_gdp_per_capita)}"
            raise ConfigError([problem("compensation options", "reference_gdp_per_capita", y,
                                       f"the reference series has no figure for year {y} (has {known})")
                               for y in missing])
    else:
        ref_gdp = pd.Series(float(reference_gdp_per_capita), index=t.index)
    if reference_income is None:
        weighted = (t["income_per_capita_cny"] * n).groupby(t["year"]).transform("sum")
        ref_income = weighted / by_year["population"].transform("sum")
    else:
        ref_income = pd.Series(float(reference_income), index=t.index)

    t["variant"] = variant
    t["direction"] = direction(t["role"]).to_numpy()
    t["engel_combined"] = combined_engel(t["engel_urban"], t["engel_rural"], t["urbanization_rate"])
    t["r_stage"] = development_stage(t["engel_urban"], t["engel_rural"], t["urbanization_rate"], form=r_form)
    t["gdp_per_capita_cny"] = t["gdp_cny"] / n
    t["g_affordability"] = affordability(t["gdp_cny"], n, ref_gdp)
    t["ind"] = priority_index(t["esv_nonmarket_cny"], t["gdp_cny"])
    t["rank"] = 0
    t["level"] = 0
    for _, idx in t.groupby("year", sort=False).groups.items():
        rank, level = priority_levels(t.loc[idx, "ind"], t.loc[idx, "role"], k=k)
        t.loc[idx, "rank"] = rank
        t.loc[idx, "level"] = level
    t["amount_cny"] = amount(t["esv_nonmarket_cny"], t["r_stage"], t["g_affordability"], t["overload_q"])
    t["amount_1e8cny"] = t["amount_cny"] / 1e8
    t["role_sign_mismatch"] = role_sign_mismatch(t["role"], t["overload_q"]).to_numpy()

    if loss is None:
        t["loss_cny_per_yr"] = 0.0
    else:
        lv = loss[list(LOSS_COLUMNS)]
        problems += _row_checks(lv, "esv_loss_cny", _nonneg, "an annual ESV loss must be a number >= 0",
                                f_loss)
        if problems:
            raise InputError(problems)
        matched = t[keys].merge(lv, on=keys, how="left", validate="one_to_one")["esv_loss_cny"]
        t["loss_cny_per_yr"] = pd.to_numeric(matched).astype(np.float64).fillna(0.0).to_numpy()
    t["loss_total_cny"], t["loss_annual_cny"] = loss_based(t["loss_cny_per_yr"], int(horizon_years),
                                                           float(discount_rate), annual_form)
    t["opportunity_cost_cny"] = opportunity_cost(t["income_per_capita_cny"], n, ref_income)

    t["r_form"] = r_form
    t["reference_gdp_per_capita"] = ref_gdp.to_numpy()
    t["horizon_years"] = int(horizon_years)
    t["discount_rate"] = float(discount_rate)
    t["annual_form"] = annual_form
    t["reference_income"] = ref_income.to_numpy()
    t["rank"] = t["rank"].astype(np.int64)
    t["level"] = t["level"].astype(np.int64)
    t["role_sign_mismatch"] = t["role_sign_mismatch"].astype(bool)
    return t[list(TABLE_COLUMNS)].sort_values(["year", "zone_id"], kind="stable").reset_index(drop=True)


def role_totals(table: pd.DataFrame, by: Literal["role", "direction"] = "role") -> pd.DataFrame:
    """Sums of a :func:`compensation_table` per (variant, year, role) or per (variant, year, direction).

    Columns: the keys (and ``direction`` beside ``role``), ``counties``, ``amount_cny``,
    ``amount_1e8cny``, ``esv_nonmarket_cny``, ``loss_annual_cny``, ``opportunity_cost_cny`` (sums,
    CNY/yr; mismatched counties included) and ``sign_mismatches`` (count). The amounts of a role's
    counties add up to the role's ``amount_cny``.
    """
    if by not in ("role", "direction"):
        raise ConfigError([problem("role_totals()", "by", by, "must be 'role' or 'direction'")])
    keys = ["variant", "year", "role", "direction"] if by == "role" else ["variant", "year", "direction"]
    out = table.groupby(keys, sort=True).agg(
        counties=("zone_id", "size"),
        amount_cny=("amount_cny", "sum"),
        amount_1e8cny=("amount_1e8cny", "sum"),
        esv_nonmarket_cny=("esv_nonmarket_cny", "sum"),
        loss_annual_cny=("loss_annual_cny", "sum"),
        opportunity_cost_cny=("opportunity_cost_cny", "sum"),
        sign_mismatches=("role_sign_mismatch", "sum"),
    ).reset_index()
    out["sign_mismatches"] = out["sign_mismatches"].astype(np.int64)
    return out
