"""Monthly and annual statements from the ledger: totals per configuration, plant and member,
the surplus rule, member allocation per statute, and their CSV / Markdown text.

Choices (documented in docs/accounting.md):
- totals count **complete hours only** (every expected meter and the zonal price present); the
  incomplete hours are listed with what is missing, and the shared energy measured in them (a lower
  bound) is shown apart, never added;
- money is summed exactly from the hourly ledger and rounded half-up to the cent once per figure;
- the surplus rule is computed per set of plants (TIP only, 55 %; TIP + capital grant, 45 %) as
  the GSE does (Regole Operative CACER 2025), on the statement's period: binding on an annual
  statement (the yearly conguaglio), indicative on a monthly one; the annual statement also shows
  the sum of the twelve monthly figures and the difference the conguaglio settles;
- the community's incentive (TIP + valorisation, in cents) is split: first the surplus share to
  non-company members (by their share of shared energy; equally if that is zero for all; to
  "social purposes" if there is no such member), then the rest by the statute's pots; each split
  uses the largest-remainder method so the cents always add up to the total;
- the sale of injected energy (ritiro dedicato) belongs to each plant's producer: it is reported
  per plant and per owner member, not allocated.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from fractions import Fraction

from .config import PARAMETER_HINTS, AccountingConfig, ConfigType, Configuration, MemberKind
from .ledger import ConfigHour, is_parameter_gap
from .readings import INJECTED, WITHDRAWN
from .rules import SurplusPlant, SurplusSet, surplus_by_set, to_cents
from .timeutil import local_day, local_label, time_band

SOCIAL_PURPOSES = "(social purposes)"


@dataclass
class PlantTotals:
    plant_id: str
    owner: str | None
    power_kw: Decimal
    pre_existing: bool
    has_grant: bool = False
    tip_eligible: bool = True  # earned TIP in at least one hour (or could have)
    injected_wh: int = 0
    shared_wh: int = 0
    tip_shared_wh: int = 0  # shared energy that earned TIP
    tip_eur_exact: Decimal = Decimal(0)
    valorisation_eur_exact: Decimal = Decimal(0)
    sale_eur_exact: Decimal = Decimal(0)

    @property
    def tip_eur(self) -> Decimal:
        return to_cents(self.tip_eur_exact)

    @property
    def valorisation_eur(self) -> Decimal:
        return to_cents(self.valorisation_eur_exact)

    @property
    def sale_eur(self) -> Decimal:
        return to_cents(self.sale_eur_exact)

    @property
    def surplus_set(self) -> str:
        return "" if self.pre_existing else ("tip_plus_grant" if self.has_grant else "tip_only")


@dataclass
class MemberTotals:
    member_id: str
    kind: MemberKind
    withdrawn_wh: int = 0
    shared_share_wh: Decimal = Decimal(0)
    plants_shared_wh: int = 0  # shared energy attributed to the plants the member owns
    sale_eur: Decimal = Decimal("0.00")  # of the plants the member owns
    allocation_eur: Decimal = Decimal("0.00")  # statute share of TIP + valorisation
    surplus_eur: Decimal = Decimal("0.00")  # part of allocation_eur from the surplus rule


@dataclass
class DayTotals:
    day: date
    hours: int
    complete_hours: int
    shared_wh: int = 0
    tip_eur_exact: Decimal = Decimal(0)
    valorisation_eur_exact: Decimal = Decimal(0)


@dataclass
class MissingRange:
    subject: str
    first_hour: str  # local label
    last_hour: str
    hours: int


@dataclass
class Statement:
    config_id: str
    name: str
    period: str
    annual: bool
    hours_expected: int
    hours_complete: int
    injected_wh: int = 0
    withdrawn_wh: int = 0
    shared_wh: int = 0
    tip_eur_exact: Decimal = Decimal(0)
    valorisation_eur_exact: Decimal = Decimal(0)
    sale_eur_exact: Decimal = Decimal(0)
    incomplete_shared_wh_lower_bound: int = 0
    corrected_hours: int = 0
    stale_hours: int = 0
    hours_with_data: int = 0  # hours with a ledger row (complete or not)
    shared_by_band_wh: dict[str, int] = field(default_factory=lambda: {"F1": 0, "F2": 0, "F3": 0})
    shared_by_cabina_wh: dict[str, int] = field(default_factory=dict)
    daily: list[DayTotals] = field(default_factory=list)
    missing: list[MissingRange] = field(default_factory=list)
    plants: list[PlantTotals] = field(default_factory=list)
    members: list[MemberTotals] = field(default_factory=list)
    social_purposes_eur: Decimal = Decimal("0.00")
    surplus_sets: list[SurplusSet] = field(default_factory=list)
    #: annual statements: the surplus of each month, summed per set (what monthly statements showed)
    monthly_surplus_sets: dict[str, Decimal] = field(default_factory=dict)
    missing_parameters: list[str] = field(default_factory=list)  # "what: how to set it"
    hours_without_valorisation: int = 0
    gse_fees_eur_exact: Decimal | None = Decimal(0)  # None: fee parameters missing
    #: (YYYY-MM, plant id) → that plant's figures in that month (complete hours)
    plant_months: dict[tuple[str, str], PlantTotals] = field(default_factory=dict)
    #: (YYYY-MM, plant id) → GSE fees of that plant in that month (exact)
    fee_months: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    #: annual: member id (or SOCIAL_PURPOSES) → surplus allocated by the monthly statements, summed
    monthly_member_surplus: dict[str, Decimal] = field(default_factory=dict)
    config_type: str = "cer"

    @property
    def tip_eur(self) -> Decimal:
        return to_cents(self.tip_eur_exact)

    @property
    def gse_fees_eur(self) -> Decimal | None:
        return None if self.gse_fees_eur_exact is None else to_cents(self.gse_fees_eur_exact)

    @property
    def net_eur(self) -> Decimal | None:
        """Incentive minus GSE fees (None when the fees are unknown)."""
        fees = self.gse_fees_eur
        return None if fees is None else self.incentive_eur - fees

    @property
    def complete(self) -> bool:
        """Every hour complete and every parameter known: the figures are final."""
        return self.hours_complete == self.hours_expected and not self.missing_parameters

    @property
    def valorisation_eur(self) -> Decimal:
        return to_cents(self.valorisation_eur_exact)

    @property
    def sale_eur(self) -> Decimal:
        return to_cents(self.sale_eur_exact)

    def monthly(self) -> list[tuple[str, int, int, int, Decimal, Decimal]]:
        """(YYYY-MM, hours, complete hours, shared Wh, TIP €, valorisation €) per month, from the days."""
        out: dict[str, list] = {}
        for d in self.daily:
            m = out.setdefault(f"{d.day:%Y-%m}", [0, 0, 0, Decimal(0), Decimal(0)])
            m[0] += d.hours
            m[1] += d.complete_hours
            m[2] += d.shared_wh
            m[3] += d.tip_eur_exact
            m[4] += d.valorisation_eur_exact
        return [
            (k, v[0], v[1], v[2], to_cents(v[3]), to_cents(v[4])) for k, v in sorted(out.items())
        ]

    @property
    def incentive_eur(self) -> Decimal:
        """What the GSE pays the community: TIP + valorisation (each rounded to the cent)."""
        return self.tip_eur + self.valorisation_eur

    @property
    def surplus_eur(self) -> Decimal:
        """Σ over the sets of the surplus, each rounded to the cent."""
        return sum((to_cents(j.surplus_eur) for j in self.surplus_sets), Decimal("0.00"))

    @property
    def monthly_surplus_eur(self) -> Decimal:
        return sum((to_cents(v) for v in self.monthly_surplus_sets.values()), Decimal("0.00"))

    @property
    def conguaglio_eur(self) -> Decimal:
        """Annual: yearly surplus − Σ monthly surplus (what the yearly settlement changes)."""
        return self.surplus_eur - self.monthly_surplus_eur


def allocate_cents(
    total_cents: int, keys: Mapping[str, Fraction | Decimal | int]
) -> dict[str, int]:
    """Split ``total_cents`` ∝ ``keys`` (largest remainder, ties by id); sum is exact. All-zero
    keys → equal split."""
    ids = sorted(keys)
    if not ids:
        return {}
    weights = {i: Fraction(keys[i]) for i in ids}
    if any(w < 0 for w in weights.values()):
        raise ValueError("allocation keys must be ≥ 0")
    total_w = sum(weights.values())
    if total_w == 0:
        weights = {i: Fraction(1) for i in ids}
        total_w = Fraction(len(ids))
    exact = {i: total_cents * weights[i] / total_w for i in ids}
    floors = {i: exact[i].numerator // exact[i].denominator for i in ids}
    left = total_cents - sum(floors.values())
    order = sorted(ids, key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return floors


def _cents(d: Decimal) -> int:
    return int(to_cents(d) * 100)


def _eur(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(Decimal("0.01"))


def expected_subjects(config: Configuration, hour_utc: int) -> list[str]:
    """What the ledger expects in an hour: the plants in service and the active members."""
    day = local_day(hour_utc)
    out = [
        f"{p.pod} {INJECTED} ({p.id}): no data"
        for p in config.plants
        if p.entry_into_service <= day
    ]
    out += [f"{m.pod} {WITHDRAWN} ({m.id}): no data" for m in config.members if m.active_on(day)]
    return out


def _add_row(
    st: Statement,
    day: DayTotals,
    row: ConfigHour,
    plants: dict[str, PlantTotals],
    members: dict[str, MemberTotals],
) -> None:
    """Add one complete ledger hour to the totals."""
    st.hours_complete += 1
    day.complete_hours += 1
    day.shared_wh += row.shared_wh
    day.tip_eur_exact += row.tip_eur
    day.valorisation_eur_exact += row.valorisation_eur
    st.injected_wh += row.injected_wh
    st.withdrawn_wh += row.withdrawn_wh
    st.shared_wh += row.shared_wh
    st.tip_eur_exact += row.tip_eur
    st.valorisation_eur_exact += row.valorisation_eur
    st.sale_eur_exact += row.sale_eur
    st.shared_by_band_wh[time_band(row.hour_utc)] += row.shared_wh
    for c in row.cabine:
        st.shared_by_cabina_wh[c.cabina] = st.shared_by_cabina_wh.get(c.cabina, 0) + c.shared_wh
    for p in row.plants:
        t = plants.get(p.plant_id)
        if t is None:
            continue
        t.injected_wh += p.injected_wh or 0
        t.shared_wh += p.shared_wh
        if p.tip_eligible:
            t.tip_shared_wh += p.shared_wh
        t.tip_eur_exact += p.tip_eur
        t.valorisation_eur_exact += p.valorisation_eur
        t.sale_eur_exact += p.sale_eur
    for m in row.members:
        t2 = members.get(m.member_id)
        if t2 is None:
            continue
        t2.withdrawn_wh += m.withdrawn_wh or 0
        t2.shared_share_wh += m.shared_share_wh


def _surplus_input(config: Configuration, plants: Mapping[str, PlantTotals]) -> list[SurplusPlant]:
    """The incentivised plants (those that earned TIP shared energy or could have)."""
    return [
        SurplusPlant(
            p.id,
            p.has_grant,
            plants[p.id].tip_shared_wh,
            plants[p.id].injected_wh,
            plants[p.id].tip_eur_exact,
        )
        for p in config.plants
        if not p.pre_existing and config.tip_eligible_by_constitution(p)
    ]


def gse_fees_eur(
    config: Configuration, params: Mapping[int, object], days: Sequence[date]
) -> tuple[dict[tuple[str, str], Decimal] | None, list[str]]:
    """GSE fees (DM MASE 106/2024) of the period per (month, plant): for every plant in service,
    (fixed per plant + variable × kW) per year, pro rata of its days in service in the period over
    the days of the year. Returns (amounts, or None if a parameter is missing; the missing
    parameters with how to set them)."""
    out: dict[tuple[str, str], Decimal] = {}
    missing: list[str] = []
    for d in days:
        pr = params.get(d.year)
        fixed = getattr(pr, "gse_fee_fixed_eur_per_plant_year", None)
        variable = getattr(pr, "gse_fee_variable_eur_per_kw_year", None)
        if fixed is None or variable is None:
            tag = f"gse_fees {d.year}: {PARAMETER_HINTS['gse_fees'].replace('YEAR', str(d.year))}"
            if tag not in missing:
                missing.append(tag)
            continue
        year_days = (date(d.year + 1, 1, 1) - date(d.year, 1, 1)).days
        for p in config.plants:
            if p.entry_into_service <= d:
                key = (f"{d:%Y-%m}", p.id)
                out[key] = out.get(key, Decimal(0)) + (fixed + variable * p.power_kw) / year_days
    return (None if missing else out), missing


def _missing_parameters(config: Configuration, rows: Sequence[ConfigHour]) -> tuple[list[str], int]:
    out: list[str] = []
    hours = 0
    for r in rows:
        gaps = [m for m in r.missing if is_parameter_gap(m)]
        if gaps:
            hours += 1
        for g in gaps:
            what = g.split(": ", 1)[1]
            kind, year = what.split()[0], what.split()[1]
            hint = PARAMETER_HINTS.get(kind, "").replace("YEAR", year)
            tag = f"{what}: {hint}"
            if tag not in out:
                out.append(tag)
    if config.type == ConfigType.cer and config.constituted is None:
        out.append(
            "constituted (the CER's constitution date; TIP eligibility of the plants is not "
            f"checked against it): {PARAMETER_HINTS['constituted']}"
        )
    return out, hours


def _plant_months(
    config: Configuration, rows: Sequence[ConfigHour]
) -> dict[tuple[str, str], PlantTotals]:
    """Per (month, plant) figures of the complete hours (GSE export, monthly surplus)."""
    out: dict[tuple[str, str], PlantTotals] = {}
    cfg_plants = {p.id: p for p in config.plants}
    for r in rows:
        if not r.complete:
            continue
        month = f"{local_day(r.hour_utc):%Y-%m}"
        for ph in r.plants:
            p = cfg_plants.get(ph.plant_id)
            if p is None:
                continue
            t = out.get((month, p.id))
            if t is None:
                t = out[(month, p.id)] = PlantTotals(
                    p.id, p.owner, p.power_kw, p.pre_existing, p.has_grant
                )
            t.injected_wh += ph.injected_wh or 0
            t.shared_wh += ph.shared_wh
            t.tip_shared_wh += ph.shared_wh if ph.tip_eligible else 0
            t.tip_eur_exact += ph.tip_eur
            t.valorisation_eur_exact += ph.valorisation_eur
            t.sale_eur_exact += ph.sale_eur
    return out


def _month_surplus(
    config: Configuration, plant_months: Mapping[tuple[str, str], PlantTotals]
) -> dict[str, Decimal]:
    """Σ over the months of each set's monthly surplus (what monthly statements showed), exact."""
    months: dict[str, dict[str, PlantTotals]] = defaultdict(dict)
    for (month, pid), t in plant_months.items():
        months[month][pid] = t
    out: dict[str, Decimal] = {}
    for plants in months.values():
        full = {
            p.id: plants.get(p.id) or PlantTotals(p.id, p.owner, p.power_kw, p.pre_existing)
            for p in config.plants
        }
        for j in surplus_by_set(_surplus_input(config, full)):
            out[j.name] = out.get(j.name, Decimal(0)) + j.surplus_eur
    return out


def build_statement(
    cfg: AccountingConfig,
    config: Configuration,
    rows: Sequence[ConfigHour],
    hours: Sequence[int],
    period: str,
    annual: bool,
) -> Statement:
    """Aggregate the latest ledger rows of ``config`` over ``hours`` (all local hours of the
    period) into a :class:`Statement`."""
    by_hour = {r.hour_utc: r for r in rows}
    fingerprint = config.fingerprint(cfg.valorisation_params)
    st = Statement(
        config.id,
        config.name or config.id,
        period,
        annual,
        len(hours),
        0,
        shared_by_cabina_wh={c: 0 for c in config.cabine},
        config_type=config.type.value,
    )
    plants = {
        p.id: PlantTotals(
            p.id,
            p.owner,
            p.power_kw,
            p.pre_existing,
            p.has_grant,
            not p.pre_existing and config.tip_eligible_by_constitution(p),
        )
        for p in config.plants
    }
    members = {m.id: MemberTotals(m.id, m.kind) for m in config.members}
    days: dict[date, DayTotals] = {}
    missing_runs: dict[str, list[int]] = defaultdict(list)
    for h in hours:
        d = local_day(h)
        day = days.setdefault(d, DayTotals(d, 0, 0))
        day.hours += 1
        row = by_hour.get(h)
        if row is None:
            for subject in expected_subjects(config, h):
                missing_runs[subject].append(h)
            continue
        st.hours_with_data += 1
        st.corrected_hours += row.version > 1
        st.stale_hours += row.config_fingerprint != fingerprint
        if not row.complete:
            st.incomplete_shared_wh_lower_bound += row.shared_wh
            for subject in row.missing:
                if not is_parameter_gap(subject):
                    missing_runs[subject].append(h)
            continue
        _add_row(st, day, row, plants, members)
    st.daily = [days[d] for d in sorted(days)]
    st.missing = _ranges(missing_runs)
    st.missing_parameters, st.hours_without_valorisation = _missing_parameters(config, rows)
    fees, fee_gaps = gse_fees_eur(config, cfg.valorisation_params, sorted(days))
    st.fee_months = fees or {}
    st.gse_fees_eur_exact = None if fees is None else sum(fees.values(), Decimal(0))
    st.missing_parameters += fee_gaps
    st.surplus_sets = surplus_by_set(_surplus_input(config, plants))
    st.plant_months = _plant_months(config, rows)
    if annual:
        st.monthly_surplus_sets = _month_surplus(config, st.plant_months)
    for p in config.plants:  # owners: key of "by_injected" (pre-existing plants included), sale
        if p.owner:
            members[p.owner].plants_shared_wh += plants[p.id].shared_wh
            members[p.owner].sale_eur += plants[p.id].sale_eur
    st.plants = [plants[p.id] for p in config.plants]
    _allocate(config, st, members)
    st.members = [members[m.id] for m in config.members]
    return st


def settle_year(annual: Statement, monthly: Sequence[Statement]) -> None:
    """Yearly settlement (conguaglio): record on the annual statement what the monthly statements
    allocated as surplus to each member (and to social purposes), to show what the year changes."""
    out: dict[str, Decimal] = {m.member_id: Decimal("0.00") for m in annual.members}
    for st in monthly:
        for m in st.members:
            out[m.member_id] = out.get(m.member_id, Decimal("0.00")) + m.surplus_eur
        if st.social_purposes_eur:
            out[SOCIAL_PURPOSES] = (
                out.get(SOCIAL_PURPOSES, Decimal("0.00")) + st.social_purposes_eur
            )
    annual.monthly_member_surplus = out


def _ranges(runs: Mapping[str, list[int]]) -> list[MissingRange]:
    out: list[MissingRange] = []
    for subject in sorted(runs):
        hs = sorted(runs[subject])
        start = prev = hs[0]
        for h in hs[1:] + [None]:  # type: ignore[list-item]
            if h is not None and h == prev + 3600:
                prev = h
                continue
            out.append(
                MissingRange(
                    subject, local_label(start), local_label(prev), (prev - start) // 3600 + 1
                )
            )
            if h is not None:
                start = prev = h
    return out


def _allocate(config: Configuration, st: Statement, members: dict[str, MemberTotals]) -> None:
    total = _cents(st.tip_eur_exact) + _cents(st.valorisation_eur_exact)
    surplus = _cents(st.surplus_eur)
    non_company = {
        m.id: members[m.id].shared_share_wh
        for m in config.members
        if m.kind not in (MemberKind.company, MemberKind.large_company)
    }
    if surplus and non_company:
        for mid, c in allocate_cents(surplus, non_company).items():
            members[mid].surplus_eur = _eur(c)
            members[mid].allocation_eur += _eur(c)
    elif surplus:
        st.social_purposes_eur = _eur(surplus)
    general = total - surplus
    pots = config.statute.allocation
    pot_cents = allocate_cents(general, {str(i): p.share_pct for i, p in enumerate(pots)})
    for i, pot in enumerate(pots):
        cents = pot_cents[str(i)]
        if pot.method == "by_withdrawn":
            keys: dict[str, Fraction | Decimal | int] = {
                m.id: members[m.id].shared_share_wh for m in config.members
            }
        elif pot.method == "by_injected":
            keys = {m.id: members[m.id].plants_shared_wh for m in config.members}
        else:
            keys = {mid: v for mid, v in (pot.quotas or {}).items()}
        for mid, c in allocate_cents(cents, keys).items():
            members[mid].allocation_eur += _eur(c)


# ---------------------------------------------------------------- text output (pure)


def _kwh(wh: int | Decimal) -> str:
    return f"{Decimal(wh) / 1000:.3f}"


def _csv(rows: list[list[object]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


#: A CSV column: header and the cell of one row (from the statement and, per item, its part).
_Column = tuple[str, Callable[..., object]]


def _cells(columns: Sequence[_Column], *item: object) -> list[object]:
    return [get(*item) for _, get in columns]


def _table(columns: Sequence[_Column], items: Iterable[tuple]) -> list[list[object]]:
    """Header row, then one row per item (a tuple of the getters' arguments)."""
    return [[h for h, _ in columns]] + [_cells(columns, *it) for it in items]


def _parts_csv(columns: Sequence[_Column], sts: Sequence[Statement], parts: str) -> str:
    """One row per part (``plants``, ``daily``...) of every statement."""
    return _csv(_table(columns, ((s, x) for s in sts for x in getattr(s, parts))))


_CONFIG_ID: _Column = ("config_id", lambda s, *_: s.config_id)
_PERIOD: _Column = ("period", lambda s, *_: s.period)


_CONFIG_COLUMNS: tuple[_Column, ...] = (
    _CONFIG_ID,
    _PERIOD,
    ("hours", lambda s: s.hours_expected),
    ("complete_hours", lambda s: s.hours_complete),
    ("injected_kwh", lambda s: _kwh(s.injected_wh)),
    ("withdrawn_kwh", lambda s: _kwh(s.withdrawn_wh)),
    ("shared_kwh", lambda s: _kwh(s.shared_wh)),
    ("shared_f1_kwh", lambda s: _kwh(s.shared_by_band_wh["F1"])),
    ("shared_f2_kwh", lambda s: _kwh(s.shared_by_band_wh["F2"])),
    ("shared_f3_kwh", lambda s: _kwh(s.shared_by_band_wh["F3"])),
    ("tip_eur", lambda s: s.tip_eur),
    ("valorisation_eur", lambda s: s.valorisation_eur),
    ("incentive_eur", lambda s: s.incentive_eur),
    ("sale_eur", lambda s: s.sale_eur),
    ("surplus_eur", lambda s: s.surplus_eur),
    ("gse_fees_eur", lambda s: "" if s.gse_fees_eur is None else s.gse_fees_eur),
    ("net_eur", lambda s: "" if s.net_eur is None else s.net_eur),
    (
        "incomplete_hours_shared_kwh_lower_bound",
        lambda s: _kwh(s.incomplete_shared_wh_lower_bound),
    ),
    ("corrected_hours", lambda s: s.corrected_hours),
    ("missing_parameters", lambda s: "; ".join(m.split(":", 1)[0] for m in s.missing_parameters)),
)


def configurations_csv(sts: Sequence[Statement]) -> str:
    return _csv(_table(_CONFIG_COLUMNS, ((s,) for s in sts)))


_PLANT_COLUMNS: tuple[_Column, ...] = (
    _CONFIG_ID,
    _PERIOD,
    ("plant_id", lambda s, p: p.plant_id),
    ("owner", lambda s, p: p.owner or ""),
    ("power_kw", lambda s, p: p.power_kw),
    ("pre_existing", lambda s, p: p.pre_existing),
    ("injected_kwh", lambda s, p: _kwh(p.injected_wh)),
    ("shared_kwh", lambda s, p: _kwh(p.shared_wh)),
    ("tip_shared_kwh", lambda s, p: _kwh(p.tip_shared_wh)),
    ("tip_eur", lambda s, p: p.tip_eur),
    ("valorisation_eur", lambda s, p: p.valorisation_eur),
    ("sale_eur", lambda s, p: p.sale_eur),
    ("surplus_set", lambda s, p: p.surplus_set),
)


def plants_csv(sts: Sequence[Statement]) -> str:
    return _parts_csv(_PLANT_COLUMNS, sts, "plants")


_MEMBER_COLUMNS: tuple[_Column, ...] = (
    _CONFIG_ID,
    _PERIOD,
    ("member_id", lambda s, m: m.member_id),
    ("kind", lambda s, m: m.kind.value),
    ("withdrawn_kwh", lambda s, m: _kwh(m.withdrawn_wh)),
    ("shared_share_kwh", lambda s, m: _kwh(m.shared_share_wh)),
    ("plants_shared_kwh", lambda s, m: _kwh(m.plants_shared_wh)),
    ("allocation_eur", lambda s, m: m.allocation_eur),
    ("of_which_surplus_eur", lambda s, m: m.surplus_eur),
    ("sale_eur", lambda s, m: m.sale_eur),
)


def members_csv(sts: Sequence[Statement]) -> str:
    """One row per member, then the social purposes' share (its allocation is all surplus)."""
    rows = _table(_MEMBER_COLUMNS, ())
    for s in sts:
        rows += [_cells(_MEMBER_COLUMNS, s, m) for m in s.members]
        if s.social_purposes_eur:
            e = s.social_purposes_eur
            rows.append([s.config_id, s.period, SOCIAL_PURPOSES, "", "", "", "", e, e, ""])
    return _csv(rows)


def _it(value: Decimal | int | str) -> str:
    """Italian decimal comma, as the GSE portal and Italian spreadsheets use."""
    return str(value).replace(".", ",")


def _fee_cell(s: Statement, amount: Decimal) -> str:
    """GSE fees cell: empty when the fee parameters are missing (never a false 0)."""
    return "" if s.gse_fees_eur_exact is None else _it(to_cents(amount))


def gse_csv(sts: Sequence[Statement]) -> str:
    """Monthly figures per configuration and plant in the shape of the GSE portal's statement of
    the CACER service (one row per month and plant, then a TOTALE row per month): ``;``-separated,
    decimal comma, kWh with 3 decimals, € to the cent. Column names are this project's (the GSE's
    own export headers are not reproduced); see docs/accounting.md."""
    header = [
        "mese",
        "codice_configurazione",
        "tipologia",
        "impianto",
        "potenza_kw",
        "gruppo_quota_eccedentaria",
        "energia_immessa_kwh",
        "energia_condivisa_kwh",
        "energia_incentivata_kwh",
        "tariffa_premio_eur",
        "corrispettivo_valorizzazione_eur",
        "corrispettivi_gse_eur",
    ]
    rows: list[list[object]] = [header]
    for s in sts:
        months = sorted({m for m, _ in s.plant_months} | {m for m, _ in s.fee_months})
        for month in months:
            tot: list = [0, 0, 0, Decimal(0), Decimal(0), Decimal(0)]
            for p in s.plants:
                t = s.plant_months.get((month, p.plant_id))
                fee = s.fee_months.get((month, p.plant_id))
                if t is None and fee is None:
                    continue
                t = t or PlantTotals(p.plant_id, p.owner, p.power_kw, p.pre_existing)
                vals = [
                    t.injected_wh,
                    t.shared_wh,
                    t.tip_shared_wh,
                    t.tip_eur_exact,
                    t.valorisation_eur_exact,
                    fee or Decimal(0),
                ]
                tot = [a + b for a, b in zip(tot, vals, strict=True)]
                rows.append(
                    [month, s.config_id, s.config_type, p.plant_id, _it(p.power_kw), p.surplus_set]
                    + [_it(_kwh(v)) for v in vals[:3]]
                    + [_it(to_cents(v)) for v in vals[3:5]]
                    + [_fee_cell(s, vals[5])]
                )
            # totals rounded once from the exact sums, as on the statement
            rows.append(
                [month, s.config_id, s.config_type, "TOTALE", "", ""]
                + [_it(_kwh(v)) for v in tot[:3]]
                + [_it(to_cents(v)) for v in tot[3:5]]
                + [_fee_cell(s, tot[5])]
            )
    buf = io.StringIO()
    csv.writer(buf, delimiter=";", lineterminator="\n").writerows(rows)
    return buf.getvalue()


_DAY_COLUMNS: tuple[_Column, ...] = (
    _CONFIG_ID,
    ("date", lambda s, d: d.day.isoformat()),
    ("hours", lambda s, d: d.hours),
    ("complete_hours", lambda s, d: d.complete_hours),
    ("shared_kwh", lambda s, d: _kwh(d.shared_wh)),
    ("tip_eur", lambda s, d: to_cents(d.tip_eur_exact)),
    ("valorisation_eur", lambda s, d: to_cents(d.valorisation_eur_exact)),
)


def daily_csv(sts: Sequence[Statement]) -> str:
    return _parts_csv(_DAY_COLUMNS, sts, "daily")


_MISSING_COLUMNS: tuple[_Column, ...] = (
    _CONFIG_ID,
    ("missing", lambda s, r: r.subject),
    ("first_hour_local", lambda s, r: r.first_hour),
    ("last_hour_local", lambda s, r: r.last_hour),
    ("hours", lambda s, r: r.hours),
)


def missing_csv(sts: Sequence[Statement]) -> str:
    return _parts_csv(_MISSING_COLUMNS, sts, "missing")


_TYPE_LABEL = {
    "cer": "CER",
    "group_of_self_consumers": "group of self-consumers",
    "remote_self_consumer": "remote self-consumer",
}


def _md_warnings(s: Statement) -> list[str]:
    out: list[str] = []
    if s.hours_complete < s.hours_expected:
        out += [
            f"> **Incomplete data**: {s.hours_expected - s.hours_complete} of {s.hours_expected} "
            "hours lack meter data or zonal prices and are **not** in the totals below (shared "
            f"energy measured in them, a lower bound: {_kwh(s.incomplete_shared_wh_lower_bound)} "
            "kWh). See *Missing data*.",
            "",
        ]
    if s.missing_parameters:
        out.append("> **Missing parameters** (figures depending on them are not final):")
        out += [f"> - {m}" for m in s.missing_parameters]
        out.append("")
    if s.stale_hours:
        out += [
            f"> **Warning**: {s.stale_hours} hours were computed with an earlier configuration; "
            "run `ems accounting recompute` for the period.",
            "",
        ]
    return out


def _md_summary(s: Statement) -> list[str]:
    bands = s.shared_by_band_wh
    val = f"{s.valorisation_eur} €"
    if s.hours_without_valorisation:
        val += f" (parameter missing in {s.hours_without_valorisation} hours: not included)"
    fees = "not set (missing parameter)" if s.gse_fees_eur is None else f"{s.gse_fees_eur} €"
    net = "—" if s.net_eur is None else f"{s.net_eur} €"
    surplus_label = "yearly settlement" if s.annual else "indicative; settled yearly"
    return [
        "| quantity | value |",
        "|---|---:|",
        f"| configuration type | {_TYPE_LABEL.get(s.config_type, s.config_type)} |",
        f"| hours (complete / total) | {s.hours_complete} / {s.hours_expected} |",
        f"| injected energy | {_kwh(s.injected_wh)} kWh |",
        f"| withdrawn energy | {_kwh(s.withdrawn_wh)} kWh |",
        f"| **shared energy** | **{_kwh(s.shared_wh)} kWh** |",
        f"| shared in F1 / F2 / F3 | {_kwh(bands['F1'])} / {_kwh(bands['F2'])}"
        f" / {_kwh(bands['F3'])} kWh |",
        f"| TIP (DM 414/2023) | {s.tip_eur} € |",
        f"| ARERA valorisation | {val} |",
        f"| **incentive to the community** | **{s.incentive_eur} €** |",
        f"| GSE fees (DM 106/2024) | {fees} |",
        f"| incentive net of GSE fees | {net} |",
        f"| of which surplus share to non-company members ({surplus_label}) | {s.surplus_eur} € |",
        f"| sale of injected energy (ritiro dedicato, to producers) | {s.sale_eur} € |",
        f"| hours corrected by late data (ledger version > 1) | {s.corrected_hours} |",
        "",
    ]


def _md_surplus(s: Statement) -> list[str]:
    out = [
        "### Surplus rule (per set of plants)",
        "",
        "| set | plants | injected kWh | incentivised shared kWh | ratio % | threshold % | "
        "excess points | TIP € | surplus € |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for j in s.surplus_sets:
        out.append(
            f"| {j.name} | {', '.join(j.plant_ids)} | {_kwh(j.injected_wh)} | "
            f"{_kwh(j.incentivised_shared_wh)} | {j.ratio * 100:.2f} | {j.threshold * 100:.0f} | "
            f"{j.excess_points * 100:.2f} | {to_cents(j.tip_eur)} | {to_cents(j.surplus_eur)} |"
        )
    out.append("")
    if s.annual:
        per_set = ", ".join(
            f"{k} {to_cents(v)} €" for k, v in sorted(s.monthly_surplus_sets.items())
        )
        out += [
            f"Yearly settlement (conguaglio): the surplus on the year is {s.surplus_eur} €; the "
            f"monthly statements showed {s.monthly_surplus_eur} € in total ({per_set or 'none'}); "
            f"the settlement changes it by {s.conguaglio_eur:+} €.",
            "",
        ]
        if s.monthly_member_surplus:
            out += _md_settlement_members(s)
    return out


def _md_settlement_members(s: Statement) -> list[str]:
    out = [
        "| member | surplus in the monthly statements € | surplus on the year € | conguaglio € |",
        "|---|---:|---:|---:|",
    ]
    yearly = {m.member_id: m.surplus_eur for m in s.members}
    if s.social_purposes_eur or SOCIAL_PURPOSES in s.monthly_member_surplus:
        yearly[SOCIAL_PURPOSES] = s.social_purposes_eur
    for mid in [*yearly, *(k for k in s.monthly_member_surplus if k not in yearly)]:
        before = s.monthly_member_surplus.get(mid, Decimal("0.00"))
        after = yearly.get(mid, Decimal("0.00"))
        out.append(f"| {mid} | {before} | {after} | {after - before:+} |")
    return [*out, ""]


def _md_tables(s: Statement) -> list[str]:
    out = [
        "### Plants",
        "",
        "| plant | kW | set | pre-existing | injected kWh | shared kWh | TIP € | valorisation € | "
        "sale € |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for p in s.plants:
        tag = "yes (no TIP)" if p.pre_existing else ("no" if p.tip_eligible else "no (no TIP)")
        out.append(
            f"| {p.plant_id} | {p.power_kw} | {p.surplus_set or '—'} | {tag} | "
            f"{_kwh(p.injected_wh)} | {_kwh(p.shared_wh)} | {p.tip_eur} | {p.valorisation_eur} | "
            f"{p.sale_eur} |"
        )
    out += [
        "",
        "### Members",
        "",
        "| member | kind | withdrawn kWh | share of shared kWh | allocation € | of which surplus € | "
        "sale of own plants € |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for m in s.members:
        out.append(
            f"| {m.member_id} | {m.kind.value} | {_kwh(m.withdrawn_wh)} | "
            f"{_kwh(m.shared_share_wh)} | {m.allocation_eur} | {m.surplus_eur} | {m.sale_eur} |"
        )
    if s.social_purposes_eur:
        out.append(
            f"| {SOCIAL_PURPOSES} | | | | {s.social_purposes_eur} | {s.social_purposes_eur} | |"
        )
    out += ["", "### Missing data", ""]
    if not s.missing:
        out.append("None: every expected meter interval and price is present.")
        return out
    out += ["| missing | first hour (local) | last hour (local) | hours |", "|---|---|---|---:|"]
    out += [
        f"| {r.subject} | {r.first_hour} | {r.last_hour} | {r.hours} |" for r in s.missing[:200]
    ]
    if len(s.missing) > 200:
        out.append(f"| … {len(s.missing) - 200} more ranges in the missing CSV | | | |")
    return out


def _md_months(s: Statement) -> list[str]:
    out = [
        "### By month",
        "",
        "| month | complete hours | shared kWh | TIP € | valorisation € |",
        "|---|---:|---:|---:|---:|",
    ]
    for month, hours, complete, shared_wh, tip, val in s.monthly():
        out.append(f"| {month} | {complete} / {hours} | {_kwh(shared_wh)} | {tip} | {val} |")
    return [*out, ""]


def render_markdown(community: str, sts: Sequence[Statement], charts: Mapping[str, str]) -> str:
    """A readable statement; ``charts``: config id → relative path of its PNG chart."""
    if not sts:
        return f"# {community}: no configurations\n"
    s0 = sts[0]
    kind = "Annual" if s0.annual else "Monthly"
    out = [f"# {kind} incentive statement — {community} — {s0.period}", ""]
    out.append(
        "Figures from the hourly GSE shared-energy ledger (ARERA TIAD, DM MASE 414/2023, GSE "
        "Regole Operative CACER 2025). Totals count complete hours only; money is rounded half-up "
        "to the cent after summing exact hourly amounts."
    )
    out.append("")
    for s in sts:
        title = f"## Configuration {s.config_id}" + (
            f" — {s.name}" if s.name != s.config_id else ""
        )
        out += [title, ""]
        out += _md_warnings(s)
        out += _md_summary(s)
        if len(s.shared_by_cabina_wh) > 1:
            out += [
                "Shared energy by cabina primaria: "
                + ", ".join(f"{c} {_kwh(v)} kWh" for c, v in sorted(s.shared_by_cabina_wh.items())),
                "",
            ]
        if s.config_id in charts:
            out += [
                f"![Daily shared energy and incentive, {s.config_id}]({charts[s.config_id]})",
                "",
            ]
        if s.annual:
            out += _md_months(s)
        out += _md_surplus(s)
        out += _md_tables(s)
        out.append("")
    return "\n".join(out)
