"""Pydantic payload schemas: one state model and one setpoint model per device kind.

Conventions (SPEC §5): units in field names (``p_kw``, ``e_kwh``, ``soc_pct``), a timestamp ``ts``
as ISO-8601 with a UTC offset or as epoch seconds (a number above 1e11 is read as milliseconds).
Sign convention for power: ``p_kw`` is positive when the device *takes* power from the hub's bus
(battery charging, EV charging, loads) except for generators (PV, CHP) where it is the power
produced; battery and V2G discharge are negative.

Models are strict: a number sent as a string, a boolean sent as a number, an unknown field or a
value outside its physical range is an error, not a guess.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Hard sanity bound on any power in kW (a CER hub connection is ≤ 1 MW; 10 MW leaves margin).
P_ABS_MAX_KW = 10_000.0
#: Hard sanity bound on any energy counter in kWh (100 GWh).
E_MAX_KWH = 1e8

PowerKw = Annotated[float, Field(ge=-P_ABS_MAX_KW, le=P_ABS_MAX_KW)]
PositivePowerKw = Annotated[float, Field(ge=0.0, le=P_ABS_MAX_KW)]
EnergyKwh = Annotated[float, Field(ge=0.0, le=E_MAX_KWH)]
Percent = Annotated[float, Field(ge=0.0, le=100.0)]
TempC = Annotated[float, Field(ge=-60.0, le=150.0)]
#: Longest stay of a plugged EV the plan accepts (a departure further ahead is a device error).
EV_MAX_STAY_S = 31 * 86400


class TimestampError(ValueError):
    """A timestamp that cannot be read (not ISO-8601 with offset, not epoch seconds)."""


def parse_timestamp(value: Any) -> datetime:
    """ISO-8601 with a UTC offset, or epoch seconds (milliseconds when > 1e11) → aware UTC datetime."""
    if isinstance(value, bool):
        raise TimestampError("timestamp is a boolean")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise TimestampError("timestamp has no UTC offset")
        return value.astimezone(timezone.utc)
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise TimestampError("timestamp is not finite")
        seconds = value / 1000.0 if abs(value) > 1e11 else float(value)
        try:
            return datetime.fromtimestamp(seconds, tz=timezone.utc)
        except (OverflowError, OSError, ValueError) as exc:
            raise TimestampError(f"epoch timestamp {value} out of range") from exc
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise TimestampError(f"timestamp {value!r} is not ISO-8601") from exc
        if parsed.tzinfo is None:
            raise TimestampError(f"timestamp {value!r} has no UTC offset")
        return parsed.astimezone(timezone.utc)
    raise TimestampError(
        f"timestamp of type {type(value).__name__} is neither a string nor a number"
    )


class _Payload(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)

    ts: datetime = Field(description="measurement time (ISO-8601 with offset, or epoch seconds)")

    @field_validator("ts", mode="before")
    @classmethod
    def _ts(cls, value: Any) -> datetime:
        return parse_timestamp(value)


# --------------------------------------------------------------------------- device states


class MeterState(_Payload):
    """Point of delivery meter: import/export power and energy counters."""

    import_p_kw: PositivePowerKw
    export_p_kw: PositivePowerKw
    import_e_kwh: EnergyKwh | None = None
    export_e_kwh: EnergyKwh | None = None
    load_p_kw: PositivePowerKw | None = None  # hub consumption, when the energy monitor measures it


class PvState(_Payload):
    """PV inverter: produced power, energy counter."""

    p_kw: PositivePowerKw
    e_kwh: EnergyKwh | None = None
    irradiance_w_m2: Annotated[float, Field(ge=0.0, le=1600.0)] | None = None


class BatteryState(_Payload):
    """Battery: power (+ charging, − discharging) and state of charge."""

    p_kw: PowerKw
    soc_pct: Percent
    temp_c: TempC | None = None


class EvChargerState(_Payload):
    """EV charger: plugged, power (V2G negative), vehicle SoC if known, request and departure."""

    plugged: bool
    p_kw: PowerKw
    vehicle_soc_pct: Percent | None = None
    requested_e_kwh: Annotated[float, Field(ge=0.0, le=1000.0)] | None = None
    session_e_kwh: Annotated[float, Field(ge=0.0, le=1000.0)] | None = None
    departure: datetime | None = None
    vehicle_p_max_kw: PositivePowerKw | None = (
        None  # the car's charging limit (ISO 15118 / OCPP, or learned by the charger)
    )
    cars_waiting: Annotated[int, Field(ge=0, le=1000)] | None = (
        None  # cars queued for a free charger at this site
    )

    @field_validator("departure", mode="before")
    @classmethod
    def _departure(cls, value: Any) -> datetime | None:
        return None if value is None else parse_timestamp(value)

    @model_validator(mode="after")
    def _consistent(self) -> EvChargerState:
        if not self.plugged and abs(self.p_kw) > 0.05:
            raise ValueError(f"inconsistent: not plugged but p_kw={self.p_kw}")
        if self.plugged and self.departure is not None:
            # time order: a plugged car leaves after the measurement, and within a month
            if self.departure <= self.ts:
                raise ValueError(
                    f"inconsistent: departure {self.departure.isoformat()} is not after "
                    f"ts {self.ts.isoformat()}"
                )
            if (self.departure - self.ts).total_seconds() > EV_MAX_STAY_S:
                raise ValueError(
                    f"inconsistent: departure {self.departure.isoformat()} is more than "
                    f"{EV_MAX_STAY_S // 86400} days after ts {self.ts.isoformat()}"
                )
        return self


class ChpState(_Payload):
    """CHP: electric and heat output, units running."""

    p_kw: PositivePowerKw
    heat_kw: PositivePowerKw
    units_on: Annotated[int, Field(ge=0, le=100)]
    fuel_kw: PositivePowerKw | None = None


class HeatPumpState(_Payload):
    """Heat pump: mode, electric input, thermal output."""

    mode: Literal["off", "heating", "cooling", "dhw"]
    p_kw: PositivePowerKw
    heat_kw: PositivePowerKw | None = None
    cooling_kw: PositivePowerKw | None = None
    t_supply_c: TempC | None = None


class BoilerState(_Payload):
    """Gas boiler: heat output (and fuel input when metered)."""

    heat_kw: PositivePowerKw
    fuel_kw: PositivePowerKw | None = None


class ElectricBoilerState(_Payload):
    """Electric boiler / resistive heater (power-to-heat): electric input and heat output."""

    p_kw: PositivePowerKw
    heat_kw: PositivePowerKw | None = None


class AbsorptionChillerState(_Payload):
    """Absorption chiller: cooling output, heat input, electric auxiliaries."""

    cooling_kw: PositivePowerKw
    heat_in_kw: PositivePowerKw | None = None
    p_kw: PositivePowerKw | None = None


class ThermalStorageState(_Payload):
    """Hot-water store (puffer, DHW tank): state of charge, net heat flow (+ charging)."""

    soc_pct: Percent
    p_kw: PowerKw | None = None
    t_top_c: TempC | None = None
    t_bottom_c: TempC | None = None


class HeatMeterState(_Payload):
    """Heat (or cooling) meter of a hub's load: thermal power delivered, energy counter."""

    p_kw: PositivePowerKw
    e_kwh: EnergyKwh | None = None
    t_supply_c: TempC | None = None
    t_return_c: TempC | None = None


class WeatherState(_Payload):
    """Site weather station: outdoor temperature (heat-pump COP), global irradiance."""

    t_amb_c: TempC
    ghi_w_per_m2: Annotated[float, Field(ge=0.0, le=1600.0)] | None = None


class DhStationState(_Payload):
    """District-heating substation of a hub: heat injected into / withdrawn from the network."""

    to_kw: PositivePowerKw
    from_kw: PositivePowerKw


class ElecLinkState(_Payload):
    """A hub's connection to the private network of a physical community: power given / taken."""

    give_kw: PositivePowerKw
    take_kw: PositivePowerKw

    @model_validator(mode="after")
    def _one_way(self) -> ElecLinkState:
        if self.give_kw > 0.05 and self.take_kw > 0.05:
            raise ValueError(
                f"inconsistent: gives {self.give_kw} and takes {self.take_kw} kW at once"
            )
        return self


class AiClusterState(_Payload):
    """AI cluster: power, current cap, queued batch energy and its next deadline."""

    p_kw: PositivePowerKw
    p_cap_kw: PositivePowerKw | None = None
    queued_e_kwh: Annotated[float, Field(ge=0.0, le=1e5)] = 0.0
    jobs_queued: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    next_deadline: datetime | None = None

    @field_validator("next_deadline", mode="before")
    @classmethod
    def _deadline(cls, value: Any) -> datetime | None:
        return None if value is None else parse_timestamp(value)


class AiJobAnnouncement(_Payload):
    """A batch job of an AI cluster, announced by its scheduler on ``…/ai_cluster/<id>/job``.

    The scheduler publishes a job when it is queued and again whenever it changes (progress while
    running, done, cancelled); the latest message per ``job_id`` wins. ``energy_kwh`` is the job's
    total energy, ``done_e_kwh`` what it has already used; ``earliest_start`` defaults to now.
    """

    job_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:\-]{1,64}$")]
    status: Literal["queued", "running", "done", "cancelled"] = "queued"
    energy_kwh: Annotated[float, Field(gt=0.0, le=1e5)]
    done_e_kwh: Annotated[float, Field(ge=0.0, le=1e5)] = 0.0
    earliest_start: datetime | None = None
    deadline: datetime
    p_max_kw: PositivePowerKw | None = None  # the job cannot draw more (GPUs it may use)

    @field_validator("earliest_start", "deadline", mode="before")
    @classmethod
    def _times(cls, value: Any) -> datetime | None:
        return None if value is None else parse_timestamp(value)

    @model_validator(mode="after")
    def _consistent(self) -> AiJobAnnouncement:
        if self.earliest_start is not None and self.deadline <= self.earliest_start:
            raise ValueError("inconsistent: deadline must be after earliest_start")
        if self.done_e_kwh > self.energy_kwh * 1.05 + 1e-6:
            raise ValueError(
                f"inconsistent: done_e_kwh={self.done_e_kwh} exceeds energy_kwh={self.energy_kwh}"
            )
        return self


class PriceState(_Payload):
    """Day-ahead zonal price (Pz) from a market-data feed (e.g. a job fetching GME's MGP results),
    published as device ``market/price/pz``: one value per ``step_min`` from ``start``."""

    start: datetime
    step_min: Literal[15, 60] = 60
    pz_eur_per_mwh: Annotated[
        list[Annotated[float, Field(ge=-1000.0, le=10_000.0)]], Field(min_length=1, max_length=672)
    ]

    @field_validator("start", mode="before")
    @classmethod
    def _start(cls, value: Any) -> datetime:
        return parse_timestamp(value)


#: Site sensors that belong to no technology (the technologies' device kinds, with their state and
#: setpoint models, are listed in :mod:`ems.techs.registry`; :mod:`ems.telemetry.kinds` joins both).
SENSOR_STATE_MODELS: dict[str, type[_Payload]] = {
    "weather": WeatherState,
    "price": PriceState,
}

#: Power fields checked against a device's rated power when the registry knows it.
POWER_FIELDS: tuple[str, ...] = ("p_kw", "import_p_kw", "export_p_kw")
# --------------------------------------------------------------------------- setpoints


class _Setpoint(_Payload):
    valid_until: datetime = Field(description="the device falls back to its safe mode after this")
    plan_id: Annotated[str, Field(max_length=64)] | None = None

    @field_validator("valid_until", mode="before")
    @classmethod
    def _valid_until(cls, value: Any) -> datetime:
        return parse_timestamp(value)

    @model_validator(mode="after")
    def _validity(self) -> _Setpoint:
        if self.valid_until <= self.ts:
            raise ValueError("valid_until must be after ts")
        return self


class BatterySetpoint(_Setpoint):
    p_kw: PowerKw


class EvChargerSetpoint(_Setpoint):
    p_kw: PowerKw  # negative = V2G discharge


class ChpSetpoint(_Setpoint):
    units_on: Annotated[int, Field(ge=0, le=100)]
    p_kw: PositivePowerKw


class HeatPumpSetpoint(_Setpoint):
    mode: Literal["off", "heating", "cooling", "dhw"]
    p_kw: PositivePowerKw


class AiClusterSetpoint(_Setpoint):
    p_cap_kw: PositivePowerKw


class BoilerSetpoint(_Setpoint):
    heat_kw: PositivePowerKw  # heat to deliver; the boiler's own thermostat still backs up the loop


class ElectricBoilerSetpoint(_Setpoint):
    p_kw: PositivePowerKw  # electric power to draw (its thermostat may draw less)


class AbsorptionChillerSetpoint(_Setpoint):
    cooling_kw: PositivePowerKw


class ThermalStorageSetpoint(_Setpoint):
    p_kw: PowerKw  # advisory: + charge, − discharge (the store takes the loop's mismatch)


class DhStationSetpoint(_Setpoint):
    to_kw: PositivePowerKw
    from_kw: PositivePowerKw


class ElecLinkSetpoint(_Setpoint):
    give_kw: PositivePowerKw
    take_kw: PositivePowerKw

    @model_validator(mode="after")
    def _one_way(self) -> ElecLinkSetpoint:
        if self.give_kw > 0.05 and self.take_kw > 0.05:
            raise ValueError("inconsistent: give and take at once")
        return self


class PvSetpoint(_Setpoint):
    p_max_kw: PositivePowerKw  # curtailment limit
