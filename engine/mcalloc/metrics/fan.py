"""Percentiles of wealth month by month across paths, collected while the paths stream.

Holding every path's wealth at every month end would take n_paths x
n_months x n_portfolios numbers; instead each chunk counts its month-end
wealth in fixed bins of log wealth (:class:`WealthFan`), and the counts of
all chunks add up. Bins are relative to each month's ``scale``, the same on
every path: the simulation uses the money put in so far (initial wealth plus
fixed contributions) grown at the assets' long-run mean log return, so
savings plans that multiply the initial wealth a thousandfold and
century-long horizons stay inside the range. A month's bins may also be
wider than 1% of wealth (``widths``), where the paths spread further than
the range holds at that width: the simulation widens them for long
horizons with uncertain means. Counts are integers, so the
sum is the same in any order and for any number of workers. Percentiles are read off the summed counts,
interpolating within a bin: each is within one bin (1% of wealth, or the
month's width) of the exact sample percentile, and in practice much closer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd  # imported by fan_table: simulation workers count the fan without pandas

__all__ = ["FAN_PERCENTILES", "LOG_BIN", "LOG_MAX", "LOG_MIN", "WealthFan", "fan_quantiles", "fan_table"]

LOG_MIN = -7.0
"""Lowest log of wealth over the month's scale with a bin of its own, at the narrowest bins: 0.09% of the scale."""

LOG_MAX = 7.0
"""Highest: about 1,100 times the scale. Wealth outside the range is counted at either end."""

LOG_BIN = 0.01
"""The narrowest bin width in log wealth: about 1% of wealth. A month's ``widths`` scale the range with it."""

N_BINS = round((LOG_MAX - LOG_MIN) / LOG_BIN)

FAN_PERCENTILES = (5, 10, 25, 50, 75, 90, 95)
"""Percentiles written to ``fan.csv``."""


class WealthFan:
    """Counts of month-end wealth, shape (n_portfolios, n_months, N_BINS + 2).

    Bin 0 holds wealth below ``exp(LOG_MIN)`` (zero included), the last bin
    wealth above ``exp(LOG_MAX)``, both times the month's ``scale``; with a
    month's bin width ``w`` other than ``LOG_BIN`` the range is
    ``LOG_MIN, LOG_MAX`` times ``w / LOG_BIN``. 32-bit counts: up to 2**31 paths.
    """

    def __init__(
        self, n_portfolios: int, n_months: int, scales: np.ndarray | None = None, widths: np.ndarray | None = None
    ) -> None:
        self.counts = np.zeros((n_portfolios, n_months, N_BINS + 2), dtype=np.int32)
        self.scales = np.ones(n_months) if scales is None else np.asarray(scales, dtype=float)
        self.widths = np.full(n_months, LOG_BIN) if widths is None else np.asarray(widths, dtype=float)

    def add(self, month: int, value: np.ndarray) -> None:
        """Count the wealth ``value`` (n_portfolios, n_paths, per unit of initial wealth) at the end of ``month``."""
        from mcalloc.portfolio.kernels import count_bins

        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.log(value / self.scales[month])
        width = float(self.widths[month])
        count_bins(logs, LOG_MIN * (width / LOG_BIN), width, self.counts[:, month, :])

    def add_reference(self, month: int, value: np.ndarray) -> None:
        """:meth:`add` in numpy, the reference the compiled counting is tested against."""
        n_portfolios = value.shape[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            width = float(self.widths[month])
            position = (np.log(value / self.scales[month]) - LOG_MIN * (width / LOG_BIN)) / width
        position = np.nan_to_num(position, nan=-1.0, posinf=N_BINS + 1.0, neginf=-1.0)
        index = np.clip(np.floor(position).astype(np.int64) + 1, 0, N_BINS + 1)
        index += (np.arange(n_portfolios) * (N_BINS + 2))[:, None]
        self.counts[:, month, :] += np.bincount(index.ravel(), minlength=n_portfolios * (N_BINS + 2)).reshape(
            n_portfolios, N_BINS + 2
        )

    def for_portfolios(self, index: np.ndarray) -> WealthFan:
        """The counts of portfolios ``index`` (n,), in that order."""
        fan = WealthFan(len(index), self.counts.shape[1], self.scales, self.widths)
        fan.counts[:] = self.counts[index]
        return fan

    def merge(self, other: WealthFan) -> None:
        assert np.array_equal(self.scales, other.scales) and np.array_equal(self.widths, other.widths)
        self.counts += other.counts

    def quantiles(self, probabilities: np.ndarray) -> np.ndarray:
        """Wealth quantiles per unit of initial wealth, (n_portfolios, n_months, len(probabilities))."""
        relative = fan_quantiles(self.counts, probabilities, self.widths[None, :])
        scaled: np.ndarray = relative * self.scales[None, :, None]
        return scaled


def fan_quantiles(counts: np.ndarray, probabilities: np.ndarray, widths: np.ndarray | float = LOG_BIN) -> np.ndarray:
    """Quantiles of wealth over its scale from bin counts (..., N_BINS + 2) whose bins are ``widths`` wide.

    ``widths`` broadcasts against ``counts.shape[:-1]``. Returns shape
    (..., len(probabilities)). A quantile inside a bin is interpolated
    linearly in log wealth; one in the bin below the range is 0, one above
    it is ``inf``.
    """
    counts = np.asarray(counts, dtype=float)
    flat = counts.reshape(-1, counts.shape[-1])
    row_widths = np.broadcast_to(np.asarray(widths, dtype=float), counts.shape[:-1]).reshape(-1)
    out = np.empty((flat.shape[0], len(probabilities)))
    unit_edges = LOG_MIN + LOG_BIN * np.arange(N_BINS + 1)
    for row, histogram in enumerate(flat):
        width = row_widths[row]
        edges = unit_edges * (width / LOG_BIN)
        cumulative = np.cumsum(histogram)
        total = cumulative[-1]
        for column, probability in enumerate(probabilities):
            target = probability * total
            index = int(np.searchsorted(cumulative, target, side="left"))
            if index == 0:
                out[row, column] = 0.0
            elif index == N_BINS + 1:
                out[row, column] = np.inf
            else:
                below = cumulative[index - 1]
                share = (target - below) / histogram[index] if histogram[index] else 0.0
                out[row, column] = np.exp(edges[index - 1] + share * width)
    return out.reshape(*counts.shape[:-1], len(probabilities))


def fan_table(fan: WealthFan, names: list[str], initial_wealth: float, currency: str) -> pd.DataFrame:
    """``fan.csv``: per portfolio and month end, percentiles of wealth across paths (in ``currency``)."""
    import pandas as pd

    probabilities = np.array(FAN_PERCENTILES) / 100.0
    quantiles = fan.quantiles(probabilities) * initial_wealth
    n_months = fan.counts.shape[1]
    rows = []
    for column, name in enumerate(names):
        rows.append(
            pd.DataFrame(
                {
                    "portfolio": name,
                    "currency": currency,
                    "month": np.arange(n_months + 1),
                    **{
                        f"wealth_p{p:02d}": np.concatenate([[initial_wealth], quantiles[column, :, k]])
                        for k, p in enumerate(FAN_PERCENTILES)
                    },
                }
            )
        )
    return pd.concat(rows, ignore_index=True)
