"""Per-unit magnitude spectra of activation sequences (seed posts 003 and 000).

Each unit's sequence over the steps of one tune is windowed (periodic Hann or rectangular), its
mean removed first (optional: seed 003's layer means keep it, which puts most power at DC), zero
padded if asked, and transformed with a one-sided DFT.  The x axis is the period in steps, 1/f with
f in cycles per step (DC has period inf).  Zero padding interpolates the spectrum; it does not
resolve periods closer than the window's main lobe (see :mod:`folkrnn_live.analysis.windows`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

WindowName = Literal["hann", "rect"]
WINDOWS: tuple[WindowName, ...] = ("hann", "rect")


def check_window(name: str) -> WindowName:
    if name not in WINDOWS:
        raise ValueError(f"window must be 'hann' or 'rect'; got {name!r}")
    return name


def window(name: str, n: int) -> np.ndarray:
    """The periodic (DFT-even) window of length n: Hann w[k] = 0.5 - 0.5 cos(2πk/n), or ones.
    Periodic, not symmetric, so that the DFT of an integer number of cycles has no leakage."""
    check_window(name)
    if n < 1:
        raise ValueError(f"window length must be at least 1; got {n}")
    if name == "rect":
        return np.ones(n)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def periods_of(freqs: np.ndarray) -> np.ndarray:
    """Period in steps of each frequency in cycles per step (inf at DC)."""
    with np.errstate(divide="ignore"):
        return np.where(freqs > 0, 1.0 / np.where(freqs > 0, freqs, 1.0), np.inf)


@dataclass(frozen=True)
class Spectra:
    """One-sided magnitude spectra |DFT| of U sequences: ``magnitude`` [U, F] at ``freqs`` [F]
    (cycles per step, 0..0.5) and ``periods`` [F] (steps; inf at DC).  Not scaled: divide by
    ``window.sum()`` (the coherent gain times n) for the amplitude of a sinusoid."""

    freqs: np.ndarray
    periods: np.ndarray
    magnitude: np.ndarray
    window: WindowName
    n: int
    nfft: int
    mean_removed: bool

    @property
    def power(self) -> np.ndarray:
        return self.magnitude**2

    def one_sided_power(self) -> np.ndarray:
        """|X|² with the bins that stand for both signs of frequency doubled (all but DC and, for
        even nfft, Nyquist), so that sums over bins are shares of the sequence's total power."""
        p = self.power.copy()
        last = p.shape[-1] - (1 if self.nfft % 2 == 0 else 0)
        p[..., 1:last] *= 2.0
        return p

    def peak_periods(self, include_dc: bool = False) -> np.ndarray:
        """The period of each unit's largest magnitude (DC excluded unless asked)."""
        m = self.magnitude if include_dc else self.magnitude[:, 1:]
        k = np.argmax(m, axis=1) + (0 if include_dc else 1)
        return self.periods[k]


def magnitude_spectra(
    seq: np.ndarray,
    window_name: str = "hann",
    pad_to: int | None = None,
    remove_mean: bool = True,
) -> Spectra:
    """Spectra of the columns of ``seq`` [T, U] (one sequence per unit)."""
    check_window(window_name)
    a = np.asarray(seq, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"sequences must be a [steps, units] array; got shape {a.shape}")
    n = a.shape[0]
    if n < 2:
        raise ValueError(f"a spectrum needs at least 2 steps; got {n}")
    nfft = n if pad_to is None else int(pad_to)
    if nfft < n:
        raise ValueError(f"pad_to must be at least the sequence length {n}; got {pad_to}")
    if remove_mean:
        a = a - a.mean(axis=0, keepdims=True)
    w = window(window_name, n)
    mag = np.abs(np.fft.rfft(a * w[:, None], n=nfft, axis=0)).T  # [U, F]
    freqs = np.fft.rfftfreq(nfft)
    return Spectra(freqs, periods_of(freqs), mag, window_name, n, nfft, remove_mean)  # type: ignore[arg-type]


#: The least DFT length for band-power shares: a 9-step band (8.7-9.3) of a 147-step tune holds a
#: single bin of the plain DFT; zero padding to 1024 samples it every 1/1024 cycles per step.
BAND_NFFT = 1024


def band_nfft(n: int, pad_to: int | None = None) -> int:
    """DFT length for band-power shares of an n-step sequence: ``pad_to`` when given, else the
    larger of n and :data:`BAND_NFFT` (the same rule everywhere, so shares compare)."""
    return max(n, BAND_NFFT) if pad_to is None else int(pad_to)


def band_mask(periods: np.ndarray, band: tuple[float, float]) -> np.ndarray:
    lo, hi = check_band(band)
    return (periods >= lo) & (periods <= hi)


def check_band(band: tuple[float, float]) -> tuple[float, float]:
    lo, hi = float(band[0]), float(band[1])
    if not (2.0 <= lo < hi):
        raise ValueError(f"band must be two periods in steps, 2 <= low < high; got {band}")
    return lo, hi


def band_power_fraction(
    seq: np.ndarray,
    band: tuple[float, float] = (8.7, 9.3),
    window_name: str = "hann",
    pad_to: int | None = None,
    remove_mean: bool = True,
) -> np.ndarray:
    """Share of each unit's (one-sided) power in the bins whose period lies in ``band`` [U].  A
    constant unit (no power at all) gets 0.  Without padding a narrow band may hold one bin or none:
    the spectrum is sampled every 1/T cycles per step; pad (e.g. to 1024) to sample it finely."""
    sp = magnitude_spectra(seq, window_name, pad_to, remove_mean)
    p = sp.one_sided_power()
    m = band_mask(sp.periods, band)
    if not m.any():
        raise ValueError(
            f"no DFT bin has a period in {band} steps with {sp.nfft} points; pass pad_to (e.g. 1024) or widen the band"
        )
    total = p.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, p[:, m].sum(axis=1) / np.where(total > 0, total, 1.0), 0.0)


@dataclass(frozen=True)
class MeanSpectrum:
    """Mean over units of normalised magnitude spectra, with the standard error of the mean, also
    in dB (20 log10; the lower SEM curve is floored at ``floor_db`` where mean - SEM <= 0)."""

    periods: np.ndarray
    freqs: np.ndarray
    mean: np.ndarray
    sem: np.ndarray
    reference: float  # the magnitude normalised to 1 (0 dB)
    floor_db: float = -120.0

    @property
    def mean_db(self) -> np.ndarray:
        return _db(self.mean, self.floor_db)

    @property
    def upper_db(self) -> np.ndarray:
        return _db(self.mean + self.sem, self.floor_db)

    @property
    def lower_db(self) -> np.ndarray:
        return _db(self.mean - self.sem, self.floor_db)


def _db(x: np.ndarray, floor: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.maximum(20.0 * np.log10(np.where(x > 0, x, 0.0)), floor)


def mean_normalised_spectrum(spectra: Spectra, reference: float | None = None) -> MeanSpectrum:
    """Seed 003: each unit's magnitude spectrum divided by ``reference`` (default: the largest
    magnitude of these spectra), then mean and standard error over units."""
    mag = spectra.magnitude
    ref = float(mag.max()) if reference is None else float(reference)
    if not ref > 0:
        ref = 1.0  # all-zero sequences: nothing to normalise
    norm = mag / ref
    u = norm.shape[0]
    sem = norm.std(axis=0, ddof=1) / np.sqrt(u) if u > 1 else np.zeros(norm.shape[1])
    return MeanSpectrum(spectra.periods, spectra.freqs, norm.mean(axis=0), sem, ref)


def layer_mean_spectra(
    layers: list[np.ndarray],
    probs: np.ndarray | None = None,
    window_name: str = "hann",
    pad_to: int | None = None,
    remove_mean: bool = True,
) -> dict[str, MeanSpectrum]:
    """Seed 003's figure: the mean normalised spectrum of each layer's sequences (``layers`` [T, H]
    each, first layer first), all normalised by the largest magnitude in the first layer, and of the
    softmax outputs ``probs`` [T, V] normalised by their own largest magnitude.  Keys: ``layer0``
    ... (0-based) and ``softmax``."""
    specs = [magnitude_spectra(a, window_name, pad_to, remove_mean) for a in layers]
    ref = float(specs[0].magnitude.max()) if specs else None
    out = {f"layer{k}": mean_normalised_spectrum(s, ref) for k, s in enumerate(specs)}
    if probs is not None:
        out["softmax"] = mean_normalised_spectrum(magnitude_spectra(probs, window_name, pad_to, remove_mean))
    return out
