"""Accounting configuration: plants, members, configurations, statute, yearly parameters.

Validated with pydantic; :func:`parse_accounting_config` turns validation failures into a
:class:`~ems.errors.ConfigError` naming the file, the field path and the problem.

Rules encoded here (SPEC §6):
- a plant is *pre-existing* if it entered service before 16 Dec 2021: it counts for shared energy
  and valorisation, never for the TIP, and pre-existing power is at most 30 % of the
  configuration's power;
- plant power at most 1 MW (DM 414/2023), capital grant at most 40 %;
- FC (PV only) depends on the region: North +10 €/MWh, Centre +4 €/MWh, elsewhere 0.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ems.errors import ConfigError

from .rules import NORTH_REGIONS, fc_eur_per_mwh, grant_factor

#: Plants in service before this date are pre-existing (ARERA TIAD / DM 414/2023).
PRE_EXISTING_BEFORE = date(2021, 12, 16)
#: Years of TIP from entry into service (DM 414/2023).
TIP_YEARS = 20
#: Pre-existing plants may be at most this share of the configuration's power.
PRE_EXISTING_MAX_SHARE = Decimal("0.30")

_REGION_ALIASES: dict[str, str] = {
    "piemonte": "Piemonte",
    "piedmont": "Piemonte",
    "valle d'aosta": "Valle d'Aosta",
    "valle daosta": "Valle d'Aosta",
    "aosta valley": "Valle d'Aosta",
    "lombardia": "Lombardia",
    "lombardy": "Lombardia",
    "trentino-alto adige": "Trentino-Alto Adige",
    "trentino alto adige": "Trentino-Alto Adige",
    "trentino": "Trentino-Alto Adige",
    "veneto": "Veneto",
    "friuli-venezia giulia": "Friuli-Venezia Giulia",
    "friuli venezia giulia": "Friuli-Venezia Giulia",
    "liguria": "Liguria",
    "emilia-romagna": "Emilia-Romagna",
    "emilia romagna": "Emilia-Romagna",
    "toscana": "Toscana",
    "tuscany": "Toscana",
    "umbria": "Umbria",
    "marche": "Marche",
    "lazio": "Lazio",
    "abruzzo": "Abruzzo",
    "molise": "Molise",
    "campania": "Campania",
    "puglia": "Puglia",
    "apulia": "Puglia",
    "basilicata": "Basilicata",
    "calabria": "Calabria",
    "sicilia": "Sicilia",
    "sicily": "Sicilia",
    "sardegna": "Sardegna",
    "sardinia": "Sardegna",
}

#: Default market zone of each region (Terna zones from 2021); override per plant if needed.
REGION_ZONE: dict[str, str] = {
    **{r: "NORD" for r in NORTH_REGIONS},
    "Toscana": "CNOR",
    "Marche": "CNOR",
    "Umbria": "CSUD",
    "Lazio": "CSUD",
    "Abruzzo": "CSUD",
    "Campania": "CSUD",
    "Molise": "SUD",
    "Puglia": "SUD",
    "Basilicata": "SUD",
    "Calabria": "CALA",
    "Sicilia": "SICI",
    "Sardegna": "SARD",
}
MARKET_ZONES = frozenset({"NORD", "CNOR", "CSUD", "SUD", "CALA", "SICI", "SARD"})

_POD_RE = re.compile(r"^IT[0-9A-Z]{12,13}$")


class Technology(str, Enum):
    pv = "pv"
    wind = "wind"
    hydro = "hydro"
    biomass = "biomass"
    other = "other"


class MemberKind(str, Enum):
    household = "household"
    company = "company"
    public_body = "public_body"
    third_sector = "third_sector"
    religious_body = "religious_body"
    environmental_body = "environmental_body"
    large_company = "large_company"  # not an SME: may not be a CER member (D.Lgs. 199/2021 art. 31)


#: F (capital grant reduction) does not apply to the shared energy of these members' withdrawal
#: points: natural persons (``household``), public, religious, third-sector and
#: environmental-protection bodies (DM 127/2025; GSE Regole Operative CACER, July 2025 update).
#: Companies are the only kind F applies to.
F_EXEMPT_KINDS = frozenset(
    {
        MemberKind.household,
        MemberKind.public_body,
        MemberKind.third_sector,
        MemberKind.religious_body,
        MemberKind.environmental_body,
    }
)


def _norm_pod(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip().upper()
        if not _POD_RE.match(value):
            raise ValueError(
                f"{value!r} is not a POD (expected IT + 12-13 letters/digits, e.g. IT001E12345678)"
            )
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class Plant(_Model):
    """A production plant of a configuration (its POD injects into the grid)."""

    id: str = Field(min_length=1)
    pod: str
    power_kw: Decimal = Field(gt=0, le=1000, description="rated power, kW (≤ 1 MW for the TIP)")
    technology: Technology = Technology.pv
    entry_into_service: date
    region: str
    market_zone: str | None = None
    capital_grant_pct: Decimal = Field(default=Decimal(0), ge=0, le=40)
    cabina_primaria: str = Field(min_length=1)
    owner: str | None = Field(
        default=None, description="member id that owns the plant (gets the sale)"
    )
    building: str | None = Field(
        default=None, description="building / condominium id (groups of self-consumers)"
    )
    admitted_before_constitution: bool = Field(
        default=False,
        description="the GSE admitted this plant to the TIP although it entered service before "
        "the CER was constituted (an exception of the Regole Operative)",
    )

    _pod = field_validator("pod", mode="before")(_norm_pod)

    @field_validator("region", mode="before")
    @classmethod
    def _region(cls, value: Any) -> Any:
        if isinstance(value, str):
            key = value.strip().lower().replace("’", "'")
            if key not in _REGION_ALIASES:
                raise ValueError(f"unknown Italian region {value!r}")
            return _REGION_ALIASES[key]
        return value

    @model_validator(mode="after")
    def _zone(self) -> Plant:
        zone = (self.market_zone or REGION_ZONE[self.region]).upper()
        if zone not in MARKET_ZONES:
            raise ValueError(f"market_zone {zone!r} is not one of {sorted(MARKET_ZONES)}")
        object.__setattr__(self, "market_zone", zone)
        return self

    @property
    def pre_existing(self) -> bool:
        """In service before 16 Dec 2021: shared energy and valorisation, no TIP."""
        return self.entry_into_service < PRE_EXISTING_BEFORE

    @property
    def tip_end(self) -> date:
        """First day without TIP (entry into service + 20 years)."""
        d = self.entry_into_service
        try:
            return d.replace(year=d.year + TIP_YEARS)
        except ValueError:  # 29 February
            return d.replace(year=d.year + TIP_YEARS, day=28)

    @property
    def fc_eur_per_mwh(self) -> Decimal:
        """FC, PV only, added after the cap: North +10, Centre +4 €/MWh (DM 414/2023 Annex 1)."""
        return fc_eur_per_mwh(self.technology.value, self.region)

    @property
    def f_factor(self) -> Decimal:
        """F = 0.5 × grant % / 40 (DM 414/2023 Annex 1)."""
        return grant_factor(self.capital_grant_pct)

    @property
    def has_grant(self) -> bool:
        return self.capital_grant_pct > 0


class Member(_Model):
    """A final customer of a configuration (its POD withdraws from the grid)."""

    id: str = Field(min_length=1)
    pod: str
    kind: MemberKind = MemberKind.household
    cabina_primaria: str = Field(min_length=1)
    joined: date | None = None
    left: date | None = None
    building: str | None = Field(
        default=None, description="building / condominium id (groups of self-consumers)"
    )
    customer: str | None = Field(
        default=None,
        description="final customer holding the POD (remote self-consumer: one customer, "
        "several PODs); default: the member id",
    )

    _pod = field_validator("pod", mode="before")(_norm_pod)

    @model_validator(mode="after")
    def _dates(self) -> Member:
        if self.joined and self.left and self.left <= self.joined:
            raise ValueError("left must be after joined")
        return self

    def active_on(self, day: date) -> bool:
        return (self.joined is None or day >= self.joined) and (
            self.left is None or day < self.left
        )

    @property
    def f_exempt(self) -> bool:
        return self.kind in F_EXEMPT_KINDS


class AllocationPot(_Model):
    """One share of the distributable incentive, split among members by one method."""

    share_pct: Decimal = Field(default=Decimal(100), gt=0, le=100)
    method: Literal["by_withdrawn", "by_injected", "fixed", "weights"] = "by_withdrawn"
    quotas: dict[str, Decimal] | None = Field(
        default=None, description="fixed: member id → % (sum 100); weights: member id → weight ≥ 0"
    )

    @model_validator(mode="after")
    def _quotas(self) -> AllocationPot:
        if self.method in ("fixed", "weights"):
            if not self.quotas:
                raise ValueError(f"method {self.method} needs quotas (member id → value)")
            if any(v < 0 for v in self.quotas.values()):
                raise ValueError("quotas must be ≥ 0")
            if self.method == "fixed" and sum(self.quotas.values()) != 100:
                raise ValueError(f"fixed quotas must sum to 100, got {sum(self.quotas.values())}")
            if self.method == "weights" and sum(self.quotas.values()) <= 0:
                raise ValueError("weights must not all be zero")
        elif self.quotas:
            raise ValueError(f"quotas are only for methods fixed and weights, not {self.method}")
        return self


class Statute(_Model):
    """How the community splits TIP + valorisation among members (the CER's statute)."""

    allocation: list[AllocationPot] = Field(default_factory=lambda: [AllocationPot()])

    @field_validator("allocation")
    @classmethod
    def _sum(cls, pots: list[AllocationPot]) -> list[AllocationPot]:
        if not pots:
            raise ValueError("at least one allocation pot")
        total = sum(p.share_pct for p in pots)
        if total != 100:
            raise ValueError(f"share_pct of the allocation pots must sum to 100, got {total}")
        return pots


class ConfigType(str, Enum):
    """CACER configuration types incentivised by DM 414/2023 (art. 2; ARERA TIAD art. 1)."""

    cer = "cer"  # renewable energy community (comunità di energia rinnovabile)
    group = "group_of_self_consumers"  # gruppo di autoconsumatori che agiscono collettivamente
    remote = "remote_self_consumer"  # autoconsumatore individuale a distanza (uses the grid)


class Configuration(_Model):
    """A CACER configuration: the plants and members whose hourly shared energy is incentivised.

    - ``cer``: perimeter the cabina primaria (shared energy per cabina); members of any kind;
      a plant gets TIP only if it entered service on or after ``constituted`` (DM 414/2023
      art. 3: the CER must be constituted when its plants enter service);
    - ``group_of_self_consumers``: at least two final customers and their plants in one building
      or condominium (``building`` on every plant and member); valorisation adds the avoided-losses
      term (TIAD);
    - ``remote_self_consumer``: one final customer (all members share one ``customer``) with
      plants in the same cabina primaria; valorisation as the CER.
    """

    id: str = Field(min_length=1)
    name: str = ""
    type: ConfigType = ConfigType.cer
    constituted: date | None = Field(
        default=None, description="CER: date of constitution (TIP only for plants entering later)"
    )
    plants: list[Plant] = Field(min_length=1)
    members: list[Member] = Field(min_length=1)
    statute: Statute = Field(default_factory=Statute)

    @model_validator(mode="after")
    def _by_type(self) -> Configuration:
        if self.type == ConfigType.group:
            if len({m.customer or m.id for m in self.members}) < 2:
                raise ValueError("a group of self-consumers needs at least two final customers")
            if len(self.cabine) != 1:
                raise ValueError(
                    "a group of self-consumers is one building: all its PODs are under one cabina "
                    f"primaria (found {self.cabine})"
                )
            buildings = {x.building for x in [*self.plants, *self.members]}
            if None in buildings or len(buildings) != 1:
                raise ValueError(
                    "a group of self-consumers is one building: give the same `building` on "
                    f"every plant and member (found {sorted(str(b) for b in buildings)})"
                )
        if self.type == ConfigType.remote:
            customers = {m.customer or m.id for m in self.members}
            if len(customers) != 1:
                raise ValueError(
                    "a remote self-consumer is one final customer: give every member the same "
                    f"`customer` (found {sorted(customers)})"
                )
        if self.type == ConfigType.cer:
            large = [m.id for m in self.members if m.kind == MemberKind.large_company]
            if large:
                raise ValueError(
                    f"member(s) {large} are large companies: a CER's members are natural persons, "
                    "SMEs, public, religious, third-sector and environmental bodies (D.Lgs. "
                    "199/2021 art. 31)"
                )
        if self.type != ConfigType.cer and self.constituted is not None:
            raise ValueError("`constituted` is for CERs only")
        return self

    def tip_eligible_by_constitution(self, plant: Plant) -> bool:
        """CER: the plant entered service on or after the constitution (unknown date → True,
        reported as a missing parameter by the statement)."""
        if self.type != ConfigType.cer or self.constituted is None:
            return True
        if plant.admitted_before_constitution:
            return True
        return plant.entry_into_service >= self.constituted

    @model_validator(mode="after")
    def _consistency(self) -> Configuration:
        for label, items in (("plant", self.plants), ("member", self.members)):
            ids = [x.id for x in items]
            dup = {i for i in ids if ids.count(i) > 1}
            if dup:
                raise ValueError(f"duplicate {label} id(s): {sorted(dup)}")
            pods = [x.pod for x in items]
            dup = {p for p in pods if pods.count(p) > 1}
            if dup:
                raise ValueError(f"POD(s) used by more than one {label}: {sorted(dup)}")
        member_ids = {m.id for m in self.members}
        for p in self.plants:
            if p.owner is not None and p.owner not in member_ids:
                raise ValueError(f"plant {p.id}: owner {p.owner!r} is not a member of {self.id}")
        for pot in self.statute.allocation:
            if pot.method == "by_injected" and not any(p.owner for p in self.plants):
                raise ValueError("statute method by_injected needs plants with an owner member")
            for mid in pot.quotas or {}:
                if mid not in member_ids:
                    raise ValueError(
                        f"statute quota for {mid!r}, which is not a member of {self.id}"
                    )
        total_kw = sum(p.power_kw for p in self.plants)
        old_kw = sum(p.power_kw for p in self.plants if p.pre_existing)
        if old_kw > PRE_EXISTING_MAX_SHARE * total_kw:
            raise ValueError(
                f"pre-existing plants (before {PRE_EXISTING_BEFORE}) are {old_kw} of {total_kw} kW, "
                f"more than 30 % of the configuration's power"
            )
        return self

    def plants_by_entry(self, cabina: str | None = None) -> list[Plant]:
        """Plants in order of entry into service (ties by id): the attribution order of TIAD."""
        ps = [p for p in self.plants if cabina is None or p.cabina_primaria == cabina]
        return sorted(ps, key=lambda p: (p.entry_into_service, p.id))

    @property
    def cabine(self) -> list[str]:
        return sorted(
            {p.cabina_primaria for p in self.plants} | {m.cabina_primaria for m in self.members}
        )

    def fingerprint(self, valorisation: dict[int, ValorisationParams]) -> str:
        """Hash of everything the ledger figures depend on (for the audit trail)."""
        payload = {
            "config": self.model_dump(mode="json"),
            "valorisation": {
                str(k): v.model_dump(mode="json") for k, v in sorted(valorisation.items())
            },
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


class ValorisationParams(_Model):
    """Yearly parameters (one local year): ARERA valorisation (TIAD: CU_Af = TRAS_E + BTAU,
    €/MWh), the avoided-losses coefficient of groups of self-consumers (TIAD), and the GSE fees
    (DM MASE 106/2024: a fixed fee per plant and a variable fee by plant power). ``None`` = not
    known: the statement names it as a missing parameter and the command exits non-zero."""

    tras_e_eur_per_mwh: Decimal | None = None
    btau_eur_per_mwh: Decimal | None = None
    avoided_losses_coefficient: Decimal | None = Field(default=None, ge=0, le=Decimal("0.2"))
    gse_fee_fixed_eur_per_plant_year: Decimal | None = Field(default=None, ge=0)
    gse_fee_variable_eur_per_kw_year: Decimal | None = Field(default=None, ge=0)
    source: str = ""

    @property
    def total_eur_per_mwh(self) -> Decimal | None:
        if self.tras_e_eur_per_mwh is None or self.btau_eur_per_mwh is None:
            return None
        return self.tras_e_eur_per_mwh + self.btau_eur_per_mwh

    def merged(self, override: ValorisationParams | None) -> ValorisationParams:
        """These values with every field ``override`` sets taken from it."""
        if override is None:
            return self
        upd = {k: v for k, v in override.model_dump().items() if v not in (None, "")}
        return self.model_copy(update=upd)


#: How to set a missing yearly parameter (shown by the report).
PARAMETER_HINTS = {
    "valorisation": "set parameters: {YEAR: {tras_e_eur_per_mwh: …, btau_eur_per_mwh: …}} in the "
    "accounting YAML (ARERA publishes TRAS_E and BTAU each year) or in "
    "ems/data/accounting_parameters.yaml",
    "avoided_losses": "set parameters: {YEAR: {avoided_losses_coefficient: …}} (TIAD c_PR, "
    "e.g. 0.012 for 1.2 %)",
    "gse_fees": "set parameters: {YEAR: {gse_fee_fixed_eur_per_plant_year: …, "
    "gse_fee_variable_eur_per_kw_year: …}} from your GSE contract (DM MASE 106/2024)",
    "constituted": "set `constituted: YYYY-MM-DD` on the CER configuration",
}


class AccountingConfig(_Model):
    """The whole accounting file: a community with one or more configurations."""

    community: str = Field(min_length=1)
    configurations: list[Configuration] = Field(min_length=1)
    parameters: dict[int, ValorisationParams] = Field(
        default_factory=dict, description="yearly parameters overriding the shipped data file"
    )
    valorisation: dict[int, ValorisationParams] = Field(
        default_factory=dict, description="legacy name of `parameters`"
    )
    default_parameters: dict[int, ValorisationParams] = Field(
        default_factory=dict,
        description="the shipped data file (ems/data/accounting_parameters.yaml), set by the loader",
    )

    @model_validator(mode="before")
    @classmethod
    def _removed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "surplus_basis" in data:
            raise ValueError(
                "surplus_basis was removed: the surplus is computed per set of plants as the GSE "
                "does (Regole Operative CACER 2025); delete the key"
            )
        return data

    @model_validator(mode="after")
    def _unique(self) -> AccountingConfig:
        ids = [c.id for c in self.configurations]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"duplicate configuration id(s): {sorted(dup)}")
        seen: dict[tuple[str, str], str] = {}
        for c in self.configurations:
            for role, items in (("plant", c.plants), ("member", c.members)):
                for x in items:
                    other = seen.get((role, x.pod))
                    if other and other != c.id:
                        raise ValueError(
                            f"{role} POD {x.pod} is in configurations {other} and {c.id}"
                        )
                    seen[(role, x.pod)] = c.id
        return self

    @property
    def valorisation_params(self) -> dict[int, ValorisationParams]:
        """Yearly parameters: the data file, overridden field by field by the configuration."""
        years = set(self.default_parameters) | set(self.valorisation) | set(self.parameters)
        out = {}
        for y in sorted(years):
            p = self.default_parameters.get(y, ValorisationParams())
            out[y] = p.merged(self.valorisation.get(y)).merged(self.parameters.get(y))
        return out

    def configuration(self, config_id: str) -> Configuration:
        for c in self.configurations:
            if c.id == config_id:
                return c
        raise KeyError(config_id)


def _loc(loc: tuple[Any, ...], data: Any) -> str:
    """Readable field path, naming list items by their id when they have one."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            if (
                isinstance(node, list)
                and 0 <= item < len(node)
                and isinstance(node[item], dict)
                and "id" in node[item]
            ):
                label = f"[{node[item]['id']}]"
            parts.append(label)
            node = node[item] if isinstance(node, list) and 0 <= item < len(node) else None
        else:
            parts.append(("." if parts else "") + str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"


def parse_year_parameters(data: Any, file: str = "<parameters>") -> dict[int, ValorisationParams]:
    """Validate the yearly-parameter data file (``{years: {YYYY: {...}}}``)."""
    if not isinstance(data, dict) or not isinstance(data.get("years"), dict):
        raise ConfigError(file, "years", "expected a mapping YYYY → parameters")
    out = {}
    for year, values in data["years"].items():
        try:
            out[int(year)] = ValorisationParams.model_validate(values or {})
        except (ValidationError, ValueError) as exc:
            raise ConfigError(file, f"years.{year}", str(exc).splitlines()[0]) from None
    return out


def parse_accounting_config(
    data: Any,
    file: str = "<config>",
    default_parameters: dict[int, ValorisationParams] | None = None,
) -> AccountingConfig:
    """Validate a parsed YAML/JSON mapping; raise :class:`ConfigError` (file, field, problem).
    ``default_parameters``: the shipped yearly parameters (see :func:`parse_year_parameters`)."""
    if isinstance(data, dict) and default_parameters is not None:
        data = {**data, "default_parameters": default_parameters}
    if not isinstance(data, dict):
        raise ConfigError(
            file, "(top level)", "expected a mapping with community and configurations"
        )
    try:
        return AccountingConfig.model_validate(data)
    except ValidationError as exc:
        errs = exc.errors()
        first = errs[0]
        problem = first["msg"].removeprefix("Value error, ")
        if len(errs) > 1:
            problem += f" (and {len(errs) - 1} more problem(s))"
        raise ConfigError(file, _loc(tuple(first["loc"]), data), problem) from None
