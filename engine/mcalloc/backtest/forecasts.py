"""Out-of-sample forecasts of a fitted model: predictive draws for each day and month, and whole windows.

For every evaluated day the model starts ``n_draws`` paths from the state
filtered up to the evening before (:mod:`mcalloc.backtest.filtering`) and
simulates one day; for every month (``MONTH`` trading days from the first
evaluated day, a partial last month dropped) it simulates the month from the
state on its first day. Each draw is read as the returns of every series and
of every benchmark portfolio (:class:`Targets`), which gives the predictive
quantiles (value at risk) and the realised value's probability integral
transform. :func:`window_rows` simulates whole windows as long as the test
period from the state at the split and places the realised window's
statistics among them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mcalloc.backtest.filtering import FilteredStates, filter_states
from mcalloc.metrics.calibration import CalibrationRow, compare_statistics, window_periods, window_statistics
from mcalloc.metrics.forecast_tests import predictive_pit
from mcalloc.models.joint import JointModel
from mcalloc.models.validation import simulate_window

__all__ = ["COVERAGES", "MONTH", "HorizonForecasts", "Targets", "forecast", "var_forecast", "window_rows"]

MONTH = 21
"""Trading days in a forecast month."""

COVERAGES = (0.01, 0.05)
"""Tail probabilities of the value-at-risk forecasts (99% and 95% VaR)."""


def var_forecast(draws: np.ndarray, coverage: float) -> np.ndarray:
    """The VaR forecast from ``draws`` (n_periods, n_draws, ...): their ``k``-th smallest, ``k = floor(p (n + 1))``.

    An outcome from the same law as ``n`` draws falls below their ``k``-th
    smallest with probability exactly ``k / (n + 1)`` (David and Nagaraja,
    *Order Statistics*, 2003): ``coverage`` when ``coverage (n + 1)`` is
    whole, otherwise at most ``1 / (n + 1)`` under it. The quantile
    interpolated between draws would be hit more often than ``coverage``:
    at 100 draws, a right model's 1% VaR about 2% of the time.
    """
    n_draws = draws.shape[1]
    k = max(1, math.floor(coverage * (n_draws + 1) + 1e-9))
    result: np.ndarray = np.partition(draws, k - 1, axis=1)[:, k - 1]
    return result


_WINDOW_BATCH = 1000
"""Simulated test windows held at once."""

_PORTFOLIO_STATISTICS = ("vol_ann", "max_drawdown", "cum_return")

_CHUNK_VALUES = 4_000_000
"""Simulated values (paths x days x series) held at once."""


@dataclass(frozen=True)
class Targets:
    """What is forecast: every model series, then every benchmark portfolio.

    ``weights`` has shape (n_portfolios, n_series), rows summing to one, zero
    on series that are not assets (currency factors). A portfolio's daily log
    return is ``log(sum_i w_i exp(b_i))`` (held at its weights each day),
    ``b = r @ conversion`` the series' log returns in the investor's currency
    (a foreign asset's own plus its exchange rate's); its monthly one is
    bought at the weights and held through the month. Without ``conversion``
    the series are already in that currency.
    """

    series: tuple[str, ...]
    portfolios: tuple[str, ...]
    weights: np.ndarray
    conversion: np.ndarray | None = None

    @property
    def names(self) -> list[str]:
        return [*self.series, *self.portfolios]

    def _mixed(self, returns: np.ndarray) -> np.ndarray:
        base = returns if self.conversion is None else returns @ self.conversion
        mixed: np.ndarray = np.log(np.exp(base) @ self.weights.T)
        return mixed

    def daily(self, returns: np.ndarray) -> np.ndarray:
        """Daily log returns (..., n_series) -> (..., n_targets)."""
        return np.concatenate([returns, self._mixed(returns)], axis=-1)

    def monthly(self, returns: np.ndarray) -> np.ndarray:
        """A month of daily log returns (..., n_steps, n_series) -> the month's log returns (..., n_targets)."""
        total = returns.sum(axis=-2)
        return np.concatenate([total, self._mixed(total)], axis=-1)


@dataclass(frozen=True)
class HorizonForecasts:
    """Forecasts at one horizon: per period (rows) and target (columns).

    ``starts`` holds each period's first row in the data; ``var`` maps each
    tail probability of :data:`COVERAGES` to the predictive quantiles.
    """

    horizon: str
    starts: np.ndarray
    realised: np.ndarray
    pit: np.ndarray
    var: dict[float, np.ndarray]

    @classmethod
    def joined(cls, parts: Sequence[HorizonForecasts]) -> HorizonForecasts:
        """Consecutive segments' forecasts as one."""
        return cls(
            horizon=parts[0].horizon,
            starts=np.concatenate([p.starts for p in parts]),
            realised=np.concatenate([p.realised for p in parts]),
            pit=np.concatenate([p.pit for p in parts]),
            var={c: np.concatenate([p.var[c] for p in parts]) for c in COVERAGES},
        )


def _predict(
    model: JointModel,
    states: FilteredStates,
    days: np.ndarray,
    n_steps: int,
    n_draws: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draws of ``n_steps`` days from each of ``days``, shape (len(days), n_draws, n_steps, n_series)."""
    n_series = len(model.marginals)
    # uncertain means from a child stream: the shocks are the same numbers with the means known or not
    state = states.state(model, days, n_draws, rng.spawn(1)[0])
    simulated = model.simulate_block(rng, state, n_steps)
    return simulated.reshape(days.size, n_draws, n_steps, n_series)


def _horizon(
    model: JointModel,
    returns: np.ndarray,
    first: int,
    states: FilteredStates,
    offsets: np.ndarray,
    n_steps: int,
    targets: Targets,
    n_draws: int,
    rng: np.random.Generator,
    label: str,
) -> HorizonForecasts:
    n_series = returns.shape[1]
    per_period = max(1, _CHUNK_VALUES // (n_draws * n_steps * n_series))
    realised, pits, quantiles = [], [], {c: [] for c in COVERAGES}  # type: ignore[var-annotated]
    for begin in range(0, offsets.size, per_period):
        chunk = offsets[begin : begin + per_period]
        draws = targets.monthly(_predict(model, states, chunk, n_steps, n_draws, rng))
        rows = (first + chunk)[:, None] + np.arange(n_steps)[None, :]
        observed = targets.monthly(returns[rows])
        realised.append(observed)
        pits.append(np.column_stack([predictive_pit(observed[:, j], draws[:, :, j]) for j in range(observed.shape[1])]))
        for coverage in COVERAGES:
            quantiles[coverage].append(var_forecast(draws, coverage))
    return HorizonForecasts(
        horizon=label,
        starts=first + offsets,
        realised=np.concatenate(realised),
        pit=np.concatenate(pits),
        var={c: np.concatenate(quantiles[c]) for c in COVERAGES},
    )


def forecast(
    model: JointModel,
    returns: np.ndarray,
    first: int,
    stop: int,
    targets: Targets,
    n_draws: int,
    rng: np.random.Generator,
    origin: int | None = None,
) -> tuple[HorizonForecasts, HorizonForecasts]:
    """One-day and one-month forecasts of rows ``first .. stop - 1`` by a model fitted to the rows before.

    Parameters
    ----------
    model
        Fitted to ``returns[:first]``.
    returns
        ndarray of shape (n_obs, n_series): decimal daily log returns of the
        model's series.
    first, stop
        The evaluated rows.
    targets
        The series and portfolios forecast.
    n_draws
        Predictive draws per forecast.
    rng
        Source of every draw.
    origin
        When the model was fitted to the rows before an earlier row (a
        refit that failed left it in charge), that row: its state is
        filtered from there.

    Returns
    -------
    The daily (``1d``) and monthly (``1m``) forecasts.
    """
    states = filter_states(model, returns, first, stop, origin)
    n_days = stop - first
    daily = _horizon(model, returns, first, states, np.arange(n_days), 1, targets, n_draws, rng, "1d")
    months = np.arange(0, n_days - MONTH + 1, MONTH)
    monthly = _horizon(model, returns, first, states, months, MONTH, targets, n_draws, rng, "1m")
    return daily, monthly


def window_rows(
    model: JointModel,
    returns: np.ndarray,
    first: int,
    stop: int,
    targets: Targets,
    n_paths: int,
    rng: np.random.Generator,
    steps_per_year: int,
    label: str,
) -> list[CalibrationRow]:
    """The realised test window's statistics among ``n_paths`` windows simulated from the state at ``first``.

    Every :func:`~mcalloc.metrics.calibration.window_statistics` statistic
    of the series, and each portfolio's volatility, maximum drawdown and
    cumulative return. Windows are simulated ``_WINDOW_BATCH`` paths at a
    time, only their statistics kept.
    """
    periods = window_periods(steps_per_year)
    states = filter_states(model, returns, first, first + 1)
    observed = returns[first:stop]
    n_series = len(targets.series)

    def statistics(windows: np.ndarray) -> dict[str, np.ndarray]:
        values = window_statistics(windows, targets.series, **periods)
        if targets.portfolios:
            mixed = window_statistics(targets.daily(windows)[..., n_series:], targets.portfolios, **periods)
            values.update({k: v for k, v in mixed.items() if k.split(":")[0] in _PORTFOLIO_STATISTICS})
        return values

    batches: list[dict[str, np.ndarray]] = []
    for begin in range(0, n_paths, _WINDOW_BATCH):
        size = min(_WINDOW_BATCH, n_paths - begin)
        state = states.state(model, np.zeros(1, dtype=np.intp), size, rng.spawn(1)[0])
        batches.append(statistics(simulate_window(model, state, stop - first, rng)))
    simulated = {key: np.concatenate([batch[key] for batch in batches]) for key in batches[0]}
    return compare_statistics(statistics(observed[None]), simulated, label)
