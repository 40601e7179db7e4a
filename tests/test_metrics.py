"""Risk metrics against closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from engine.metrics import annualised_growth, cvar, value_at_risk


def test_cvar_of_normal_scenarios_approaches_closed_form() -> None:
    # Closed form for L ~ N(m, s^2): CVaR_a = m + s * phi(Phi^-1(a)) / (1 - a)
    # (e.g. McNeil, Frey & Embrechts, Quantitative Risk Management, ex. 2.14).
    alpha, mean, sd, n = 0.95, 0.01, 0.2, 400_000
    losses = np.random.default_rng(11).normal(mean, sd, n)
    exact = mean + sd * stats.norm.pdf(stats.norm.ppf(alpha)) / (1 - alpha)
    # asymptotic standard error of the sample CVaR: sd((L - VaR)^+) / ((1 - a) sqrt(n))
    var = value_at_risk(losses, alpha)
    standard_error = np.std(np.maximum(losses - var, 0.0)) / ((1 - alpha) * np.sqrt(n))
    assert cvar(losses, alpha) == pytest.approx(exact, abs=4 * standard_error)


def test_cvar_is_mean_of_worst_tail_when_tail_is_whole_scenarios() -> None:
    losses = np.arange(1.0, 101.0)  # 100 scenarios; the worst 5 are 96..100
    assert cvar(losses, 0.95) == pytest.approx(98.0)
    assert value_at_risk(losses, 0.95) == 95.0


def test_cvar_is_the_rockafellar_uryasev_minimum() -> None:
    losses = np.random.default_rng(3).standard_t(4, 997)
    alpha = 0.9
    grid = np.linspace(losses.min(), losses.max(), 20001)
    objective = grid + np.maximum(losses[None, :] - grid[:, None], 0).mean(axis=1) / (1 - alpha)
    assert cvar(losses, alpha) == pytest.approx(objective.min(), abs=1e-3)
    assert cvar(losses, alpha) <= objective.min() + 1e-12


def test_annualised_growth() -> None:
    assert annualised_growth(np.array([2.0]), 10)[0] == pytest.approx(2**0.1 - 1)


def test_metrics_table_matches_a_direct_computation_per_portfolio() -> None:
    # the table works one portfolio at a time to save memory; the numbers are the plain formulas
    from engine.metrics import metrics_table
    from engine.portfolio.accounting import BookSummary

    rng = np.random.default_rng(4)
    n_paths, n_years, months = 500, 3, 36
    monthly = rng.normal(0.006, 0.045, (n_paths, months, 2))
    values = np.exp(np.cumsum(monthly, axis=1))
    year_end = values[:, 11::12, :]
    book = BookSummary(
        terminal_value=values[:, -1, :],
        max_drawdown=1.0 - (values / np.maximum.accumulate(values, axis=1)).min(axis=1),
        year_end_values=year_end,
        log_return_sum=monthly.sum(axis=1),
        log_return_sumsq=(monthly**2).sum(axis=1),
        n_steps=months * 21,
        n_blocks=months,
    )
    table = metrics_table(book, ["a", "b"], 100.0, n_years).set_index("portfolio")
    for column, name in enumerate(["a", "b"]):
        yearly = np.diff(np.concatenate([np.ones((n_paths, 1)), year_end[:, :, column]], axis=1), axis=1)
        yearly /= np.concatenate([np.ones((n_paths, 1)), year_end[:, :-1, column]], axis=1)
        assert table.loc[name, "cvar_95_annual"] == pytest.approx(cvar(-yearly, 0.95), rel=1e-12)
        volatility = monthly[:, :, column].std(axis=1, ddof=1) * np.sqrt(12)
        assert table.loc[name, "vol_ann"] == pytest.approx(np.median(volatility), rel=1e-9)
        cagr = values[:, -1, column] ** (1 / n_years) - 1
        assert table.loc[name, "cagr_p05"] == pytest.approx(np.percentile(cagr, 5), rel=1e-12)
        assert table.loc[name, "prob_loss"] == np.mean(values[:, -1, column] < 1.0)
