"""Innovation laws against arch's own distributions, closed forms and the fast score transform."""

from __future__ import annotations

import math

import numpy as np
import pytest
from arch.univariate.distribution import SkewStudent, StudentsT
from mcalloc.config.schema import MarginalParams
from mcalloc.models import FittedMarginal, InnovationLaw, ScoreTransform
from scipy import integrate, special

SKEWED = [(7.0, -0.15), (4.5, 0.3), (30.0, -0.6), (2.5, 0.1)]


@pytest.mark.parametrize(("nu", "skew"), SKEWED)
def test_skewt_matches_arch_distribution(nu: float, skew: float) -> None:
    # reference: arch.univariate.distribution.SkewStudent (Hansen 1994, arch's eta/lambda)
    law, reference = InnovationLaw("skewt", nu, skew), SkewStudent()
    values = np.linspace(-9.0, 9.0, 181)
    np.testing.assert_allclose(law.cdf(values), reference.cdf(values, [nu, skew]), rtol=1e-10, atol=1e-14)
    probabilities = np.array([1e-9, 1e-4, 0.01, 0.2, 0.5, 0.7, 0.99, 0.9999])
    np.testing.assert_allclose(law.ppf(probabilities), reference.ppf(probabilities, [nu, skew]), rtol=1e-9)
    # E[z^2 1{z<0}] is arch's partial moment of order 2 up to 0
    assert law.negative_second_moment() == pytest.approx(reference.partial_moment(2, 0.0, [nu, skew]), rel=1e-10)


@pytest.mark.parametrize(("nu", "skew"), SKEWED)
def test_skewt_tails_are_exact_far_out(nu: float, skew: float) -> None:
    law = InnovationLaw("skewt", nu, skew)
    # both tail probabilities stay on one side of the law's kink, w = b z + a = 0
    tail = np.array([1e-300, 1e-200, 1e-50, 1e-17, 1e-9, 0.1])
    # ppf and isf invert cdf and 1 - cdf in each tail, with no 1 - p rounding
    # (scipy's stdtrit alone overflows at 1e-300)
    np.testing.assert_allclose(law.cdf(law.ppf(tail)), tail, rtol=1e-8)
    upper = law.isf(tail)
    assert np.all(np.diff(upper) < 0)
    a, b = law._hansen_ab
    survival = (1 + skew) * special.stdtr(nu, -(b * upper + a) / (1 + skew) / math.sqrt((nu - 2) / nu))
    np.testing.assert_allclose(survival, tail, rtol=1e-8)


@pytest.mark.parametrize(("dist", "nu", "skew"), [("normal", None, None), ("t", 5.0, None), ("skewt", 6.0, -0.4)])
def test_laws_have_mean_zero_and_unit_variance(dist: str, nu: float | None, skew: float | None) -> None:
    law = InnovationLaw(dist, nu, skew)  # type: ignore[arg-type]

    def moment(power: int) -> float:
        # integrate z^power dF(z) over probabilities; quad on the quantile function
        def integrand(p: float) -> float:
            return float(law.ppf(np.array(p))) ** power

        return float(sum(integrate.quad(integrand, lo, hi, limit=200)[0] for lo, hi in ((0, 0.5), (0.5, 1))))

    assert moment(1) == pytest.approx(0.0, abs=1e-7)
    assert moment(2) == pytest.approx(1.0, rel=1e-6)


def test_symmetric_laws_split_variance_evenly() -> None:
    # for symmetric laws E[z^2 1{z<0}] = 1/2; arch's StudentsT partial moment agrees
    assert InnovationLaw("t", 6.0).negative_second_moment() == 0.5
    assert StudentsT().partial_moment(2, 0.0, [6.0]) == pytest.approx(0.5, rel=1e-12)
    assert InnovationLaw("skewt", 6.0, 0.0).negative_second_moment() == 0.5


def test_gaussian_abs_exp_moment_closed_form() -> None:
    # E[exp(a|z| + g z)] for z ~ N(0,1), against numerical integration
    law = InnovationLaw("normal")
    for level, asymmetry in ((0.15, -0.1), (0.4, 0.3), (0.0, 0.2)):
        numeric = integrate.quad(
            lambda z, a=level, g=asymmetry: (
                math.exp(a * abs(z) + g * z) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
            ),
            -40,
            40,
            points=[0.0],
        )[0]
        assert law.gaussian_abs_exp_moment(level, asymmetry) == pytest.approx(numeric, rel=1e-10)
    assert InnovationLaw("t", 8.0).gaussian_abs_exp_moment(0.1, 0.0) == math.inf


def skewt_marginal(nu: float, skew: float) -> FittedMarginal:
    params = MarginalParams(mu=0.0, omega=0.02, alpha=0.02, gamma=0.1, beta=0.88, nu=nu, skew=skew)
    return FittedMarginal.from_params("a", "gjr_garch", "skewt", "constant", params)


@pytest.mark.parametrize(("nu", "skew"), [(4.5, -0.4), (8.0, 0.35)])
def test_score_transform_is_accurate_for_skewed_t(nu: float, skew: float) -> None:
    marginal = skewt_marginal(nu, skew)
    transform = ScoreTransform(marginal)
    scores = np.concatenate([np.linspace(-9.5, 9.5, 20001), np.random.default_rng(0).standard_normal(20000)])
    # the exact transform uses each tail directly: lower tail as F^-1(Phi(x)), upper as F^-1 of Phi(-x) survival
    lower, upper = scores[scores <= 0], scores[scores > 0]
    np.testing.assert_allclose(transform.exact(lower), marginal.law.ppf(special.ndtr(lower)), rtol=1e-12)
    np.testing.assert_allclose(transform.exact(upper), marginal.law.isf(special.ndtr(-upper)), rtol=1e-12)
    # the skewed law is not symmetric: mirroring the lower tail would be wrong
    assert not np.allclose(transform.exact(upper), -transform.exact(-upper), rtol=1e-3)
    # same accuracy bar as for the t: 1e-4 relative in the far tails, 1e-6 in the body
    np.testing.assert_allclose(transform(scores), transform.exact(scores), rtol=1e-4, atol=1e-6)
    # in the body the interpolation error is about h^2/8 |f''| with h = 1/512: 5e-7 |f''|; unlike
    # the symmetric laws, the skewed transform is curved where it crosses zero
    body = np.abs(scores) < 4
    np.testing.assert_allclose(transform(scores[body]), transform.exact(scores[body]), rtol=1e-6, atol=3e-7)
    assert np.all(np.diff(transform(np.sort(scores))) >= 0)
    extreme = transform.exact(np.array([-37.0, 37.0]))
    assert extreme[0] < -1e3 and extreme[1] > 1e3
