"""The bar period a tune actually has, and the band of periods the band analyses look at.

The posts' band, 8.7-9.3 steps, is the bar period of their 4/4 tunes; a 6/8 tune's bars come every
7-8 tokens and a 3/4 tune's every 6-7, so a fixed band misses them.  By default the analyses centre
the band on the tune's measured bar period: the mean number of steps between consecutive bar
tokens (``| |: :| |1 |2``), which is where its spectral peak sits, ± the posts' half width of 0.3
steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from folkrnn_live.analysis.gramians import bar_steps

#: The posts' band (4/4), used when a tune has fewer than two bar tokens.
POSTS_BAND = (8.7, 9.3)
HALF_WIDTH = 0.3
#: Fewer qualifying units than this share of the layer gets a warning.
FEW_UNITS = 0.05


def bar_period(tokens: Sequence[str]) -> float | None:
    """Mean steps between consecutive bar tokens of one tune; None with fewer than two bars."""
    b = bar_steps(list(tokens))
    return None if len(b) < 2 else float(np.mean(np.diff(b)))


def pooled_bar_period(tunes: Sequence[Sequence[str]]) -> float | None:
    """Mean steps between consecutive bar tokens over several tunes (gaps within each tune)."""
    gaps = [g for t in tunes for g in np.diff(bar_steps(list(t))).tolist()]
    return float(np.mean(gaps)) if gaps else None


def band_around(period: float | None) -> tuple[float, float]:
    """``period`` ± 0.3 steps (the low end at least 2), or the posts' band when there is none."""
    if period is None:
        return POSTS_BAND
    return (max(2.0, round(period - HALF_WIDTH, 3)), round(max(period, 2.0 + HALF_WIDTH) + HALF_WIDTH, 3))


def band_text(band: tuple[float, float], period: float | None, source: str = "the tune") -> str:
    if period is None:
        return f"band {band[0]:g}-{band[1]:g} steps (the posts' 4/4 band: {source} has fewer than two bar tokens)"
    return f"band {band[0]:g}-{band[1]:g} steps ({source}'s measured bar period {period:.2f} steps ± {HALF_WIDTH})"


def few_units_warning(count: int, hidden: int, layer: int, band: tuple[float, float], what: str) -> str | None:
    """A warning when fewer than 5 % of the layer's units qualify (the selection says little)."""
    if count >= FEW_UNITS * hidden:
        return None
    return (
        f"only {count} of {hidden} units of layer {layer} {what} in periods {band[0]:g}-{band[1]:g} steps "
        f"(fewer than {FEW_UNITS * 100:g} %): check the band against the tune's bar period and the spectra"
    )
