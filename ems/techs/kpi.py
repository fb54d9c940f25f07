"""What a technology adds to the reports, declared as data in its own module.

- :class:`KpiTable`: its section of the design report (one row per hub; the values come from
  :meth:`ems.techs.base.Technology.design_kpis`), printed by ``design/report.py`` and
  ``design/report_html.py`` for every technology that declares one;
- :class:`KpiRow`: its rows of the simulated day's KPI table (``ems run --simulate``; the values
  come from its plant device's ``kpis``), placed in ``order`` among the rows of the others.

The reports iterate the registry's technologies; they name no kind.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KpiColumn:
    """One design KPI: its key in the technology's KPI dict, its column header in the HTML
    report, its text on the console line (``{}`` for the value) and its decimals (console;
    ``html_decimals`` when the HTML table rounds otherwise)."""

    key: str
    header: str
    console: str
    decimals: int = 1
    html_decimals: int | None = None


@dataclass(frozen=True)
class KpiTable:
    """A technology's section of the design report: ``title`` and its KPIs per hub."""

    title: str
    columns: tuple[KpiColumn, ...]


@dataclass(frozen=True)
class KpiRow:
    """One row of the simulated day's KPI table: key of the plant's KPI dict, label, unit,
    decimals and place (``order``, lower first). ``cost``: an operating cost beside the
    electricity bill (it enters the net cost with gas); ``generation``: local electricity
    generation (self-consumption of a multi-energy site is over all of it)."""

    key: str
    label: str
    unit: str
    decimals: int
    order: float
    cost: bool = False
    generation: bool = False


@dataclass(frozen=True)
class Bar:
    """A quantity of the hub-energy report (the seed's Fig. 25 and Tables 4–5, MWh/y per hub)
    that the technology's flows feed (``Technology.port(..., bar=)``): its place in the tables
    (``order``), the panel of the figure that draws it (``electricity`` or ``heating``, at
    ``panel_order``; ``None``: tables only) and whether it is local electricity generation (the
    denominator of the electric contribution index)."""

    name: str
    order: float
    panel: str | None = None
    panel_order: float = 0.0
    generation: bool = False
