"""Catalog entries as types: class schemes, ESV coefficient tables and footprint tables.

Pure data, checked on construction (pydantic); loading them from YAML is
:mod:`ecodask.io.catalogs`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClassInfo(_Strict):
    name: str
    color: str = Field(pattern=r"^#[0-9A-Fa-f]{6}$")


class ScenarioRule(_Strict):
    """A restriction of a land-use scenario: the transitions out of the classes ``out_of`` into the
    classes ``into`` (default: every other class), by class name, scaled by ``factor`` (0: forbidden)."""

    out_of: list[str] = Field(min_length=1)
    into: list[str] | None = None
    factor: float = Field(ge=0, le=1)


class ClassScheme(_Strict):
    """Codes of a land-cover product and their mappings onto ESV class sets; ``scenarios``: the named
    land-use scenarios a run projects when its configuration names none."""

    name: str
    title: str
    source: str
    nodata: int = Field(ge=0, le=255)
    classes: dict[int, ClassInfo]
    mappings: dict[str, dict[int, str]]
    scenarios: dict[str, list[ScenarioRule]] = {}

    @model_validator(mode="after")
    def _codes(self) -> ClassScheme:
        for code in self.classes:
            if not 0 <= code <= 255 or code == self.nodata:
                raise ValueError(f"class code {code} must be 0..255 and not the nodata code")
        for set_name, mapping in self.mappings.items():
            unknown = sorted(set(mapping) - set(self.classes))
            if unknown:
                raise ValueError(f"mappings.{set_name} maps codes {unknown} not in classes")
        for name, rules in self.scenarios.items():
            bad = scenario_rule_problems(rules, [c.name for c in self.classes.values()], self.name)
            if bad:
                where, value, message = bad[0]
                raise ValueError(f"scenarios.{name}.{where} = {value!r}: {message}")
        return self

    def mapping_to(self, class_set: str) -> dict[int, str]:
        """Source code -> ESV class for ``class_set``."""
        return self.mappings[class_set]


def scenario_rule_problems(rules: list[ScenarioRule], names: list[str], scheme: str,
                           ) -> list[tuple[str, list[str], str]]:
    """What is wrong with ``rules`` for the class scheme ``scheme`` whose classes are ``names``: class
    names it does not have, as (where: the rule's place and field, e.g. ``0.out_of``, its value,
    the message)."""
    out = []
    for k, rule in enumerate(rules):
        for field, given in (("out_of", rule.out_of), ("into", rule.into or [])):
            unknown = [c for c in given if c not in names]
            if unknown:
                out.append((f"{k}.{field}", list(given), f"{', '.join(map(repr, unknown))} not a class of "
                            f"scheme {scheme!r} ({', '.join(names)})"))
    return out


Group = Literal["provisioning", "regulating", "supporting", "cultural"]


class Service(_Strict):
    """One ecosystem service of an ESV table: its group, and ``market`` only where the service is
    on the other side of the table's market split than its group (see ``EsvTable.market_groups``)."""

    name: str
    group: Group
    market: bool | None = None


class StandardEquivalent(_Strict):
    value: float = Field(gt=0)
    units: Literal["CNY/ha/yr"]
    note: str = ""


class CellRange(_Strict):
    """The uncertainty of one coefficient of an ESV table, in the table's units: ``uniform`` or
    ``triangular`` (mode at the table's value) between ``low`` and ``high``, or, with ``spread``, between
    ``value x (1 - spread)`` and ``value x (1 + spread)``."""

    distribution: Literal["uniform", "triangular"] = "uniform"
    spread: Annotated[float, Field(ge=0, lt=1)] | None = None
    low: float | None = None
    high: float | None = None

    @model_validator(mode="after")
    def _one_way(self) -> CellRange:
        given = (self.low is not None, self.high is not None)
        if self.spread is None and given != (True, True):
            raise ValueError("give either spread or both low and high")
        if self.spread is not None and any(given):
            raise ValueError("give spread or low and high, not both")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low {self.low} is above high {self.high}")
        return self

    def bounds(self, value: float) -> tuple[float, float]:
        """(low, high) of the coefficient whose table value is ``value``."""
        if self.spread is not None:
            a, b = value * (1.0 - self.spread), value * (1.0 + self.spread)
            return min(a, b), max(a, b)
        return float(self.low), float(self.high)  # type: ignore[arg-type]


class TableUncertainty(_Strict):
    """How uncertain a table's coefficients are: ``cells[service][class]`` where the source gives a
    range, ``default`` for the rest (none: the run's ``esv.uncertainty.spread``)."""

    default: CellRange | None = None
    source: str = ""
    cells: dict[str, dict[str, CellRange]] = {}


class EsvTable(_Strict):
    """ESV coefficients per unit area: ``values[service][class]``.

    ``kind: value`` tables are in CNY/ha/yr; ``kind: equivalent`` tables are multiples of one
    standard equivalent (CNY/ha/yr), given as ``standard_equivalent`` or computed from crop data. A
    table of values may state as ``standard_equivalent`` the one its values were derived with (its
    price basis): equivalent-factor tables drawn beside it in the Monte Carlo are valued at it.
    """

    name: str
    title: str
    units: Literal["CNY/ha/yr", "equivalent"]
    kind: Literal["value", "equivalent"]
    class_set: str
    source: str
    verification: str
    classes: dict[str, str]
    services: list[Service]
    values: dict[str, dict[str, float]]
    standard_equivalent: StandardEquivalent | None = None
    verified: dict[str, bool] | None = None
    market_groups: list[Group] = Field(
        default_factory=lambda: ["provisioning"],
        description="groups whose services are the market part of the ESV (seed 003, Table 3: every "
        "provisioning service); a service's own ``market`` flag overrides its group's")
    notes: list[str] = Field(default_factory=list,
                             description="what a reader of a run's numbers should know of the table")
    uncertainty: TableUncertainty = TableUncertainty()

    @model_validator(mode="after")
    def _complete(self) -> EsvTable:
        if (self.kind == "value") != (self.units == "CNY/ha/yr"):
            raise ValueError(f"kind {self.kind!r} does not fit units {self.units!r}")
        names = [s.name for s in self.services]
        if len(set(names)) != len(names):
            raise ValueError("services are not unique")
        if set(self.values) != set(names):
            raise ValueError(
                f"values must have exactly the services {names}, has {sorted(self.values)}"
            )
        for svc, row in self.values.items():
            if set(row) != set(self.classes):
                raise ValueError(
                    f"values.{svc} must have exactly the classes {list(self.classes)}, "
                    f"has {list(row)}"
                )
        for svc, row in self.uncertainty.cells.items():
            for cls, rng in row.items():
                if svc not in self.values or cls not in self.classes:
                    raise ValueError(f"uncertainty.cells.{svc}.{cls}: no such service or class")
                low, high = rng.bounds(self.values[svc][cls])
                if not low <= self.values[svc][cls] <= high:
                    raise ValueError(f"uncertainty.cells.{svc}.{cls}: [{low}, {high}] does not hold the "
                                     f"table's value {self.values[svc][cls]}")
        return self

    @property
    def service_names(self) -> list[str]:
        return [s.name for s in self.services]

    def is_market(self, service: Service) -> bool:
        """Whether ``service`` is in the market part: its own flag, else its group's side."""
        return service.group in self.market_groups if service.market is None else service.market

    @property
    def market_services(self) -> list[str]:
        """The services of the market part, in table order; the rest are non-market."""
        return [s.name for s in self.services if self.is_market(s)]


class ErrorMatrix(_Strict):
    """A land-cover map's accuracy assessment: sample counts ``counts[map code][reference code]`` of a
    class scheme's codes (rows: the map class, the strata of a stratified random sample; columns: the
    reference class), as Olofsson et al. (2014) use it for area-adjusted estimates."""

    name: str
    title: str
    scheme: str
    source: str
    verification: str
    notes: list[str] = Field(default_factory=list)
    counts: dict[int, dict[int, Annotated[int, Field(ge=0)]]] = Field(min_length=2)

    @model_validator(mode="after")
    def _square(self) -> ErrorMatrix:
        codes = set(self.counts)
        for code, row in self.counts.items():
            extra = sorted(set(row) - codes)
            if extra:
                raise ValueError(f"counts.{code}: reference codes {extra} are not map codes (rows)")
        return self

    @property
    def codes(self) -> list[int]:
        """The classes of the matrix, in ascending code order."""
        return sorted(self.counts)


class GdpPerCapita(_Strict):
    """A reference GDP per capita by year (CNY/person): the denominator of the affordability
    index G (seed 003, eq. 9, divides by the national figure)."""

    name: str
    title: str
    units: Literal["CNY/person"]
    prices: Literal["current", "constant"]
    source: str
    verification: str
    notes: list[str] = Field(default_factory=list)
    values: dict[Annotated[int, Field(ge=1900, le=2200)], Annotated[float, Field(gt=0)]] = Field(min_length=1)

    @property
    def years(self) -> str:
        """The years covered, e.g. '2000-2024'."""
        return f"{min(self.values)}-{max(self.values)}"


class FootprintItem(_Strict):
    """One consumption item: per-capita consumption c_i (kg/person/yr), world average yield p_i (kg/ha)."""

    c_kg_per_capita: float = Field(gt=0)
    p_kg_per_ha: float = Field(gt=0)


class FootprintTable(_Strict):
    """Items and factors of the cultivated-land ecological footprint (methods.md section 7).

    ``items[i]`` gives c_i and p_i; ``equivalence_factor`` is r (gha/ha, 2.52 for cropland),
    ``yield_factor`` y (dimensionless, 1.28) and ``biodiversity_reserve`` the fraction of the
    capacity set aside for biodiversity (0.035 in seed 003: the 12 % of productive land of "Our
    Common Future", scaled to cultivated land's ~30 % share of Hubei, revised to 3.5 %).
    """

    name: str
    title: str
    source: str
    verification: str
    items: dict[str, FootprintItem] = Field(min_length=1)
    equivalence_factor: float = Field(gt=0)
    yield_factor: float = Field(gt=0)
    biodiversity_reserve: float = Field(ge=0, lt=1)

    @property
    def ha_per_capita(self) -> float:
        """``sum_i c_i / p_i``: cultivated land (ha) one person's consumption needs, before r."""
        return sum(it.c_kg_per_capita / it.p_kg_per_ha for it in self.items.values())
