"""Unit-variance innovation laws: normal, standardised Student-t and Hansen's skewed t.

These are the laws of ``z_t`` in arch's models (``dist="normal"``, ``"t"`` and
``"skewt"``), with the same parametrisation:

* Student-t with ``nu > 2`` degrees of freedom, rescaled to variance 1: if
  ``T ~ t(nu)`` then ``z = T * s`` with ``s = sqrt((nu - 2) / nu)``.
* Hansen's (1994) skewed t with ``nu > 2`` and skewness ``-1 < skew < 1``
  (arch's ``eta`` and ``lambda``). With ``g`` the standardised-t density,
  ``c = Gamma((nu + 1) / 2) / (sqrt(pi (nu - 2)) Gamma(nu / 2))``,
  ``a = 4 skew c (nu - 2) / (nu - 1)`` and ``b = sqrt(1 + 3 skew^2 - a^2)``,
  ``w = b z + a`` has density ``g(w / (1 - skew))`` for ``w < 0`` and
  ``g(w / (1 + skew))`` for ``w >= 0``. ``skew < 0`` puts more weight on
  large falls.

Every quantile is computed from the tail it lies in (``ppf`` for lower
probabilities, ``isf`` for upper-tail probabilities), so nothing is lost to
``1 - p`` rounding far in either tail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from mcalloc.config.model_schema import Distribution

__all__ = ["InnovationLaw", "ShockMoments"]


@dataclass(frozen=True)
class ShockMoments:
    """Moments of unit-variance shocks that volatility recursions depend on.

    ``negative_second`` is ``E[z^2 1{z<0}]`` (1/2 for symmetric laws),
    ``fourth`` is ``E[z^4]`` (infinite for t laws with ``nu <= 4``) and
    ``negative_fourth`` is ``E[z^4 1{z<0}]``.
    """

    negative_second: float
    fourth: float
    negative_fourth: float

    @classmethod
    def of_sample(cls, shocks: np.ndarray) -> ShockMoments:
        """The moments of a sample of shocks (e.g. resampled standardised residuals)."""
        values = np.asarray(shocks, dtype=float)
        values = values[np.isfinite(values)]
        squared = values * values
        negative = values < 0.0
        return cls(
            negative_second=float(np.mean(squared * negative)),
            fourth=float(np.mean(squared * squared)),
            negative_fourth=float(np.mean(squared * squared * negative)),
        )


def _t_density(nu: float, values: np.ndarray) -> np.ndarray:
    """Density of the ordinary (not rescaled) Student-t with ``nu`` degrees of freedom."""
    log_norm = special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2) - 0.5 * math.log(nu * math.pi)
    return np.asarray(np.exp(log_norm - (nu + 1) / 2 * np.log1p(values * values / nu)))


@dataclass(frozen=True)
class InnovationLaw:
    """The law of the unit-variance shocks ``z_t`` of one volatility model.

    Attributes
    ----------
    dist
        ``normal``, ``t`` or ``skewt``.
    nu
        Degrees of freedom (``t`` and ``skewt``), above 2.
    skew
        Hansen's skewness parameter in (-1, 1) (``skewt`` only).
    """

    dist: Distribution
    nu: float | None = None
    skew: float | None = None

    def __post_init__(self) -> None:
        if self.dist != "normal" and (self.nu is None or not self.nu > 2.0):
            raise ValueError(f"{self.dist} innovations need nu > 2 (got {self.nu})")
        if self.dist == "skewt" and (self.skew is None or not -1.0 < self.skew < 1.0):
            raise ValueError(f"skewt innovations need -1 < skew < 1 (got {self.skew})")

    @property
    def is_symmetric(self) -> bool:
        return self.dist != "skewt" or self.skew == 0.0

    # --- the standardised t, the building block of both t laws -------------

    @property
    def _t_scale(self) -> float:
        assert self.nu is not None
        return math.sqrt((self.nu - 2.0) / self.nu)

    def _g_cdf(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(special.stdtr(self.nu, values / self._t_scale))

    def _g_ppf(self, probabilities: np.ndarray) -> np.ndarray:
        assert self.nu is not None
        result = np.asarray(special.stdtrit(self.nu, probabilities) * self._t_scale)
        tail = np.minimum(probabilities, 1.0 - probabilities)
        bad = (~np.isfinite(result) | (tail < 1e-100)) & (tail > 0.0)
        if np.any(bad):
            # scipy's stdtrit loses accuracy (then overflows) far below 1e-100 for
            # small nu; invert through the incomplete beta function there, using
            # P(|T| > t) = I_{nu / (nu + t^2)}(nu / 2, 1 / 2)
            p = np.asarray(probabilities, dtype=float)[bad]
            x = special.betaincinv(self.nu / 2, 0.5, 2.0 * np.minimum(p, 1.0 - p))
            magnitude = np.sqrt(self.nu * (1.0 - x) / x) * self._t_scale
            result[bad] = np.where(p < 0.5, -magnitude, magnitude)
        return result

    @property
    def _hansen_ab(self) -> tuple[float, float]:
        assert self.nu is not None and self.skew is not None
        nu, lam = self.nu, self.skew
        log_c = special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2) - 0.5 * math.log(math.pi * (nu - 2))
        a = 4.0 * lam * math.exp(log_c) * (nu - 2) / (nu - 1)
        return a, math.sqrt(1.0 + 3.0 * lam * lam - a * a)

    # --- distribution functions --------------------------------------------

    def cdf(self, values: np.ndarray) -> np.ndarray:
        """``P(z <= values)``, any shape."""
        values = np.asarray(values, dtype=float)
        if self.dist == "normal":
            return np.asarray(special.ndtr(values))
        if self.dist == "t":
            return self._g_cdf(values)
        assert self.skew is not None
        a, b = self._hansen_ab
        lam = self.skew
        shifted = b * values + a
        lower = (1.0 - lam) * self._g_cdf(np.minimum(shifted, 0.0) / (1.0 - lam))
        upper = 1.0 - (1.0 + lam) * self._g_cdf(-np.maximum(shifted, 0.0) / (1.0 + lam))
        return np.where(shifted < 0.0, lower, upper)

    def ppf(self, probabilities: np.ndarray) -> np.ndarray:
        """Quantile function: the ``z`` with ``P(z <= z) = probabilities``; accurate for small ones."""
        probabilities = np.asarray(probabilities, dtype=float)
        if self.dist == "normal":
            return np.asarray(special.ndtri(probabilities))
        if self.dist == "t":
            return self._g_ppf(probabilities)
        assert self.skew is not None
        a, b = self._hansen_ab
        lam = self.skew
        split = (1.0 - lam) / 2.0
        low = np.minimum(probabilities, split)
        high = np.maximum(probabilities, split)
        shifted = np.where(
            probabilities < split,
            (1.0 - lam) * self._g_ppf(low / (1.0 - lam)),
            -(1.0 + lam) * self._g_ppf((1.0 - high) / (1.0 + lam)),
        )
        return np.asarray((shifted - a) / b)

    def isf(self, tail_probabilities: np.ndarray) -> np.ndarray:
        """Inverse survival function: the ``z`` with ``P(z > z) = tail_probabilities``; accurate for small ones."""
        tail_probabilities = np.asarray(tail_probabilities, dtype=float)
        if self.dist == "normal":
            return np.asarray(-special.ndtri(tail_probabilities))
        if self.dist == "t":
            return -self._g_ppf(tail_probabilities)
        assert self.skew is not None
        a, b = self._hansen_ab
        lam = self.skew
        split = (1.0 + lam) / 2.0
        low = np.minimum(tail_probabilities, split)
        high = np.maximum(tail_probabilities, split)
        shifted = np.where(
            tail_probabilities < split,
            -(1.0 + lam) * self._g_ppf(low / (1.0 + lam)),
            (1.0 - lam) * self._g_ppf((1.0 - high) / (1.0 - lam)),
        )
        return np.asarray((shifted - a) / b)

    def from_normal_scores(self, scores: np.ndarray) -> np.ndarray:
        """``F^{-1}(Phi(scores))`` computed exactly, each side from its own tail (slow; see ScoreTransform)."""
        scores = np.asarray(scores, dtype=float)
        if self.dist == "normal":
            return scores.copy()
        if self.is_symmetric:
            lower_tail = self.ppf(special.ndtr(-np.abs(scores)))
            return np.asarray(-np.sign(scores) * lower_tail)
        result = np.empty_like(scores)
        lower = scores <= 0.0
        result[lower] = self.ppf(special.ndtr(scores[lower]))
        result[~lower] = self.isf(special.ndtr(-scores[~lower]))
        return result

    def to_normal_scores(self, values: np.ndarray) -> np.ndarray:
        """``Phi^{-1}(F(values))``, probabilities clipped to [1e-12, 1 - 1e-12]."""
        probabilities = np.clip(self.cdf(values), 1e-12, 1 - 1e-12)
        return np.asarray(special.ndtri(probabilities))

    # --- moments the volatility models need ----------------------------------

    def negative_second_moment(self) -> float:
        """``E[z^2 1{z < 0}]``: how much of the variance comes from falls.

        It is 1/2 for symmetric laws. In a GJR-GARCH the asymmetry ``gamma``
        adds ``gamma * E[z^2 1{z < 0}]`` to the persistence.
        """
        if self.is_symmetric:
            return 0.5
        assert self.nu is not None and self.skew is not None
        nu, lam = self.nu, self.skew
        a, b = self._hansen_ab

        def partial(upper: float) -> tuple[float, float, float]:
            """Partial moments int_{-inf}^{upper} u^j g(u) du, j = 0, 1, 2, of the standardised t."""
            if upper == -math.inf:
                return 0.0, 0.0, 0.0
            scale = self._t_scale
            y = upper / scale
            density = float(_t_density(nu, np.array(y)))
            cdf = float(special.stdtr(nu, y))
            first = -scale * (nu + y * y) * density / (nu - 1)
            second = cdf - y * (nu + y * y) * density / nu
            return cdf, first, second

        def piece(k: float, lower: float, upper: float) -> float:
            """int (k u - a)^2 g(u) k du over [lower, upper)."""
            hi = partial(upper)
            lo = partial(lower)
            m0, m1, m2 = (h - low for h, low in zip(hi, lo, strict=True))
            return k * (k * k * m2 - 2.0 * a * k * m1 + a * a * m0)

        # z < 0 means w = b z + a < a; w < 0 is the (1 - skew) side, 0 <= w < a the (1 + skew) side
        total = piece(1.0 - lam, -math.inf, min(a, 0.0) / (1.0 - lam))
        if a > 0.0:
            total += piece(1.0 + lam, 0.0, a / (1.0 + lam))
        return total / (b * b)

    def shock_moments(self) -> ShockMoments:
        """``E[z^2 1{z<0}]``, ``E[z^4]`` and ``E[z^4 1{z<0}]`` of this law.

        Normal: 1/2, 3, 3/2. Student-t (unit variance): ``3 (nu - 2) / (nu - 4)``
        for ``nu > 4``, else infinite. Skewed t: the fourth moments by
        quadrature of ``z^4`` against Hansen's density, split at its kink.
        """
        negative_second = self.negative_second_moment()
        if self.dist == "normal":
            return ShockMoments(negative_second, 3.0, 1.5)
        assert self.nu is not None
        if self.nu <= 4.0:
            return ShockMoments(negative_second, math.inf, math.inf)
        if self.is_symmetric:
            fourth = 3.0 * (self.nu - 2.0) / (self.nu - 4.0)
            return ShockMoments(negative_second, fourth, fourth / 2.0)
        from scipy import integrate

        nu, lam = self.nu, self.skew
        assert lam is not None
        a, b = self._hansen_ab
        log_c = special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2) - 0.5 * math.log(math.pi * (nu - 2))

        def weighted_density(z: float) -> float:
            shifted = b * z + a
            side = 1.0 - lam if shifted < 0.0 else 1.0 + lam
            w = shifted / side
            return z**4 * b * math.exp(log_c - (nu + 1) / 2 * math.log1p(w * w / (nu - 2)))

        kink = -a / b
        low_cut, high_cut = min(kink, 0.0), max(kink, 0.0)
        below = integrate.quad(weighted_density, -math.inf, low_cut, limit=200)[0]
        below += integrate.quad(weighted_density, low_cut, 0.0)[0] if low_cut < 0.0 else 0.0
        above = integrate.quad(weighted_density, 0.0, high_cut)[0] if high_cut > 0.0 else 0.0
        above += integrate.quad(weighted_density, high_cut, math.inf, limit=200)[0]
        return ShockMoments(negative_second, below + above, below)

    def gaussian_abs_exp_moment(self, level: float, asymmetry: float) -> float:
        """``E[exp(level |z| + asymmetry z)]`` for normal ``z`` (infinite for the t laws unless both are 0).

        For ``z ~ N(0, 1)`` it is ``exp((l+g)^2/2) Phi(l+g) + exp((l-g)^2/2) Phi(l-g)``.
        """
        if self.dist != "normal":
            return 1.0 if level == 0.0 and asymmetry == 0.0 else math.inf
        plus, minus = level + asymmetry, level - asymmetry
        return float(math.exp(plus * plus / 2) * special.ndtr(plus) + math.exp(minus * minus / 2) * special.ndtr(minus))
