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
