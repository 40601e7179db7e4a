"""Normals by inversion of uniforms: the table against scipy's exact quantile, and the draws against the normal law."""

from __future__ import annotations

import math

import numpy as np
import pytest
from mcalloc.models.copulas import MixingTable, t_mixing_exact
from mcalloc.models.inversion import normal_quantile_exact, normal_table, standard_normals
from scipy import special, stats


def test_exact_normal_quantile_matches_published_values_and_is_symmetric() -> None:
    # Abramowitz and Stegun (1964), table 26.5: the 97.5% and 99.5% points of the standard normal,
    # 1.959963985 and 2.575829304 (to the table's 9 decimals)
    assert normal_quantile_exact(np.array([0.975]))[0] == pytest.approx(1.959963985, abs=1e-9)
    assert normal_quantile_exact(np.array([0.005]))[0] == pytest.approx(-2.575829304, abs=1e-9)
    assert normal_quantile_exact(np.array([0.5]))[0] == 0.0
    # above one half through the complement, which is exact there: the two sides mirror each other
    upper = 1.0 - np.concatenate([10.0 ** -np.linspace(1.0, 15.0, 50), [2.0**-53]])
    np.testing.assert_array_equal(normal_quantile_exact(upper), -normal_quantile_exact(1.0 - upper))
    # a uniform of exactly 0 counts as 2**-54 instead of giving minus infinity
    assert normal_quantile_exact(np.array([0.0]))[0] == special.ndtri(2.0**-54)


def test_normal_table_is_within_three_millionths_of_the_exact_quantile() -> None:
    # reference: scipy's ndtri (Cephes, accurate to about 1e-15). Linear interpolation over a step h
    # errs by h**2 / 8 * |Q''| at most, largest at the first level's lower end (v = 1/32, h = 2.4e-4,
    # |Q''| = |z| / phi(z)**2 = 376): a bound of 2.8e-6, as measured; tolerance 5e-6. The uniforms reach
    # 2e-9 from either end, above the exact cut-off 2**-29, so that the table is what is tested
    rng = np.random.default_rng(21)
    uniforms = np.concatenate(
        [rng.random(200_000), 10.0 ** rng.uniform(-8.7, -1.0, 50_000), 1.0 - 10.0 ** rng.uniform(-8.7, -1.0, 50_000)]
    )
    error = np.abs(normal_table()(uniforms) - normal_quantile_exact(uniforms))
    assert error.max() < 5e-6, error.max()
    # in probability: the law the table draws from is within 1e-6 of the normal's everywhere
    assert np.abs(special.ndtr(normal_table()(uniforms)) - uniforms).max() < 1e-6


@pytest.mark.parametrize("kind", ["normal", "t mixing"])
def test_compiled_inversion_matches_the_numpy_table_at_every_level_and_edge(kind: str) -> None:
    table = normal_table() if kind == "normal" else MixingTable.of(3.0)
    uniforms = np.random.default_rng(22).random((6, 300))
    # every level of both sides, the exactly inverted ends, and the points where sides and levels meet
    uniforms[0, :60] = 10.0 ** -np.linspace(1.0, 40.0, 60)
    uniforms[1, :60] = 1.0 - 10.0 ** -np.linspace(1.0, 15.0, 60)
    uniforms[2, :8] = [0.0, 0.5, np.nextafter(0.5, 0.0), 2.0**-5, 1.0 - 2.0**-5, 2.0**-29, 1.0 - 2.0**-29, 2.0**-30]
    # and the doubles either side of every level's start, on both sides of one half, which the shared
    # indexing of kernel and reference could both misplace: against the exact inverse below
    starts = table.starts
    edges = np.concatenate([np.nextafter(starts, 0.0), starts, np.nextafter(starts, 1.0)])
    uniforms[3, : edges.size] = edges
    uniforms[4, : edges.size] = 1.0 - edges
    expected = table(uniforms)
    compiled = table.invert_in_place(uniforms.copy())
    np.testing.assert_array_equal(compiled, expected)
    assert np.isfinite(compiled).all()
    if kind == "normal":
        # negative quantiles are results, not marks for the exact inverse: both sides agree with scipy
        np.testing.assert_allclose(compiled, normal_quantile_exact(uniforms), rtol=0.0, atol=5e-6)
    else:
        # the mixing table's bound, test_dependence_models.py: 1e-5 relative
        assert (compiled > 0.0).all()
        np.testing.assert_allclose(compiled, t_mixing_exact(3.0, uniforms), rtol=1e-5)


def test_inversion_refuses_an_array_it_cannot_fill_in_place() -> None:
    with pytest.raises(ValueError, match="C-contiguous float64"):
        normal_table().invert_in_place(np.random.default_rng(23).random((10, 4)).T)
    # refused before drawing: the generator has not moved on, and out is as it was
    rng, out = np.random.default_rng(23), np.zeros((3, 4), order="F")
    with pytest.raises(ValueError, match="C-contiguous float64 out"):
        standard_normals(rng, out=out)
    assert not out.any() and rng.random() == np.random.default_rng(23).random()


def test_the_numpy_reference_takes_a_nan_and_any_shape_as_the_kernel_does() -> None:
    table = normal_table()
    uniforms = np.array([np.nan, 0.3, 2.0**-40])
    np.testing.assert_array_equal(table(uniforms), table.invert_in_place(uniforms.copy()))
    assert np.isnan(table(uniforms)[0])
    assert table(0.5) == 0.0 and np.shape(table(0.5)) == ()
    assert normal_quantile_exact(0.975) == pytest.approx(1.959963985, abs=1e-9)


def test_standard_normals_have_the_normal_law_moments_and_tails() -> None:
    n = 2_000_000
    draws = standard_normals(np.random.default_rng(24), (n,))
    # sample moments of n normal draws: standard errors sqrt(1/n), sqrt(2/n), sqrt(6/n), sqrt(24/n)
    # (Kendall and Stuart, The Advanced Theory of Statistics 1, ch. 10); tolerance 4 standard errors
    assert abs(draws.mean()) < 4.0 * math.sqrt(1.0 / n)
    assert abs(draws.var() - 1.0) < 4.0 * math.sqrt(2.0 / n)
    assert abs(stats.skew(draws)) < 4.0 * math.sqrt(6.0 / n)
    assert abs(stats.kurtosis(draws)) < 4.0 * math.sqrt(24.0 / n)
    assert stats.kstest(draws, "norm").pvalue > 0.01
    # each tail beyond 3 and 4.5: binomial counts within 4 standard errors of n Phi(-x)
    for x in (3.0, 4.5):
        p = special.ndtr(-x)
        se = math.sqrt(n * p * (1.0 - p))
        for count in (np.count_nonzero(draws < -x), np.count_nonzero(draws > x)):
            assert abs(count - n * p) < 4.0 * se + 1.0, (x, count, n * p)


def test_standard_normals_are_the_quantiles_of_the_generators_uniforms_in_c_order() -> None:
    shape = (7, 3, 50)
    drawn = standard_normals(np.random.default_rng(25), shape)
    np.testing.assert_array_equal(drawn, normal_table()(np.random.default_rng(25).random(shape)))
    into = np.empty(shape)
    assert standard_normals(np.random.default_rng(25), out=into) is into
    np.testing.assert_array_equal(into, drawn)
    with pytest.raises(ValueError, match="shape or out"):
        standard_normals(np.random.default_rng(25))


def test_quantiles_of_standard_normals_spread_from_seed_to_seed_as_the_normal_law_says() -> None:
    # the 1% quantile of n draws is asymptotically normal, mean Phi^-1(0.01), standard deviation
    # sqrt(p (1 - p) / n) / phi(Phi^-1(p)) (Cramer 1946, Mathematical Methods of Statistics, 28.5): 0.0118
    # at n = 100,000. Over 100 generators: the mean within 4 standard errors, the spread within 25% (the
    # standard deviation of 100 normals' sample standard deviation is 7% of it)
    n, p = 100_000, 0.01
    quantiles = np.array([np.quantile(standard_normals(np.random.default_rng(seed), (n,)), p) for seed in range(100)])
    spread = math.sqrt(p * (1.0 - p) / n) / stats.norm.pdf(stats.norm.ppf(p))
    assert abs(quantiles.mean() - stats.norm.ppf(p)) < 4.0 * spread / 10.0
    assert abs(quantiles.std(ddof=1) / spread - 1.0) < 0.25, quantiles.std(ddof=1) / spread
