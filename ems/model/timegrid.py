"""Time structure shared by both modes: periods × steps with a weight per period.

Design: periods are typical days, weight = number of real days each stands for, storage cyclic
within a period. Operation: one period of H steps, weight 1, storage starts from a measured
state (no cyclic constraint).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TimeGrid:
    periods: tuple[str, ...]
    n_steps: int
    dt_h: float
    weight: dict[str, float] = field(default_factory=dict)
    cyclic: bool = True
    start_hour: float = 0.0  # local hour of step 0 (operation mode: the current quarter hour)
    kind: dict[str, str] = field(default_factory=dict)  # period -> "weekday" | "holiday"

    @property
    def steps(self) -> range:
        return range(self.n_steps)

    def index(self) -> list[tuple[str, int]]:
        return [(p, t) for p in self.periods for t in self.steps]

    def annual_factor(self, period: str) -> float:
        """Multiplier turning a per-step power into annual (design) or horizon (operation) energy."""
        return self.weight.get(period, 1.0) * self.dt_h

    def hour_of(self, t: int) -> float:
        return (self.start_hour + t * self.dt_h) % 24.0

    def is_weekday(self, period: str) -> bool:
        return self.kind.get(period, "weekday") == "weekday"

    @property
    def days_represented(self) -> float:
        return sum(self.weight.get(p, 1.0) for p in self.periods)
