"""Monthly and annual statements from the ledger: totals per configuration, plant and member,
the surplus rule, member allocation per statute, and their CSV / Markdown text.

Choices (documented in docs/accounting.md):
- totals count **complete hours only** (every expected meter and the zonal price present); the
  incomplete hours are listed with what is missing, and the shared energy measured in them (a lower
  bound) is shown apart, never added;
- money is summed exactly from the hourly ledger and rounded half-up to the cent once per figure;
- the surplus rule (yearly by DM 414/2023) is computed per plant on the statement's period: binding
  on an annual statement, indicative on a monthly one;
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from fractions import Fraction

from .config import AccountingConfig, Configuration, MemberKind
from .ledger import ConfigHour
from .readings import INJECTED, WITHDRAWN
from .rules import surplus_share, to_cents
from .timeutil import local_day, local_label, time_band

SOCIAL_PURPOSES = "(social purposes)"


@dataclass
class PlantTotals:
    plant_id: str
    owner: str | None
    power_kw: Decimal
    pre_existing: bool
    injected_wh: int = 0
    shared_wh: int = 0
    tip_shared_wh: int = 0  # shared energy that earned TIP
    tip_eur_exact: Decimal = Decimal(0)
    valorisation_eur_exact: Decimal = Decimal(0)
    sale_eur_exact: Decimal = Decimal(0)
    surplus_fraction: Decimal = Decimal(0)
    surplus_eur: Decimal = Decimal("0.00")

    @property
    def tip_eur(self) -> Decimal:
        return to_cents(self.tip_eur_exact)

    @property
    def valorisation_eur(self) -> Decimal:
        return to_cents(self.valorisation_eur_exact)

    @property
    def sale_eur(self) -> Decimal:
        return to_cents(self.sale_eur_exact)


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
    shared_by_band_wh: dict[str, int] = field(default_factory=lambda: {"F1": 0, "F2": 0, "F3": 0})
    shared_by_cabina_wh: dict[str, int] = field(default_factory=dict)
    daily: list[DayTotals] = field(default_factory=list)
    missing: list[MissingRange] = field(default_factory=list)
    plants: list[PlantTotals] = field(default_factory=list)
    members: list[MemberTotals] = field(default_factory=list)
    social_purposes_eur: Decimal = Decimal("0.00")

    @property
    def tip_eur(self) -> Decimal:
        return to_cents(self.tip_eur_exact)

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
        return sum((p.surplus_eur for p in self.plants), Decimal("0.00"))


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
    )
    plants = {p.id: PlantTotals(p.id, p.owner, p.power_kw, p.pre_existing) for p in config.plants}
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
        if row.version > 1:
            st.corrected_hours += 1
        if row.config_fingerprint != fingerprint:
            st.stale_hours += 1
        if not row.complete:
            st.incomplete_shared_wh_lower_bound += row.shared_wh
            for subject in row.missing:
                missing_runs[subject].append(h)
            continue
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
        st.shared_by_band_wh[time_band(h)] += row.shared_wh
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
    st.daily = [days[d] for d in sorted(days)]
    st.missing = _ranges(missing_runs)
    # surplus rule per plant (TIP-eligible plants only)
    for p in config.plants:
        t = plants[p.id]
        if p.pre_existing:
            continue
        t.surplus_fraction = surplus_share(
            t.tip_shared_wh, t.injected_wh, p.capital_grant_pct > 0, cfg.surplus_basis
        )
        t.surplus_eur = to_cents(t.tip_eur * t.surplus_fraction)
    for (
        p
    ) in config.plants:  # owners: key of "by_injected" (pre-existing plants included) and the sale
        if p.owner:
            members[p.owner].plants_shared_wh += plants[p.id].shared_wh
            members[p.owner].sale_eur += plants[p.id].sale_eur
    st.plants = [plants[p.id] for p in config.plants]
    _allocate(config, st, members)
    st.members = [members[m.id] for m in config.members]
    return st


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
        m.id: members[m.id].shared_share_wh for m in config.members if m.kind != MemberKind.company
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


def configurations_csv(sts: Sequence[Statement]) -> str:
    rows: list[list[object]] = [
        [
            "config_id",
            "period",
            "hours",
            "complete_hours",
            "injected_kwh",
            "withdrawn_kwh",
            "shared_kwh",
            "shared_f1_kwh",
            "shared_f2_kwh",
            "shared_f3_kwh",
            "tip_eur",
            "valorisation_eur",
            "incentive_eur",
            "sale_eur",
            "surplus_eur",
            "incomplete_hours_shared_kwh_lower_bound",
            "corrected_hours",
        ]
    ]
    for s in sts:
        rows.append(
            [
                s.config_id,
                s.period,
                s.hours_expected,
                s.hours_complete,
                _kwh(s.injected_wh),
                _kwh(s.withdrawn_wh),
                _kwh(s.shared_wh),
                _kwh(s.shared_by_band_wh["F1"]),
                _kwh(s.shared_by_band_wh["F2"]),
                _kwh(s.shared_by_band_wh["F3"]),
                s.tip_eur,
                s.valorisation_eur,
                s.incentive_eur,
                s.sale_eur,
                s.surplus_eur,
                _kwh(s.incomplete_shared_wh_lower_bound),
                s.corrected_hours,
            ]
        )
    return _csv(rows)


def plants_csv(sts: Sequence[Statement]) -> str:
    rows: list[list[object]] = [
        [
            "config_id",
            "period",
            "plant_id",
            "owner",
            "power_kw",
            "pre_existing",
            "injected_kwh",
            "shared_kwh",
            "tip_shared_kwh",
            "tip_eur",
            "valorisation_eur",
            "sale_eur",
            "surplus_pct",
            "surplus_eur",
        ]
    ]
    for s in sts:
        for p in s.plants:
            rows.append(
                [
                    s.config_id,
                    s.period,
                    p.plant_id,
                    p.owner or "",
                    p.power_kw,
                    p.pre_existing,
                    _kwh(p.injected_wh),
                    _kwh(p.shared_wh),
                    _kwh(p.tip_shared_wh),
                    p.tip_eur,
                    p.valorisation_eur,
                    p.sale_eur,
                    f"{p.surplus_fraction * 100:.2f}",
                    p.surplus_eur,
                ]
            )
    return _csv(rows)


def members_csv(sts: Sequence[Statement]) -> str:
    rows: list[list[object]] = [
        [
            "config_id",
            "period",
            "member_id",
            "kind",
            "withdrawn_kwh",
            "shared_share_kwh",
            "plants_shared_kwh",
            "allocation_eur",
            "of_which_surplus_eur",
            "sale_eur",
        ]
    ]
    for s in sts:
        for m in s.members:
            rows.append(
                [
                    s.config_id,
                    s.period,
                    m.member_id,
                    m.kind.value,
                    _kwh(m.withdrawn_wh),
                    _kwh(m.shared_share_wh),
                    _kwh(m.plants_shared_wh),
                    m.allocation_eur,
                    m.surplus_eur,
                    m.sale_eur,
                ]
            )
        if s.social_purposes_eur:
            rows.append(
                [
                    s.config_id,
                    s.period,
                    SOCIAL_PURPOSES,
                    "",
                    "",
                    "",
                    "",
                    s.social_purposes_eur,
                    s.social_purposes_eur,
                    "",
                ]
            )
    return _csv(rows)


def daily_csv(sts: Sequence[Statement]) -> str:
    rows: list[list[object]] = [
        [
            "config_id",
            "date",
            "hours",
            "complete_hours",
            "shared_kwh",
            "tip_eur",
            "valorisation_eur",
        ]
    ]
    for s in sts:
        for d in s.daily:
            rows.append(
                [
                    s.config_id,
                    d.day.isoformat(),
                    d.hours,
                    d.complete_hours,
                    _kwh(d.shared_wh),
                    to_cents(d.tip_eur_exact),
                    to_cents(d.valorisation_eur_exact),
                ]
            )
    return _csv(rows)


def missing_csv(sts: Sequence[Statement]) -> str:
    rows: list[list[object]] = [
        ["config_id", "missing", "first_hour_local", "last_hour_local", "hours"]
    ]
    for s in sts:
        for r in s.missing:
            rows.append([s.config_id, r.subject, r.first_hour, r.last_hour, r.hours])
    return _csv(rows)


def render_markdown(community: str, sts: Sequence[Statement], charts: Mapping[str, str]) -> str:
    """A readable statement; ``charts``: config id → relative path of its PNG chart."""
    if not sts:
        return f"# {community}: no configurations\n"
    s0 = sts[0]
    kind = "Annual" if s0.annual else "Monthly"
    out = [f"# {kind} incentive statement — {community} — {s0.period}", ""]
    out.append(
        "Figures from the hourly GSE shared-energy ledger (ARERA TIAD, DM MASE 414/2023). "
        "Totals count complete hours only; money is rounded half-up to the cent after summing "
        "exact hourly amounts."
    )
    out.append("")
    for s in sts:
        out += [
            f"## Configuration {s.config_id}" + (f" — {s.name}" if s.name != s.config_id else ""),
            "",
        ]
        if s.hours_complete < s.hours_expected:
            out.append(
                f"> **Incomplete data**: {s.hours_expected - s.hours_complete} of {s.hours_expected} "
                f"hours lack meter data, zonal prices or yearly parameters and are **not** in the "
                f"totals below "
                f"(shared energy measured in them, a lower bound: "
                f"{_kwh(s.incomplete_shared_wh_lower_bound)} kWh). See *Missing data*."
            )
            out.append("")
        if s.stale_hours:
            out.append(
                f"> **Warning**: {s.stale_hours} hours were computed with an earlier configuration; "
                "run `ems accounting recompute` for the period."
            )
            out.append("")
        out += [
            "| quantity | value |",
            "|---|---:|",
            f"| hours (complete / total) | {s.hours_complete} / {s.hours_expected} |",
            f"| injected energy | {_kwh(s.injected_wh)} kWh |",
            f"| withdrawn energy | {_kwh(s.withdrawn_wh)} kWh |",
            f"| **shared energy** | **{_kwh(s.shared_wh)} kWh** |",
            f"| shared in F1 / F2 / F3 | {_kwh(s.shared_by_band_wh['F1'])} / {_kwh(s.shared_by_band_wh['F2'])}"
            f" / {_kwh(s.shared_by_band_wh['F3'])} kWh |",
            f"| TIP (DM 414/2023) | {s.tip_eur} € |",
            f"| ARERA valorisation | {s.valorisation_eur} € |",
            f"| **incentive to the community** | **{s.incentive_eur} €** |",
            f"| of which surplus share to non-company members{'' if s.annual else ' (indicative)'} | "
            f"{s.surplus_eur} € |",
            f"| sale of injected energy (ritiro dedicato, to producers) | {s.sale_eur} € |",
            f"| hours corrected by late data (ledger version > 1) | {s.corrected_hours} |",
            "",
        ]
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
            out += [
                "### By month",
                "",
                "| month | complete hours | shared kWh | TIP € | valorisation € |",
                "|---|---:|---:|---:|---:|",
            ]
            for month, hours, complete, shared_wh, tip, val in s.monthly():
                out.append(
                    f"| {month} | {complete} / {hours} | {_kwh(shared_wh)} | {tip} | {val} |"
                )
            out.append("")
        out += [
            "### Plants",
            "",
            "| plant | kW | pre-existing | injected kWh | shared kWh | TIP € | valorisation € | sale € | "
            "surplus % | surplus € |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for p in s.plants:
            out.append(
                f"| {p.plant_id} | {p.power_kw} | {'yes (no TIP)' if p.pre_existing else 'no'} | "
                f"{_kwh(p.injected_wh)} | {_kwh(p.shared_wh)} | {p.tip_eur} | {p.valorisation_eur} | "
                f"{p.sale_eur} | {p.surplus_fraction * 100:.2f} | {p.surplus_eur} |"
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
                f"| {m.member_id} | {m.kind.value} | {_kwh(m.withdrawn_wh)} | {_kwh(m.shared_share_wh)} | "
                f"{m.allocation_eur} | {m.surplus_eur} | {m.sale_eur} |"
            )
        if s.social_purposes_eur:
            out.append(
                f"| {SOCIAL_PURPOSES} | | | | {s.social_purposes_eur} | {s.social_purposes_eur} | |"
            )
        out += ["", "### Missing data", ""]
        if not s.missing:
            out.append("None: every expected meter interval and price is present.")
        else:
            out += [
                "| missing | first hour (local) | last hour (local) | hours |",
                "|---|---|---|---:|",
            ]
            for r in s.missing[:200]:
                out.append(f"| {r.subject} | {r.first_hour} | {r.last_hour} | {r.hours} |")
            if len(s.missing) > 200:
                out.append(f"| … {len(s.missing) - 200} more ranges in the missing CSV | | | |")
        out.append("")
    return "\n".join(out)
