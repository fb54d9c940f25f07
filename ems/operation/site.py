"""SITE.yaml: what the operation daemon runs (pydantic; errors name the file and the field).

```yaml
community: opera_pia
scenario: ../design/cases/opera_pia/virtual_hp.yaml   # paths relative to this file
sizes: ../out/virtual_hp/sizes.yaml
step_min: 15
horizon_h: 48
solver: {time_limit_s: 5, mip_rel_gap: 0.0001, mip_abs_gap_eur: 0.05}
ai_clusters:
  - {id: gpu1, hub: hub1, rated_kw: 60, floor_kw: 12}
mqtt: {host: 127.0.0.1, port: 1883}
store: {kind: sqlite, path: ems-state.sqlite}
```

No file is read here: :func:`adapters.config_io.load_site` reads SITE.yaml and sizes.yaml and
hands the parsed mappings to :func:`parse_site` and :func:`installed_sizes`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from ems.config.schema import primary_error
from ems.config.sizes import check_size_entries
from ems.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class AiClusterSite(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    hub: str
    rated_kw: float = Field(gt=0)
    floor_kw: float = Field(ge=0, description="inference load that must always be served")
    max_jobs: int = Field(8, ge=1, le=64, description="batch-job slots in the model")
    missed_penalty_eur_per_kwh: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _floor(self) -> AiClusterSite:
        if self.floor_kw > self.rated_kw:
            raise ValueError("floor_kw must not exceed rated_kw")
        return self


class SolverSite(_Strict):
    time_limit_s: float = Field(
        5.0,
        gt=0,
        description="wall-clock safety net per step (s). Keep it far above the step's solve time: "
        "a step stopped by it, or HiGHS heuristics budgeted by the time left before it, give a "
        "plan that depends on the machine's load (the output counts the steps that hit it)",
    )
    mip_rel_gap: float = Field(
        1e-4, ge=0, le=1, description="stop when the plan is this close to the bound (relative)…"
    )
    mip_abs_gap_eur: float = Field(
        0.05,
        ge=0,
        description="…or this close in € over the horizon, whichever comes first. "
        "The objective holds the cost of the load the EMS cannot move, so a relative gap "
        "alone (1 % of a day's bill) could hide an EV shortfall or a missed AI job whose "
        "penalty is below it; the absolute gap bounds what a plan may leave on the table",
    )
    threads: int = Field(1, ge=1)
    slack_penalty_eur_per_kwh: float = Field(
        5.0, gt=0, description="unmet/dumped energy in the soft balances"
    )
    warm_start: bool = Field(
        True, description="start each solve from the previous plan shifted by one step"
    )
    integer_horizon_h: float | None = Field(
        None,
        gt=0,
        description="integer decisions (CHP units on, heat-pump modes, exclusivity binaries) "
        "only in the first this many hours of the horizon; beyond, they are relaxed to "
        "continuous values within their bounds (a relaxation: the step's bound stays a bound "
        "of the full problem, and the setpoints come from the integer first step). "
        "None: integer over the whole horizon",
    )
    relaxation_cuts: Literal["off", "tail", "all"] = Field(
        "off",
        description="valid inequalities on the CHP units on (ems.techs.chp: ChpOffCover, "
        "ChpHeatSink; valid for every integer plan, their coefficients refreshed from each "
        "step's forecasts): none (off), on the relaxed tail of integer_horizon_h only (tail), "
        "or on every step (all: they also tighten the integer steps' LP bound). With a relaxed "
        "tail, all measured best (bench/control_step.md)",
    )

    @field_validator("relaxation_cuts", mode="before")
    @classmethod
    def _yaml_off(cls, v: Any) -> Any:
        """YAML reads a bare ``off`` as false: take it for "off"."""
        return "off" if v is False else v

    highs_options: dict[str, bool | int | float | str] = Field(
        {},
        description="further HiGHS options for every step (e.g. mip_heuristic_run_zi_round: "
        "true); the names and value types are HiGHS's, checked when the site is loaded. Not "
        "time_limit, mip_rel_gap, mip_abs_gap or threads: those have their own fields",
    )

    @field_validator("highs_options")
    @classmethod
    def _known_highs_options(
        cls, v: dict[str, bool | int | float | str]
    ) -> dict[str, bool | int | float | str]:
        import highspy

        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        for name, value in v.items():
            if name in ("time_limit", "mip_rel_gap", "mip_abs_gap", "threads"):
                raise ValueError(f"{name}: set it with its own solver field, not highs_options")
            if h.setOptionValue(name, value) != highspy.HighsStatus.kOk:
                raise ValueError(f"{name}: not a HiGHS option, or {value!r} is not a valid value")
        return v


class StoreSite(_Strict):
    kind: Literal["sqlite", "influx"] = "sqlite"
    path: str = (
        "ems-state.sqlite"  # daemon state and ledger (always); time series too with kind sqlite
    )
    influx: dict[str, Any] | None = Field(
        None, description="adapters.influx InfluxSettings (kind influx)"
    )

    @model_validator(mode="after")
    def _influx(self) -> StoreSite:
        if self.kind == "influx" and not self.influx:
            raise ValueError(
                "kind influx needs an influx: section (url, database/bucket, token...)"
            )
        return self


class SiteConfig(_Strict):
    community: str = Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    scenario: str
    sizes: str
    sizes_override: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="merged over sizes.yaml per hub"
    )
    timezone: str = "Europe/Rome"
    step_min: int = Field(15, ge=1, le=60)
    horizon_h: float = Field(48, gt=0, le=168)
    stale_after_steps: float = Field(
        2, gt=0, description="telemetry older than this many steps → device fallback"
    )
    ev_safe_kw: float = Field(3.7, ge=0, description="EV power in fallback (rule-based mode)")
    ev_short_penalty_eur_per_kwh: float = Field(2.0, gt=0)
    solver: SolverSite = SolverSite()
    ai_clusters: list[AiClusterSite] = []
    mqtt: dict[str, Any] | None = Field(
        None,
        description="adapters.mqtt MqttSettings without community; "
        "absent: embedded broker on a free port",
    )
    store: StoreSite = StoreSite()
    ocpp: dict[str, Any] | None = Field(
        None,
        description="adapters.ocpp OcppSettings: the CSMS and the charge points that may connect "
        "(docs/devices.md)",
    )
    modbus: dict[str, Any] | None = Field(
        None,
        description="adapters.modbus ModbusSettings: Modbus TCP meters, inverters, batteries "
        "(docs/devices.md)",
    )

    _path: Path | None = PrivateAttr(None)

    @property
    def path_(self) -> Path | None:
        """The SITE.yaml this came from (relative paths resolve against its folder)."""
        return self._path

    @field_validator("sizes_override")
    @classmethod
    def _override_sizes(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        check_size_entries(value)  # the sizes.yaml rules: merged after that file is validated
        return value

    @model_validator(mode="after")
    def _steps(self) -> SiteConfig:
        if (self.horizon_h * 60) % self.step_min:
            raise ValueError("horizon_h must be a whole number of steps")
        return self

    @property
    def integer_steps(self) -> int | None:
        """Model steps with integer decisions (None: all of them); at least the first step."""
        h = self.solver.integer_horizon_h
        if h is None or h >= self.horizon_h:
            return None
        return max(1, int(round(h * 60 / self.step_min)))

    @property
    def n_steps(self) -> int:
        return int(round(self.horizon_h * 60 / self.step_min))

    @property
    def dt_h(self) -> float:
        return self.step_min / 60.0

    def resolve(self, rel: str) -> Path:
        p = Path(rel)
        if not p.is_absolute() and self.path_ is not None:
            p = self.path_.parent / p
        return p


def parse_site(raw: Any, file: str, path: Path | None = None) -> SiteConfig:
    """Validate a parsed SITE.yaml (``file`` names it in errors; relative paths resolve against
    ``path``'s folder); raise :class:`ConfigError` naming file and field."""
    if not isinstance(raw, dict):
        raise ConfigError(file, "(top level)", "expected a mapping of fields")
    try:
        site = SiteConfig.model_validate(raw)
    except ValidationError as exc:
        loc, msg = primary_error(exc)
        raise ConfigError(file, ".".join(str(x) for x in loc) or "(top level)", msg) from None
    site._path = path
    return site


def installed_sizes(
    raw: Any, file: str, override: dict[str, dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """``hubs`` of a parsed sizes.yaml written by ``ems design`` (validated by
    :class:`ems.config.sizes.SizesFile`), with per-hub overrides merged."""
    from ems.config.sizes import SizesFile

    return SizesFile.parse(raw, file).installed(override)
