"""The calendar of a simulated horizon: months, years and rebalancing dates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcalloc.config.sections import RebalanceFrequency

__all__ = ["Schedule"]

_MONTHS_BETWEEN_REBALANCES = {"monthly": 1, "quarterly": 3, "annual": 12}


@dataclass(frozen=True)
class Schedule:
    """Month boundaries of a horizon of whole years, in simulation steps.

    The simulation runs month by month; portfolios rebalance at the start of
    a month when ``rebalance_at(month)`` says so.
    """

    horizon_years: int
    steps_per_year: int
    rebalance: RebalanceFrequency

    @property
    def n_steps(self) -> int:
        return self.horizon_years * self.steps_per_year

    @property
    def month_bounds(self) -> np.ndarray:
        """Step index where each month starts, plus the end: shape (12 * years + 1,)."""
        months = np.arange(12 * self.horizon_years + 1)
        bounds = np.rint(months * self.steps_per_year / 12).astype(int)
        return bounds

    def rebalance_at(self, month: int) -> bool:
        """True if fixed-mix portfolios return to their weights as ``month`` starts."""
        every = _MONTHS_BETWEEN_REBALANCES.get(self.rebalance)
        return every is not None and month > 0 and month % every == 0

    def is_year_end(self, month: int) -> bool:
        """True if ``month`` (0-based) is the last month of a year."""
        return (month + 1) % 12 == 0
