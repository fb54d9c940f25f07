"""Sizes shared by the technologies bought whole: identical units of one catalogue model (CHP, heat
pump, absorption chiller) or capacity in steps (gas and electric boilers).

Each declares one size handle (a variable in design mode, a parameter in operation mode, seed
§3.2.2–§3.2.3) with its capex per unit; the installed size comes from the handle once the model
is built, else from the ``sizes.yaml`` entry (``fixed``) or the existing plant.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import pyomo.environ as pyo

from ems.model.context import BuildContext, SizeHandle
from ems.techs._units import fixed_value
from ems.techs.base import Technology


def stepped_size(
    ctx: BuildContext,
    blk: pyo.Block,
    spec: Any,
    *,
    step: float,
    unit: str,
    maximum: float,
    capex_per_unit: float,
    existing: float = 0.0,
    integer: bool = True,
    fixed: float | None = None,
) -> SizeHandle:
    """A size in integer steps of ``step`` (``n_steps``) up to ``maximum`` (existing included),
    all in ``unit``; capex per ``unit``, lifetime and O&M from ``spec``; ``fixed``: the installed
    size from ``sizes.yaml`` (in ``unit``)."""
    return ctx.size(
        blk,
        "n_steps",
        unit_size=step,
        unit=unit,
        max_units=math.floor(maximum / step + 1e-6),
        existing_units=existing / step,
        integer=integer,
        capex_eur_per_unit=capex_per_unit * step,
        lifetime_y=spec.lifetime_y,
        om_fraction_per_y=spec.om_fraction_per_y,
        fixed_units=None if fixed is None else fixed / step,
    )


def _designed(hub: Any, field: str) -> list[Any]:
    """The hub's entries of one field that exist beyond the AS-IS plant (``sizes.yaml`` keys)."""
    return [lim for lim in getattr(hub, field) if not getattr(lim, "asis_only", False)]


def _model_args(a: Any, hub: Any, lim: Any, spec_cls: type, section: str) -> tuple:
    """(name, hub, model, catalogue spec) of one model listed at a hub."""
    return f"{hub.id}_{lim.type}", hub.id, lim.type, a.catalogue.get(lim.type, spec_cls, section)


class UnitSized(Technology):
    """Integer units ``n`` of one model (``n_units``), at most ``max_units``, at least the existing
    ones; every unit is ``unit_kw()`` in :attr:`size_unit` and costs ``unit_capex_eur()``."""

    #: the design report's item ("chp", "heat pump"...) and the sizes' kW key ("kwe", "kwc")
    size_item: ClassVar[str] = ""
    size_key: ClassVar[str] = "kw"
    size_unit: ClassVar[str] = "kW"
    #: the hub's field listing its models (entries with ``type``, ``max_units``,
    #: ``existing_units``, ``asis_only``)
    hub_field: ClassVar[str] = ""
    #: its units on are integer per step and their relaxation is what the sizing pass's bound
    #: misses: the strengthened cuts hold per value of its unit count (SizeHandle.commitment)
    commitment_sized: ClassVar[bool] = False

    def __init__(
        self,
        name: str,
        hub: str,
        model: str,
        spec: Any,
        max_units: int,
        *,
        existing_units: int = 0,
        fixed: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(name, hub)
        self.model, self.spec = model, spec
        self.max_units, self.existing_units = max_units, existing_units
        self.fixed = fixed
        self.n: SizeHandle | None = None

    @classmethod
    def size_keys(cls, hub: Any, catalogue: Any) -> dict[str, tuple[str, ...] | None]:
        return {lim.type: ("n_units", cls.size_key) for lim in _designed(hub, cls.hub_field)}

    @classmethod
    def units_from_hub(
        cls, a: Any, hub: Any, spec_cls: type, section: str, **kw: Any
    ) -> list[Technology]:
        """One instance per model listed at the hub, the AS-IS-only ones skipped as ``a`` says."""
        limits = getattr(hub, cls.hub_field)
        return [
            cls(
                *_model_args(a, hub, lim, spec_cls, section),
                lim.max_units,
                existing_units=lim.existing_units,
                fixed=a.fixed(hub.id, lim.type),
                **kw,
            )
            for lim in limits
            if not a.skip(lim)
        ]

    def unit_kw(self) -> float:
        """Size of one unit in :attr:`size_unit`."""
        raise NotImplementedError

    def unit_capex_eur(self) -> float:
        """Capex of one unit (€)."""
        return self.spec.capex_eur_per_unit

    def declare_sizes(self, ctx: BuildContext, blk: pyo.Block) -> None:
        s = self.spec
        self.n = ctx.size(
            blk,
            "n_units",
            unit_size=self.unit_kw(),
            unit=self.size_unit,
            max_units=self.max_units,
            existing_units=self.existing_units,
            capex_eur_per_unit=self.unit_capex_eur(),
            lifetime_y=s.lifetime_y,
            om_fraction_per_y=s.om_fraction_per_y,
            fixed_units=fixed_value(self.fixed, "n_units"),
        )
        self.n.commitment = self.commitment_sized

    def sizes(self) -> dict[str, float]:
        assert self.n is not None
        return {"n_units": self.n.value_units(), self.size_key: self.n.value()}

    def size_rows(self) -> list[dict[str, Any]]:
        assert self.n is not None
        maximum = max(self.max_units, self.existing_units)
        item = f"{self.size_item} {self.model}"
        return [self.size_row(item, "units", self.n.value_units(), maximum)]

    def installed_units(self) -> float:
        """Units installed: the size's value once built, else ``sizes.yaml`` or the existing."""
        if self.n is not None:
            return self.n.value_units()
        f = fixed_value(self.fixed, "n_units")
        return float(self.existing_units if f is None else f)


class StepSized(Technology):
    """Heat capacity in integer steps of ``spec.step_kw`` (``n_steps``) up to existing + ``max_kw``
    over its ``carriers`` (heating, DHW): Σ_carriers q ≤ capacity, input = Σ q / η."""

    #: the design report's item ("boiler", "electric boiler")
    size_item: ClassVar[str] = ""
    #: the hub's field listing its models (entries with ``type``, ``existing_kw``, ``max_kw``,
    #: ``carriers``, ``asis_only``)
    hub_field: ClassVar[str] = ""

    def __init__(
        self,
        name: str,
        hub: str,
        model: str,
        spec: Any,
        *,
        existing_kw: float,
        max_kw: float,
        carriers: list[str],
        fixed: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(name, hub)
        self.model, self.spec = model, spec
        self.existing_kw, self.max_kw = existing_kw, max_kw
        self.carriers = carriers
        self.fixed = fixed
        self.size_kw: SizeHandle | None = None

    @classmethod
    def size_keys(cls, hub: Any, catalogue: Any) -> dict[str, tuple[str, ...] | None]:
        return {lim.type: ("kw",) for lim in _designed(hub, cls.hub_field)}

    @classmethod
    def steps_from_hub(
        cls, a: Any, hub: Any, spec_cls: type, section: str, **kw: Any
    ) -> list[Technology]:
        """One instance per model listed at the hub that feeds a carrier of the hub, the
        AS-IS-only ones skipped as ``a`` says."""
        out: list[Technology] = []
        for lim in getattr(hub, cls.hub_field):
            cs = [c for c in lim.carriers if c in a.carriers(hub)]
            if a.skip(lim) or not cs:
                continue
            out.append(
                cls(
                    *_model_args(a, hub, lim, spec_cls, section),
                    existing_kw=lim.existing_kw,
                    max_kw=lim.max_kw,
                    carriers=cs,
                    fixed=a.fixed(hub.id, lim.type),
                    **kw,
                )
            )
        return out

    def declare_sizes(self, ctx: BuildContext, blk: pyo.Block) -> None:
        s = self.spec
        self.size_kw = stepped_size(
            ctx,
            blk,
            s,
            step=s.step_kw,
            unit="kW",
            maximum=self.existing_kw + self.max_kw,
            capex_per_unit=s.capex_eur_per_kw,
            existing=self.existing_kw,
            integer=self.max_kw > 0,
            fixed=fixed_value(self.fixed, "kw"),
        )

    def add_heat_output(
        self, ctx: BuildContext, blk: pyo.Block, input_name: str, label: str, bar: str
    ) -> None:
        """``blk.q_kw[carrier, p, t]`` within capacity, its input ``blk.<input_name>`` = Σ q / η,
        and a supply port per carrier (``bar`` for heating and DHW)."""
        size = self.size_kw
        assert size is not None
        blk.C = pyo.Set(initialize=self.carriers, ordered=True)
        blk.q_kw = pyo.Var(blk.C, ctx.T, domain=pyo.NonNegativeReals, bounds=(0, size.ub))
        blk.capacity = pyo.Constraint(
            ctx.T, rule=lambda b, p, t: sum(b.q_kw[c, p, t] for c in b.C) <= size.expr
        )
        inp = pyo.Expression(
            ctx.T, rule=lambda b, p, t: sum(b.q_kw[c, p, t] for c in b.C) / self.spec.eta
        )
        blk.add_component(input_name, inp)
        for c in self.carriers:
            c_bar = bar if c in ("heat", "dhw") else None
            self.port(ctx, c, label, lambda p, t, c=c: blk.q_kw[c, p, t], bar=c_bar)

    def sizes(self) -> dict[str, float]:
        assert self.size_kw is not None
        return {"kw": self.size_kw.value()}

    def size_rows(self) -> list[dict[str, Any]]:
        maximum = self.existing_kw + self.max_kw
        item = f"{self.size_item} {self.model}"
        return [self.size_row(item, "kW", self.sizes()["kw"], maximum)]

    def cover_terms(self, carrier: str) -> list | None:
        if carrier != "heat":
            return []
        b = self.block
        return [lambda p, t: sum(b.q_kw[c, p, t] for c in b.C if c in ("heat", "dhw"))]

    def can_supply_electricity(self) -> bool:
        return False

    def size_kw_now(self) -> float:
        """Heat capacity installed (kW): the size's value once built, else ``sizes.yaml`` or the
        existing."""
        if self.size_kw is not None:
            return self.size_kw.value()
        f = fixed_value(self.fixed, "kw")
        return float(self.existing_kw if f is None else f)

    def installed(self) -> bool:
        return self.size_kw_now() > 0
