"""Pieces shared by the technologies' devices in the simulated plant (:mod:`ems.techs.plant`)."""

from __future__ import annotations

from typing import Any, ClassVar

import pandas as pd

from ems.techs.plant import row_total


class KeepsLast:
    """Mixin of a plant device whose telemetry memory is one tuple ``last`` (its values of the
    last step), saved and restored with the plant's state."""

    last: tuple

    def to_dict(self) -> dict[str, Any]:
        return {"last": list(self.last)}

    def load_dict(self, d: dict[str, Any]) -> None:
        self.last = tuple(d["last"])


class RowKpis:
    """Mixin of a plant device whose day KPIs are energies of its row quantities over the hubs:
    ``kpi_rows`` maps KPI name → row quantity (kW), summed × Δt (:func:`row_total`)."""

    kpi_rows: ClassVar[dict[str, str]] = {}

    @classmethod
    def kpis(
        cls, devices: list[Any], df: pd.DataFrame, dt_h: float, hubs: list[str], out: dict
    ) -> None:
        out.update({k: row_total(df, hubs, q, dt_h) for k, q in cls.kpi_rows.items()})
