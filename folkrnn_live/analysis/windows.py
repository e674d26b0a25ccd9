"""Analysis-window properties and seed 003's main-lobe and sidelobe tables.

Everything is computed from the window's DTFT W(f) = Σ w[k] exp(-2πi f k), evaluated directly at
any frequency (no FFT grid), with root finding for the -6 dB points and bounded maximisation for
the sidelobe peaks.  Frequencies are in cycles per step; a bin is 1/n.

Seed 003 defines a main lobe's width as twice the frequency of its -6 dB point; a window modulated
to period P (frequency 1/P) then "supports" the periods 1/(1/P ± half width).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.optimize import brentq, minimize_scalar

from folkrnn_live.analysis.spectra import check_window, window


def response(name: str, n: int, freqs: np.ndarray | float) -> np.ndarray:
    """|W(f)| / W(0) of the periodic window (1 at DC)."""
    w = window(name, n)
    f = np.atleast_1d(np.asarray(freqs, dtype=np.float64))
    k = np.arange(n)
    # The exponent is taken modulo 1 cycle so large f·k keep full precision.
    z = np.exp(-2j * np.pi * np.mod(np.outer(f, k), 1.0)) @ w
    return np.abs(z) / w.sum()


@dataclass(frozen=True)
class WindowProperties:
    """Properties of a length-n periodic window, widths and offsets in bins (1/n)."""

    name: str
    n: int
    first_null_bins: float
    width_3db_bins: float
    width_6db_bins: float
    highest_sidelobe_db: float
    first_sidelobe_bins: float  # offset of the first sidelobe's peak from the main lobe's centre
    first_sidelobe_db: float
    enbw_bins: float
    coherent_gain: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@lru_cache(maxsize=64)  # tables ask for the same window many times
def _first_null(name: str, n: int) -> float:
    # Scan |W| on a fine grid to the first local minimum, then refine between its neighbours.
    grid = np.linspace(0.0, 4.0 / n, 4 * 256 + 1)
    r = response(name, n, grid)
    k = next(j for j in range(1, len(r) - 1) if r[j] <= r[j - 1] and r[j] <= r[j + 1])
    res = minimize_scalar(
        lambda f: float(response(name, n, f)[0]),
        bounds=(grid[k - 1], grid[k + 1]),
        method="bounded",
        options={"xatol": 1e-12},
    )
    return float(res.x)


@lru_cache(maxsize=256)
def _crossing(name: str, n: int, level_db: float, null: float) -> float:
    target = 10.0 ** (level_db / 20.0)
    return float(brentq(lambda f: float(response(name, n, f)[0]) - target, 0.0, null, xtol=1e-13))


@lru_cache(maxsize=64)
def _sidelobes(name: str, n: int, null: float) -> tuple[float, float, float]:
    """(offset of the first sidelobe peak, its level, the highest sidelobe level), levels in dB."""
    grid = np.linspace(null, 0.5, max(4096, 64 * n))
    r = response(name, n, grid)
    # First sidelobe: the first local maximum after the first null.
    k1 = next((j for j in range(1, len(r) - 1) if r[j] >= r[j - 1] and r[j] >= r[j + 1]), int(np.argmax(r)))
    peaks = []
    for k in (k1, int(np.argmax(r))):
        lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
        res = minimize_scalar(
            lambda f: -float(response(name, n, f)[0]),
            bounds=(lo, hi),
            method="bounded",
            options={"xatol": 1e-12},
        )
        peaks.append((float(res.x), -float(res.fun)))
    (f1, r1), (_, rmax) = peaks
    return f1, 20 * math.log10(r1), 20 * math.log10(max(rmax, r1))


def window_properties(name: str, n: int = 147) -> WindowProperties:
    """Null, -3/-6 dB widths, sidelobes, equivalent noise bandwidth and coherent gain."""
    check_window(name)
    if n < 8:
        raise ValueError(f"window length n must be at least 8; got {n}")
    w = window(name, n)
    null = _first_null(name, n)
    f1, s1, smax = _sidelobes(name, n, null)
    return WindowProperties(
        name=name,
        n=n,
        first_null_bins=null * n,
        width_3db_bins=2 * _crossing(name, n, -3.0103, null) * n,
        width_6db_bins=2 * _crossing(name, n, -6.0206, null) * n,
        highest_sidelobe_db=smax,
        first_sidelobe_bins=f1 * n,
        first_sidelobe_db=s1,
        enbw_bins=float(n * np.sum(w**2) / np.sum(w) ** 2),
        coherent_gain=float(np.sum(w) / n),
    )


def _period(f: float) -> float:
    return math.inf if f <= 0 else 1.0 / f


def main_lobe_support(period: float, n: int, name: str, level_db: float = -6.0) -> tuple[float, float]:
    """The periods (low, high) covered by the main lobe, down to ``level_db`` (seed 003: -6 dB), of
    the window modulated to ``period`` steps (inf for DC).  high is inf when the lobe reaches DC."""
    if not period >= 2.0:
        raise ValueError(f"period must be at least 2 steps (or inf); got {period}")
    if not -60.0 <= level_db < 0.0:
        raise ValueError(f"level_db must be in range -60..0 (exclusive); got {level_db}")
    check_window(name)
    half = _crossing(name, n, level_db, _first_null(name, n))
    f0 = 0.0 if math.isinf(period) else 1.0 / period
    return _period(f0 + half), _period(f0 - half)


def first_sidelobe_periods(period: float, n: int, name: str) -> tuple[float, ...]:
    """Where the first sidelobes of the window modulated to ``period`` lie, in periods (steps):
    two values, or one when the lower sidelobe would sit at or below DC (e.g. period inf)."""
    if not period >= 2.0:
        raise ValueError(f"period must be at least 2 steps (or inf); got {period}")
    check_window(name)
    f1, _, _ = _sidelobes(name, n, _first_null(name, n))
    f0 = 0.0 if math.isinf(period) else 1.0 / period
    hi_f, lo_f = f0 + f1, f0 - f1
    return (_period(hi_f),) if lo_f <= 0 else (_period(hi_f), _period(lo_f))


@dataclass(frozen=True)
class SupportRow:
    period: float
    support: dict[str, tuple[float, float]]  # window -> (low, high) periods
    sidelobes: dict[str, tuple[float, ...]]  # window -> first sidelobe periods

    def to_json(self) -> dict[str, Any]:
        fix = lambda v: None if math.isinf(v) else v  # noqa: E731 - JSON has no inf
        return {
            "period": fix(self.period),
            "support": {k: [fix(a) for a in v] for k, v in self.support.items()},
            "sidelobes": {k: [fix(a) for a in v] for k, v in self.sidelobes.items()},
        }


#: Seed 003's periods (steps) for its N = 147 tables.
SEED_PERIODS = (2.25, 4.5, 8.8, 18.0, 36.0, math.inf)


def support_table(
    periods: tuple[float, ...] = SEED_PERIODS, n: int = 147, level_db: float = -6.0
) -> list[SupportRow]:
    """Seed 003's two tables (main-lobe support and first sidelobe locations) for both windows."""
    rows = []
    for p in periods:
        rows.append(
            SupportRow(
                p,
                {w: main_lobe_support(p, n, w, level_db) for w in ("rect", "hann")},
                {w: first_sidelobe_periods(p, n, w) for w in ("rect", "hann")},
            )
        )
    return rows


def format_tables(rows: list[SupportRow], n: int) -> str:
    """The two tables as Markdown."""
    f = lambda v: "Inf" if math.isinf(v) else f"{v:.3g}" if v < 10 else f"{v:.1f}"  # noqa: E731

    def table(title: str, cell: Callable[[SupportRow, str], str]) -> list[str]:
        head = [f"{title}, N = {n} (periods in steps)", "", "| period | rect | hann |", "| --- | --- | --- |"]
        return head + [f"| {f(r.period)} | " + " | ".join(cell(r, w) for w in ("rect", "hann")) + " |" for r in rows]

    support = table("Main-lobe support (-6 dB)", lambda r, w: f"[{f(r.support[w][0])}, {f(r.support[w][1])}]")
    sidelobes = table("First sidelobe locations", lambda r, w: ", ".join(f(v) for v in r.sidelobes[w]))
    return "\n".join([*support, "", *sidelobes]) + "\n"
