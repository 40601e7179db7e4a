"""A fitted model run forward through data it never saw, its parameters fixed.

Out of sample, the model fitted on the days before a split predicts each
later day from what was known the evening before: its conditional variances,
the AR(1) term, the market factor's recent returns and DCC's ``Q`` matrix are
filtered through the realised returns with the fitted parameters, never
re-estimated. :class:`FilteredStates` holds that state for every day of the
evaluation window and turns any set of days into the simulation state of
``n_draws`` paths starting on each of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcalloc.models.copulas import DccCopula
from mcalloc.models.joint import JointModel, model_series
from mcalloc.models.recursions import SimulationState, next_variance

__all__ = ["FilteredStates", "filter_states", "model_series"]


@dataclass(frozen=True)
class FilteredStates:
    """Each evaluated day's state, as known the evening before.

    Attributes
    ----------
    variance
        ndarray of shape (n_days, n_series): conditional variance of each
        day (percent squared).
    last_return
        ndarray of shape (n_days, n_series): the previous day's 100 x return
        of each model series (the AR(1) state).
    market_history
        ndarray of shape (n_days, n_lags): the market's previous returns
        (decimal), most recent first; ``None`` without lagged loadings.
    dcc_q
        ndarray of shape (n_days, k, k): DCC's ``Q`` of each day, or ``None``.
    """

    variance: np.ndarray
    last_return: np.ndarray
    market_history: np.ndarray | None = None
    dcc_q: np.ndarray | None = None

    def state(self, model: JointModel, days: np.ndarray, n_draws: int, rng: np.random.Generator) -> SimulationState:
        """The simulation state of ``n_draws`` paths starting on each of ``days`` (day-major order).

        Uncertain means are drawn from ``rng``, each path's own.
        """
        state = model.initial_state(days.size * n_draws, rng)
        if model.baseline is not None:
            return state
        state.variance[:] = np.repeat(self.variance[days], n_draws, axis=0)
        state.last_return[:] = np.repeat(self.last_return[days], n_draws, axis=0)
        if self.market_history is not None and state.market_history is not None:
            state.market_history[:] = np.repeat(self.market_history[days], n_draws, axis=0)
        if self.dcc_q is not None:
            state.dependence = np.repeat(self.dcc_q[days], n_draws, axis=0)
        return state


def filter_states(
    model: JointModel, returns: np.ndarray, first: int, stop: int, origin: int | None = None
) -> FilteredStates:
    """The model's state on days ``first .. stop - 1`` of ``returns``, filtered with fixed parameters.

    Parameters
    ----------
    model
        A model fitted to the rows before ``origin`` (so each marginal's
        ``last_variance`` is the variance of day ``origin``).
    returns
        ndarray of shape (n_obs, n_series): decimal daily log returns of the
        model's series (assets, then currency factors), the fitted rows included.
    first, stop
        The evaluated rows; ``first >= 1``.
    origin
        The first row after the model's data (default ``first``): an older
        fit is filtered through the rows from ``origin`` to ``first`` too.
    """
    start = first if origin is None else origin
    if not 1 <= start <= first:
        raise ValueError(f"filter_states: origin {start} must lie in 1..first ({first})")
    states = _filter(model, returns, start, stop)
    if start == first:
        return states
    skip = first - start
    return FilteredStates(
        states.variance[skip:],
        states.last_return[skip:],
        None if states.market_history is None else states.market_history[skip:],
        None if states.dcc_q is None else states.dcc_q[skip:],
    )


def _filter(model: JointModel, returns: np.ndarray, first: int, stop: int) -> FilteredStates:
    n_days, n_series = stop - first, len(model.marginals)
    variance = np.ones((n_days, n_series))
    last_return = np.zeros((n_days, n_series))
    if model.baseline is not None:
        return FilteredStates(variance, last_return)
    series = model_series(model, returns) * model.marginals[0].scale
    residuals = np.empty((n_days, n_series))
    for column, marginal in enumerate(model.marginals):
        if marginal.last_variance is None:
            raise ValueError(f"filter_states: {marginal.name} was not fitted (no last_variance)")
        current = marginal.last_variance
        mu, phi = marginal.params.get("mu", 0.0), marginal.params.get("phi", 0.0)
        for day in range(n_days):
            row = first + day
            variance[day, column] = current
            last_return[day, column] = series[row - 1, column]
            residual = series[row, column] - mu - (phi * series[row - 1, column] if marginal.autoregressive else 0.0)
            residuals[day, column] = residual
            current = next_variance(marginal.kind, marginal.params, residual, current)
    history = None
    factor = model.factor
    if factor is not None and factor.n_lags:
        market = returns[:, factor.market]
        history = np.column_stack([market[first - 1 - lag : stop - 1 - lag] for lag in range(factor.n_lags)])
    dcc_q = None
    if isinstance(model.dependence, DccCopula):
        dcc = model.dependence.dcc
        scores = np.column_stack(
            [
                m.law.to_normal_scores(residuals[:, column] / np.sqrt(variance[:, column]))
                for column, m in enumerate(model.marginals)
            ]
        )
        dcc_q = np.empty((n_days, n_series, n_series))
        current_q = dcc.last_q if dcc.last_q is not None else dcc.qbar
        for day in range(n_days):
            dcc_q[day] = current_q
            current_q = (
                (1.0 - dcc.a - dcc.b) * dcc.qbar + dcc.a * np.outer(scores[day], scores[day]) + dcc.b * current_q
            )
    return FilteredStates(variance, last_return, history, dcc_q)
