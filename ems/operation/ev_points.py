"""Moved: the charge points are a technology, :mod:`ems.techs.ev_charge_points` (this name stays
for existing imports)."""

from ems.techs.ev_charge_points import (  # noqa: F401
    ChargePoint,
    EvChargePoints,
    EvSession,
    charge_points,
)
