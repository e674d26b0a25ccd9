"""Paired statistics over seeds for the ablation: is snipping band-selected units worse for the
bars than snipping random units of the same count, tune for tune?

Each seed gives one pair (the tune generated with the band-selected units snipped, and the mean
over the random sets of the tunes generated with random units snipped, all from that seed), so the
comparison is paired.  The test is the exact two-sided sign-flip permutation test of the mean
per-seed difference (all 2^n sign patterns for n <= 16 seeds, else 20,000 drawn with a fixed seed):
under "no difference" each difference is as likely negative as positive.  It makes no normality
assumption and handles the ties that right-bar shares produce (many tunes score 1.0), where the
Wilcoxon signed-rank test drops zero differences.  Confidence intervals are Student-t intervals of
a mean over seeds, clipped to the range a share can take.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

EXACT_MAX_N = 16
DRAWS = 20_000
TEST_NAME = "paired sign-flip permutation test of the mean per-seed difference, two-sided"


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int
    level: float = 0.95

    def text(self, scale: float = 100.0, unit: str = " %") -> str:
        if self.n < 2:
            return f"{self.mean * scale:.1f}{unit} (n={self.n}, no interval)"
        return f"{self.mean * scale:.1f}{unit} [{self.low * scale:.1f}, {self.high * scale:.1f}]"

    def to_json(self) -> dict[str, float | int]:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n, "level": self.level}


def mean_interval(
    values: Sequence[float] | np.ndarray, level: float = 0.95, bounds: tuple[float, float] = (-math.inf, math.inf)
) -> Interval:
    """The mean of ``values`` with its Student-t confidence interval (equal to the mean when n < 2
    or the values do not vary), clipped to ``bounds`` (a share cannot leave [0, 1])."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise ValueError("a confidence interval needs at least one value")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in range (0, 1); got {level}")
    m = float(v.mean())
    if v.size < 2:
        return Interval(m, m, m, int(v.size), level)
    half = float(_st.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return Interval(m, max(bounds[0], m - half), min(bounds[1], m + half), int(v.size), level)


def sign_flip_p(differences: Sequence[float] | np.ndarray, draws: int = DRAWS, seed: int = 0) -> float:
    """Two-sided p-value of the mean of paired ``differences`` under random sign flips: the share of
    sign patterns whose |mean| is at least the observed one (exact for up to 16 pairs)."""
    d = np.asarray(differences, dtype=np.float64)
    if d.size == 0:
        raise ValueError("the test needs at least one pair")
    observed = abs(d.mean())
    tol = 1e-12 * max(1.0, float(np.abs(d).max()))
    if d.size <= EXACT_MAX_N:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=d.size)))
    else:
        signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(draws, d.size))
    means = np.abs(signs @ d) / d.size
    return float(np.mean(means >= observed - tol))


@dataclass(frozen=True)
class PairedComparison:
    """Band-selected vs random snips at one fraction, over seeds."""

    fraction: float
    band: Interval  # mean per-seed share of right bars, band-selected units snipped
    random: Interval  # the same, random units (mean over the random sets per seed)
    difference: Interval  # band - random, per seed
    p_value: float
    test: str = TEST_NAME

    def to_json(self) -> dict[str, object]:
        return {
            "fraction": self.fraction,
            "band": self.band.to_json(),
            "random": self.random.to_json(),
            "difference": self.difference.to_json(),
            "p_value": self.p_value,
            "test": self.test,
        }


def paired_comparison(fraction: float, band: Sequence[float], random: Sequence[float]) -> PairedComparison:
    """Compare per-seed scores (same seeds, same order) of band-selected and random snips."""
    b, r = np.asarray(band, dtype=np.float64), np.asarray(random, dtype=np.float64)
    if b.shape != r.shape or b.ndim != 1:
        raise ValueError(f"band and random scores must be paired per seed; got shapes {b.shape} and {r.shape}")
    d = b - r
    share, diff = (0.0, 1.0), (-1.0, 1.0)
    return PairedComparison(
        fraction, mean_interval(b, bounds=share), mean_interval(r, bounds=share), mean_interval(d, bounds=diff),
        sign_flip_p(d),
    )  # fmt: skip
