"""Incentive rules of the Italian CACER regime as pure functions (no I/O, no configuration objects).

The ledger (:mod:`ems.accounting.ledger`), the statements and the DESIGN model builder call the
same functions, per plant and hour, so a sized community is valued by the rules it will be paid by.
Sources are cited per function and in ``docs/accounting.md``:

- DM MASE 7 Dec 2023 n. 414 (Decreto CACER), Annex 1: TIP, power bands, FC, factor F, surplus;
- DM MASE 127/2025 and the GSE Regole Operative CACER (update of 16 July 2025): who is exempt
  from F and how the exempt energy is attributed; the surplus rule per set of plants, settled
  yearly (conguaglio);
- ARERA TIAD (Annex A to delibera 727/2022/R/eel): valorisation of the self-consumed energy,
  ``E_AC × (TRAS_E + BTAU)``, plus the avoided-losses term for groups of self-consumers.

API (stable; all money exact :class:`~decimal.Decimal`, energy integer Wh unless said otherwise):

- :func:`power_band` ``(power_kw) -> (tp_base, cap)`` €/MWh;
- :func:`fc_eur_per_mwh` ``(technology, region) -> Decimal`` (PV only: North +10, Centre +4);
- :func:`tip_rate` ``(power_kw, pz_eur_per_mwh, fc_eur_per_mwh) -> Decimal`` €/MWh before F;
- :func:`grant_factor` ``(capital_grant_pct) -> F`` (``0.5 × grant / 40``);
- :func:`attribute_exempt_energy` ``(shared_wh_by_plant, has_grant_by_plant, exempt_wh) -> dict``:
  the F-exempt shared energy of a cabina-hour, attributed first to the plants with a grant;
- :func:`tip_amount_eur` ``(shared_wh, rate, f, exempt_wh=0) -> Decimal``:
  ``rate × (E − F × (E − E_exempt))``;
- :func:`surplus_by_set` ``(plants) -> list[SurplusSet]`` with :class:`SurplusPlant` items: the
  yearly surplus (quota eccedentaria) per set (TIP only 55 %, TIP + grant 45 %);
- :func:`valorisation_eur` ``(shared_wh, unit_eur_per_mwh, pz_eur_per_mwh=None,
  avoided_losses_coefficient=None) -> Decimal``;
- :func:`sale_eur` ``(injected_wh, pz) -> Decimal``; :func:`to_cents`.

Rounding (docs/accounting.md): hourly amounts are exact products stored to 1e-9 € (half-even);
statement totals are rounded half-up to the cent once, after summing hourly amounts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, localcontext
from fractions import Fraction

WH_PER_MWH = Decimal(1_000_000)
HOURLY_QUANT = Decimal("1e-9")
CENT = Decimal("0.01")
PZ_REFERENCE_EUR_PER_MWH = Decimal(180)
#: Surplus thresholds of the two sets (DM 414/2023 Annex 1 §4; Regole Operative 2025).
SURPLUS_THRESHOLD = Decimal("0.55")
SURPLUS_THRESHOLD_GRANT = Decimal("0.45")
SET_TIP_ONLY = "tip_only"
SET_TIP_GRANT = "tip_plus_grant"

#: DM 414/2023 Annex 1: FC for PV, €/MWh, by region.
NORTH_REGIONS = frozenset(
    {
        "Piemonte",
        "Valle d'Aosta",
        "Lombardia",
        "Trentino-Alto Adige",
        "Veneto",
        "Friuli-Venezia Giulia",
        "Liguria",
        "Emilia-Romagna",
    }
)
CENTRE_REGIONS = frozenset({"Toscana", "Umbria", "Marche", "Lazio", "Abruzzo"})

Number = Decimal | int | float | str


def _d(x: Number) -> Decimal:
    return x if isinstance(x, Decimal) else Decimal(str(x))


def power_band(power_kw: Number) -> tuple[Decimal, Decimal]:
    """(TP_base, CAP) in €/MWh (DM 414/2023 Annex 1 Table 1): ≤ 200 kW → 80, 120; ≤ 600 kW →
    70, 110; above → 60, 100 (200 kW exactly is in the first band, 600 kW in the second)."""
    p = _d(power_kw)
    if p <= 200:
        return Decimal(80), Decimal(120)
    if p <= 600:
        return Decimal(70), Decimal(110)
    return Decimal(60), Decimal(100)


def fc_eur_per_mwh(technology: str, region: str) -> Decimal:
    """FC, PV only, added after the cap: North +10, Centre +4 €/MWh (DM 414/2023 Annex 1)."""
    if technology != "pv":
        return Decimal(0)
    if region in NORTH_REGIONS:
        return Decimal(10)
    if region in CENTRE_REGIONS:
        return Decimal(4)
    return Decimal(0)


def tip_rate(power_kw: Number, pz_eur_per_mwh: Number, fc: Number = 0) -> Decimal:
    """TIP before F, €/MWh: ``min(CAP, TP_base + max(0, 180 − Pz)) + FC`` (DM 414/2023 Annex 1)."""
    base, cap = power_band(power_kw)
    variable = max(Decimal(0), PZ_REFERENCE_EUR_PER_MWH - _d(pz_eur_per_mwh))
    return min(cap, base + variable) + _d(fc)


def grant_factor(capital_grant_pct: Number) -> Decimal:
    """F = 0.5 × grant % / 40 (DM 414/2023 Annex 1 §3), grant ≤ 40 %: 40 % → 0.5."""
    g = _d(capital_grant_pct)
    if not 0 <= g <= 40:
        raise ValueError(f"capital grant {g} % outside 0..40")
    return Decimal("0.5") * g / Decimal(40)


def attribute_exempt_energy(
    shared_wh_by_plant: Mapping[str, int],
    has_grant_by_plant: Mapping[str, bool],
    exempt_wh: int | Fraction,
) -> dict[str, int | Fraction]:
    """F-exempt shared energy of one cabina-hour per plant (Regole Operative 2025, after DM
    127/2025): the exempt energy (shared energy of the withdrawal points of natural persons,
    public, religious, third-sector and environmental-protection bodies) goes **first to the plants
    that received a capital grant**, in the order of ``shared_wh_by_plant`` (the attribution order,
    entry into service), each at most its shared energy; what is left goes to the other plants in
    the same order (where it changes nothing, F = 0 there)."""
    left = max(0, min(exempt_wh, sum(shared_wh_by_plant.values())))
    out: dict[str, int | Fraction] = {pid: 0 for pid in shared_wh_by_plant}
    for grant_first in (True, False):
        for pid, shared in shared_wh_by_plant.items():
            if bool(has_grant_by_plant.get(pid)) != grant_first or left <= 0:
                continue
            take = min(shared, left)
            out[pid] = take
            left -= take
    return out


def tip_amount_eur(
    shared_wh: int, rate_eur_per_mwh: Number, f_factor: Number = 0, exempt_wh: int | Fraction = 0
) -> Decimal:
    """TIP of one plant-hour: ``rate × (E − F × (E − E_exempt)) / 10⁶`` € with E, E_exempt in Wh
    (F is not applied to the exempt part). Exact, quantised to 1e-9 €."""
    exempt = min(max(exempt_wh, 0), shared_wh)
    energy = Fraction(shared_wh) - Fraction(_d(f_factor)) * (shared_wh - exempt)
    return fraction_to_decimal(energy * Fraction(_d(rate_eur_per_mwh)) / 1_000_000)


def fraction_to_decimal(value: Fraction, quant: Decimal = HOURLY_QUANT) -> Decimal:
    """Exact fraction → Decimal quantised to ``quant`` (half-even)."""
    with localcontext(Context(prec=60)):
        d = Decimal(value.numerator) / Decimal(value.denominator)
        return d.quantize(quant, rounding=ROUND_HALF_EVEN)


def valorisation_eur(
    shared_wh: int,
    unit_eur_per_mwh: Number,
    pz_eur_per_mwh: Number | None = None,
    avoided_losses_coefficient: Number | None = None,
) -> Decimal:
    """ARERA TIAD valorisation of one hour: ``E_AC × (TRAS_E + BTAU)``; for a group of
    self-consumers in one building also the avoided-losses term ``E_AC × c_PR × Pz`` (pass the
    coefficient and the hour's zonal price). Exact to 1e-9 €."""
    amount = Decimal(shared_wh) * _d(unit_eur_per_mwh)
    if avoided_losses_coefficient is not None:
        if pz_eur_per_mwh is None:
            raise ValueError("the avoided-losses term needs the hour's zonal price")
        amount += Decimal(shared_wh) * _d(avoided_losses_coefficient) * _d(pz_eur_per_mwh)
    return (amount / WH_PER_MWH).quantize(HOURLY_QUANT, ROUND_HALF_EVEN)


def sale_eur(injected_wh: int, pz_eur_per_mwh: Number) -> Decimal:
    """Ritiro dedicato: injected energy × zonal price, to the producer."""
    return (Decimal(injected_wh) * _d(pz_eur_per_mwh) / WH_PER_MWH).quantize(
        HOURLY_QUANT, ROUND_HALF_EVEN
    )


def to_cents(amount_eur: Decimal) -> Decimal:
    """Statement rounding: half-up to the cent."""
    return amount_eur.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class SurplusPlant:
    """One incentivised plant's figures over the settlement period (a year for the conguaglio)."""

    plant_id: str
    has_grant: bool
    incentivised_shared_wh: int  # shared energy that earned TIP
    injected_wh: int
    tip_eur: Decimal


@dataclass(frozen=True)
class SurplusSet:
    """The surplus of one set j: ``%ecc_j = max(0, E_AC,j / E_inj,j − threshold_j)`` and
    ``surplus_j = %ecc_j × TIP_j``."""

    name: str  # SET_TIP_ONLY | SET_TIP_GRANT
    threshold: Decimal
    plant_ids: tuple[str, ...]
    incentivised_shared_wh: int
    injected_wh: int
    tip_eur: Decimal
    ratio: Decimal  # E_AC,j / E_inj,j, exact to 1e-9
    excess_points: Decimal  # fraction (0.15 = 15 percentage points), exact to 1e-9
    surplus_eur: Decimal  # exact to 1e-9; round once with to_cents


def surplus_by_set(plants: Sequence[SurplusPlant]) -> list[SurplusSet]:
    """Yearly surplus rule (quota eccedentaria), as the GSE computes it (DM 414/2023 Annex 1 §4;
    Regole Operative CACER 2025): the incentivised plants form two sets, TIP only (threshold 55 %)
    and TIP plus capital grant (45 %); per set the excess in percentage points of the set's
    incentivised shared energy over its injected energy applies to the set's TIP. It is settled at
    the yearly conguaglio. Sets without plants are omitted.

    Example: one set, a plant at 90 % with 9,000 € of TIP and one at 20 % with 2,000 €, equal
    injection → set ratio 55 %, surplus 0 € (per plant it would be 35 % × 9,000 = 3,150 €)."""
    out = []
    for name, grant, threshold in (
        (SET_TIP_ONLY, False, SURPLUS_THRESHOLD),
        (SET_TIP_GRANT, True, SURPLUS_THRESHOLD_GRANT),
    ):
        members = [p for p in plants if p.has_grant == grant]
        if not members:
            continue
        shared = sum(p.incentivised_shared_wh for p in members)
        injected = sum(p.injected_wh for p in members)
        tip = sum((p.tip_eur for p in members), Decimal(0))
        ratio = Fraction(shared, injected) if injected > 0 else Fraction(0)
        excess = max(Fraction(0), ratio - Fraction(threshold))
        out.append(
            SurplusSet(
                name=name,
                threshold=threshold,
                plant_ids=tuple(p.plant_id for p in members),
                incentivised_shared_wh=shared,
                injected_wh=injected,
                tip_eur=tip,
                ratio=fraction_to_decimal(ratio),
                excess_points=fraction_to_decimal(excess),
                surplus_eur=fraction_to_decimal(excess * Fraction(tip)),
            )
        )
    return out


# ----------------------------------------------------------------- compatibility helpers


def tip_rate_eur_per_mwh(plant: object, pz_eur_per_mwh: Number) -> Decimal:
    """TIP before F of a :class:`~ems.accounting.config.Plant` (its power and FC)."""
    return tip_rate(plant.power_kw, pz_eur_per_mwh, plant.fc_eur_per_mwh)  # type: ignore[attr-defined]


def tip_eur(
    shared_wh: int,
    rate_eur_per_mwh: Number,
    f_factor: Number = 0,
    exempt_fraction: Fraction = Fraction(0),
) -> Decimal:
    """TIP of one plant-hour with an exempt *fraction* of its energy (used by the operation
    state): :func:`tip_amount_eur` with ``E_exempt = E × exempt_fraction``."""
    return tip_amount_eur(shared_wh, rate_eur_per_mwh, f_factor, shared_wh * exempt_fraction)
