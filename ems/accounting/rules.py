"""Incentive rules (SPEC §6): DM MASE 414/2023 TIP, ARERA valorisation, ritiro dedicato sale,
the yearly surplus rule. All amounts are exact :class:`~decimal.Decimal`; energy is integer Wh.

Rounding (documented in docs/accounting.md): hourly amounts are exact products, stored to
1e-9 € (:data:`HOURLY_QUANT`, half-even); statement totals are rounded half-up to the cent once,
after summing the hourly amounts.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, localcontext
from fractions import Fraction

from .config import Plant

WH_PER_MWH = Decimal(1_000_000)
HOURLY_QUANT = Decimal("1e-9")
CENT = Decimal("0.01")
PZ_REFERENCE_EUR_PER_MWH = Decimal(180)
SURPLUS_THRESHOLD = Decimal("0.55")
SURPLUS_THRESHOLD_GRANT = Decimal("0.45")


def power_band(power_kw: Decimal) -> tuple[Decimal, Decimal]:
    """(TP_base, CAP) in €/MWh: ≤ 200 kW → 80, 120; ≤ 600 kW → 70, 110; above → 60, 100."""
    if power_kw <= 200:
        return Decimal(80), Decimal(120)
    if power_kw <= 600:
        return Decimal(70), Decimal(110)
    return Decimal(60), Decimal(100)


def tip_rate_eur_per_mwh(plant: Plant, pz_eur_per_mwh: Decimal) -> Decimal:
    """TIP before F: min(CAP, TP_base + max(0, 180 − Pz)) + FC (FC for PV, after the cap)."""
    base, cap = power_band(plant.power_kw)
    variable = max(Decimal(0), PZ_REFERENCE_EUR_PER_MWH - pz_eur_per_mwh)
    return min(cap, base + variable) + plant.fc_eur_per_mwh


def tip_eur(
    shared_wh: int,
    rate_eur_per_mwh: Decimal,
    f_factor: Decimal,
    exempt_fraction: Fraction = Fraction(0),
) -> Decimal:
    """TIP amount of one plant-hour: E × rate × (1 − F), where F does not apply to the share of
    the energy withdrawn by public, religious and third-sector members (``exempt_fraction`` of the
    hour's withdrawal): E × rate × (1 − F × (1 − x))."""
    factor = Fraction(1) - Fraction(f_factor) * (1 - exempt_fraction)
    exact = Fraction(shared_wh) * Fraction(rate_eur_per_mwh) * factor / 1_000_000
    return fraction_to_decimal(exact)


def fraction_to_decimal(value: Fraction, quant: Decimal = HOURLY_QUANT) -> Decimal:
    """Exact fraction → Decimal quantised to ``quant`` (half-even)."""
    with localcontext(Context(prec=60)):
        d = Decimal(value.numerator) / Decimal(value.denominator)
        return d.quantize(quant, rounding=ROUND_HALF_EVEN)


def valorisation_eur(shared_wh: int, unit_eur_per_mwh: Decimal) -> Decimal:
    """ARERA valorisation: E_AC × (TRAS_E + BTAU)."""
    return (Decimal(shared_wh) * unit_eur_per_mwh / WH_PER_MWH).quantize(
        HOURLY_QUANT, ROUND_HALF_EVEN
    )


def sale_eur(injected_wh: int, pz_eur_per_mwh: Decimal) -> Decimal:
    """Ritiro dedicato: injected energy × zonal price, to the producer."""
    return (Decimal(injected_wh) * pz_eur_per_mwh / WH_PER_MWH).quantize(
        HOURLY_QUANT, ROUND_HALF_EVEN
    )


def to_cents(amount_eur: Decimal) -> Decimal:
    """Statement rounding: half-up to the cent."""
    return amount_eur.quantize(CENT, rounding=ROUND_HALF_UP)


def surplus_share(
    incentivised_shared_wh: int, injected_wh: int, has_grant: bool, basis: str = "tip_points"
) -> Decimal:
    """Yearly surplus rule (DM 414/2023): the part of the TIP that must go to non-company members
    or social purposes when incentivised shared / injected exceeds 55 % (45 % with a capital grant).

    ``basis="tip_points"`` (SPEC §6, the default): the percentage points above the threshold are that
    share of the TIP — ratio 70 % → 15 % of the TIP. ``basis="excess_energy"``: the TIP earned by the
    shared energy above the threshold — (ratio − threshold) / ratio of the TIP, 15/70 in the example.
    Exact to 1e-9."""
    if injected_wh <= 0 or incentivised_shared_wh <= 0:
        return Decimal(0)
    threshold = SURPLUS_THRESHOLD_GRANT if has_grant else SURPLUS_THRESHOLD
    ratio = Fraction(incentivised_shared_wh, injected_wh)
    excess = ratio - Fraction(threshold)
    if excess <= 0:
        return Decimal(0)
    if basis == "excess_energy":
        return fraction_to_decimal(excess / ratio)
    if basis != "tip_points":
        raise ValueError(f"unknown surplus basis {basis!r}")
    return fraction_to_decimal(excess)
