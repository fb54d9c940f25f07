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
- TIP per plant-hour = attributed shared × rate × (1 − F·(1 − x)), x the hour's share of withdrawal
  by F-exempt members (public, religious, third-sector) in that cabina;
- valorisation = shared × (TRAS_E + BTAU) of the local year; sale = injected × Pz (all injection).

Missing data is never zero-filled: a plant or member with no complete data for the hour is listed
in ``missing``, the hour is ``complete = False``, and the figures computed from the meters that did
report are a lower bound (statements keep those hours out of the totals and list them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from fractions import Fraction

from .config import Configuration, ValorisationParams
from .readings import INJECTED, WITHDRAWN
from .rules import fraction_to_decimal, sale_eur, tip_eur, tip_rate_eur_per_mwh, valorisation_eur
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


def compute_hours(
    config: Configuration,
    hours: Iterable[int],
    energy_wh: Mapping[tuple[str, str, int], int],
    partial: Mapping[tuple[str, str, int], str],
    prices: Mapping[tuple[str, int], Decimal],
    valorisation: Mapping[int, ValorisationParams],
) -> list[ConfigHour]:
    """Ledger records of ``config`` for the given hours (see module doc for the rules)."""
    fingerprint = config.fingerprint(dict(valorisation))
    out: list[ConfigHour] = []
    for h in sorted(set(hours)):
        day = local_day(h)
        missing: list[str] = []
        params = valorisation.get(day.year)
        if params is None:
            missing.append(f"valorisation parameters for {day.year}")
        unit = params.total_eur_per_mwh if params else Decimal(0)
        cab_rows: list[CabinaHour] = []
        plant_rows: dict[str, PlantHour] = {}
        member_rows: dict[str, MemberHour] = {}
        for cab in config.cabine:
            plants = [p for p in config.plants_by_entry(cab) if p.entry_into_service <= day]
            members = [m for m in config.members if m.cabina_primaria == cab and m.active_on(day)]
            inj: dict[str, int | None] = {}
            for p in plants:
                key = (p.pod, INJECTED, h)
                inj[p.id] = energy_wh.get(key)
                if inj[p.id] is None:
                    missing.append(f"{p.pod} injected ({p.id}): {partial.get(key, 'no data')}")
            wd: dict[str, int | None] = {}
            for m in members:
                key = (m.pod, WITHDRAWN, h)
                wd[m.id] = energy_wh.get(key)
                if wd[m.id] is None:
                    missing.append(f"{m.pod} withdrawn ({m.id}): {partial.get(key, 'no data')}")
            inj_total = sum(v for v in inj.values() if v is not None)
            wd_total = sum(v for v in wd.values() if v is not None)
            shared = min(inj_total, wd_total)
            cab_rows.append(CabinaHour(cab, inj_total, wd_total, shared))
            exempt_wh = sum(wd[m.id] or 0 for m in members if m.f_exempt)
            exempt_fraction = Fraction(exempt_wh, wd_total) if wd_total else Fraction(0)
            remaining = shared
            for p in plants:  # order of entry into service
                own = inj[p.id] or 0
                take = min(own, remaining)
                remaining -= take
                eligible = not p.pre_existing and day < p.tip_end
                pz = prices.get((p.market_zone, h))
                rate = tip_rate_eur_per_mwh(p, pz) if pz is not None else None
                if pz is None and (own > 0 or take > 0):
                    tag = f"zonal price {p.market_zone}"
                    if tag not in missing:
                        missing.append(tag)
                tip = (
                    tip_eur(take, rate, p.f_factor, exempt_fraction)
                    if (eligible and rate is not None)
                    else Decimal(0)
                )
                plant_rows[p.id] = PlantHour(
                    plant_id=p.id,
                    injected_wh=inj[p.id],
                    shared_wh=take,
                    tip_eligible=eligible,
                    price_eur_per_mwh=pz,
                    tip_rate_eur_per_mwh=rate if eligible else None,
                    tip_eur=tip,
                    valorisation_eur=valorisation_eur(take, unit),
                    sale_eur=sale_eur(own, pz) if pz is not None else Decimal(0),
                )
            for m in members:
                w = wd[m.id]
                share = (
                    fraction_to_decimal(Fraction(shared * (w or 0), wd_total))
                    if wd_total
                    else Decimal(0)
                )
                member_rows[m.id] = MemberHour(m.id, w, share)
        plants_t = tuple(plant_rows[p.id] for p in config.plants if p.id in plant_rows)
        members_t = tuple(member_rows[m.id] for m in config.members if m.id in member_rows)
        shared_total = sum(c.shared_wh for c in cab_rows)
        out.append(
            ConfigHour(
                config_id=config.id,
                hour_utc=h,
                injected_wh=sum(c.injected_wh for c in cab_rows),
                withdrawn_wh=sum(c.withdrawn_wh for c in cab_rows),
                shared_wh=shared_total,
                tip_eur=sum((p.tip_eur for p in plants_t), Decimal(0)),
                valorisation_eur=valorisation_eur(shared_total, unit),
                sale_eur=sum((p.sale_eur for p in plants_t), Decimal(0)),
                complete=not missing,
                missing=tuple(missing),
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
