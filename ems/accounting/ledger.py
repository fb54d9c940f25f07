"""Hourly ledger records: one per configuration and hour, with its cabine, plants and members.

:func:`compute_hours` is a pure function of the configuration, the hourly meter energy, the hourly
zonal prices and the yearly ARERA parameters — so the ledger is recomputable from raw data and
replaying the same data yields identical records (same :meth:`ConfigHour.content_hash`).
:func:`next_versions` decides which records are new versions (append-only ledger).

Rules (SPEC §6, ARERA TIAD, DM 414/2023):
- per cabina primaria and hour: shared = min(Σ injected by the plants, Σ withdrawn by members);
  the configuration's shared energy is the sum over its cabine;
- shared energy is attributed to the plants of the cabina in order of entry into service (ties
  by plant id), each at most its own injection;
- pre-existing plants (before 16 Dec 2021) and plants past their 20 years take their share and
  valorisation but no TIP;
- a CER's plant that entered service before the CER was constituted gets no TIP;
- TIP per plant-hour = rate × (E − F × (E − E_exempt)); the cabina's F-exempt shared energy (its
  shared energy × the exempt members' share of withdrawal: natural persons, public, religious,
  third-sector, environmental bodies) goes first to the plants with a capital grant;
- valorisation = shared × (TRAS_E + BTAU) of the local year (+ shared × c_PR × Pz for a group of
  self-consumers); sale = injected × Pz (all injection).

Missing data is never zero-filled: a plant or member with no complete data for the hour is listed
in ``missing``, the hour is ``complete = False``, and the figures computed from the meters that did
report are a lower bound (statements keep those hours out of the totals and list them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from fractions import Fraction

from .config import ConfigType, Configuration, ValorisationParams
from .readings import INJECTED, WITHDRAWN
from .rules import (
    attribute_exempt_energy,
    fraction_to_decimal,
    sale_eur,
    tip_amount_eur,
    tip_rate,
    valorisation_eur,
)
from .timeutil import local_day


@dataclass(frozen=True)
class PlantHour:
    plant_id: str
    injected_wh: int | None  # None: no complete meter data for this hour
    shared_wh: int  # shared energy attributed to the plant
    tip_eligible: bool
    price_eur_per_mwh: Decimal | None
    tip_rate_eur_per_mwh: Decimal | None  # before F
    tip_eur: Decimal
    valorisation_eur: Decimal
    sale_eur: Decimal


@dataclass(frozen=True)
class MemberHour:
    member_id: str
    withdrawn_wh: int | None  # None: no complete meter data for this hour
    shared_share_wh: Decimal  # pro rata of the cabina's shared energy by withdrawal


@dataclass(frozen=True)
class CabinaHour:
    cabina: str
    injected_wh: int
    withdrawn_wh: int
    shared_wh: int


@dataclass(frozen=True)
class ConfigHour:
    """One ledger row: a configuration in one local hour (``hour_utc`` = its UTC start)."""

    config_id: str
    hour_utc: int
    injected_wh: int
    withdrawn_wh: int
    shared_wh: int
    tip_eur: Decimal
    valorisation_eur: Decimal
    sale_eur: Decimal
    complete: bool
    missing: tuple[str, ...]
    cabine: tuple[CabinaHour, ...]
    plants: tuple[PlantHour, ...]
    members: tuple[MemberHour, ...]
    config_fingerprint: str
    version: int = field(default=0, compare=False)

    def content_hash(self) -> str:
        """Hash of the figures (not the version): equal hashes → replay, no new version.
        (The dataclass reprs are deterministic; Decimal reprs keep their exponent.)"""
        text = "|".join(
            (
                self.config_id,
                str(self.hour_utc),
                str(self.injected_wh),
                str(self.withdrawn_wh),
                str(self.shared_wh),
                str(self.tip_eur),
                str(self.valorisation_eur),
                str(self.sale_eur),
                str(self.complete),
                repr(self.missing),
                repr(self.cabine),
                repr(self.plants),
                repr(self.members),
                self.config_fingerprint,
            )
        )
        return hashlib.sha256(text.encode()).hexdigest()


PARAM_PREFIX = "parameter: "


def is_parameter_gap(missing: str) -> bool:
    """A ``missing`` entry that is a yearly parameter (not meter data or a price)."""
    return missing.startswith(PARAM_PREFIX)


@dataclass
class _HourContext:
    hour_utc: int
    day: date
    unit_eur_per_mwh: Decimal | None
    avoided_losses: Decimal | None  # group of self-consumers: c_PR
    missing: list[str]


def _hour_context(
    config: Configuration, h: int, valorisation: Mapping[int, ValorisationParams]
) -> _HourContext:
    day = local_day(h)
    missing: list[str] = []
    params = valorisation.get(day.year)
    unit = params.total_eur_per_mwh if params else None
    if unit is None:
        missing.append(f"{PARAM_PREFIX}valorisation {day.year} (TRAS_E + BTAU)")
    losses = None
    if config.type == ConfigType.group:
        losses = params.avoided_losses_coefficient if params else None
        if losses is None:
            missing.append(f"{PARAM_PREFIX}avoided_losses {day.year} (c_PR)")
    return _HourContext(h, day, unit, losses, missing)


def _meter(
    energy_wh: Mapping[tuple[str, str, int], int],
    partial: Mapping[tuple[str, str, int], str],
    key: tuple[str, str, int],
    label: str,
    missing: list[str],
) -> int | None:
    value = energy_wh.get(key)
    if value is None:
        missing.append(f"{key[0]} {key[1]} ({label}): {partial.get(key, 'no data')}")
    return value


def _cabina(
    config: Configuration,
    cab: str,
    ctx: _HourContext,
    energy_wh: Mapping[tuple[str, str, int], int],
    partial: Mapping[tuple[str, str, int], str],
    prices: Mapping[tuple[str, int], Decimal],
) -> tuple[CabinaHour, list[PlantHour], list[MemberHour]]:
    """One cabina primaria in one hour: shared energy, its attribution to the plants (entry
    order), the F-exempt part (grant plants first), TIP, valorisation, sale, member shares."""
    h, day = ctx.hour_utc, ctx.day
    plants = [p for p in config.plants_by_entry(cab) if p.entry_into_service <= day]
    members = [m for m in config.members if m.cabina_primaria == cab and m.active_on(day)]
    inj = {
        p.id: _meter(energy_wh, partial, (p.pod, INJECTED, h), p.id, ctx.missing) for p in plants
    }
    wd = {
        m.id: _meter(energy_wh, partial, (m.pod, WITHDRAWN, h), m.id, ctx.missing) for m in members
    }
    inj_total = sum(v for v in inj.values() if v is not None)
    wd_total = sum(v for v in wd.values() if v is not None)
    shared = min(inj_total, wd_total)
    exempt_wd = sum(wd[m.id] or 0 for m in members if m.f_exempt)
    exempt_shared = Fraction(shared * exempt_wd, wd_total) if wd_total else Fraction(0)
    takes: dict[str, int] = {}
    remaining = shared
    for p in plants:  # order of entry into service
        takes[p.id] = min(inj[p.id] or 0, remaining)
        remaining -= takes[p.id]
    eligible = {
        p.id: not p.pre_existing and day < p.tip_end and config.tip_eligible_by_constitution(p)
        for p in plants
    }
    exempt = attribute_exempt_energy(
        {p.id: takes[p.id] for p in plants if eligible[p.id]},
        {p.id: p.has_grant for p in plants},
        exempt_shared,
    )
    plant_rows = []
    for p in plants:
        own, take = inj[p.id] or 0, takes[p.id]
        pz = prices.get((p.market_zone, h))
        rate = tip_rate(p.power_kw, pz, p.fc_eur_per_mwh) if pz is not None else None
        if pz is None and (own > 0 or take > 0):
            tag = f"zonal price {p.market_zone}"
            if tag not in ctx.missing:
                ctx.missing.append(tag)
        tip = Decimal(0)
        if eligible[p.id] and rate is not None:
            tip = tip_amount_eur(take, rate, p.f_factor, exempt.get(p.id, 0))
        val = Decimal(0)
        if ctx.unit_eur_per_mwh is not None and (ctx.avoided_losses is None or pz is not None):
            val = valorisation_eur(take, ctx.unit_eur_per_mwh, pz, ctx.avoided_losses)
        plant_rows.append(
            PlantHour(
                plant_id=p.id,
                injected_wh=inj[p.id],
                shared_wh=take,
                tip_eligible=eligible[p.id],
                price_eur_per_mwh=pz,
                tip_rate_eur_per_mwh=rate if eligible[p.id] else None,
                tip_eur=tip,
                valorisation_eur=val,
                sale_eur=sale_eur(own, pz) if pz is not None else Decimal(0),
            )
        )
    member_rows = [
        MemberHour(
            m.id,
            wd[m.id],
            fraction_to_decimal(Fraction(shared * (wd[m.id] or 0), wd_total))
            if wd_total
            else Decimal(0),
        )
        for m in members
    ]
    return CabinaHour(cab, inj_total, wd_total, shared), plant_rows, member_rows


def compute_hours(
    config: Configuration,
    hours: Iterable[int],
    energy_wh: Mapping[tuple[str, str, int], int],
    partial: Mapping[tuple[str, str, int], str],
    prices: Mapping[tuple[str, int], Decimal],
    valorisation: Mapping[int, ValorisationParams],
) -> list[ConfigHour]:
    """Ledger records of ``config`` for the given hours (see module doc for the rules). A missing
    yearly parameter is listed in ``missing`` (prefix ``parameter: ``) without making the hour
    incomplete: energy and TIP are known, the valorisation is not (the statement says so)."""
    fingerprint = config.fingerprint(dict(valorisation))
    out: list[ConfigHour] = []
    for h in sorted(set(hours)):
        ctx = _hour_context(config, h, valorisation)
        cab_rows: list[CabinaHour] = []
        plant_rows: dict[str, PlantHour] = {}
        member_rows: dict[str, MemberHour] = {}
        for cab in config.cabine:
            c, ps, ms = _cabina(config, cab, ctx, energy_wh, partial, prices)
            cab_rows.append(c)
            plant_rows |= {p.plant_id: p for p in ps}
            member_rows |= {m.member_id: m for m in ms}
        plants_t = tuple(plant_rows[p.id] for p in config.plants if p.id in plant_rows)
        members_t = tuple(member_rows[m.id] for m in config.members if m.id in member_rows)
        out.append(
            ConfigHour(
                config_id=config.id,
                hour_utc=h,
                injected_wh=sum(c.injected_wh for c in cab_rows),
                withdrawn_wh=sum(c.withdrawn_wh for c in cab_rows),
                shared_wh=sum(c.shared_wh for c in cab_rows),
                tip_eur=sum((p.tip_eur for p in plants_t), Decimal(0)),
                valorisation_eur=sum((p.valorisation_eur for p in plants_t), Decimal(0)),
                sale_eur=sum((p.sale_eur for p in plants_t), Decimal(0)),
                complete=not [m for m in ctx.missing if not is_parameter_gap(m)],
                missing=tuple(ctx.missing),
                cabine=tuple(cab_rows),
                plants=plants_t,
                members=members_t,
                config_fingerprint=fingerprint,
            )
        )
    return out


def next_versions(
    existing: Mapping[int, tuple[int, str]], computed: Iterable[ConfigHour]
) -> list[ConfigHour]:
    """Records to append: those whose content differs from the latest stored version
    (``existing``: hour → (version, content hash)), numbered latest + 1; unchanged → nothing."""
    out = []
    for rec in computed:
        prev = existing.get(rec.hour_utc)
        if prev is not None and prev[1] == rec.content_hash():
            continue
        out.append(replace(rec, version=(prev[0] + 1) if prev else 1))
    return out
