"""From a validated scenario (and optionally fixed sizes) to technology instances.

Assembling iterates the technology registry (:mod:`ems.techs.registry`): each registered kind
makes its own instances from a hub of the scenario (``Technology.from_hub``) or from the whole
site (``Technology.from_site``, for what couples hubs), in the registry's stages (a station needs
the technologies of its hub, a network its stations). ``fixed_sizes`` (what design mode writes to
``sizes.yaml``) turns every size into a parameter: the same model, sizes fixed (Calliope's operate
mode, REopt's MPC). Bounds and big-M values are not computed here: each derives from the size
handles' upper bound at build time (the maximum in design, the installed size in operation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ems.config.schema import Catalogue, HubSpec, Scenario
from ems.techs.base import Technology

SizesByHub = dict[str, dict[str, Any]]


def electricity_column(hub_id: str, scenario: Scenario) -> str:
    hub = next(h for h in scenario.hubs if h.id == hub_id)
    return hub.electricity.column or f"{hub_id}_electricity_kw"


def grid_exclusivity_needed(scenario: Scenario, sale_can_exceed_purchase: bool) -> bool:
    """Import/export exclusivity binaries only where simultaneous import and export could pay:
    a shared-energy incentive in a virtual community, or a sale price that can exceed purchase."""
    incentive = scenario.community == "virtual" and (
        scenario.prices.incentive_eur_per_mwh > 0 or scenario.incentive is not None
    )
    return incentive or sale_can_exceed_purchase


def hub_carriers(hub: Any) -> list[str]:
    """Carriers other than electricity balanced at a hub: what each registered technology says it
    brings there (:meth:`~ems.techs.base.Technology.hub_carriers`: heating (15), DHW (16),
    cooling (19), the chillers' feed (18), the CHP-only injection into district heating (12))."""
    from ems.techs.registry import REGISTRY

    return list(dict.fromkeys(c for reg in REGISTRY for c in reg.tech.hub_carriers(hub)))


@dataclass
class Assembly:
    """What a technology's ``from_hub``/``from_site`` may read while the scenario is assembled."""

    scenario: Scenario
    catalogue: Catalogue
    exclusive_grid: bool
    fixed_sizes: SizesByHub | None = None
    asis: bool = False
    peaks: dict[str, float] = field(default_factory=dict)  # peak of each data column (design)
    techs: list[Technology] = field(default_factory=list)
    limits: dict[tuple[str, str], float] = field(default_factory=dict)

    def fixed(self, hub_id: str, key: str | None = None) -> dict[str, Any] | None:
        """Installed sizes of a hub (or of one of its entries) from ``sizes.yaml``; ``None`` in
        design mode (sizes are decisions); an entry missing from the file is empty (size 0)."""
        if self.fixed_sizes is None:
            return None
        f = self.fixed_sizes.get(hub_id, {}) or {}
        return f if key is None else (f.get(key) or {})

    def skip(self, limit: Any) -> bool:
        """An entry that exists only in the AS-IS plant (not in a design or in operation)."""
        return bool(getattr(limit, "asis_only", False)) and not self.asis

    def carriers(self, hub: HubSpec) -> list[str]:
        return hub_carriers(hub)

    def load_column(self, hub_id: str) -> str:
        return electricity_column(hub_id, self.scenario)

    def at(self, hub_id: str, cls: type | None = None) -> list[Any]:
        """Technologies assembled so far at a hub (of a class)."""
        return [t for t in self.techs if t.hub == hub_id and (cls is None or isinstance(t, cls))]

    def of(self, cls: type) -> list[Any]:
        return [t for t in self.techs if isinstance(t, cls)]


def techs_from_scenario(
    s: Scenario,
    cat: Catalogue,
    *,
    exclusive_grid: bool,
    fixed_sizes: SizesByHub | None = None,
    asis: bool = False,
    peaks: dict[str, float] | None = None,
    drop_empty_slots: bool = False,
) -> tuple[list[Technology], dict[tuple[str, str], float]]:
    """Technology instances and shared limits (roof m² per hub) for a scenario.

    ``asis``: the AS-IS plant (boilers marked ``asis_only`` exist, hubs are not linked).
    ``peaks``: peak of each data column (big-M values of the exchange constraints from data).
    ``drop_empty_slots`` (operation, sizes fixed): a technology with devices and nothing
    installed (a catalogue model the design did not choose) is left out, so the technologies
    assembled after it (a hub's CHP heat split, the CHP cuts) see only what is installed; in the
    model it would be variables and rows fixed at zero.
    """
    from ems.techs.registry import REGISTRY, STAGES

    def keep(new: list[Technology]) -> list[Technology]:
        if not drop_empty_slots:
            return new
        return [t for t in new if t.operated()]

    a = Assembly(s, cat, exclusive_grid, fixed_sizes, asis, dict(peaks or {}))
    for hub in s.hubs:
        if hub.roof_area_m2 is not None:
            a.limits[("roof_m2", hub.id)] = hub.roof_area_m2
    for stage in STAGES:
        for hub in s.hubs:
            for reg in REGISTRY:
                if stage in reg.hub_stages:
                    a.techs += keep(reg.tech.from_hub(a, hub, stage))
        for reg in REGISTRY:
            if stage in reg.site_stages:
                a.techs += keep(reg.tech.from_site(a, stage))
    return a.techs, a.limits
