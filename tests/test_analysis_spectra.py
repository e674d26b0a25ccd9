"""Spectra and windows against scipy and against known signals and textbook window values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import signal

from folkrnn_live.analysis import spectra as sp
from folkrnn_live.analysis import windows as wi


def spike_train(n: int, period: int, offset: int = 0) -> np.ndarray:
    """A unit that spikes every ``period`` steps; each spike lasts about two steps (0.5, 1, 0.5),
    like the spiking units of seed 003, so its harmonics fall off."""
    x = np.zeros(n + 2)
    for k in range(offset, n, period):
        x[k : k + 3] += (0.5, 1.0, 0.5)
    return x[:n]


@pytest.mark.parametrize("name,scipy_name", [("hann", "hann"), ("rect", "boxcar")])
def test_windows_are_scipys_periodic_windows(name: str, scipy_name: str) -> None:
    for n in (8, 147, 200):
        np.testing.assert_allclose(sp.window(name, n), signal.get_window(scipy_name, n, fftbins=True), atol=1e-15)


@pytest.mark.parametrize("name,scipy_name", [("hann", "hann"), ("rect", "boxcar")])
@pytest.mark.parametrize("pad", [None, 512])
def test_spectra_match_scipy_periodogram(name: str, scipy_name: str, pad: int | None) -> None:
    rng = np.random.default_rng(1)
    n = 147
    seq = rng.normal(size=(n, 5)) + np.linspace(0, 3, 5)  # different means, removed by both
    s = sp.magnitude_spectra(seq, name, pad_to=pad)
    nfft = pad or n
    f, pxx = signal.periodogram(seq, window=scipy_name, nfft=nfft, detrend="constant", scaling="spectrum", axis=0)
    np.testing.assert_allclose(s.freqs, f)
    # scipy scales by (sum w)^2 and doubles the bins that stand for both signs of frequency.
    w = sp.window(name, n)
    np.testing.assert_allclose(s.one_sided_power().T / w.sum() ** 2, pxx, rtol=1e-9, atol=1e-15)
    assert math.isinf(s.periods[0]) and s.periods[-1] == pytest.approx(1 / f[-1])


def test_a_unit_spiking_every_9_steps_peaks_at_period_9_with_its_harmonics() -> None:
    n = 147
    seq = np.stack([spike_train(n, 9), spike_train(n, 9, 4), np.sin(2 * np.pi * np.arange(n) / 4)], axis=1)
    s = sp.magnitude_spectra(seq, "hann", pad_to=4096)
    peaks = s.peak_periods()
    assert peaks[0] == pytest.approx(9.0, abs=0.02) and peaks[1] == pytest.approx(9.0, abs=0.02)
    assert peaks[2] == pytest.approx(4.0, abs=0.01)
    # The harmonics of a 9-step spike train: local maxima at periods 4.5, 3 and 2.25.
    m = s.magnitude[0]
    local = [k for k in range(1, len(m) - 1) if m[k] >= m[k - 1] and m[k] >= m[k + 1] and m[k] > 0.01 * m.max()]
    found = sorted(s.periods[local])
    for p in (2.25, 3.0, 4.5, 9.0):
        assert min(abs(q - p) for q in found) < 0.02, (p, found)
    # Without padding the peak is the DFT bin nearest to 9 steps: 147/16 = 9.19.
    assert sp.magnitude_spectra(seq[:, :1]).peak_periods()[0] == pytest.approx(147 / 16)


def test_mean_removal_and_errors() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 2))
    a = sp.magnitude_spectra(x, "rect")
    b = sp.magnitude_spectra(x + 7.0, "rect")
    np.testing.assert_allclose(a.magnitude, b.magnitude, atol=1e-10)
    assert sp.magnitude_spectra(x + 7.0, "rect", remove_mean=False).magnitude[:, 0] == pytest.approx(
        np.abs((x + 7.0).sum(axis=0))
    )
    with pytest.raises(ValueError, match="window must be 'hann' or 'rect'; got 'ham'"):
        sp.magnitude_spectra(x, "ham")
    with pytest.raises(ValueError, match="pad_to must be at least the sequence length 50; got 10"):
        sp.magnitude_spectra(x, pad_to=10)
    with pytest.raises(ValueError, match="band must be two periods"):
        sp.band_power_fraction(x, (9.3, 8.7))
    with pytest.raises(ValueError, match="no DFT bin has a period in"):
        sp.band_power_fraction(x[:20], (8.7, 9.3))


def test_band_power_fraction_matches_a_periodogram_computation() -> None:
    n, t = 147, np.arange(147)
    rng = np.random.default_rng(3)
    seq = np.stack([
        np.sin(2 * np.pi * t / 9.0),  # all its power near 9 steps
        np.sin(2 * np.pi * t / 4.0),  # none
        np.sin(2 * np.pi * t / 9.0) + np.sin(2 * np.pi * t / 4.0) + 0.1 * rng.normal(size=n),
        np.zeros(n),  # no power at all
    ], axis=1)
    share = sp.band_power_fraction(seq, (8.7, 9.3), "hann", pad_to=1024)
    f, pxx = signal.periodogram(seq, window="hann", nfft=1024, detrend="constant", scaling="spectrum", axis=0)
    with np.errstate(divide="ignore"):
        per = np.where(f > 0, 1 / np.where(f > 0, f, 1), np.inf)
    band = (per >= 8.7) & (per <= 9.3)
    tot = pxx.sum(axis=0)
    expected = np.where(tot > 0, pxx[band].sum(axis=0) / np.where(tot > 0, tot, 1), 0.0)
    np.testing.assert_allclose(share, expected, rtol=1e-9, atol=1e-12)
    assert share[0] > 0.5 and share[1] < 1e-3 and 0.2 < share[2] < 0.6 and share[3] == 0.0


def test_mean_normalised_spectrum_by_hand() -> None:
    mag = np.array([[1.0, 2.0, 4.0], [3.0, 2.0, 0.0]])
    spectra = sp.Spectra(np.array([0.0, 0.25, 0.5]), np.array([np.inf, 4.0, 2.0]), mag, "hann", 4, 4, True)
    m = sp.mean_normalised_spectrum(spectra)
    assert m.reference == 4.0
    np.testing.assert_allclose(m.mean, [0.5, 0.5, 0.5])
    # Column 0: values 0.25, 0.75 (sample std 0.3536); column 2: 1, 0 (0.7071); over sqrt(2) units.
    np.testing.assert_allclose(m.sem, [0.25, 0.0, 0.5])
    np.testing.assert_allclose(m.mean_db, 20 * np.log10([0.5, 0.5, 0.5]))
    assert m.lower_db[2] == m.floor_db  # mean - SEM <= 0 has no dB value
    # Layers share layer 0's reference; the softmax uses its own.
    layers = [np.outer(np.sin(np.arange(30)), [1.0, 0.5]), np.outer(np.sin(np.arange(30)), [2.0, 2.0])]
    means = sp.layer_mean_spectra(layers, probs=np.outer(np.cos(np.arange(30)), [3.0]), window_name="rect")
    assert means["layer1"].reference == means["layer0"].reference
    assert means["layer1"].mean.max() == pytest.approx(2.0)
    assert means["softmax"].mean.max() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "name,sidelobe_db,width6,width3,enbw,gain,null",
    [("rect", -13.26, 1.21, 0.89, 1.00, 1.0, 1.0), ("hann", -31.47, 2.00, 1.44, 1.50, 0.5, 2.0)],
)
def test_window_properties_match_textbook_values(
    name: str, sidelobe_db: float, width6: float, width3: float, enbw: float, gain: float, null: float
) -> None:
    p = wi.window_properties(name, 147)
    assert p.highest_sidelobe_db == pytest.approx(sidelobe_db, abs=0.05)  # reference: -13.3 / -31.5 dB
    assert p.width_6db_bins == pytest.approx(width6, abs=0.01)
    assert p.width_3db_bins == pytest.approx(width3, abs=0.01)
    assert p.enbw_bins == pytest.approx(enbw, abs=1e-9)
    assert p.coherent_gain == pytest.approx(gain, abs=1e-9)
    assert p.first_null_bins == pytest.approx(null, abs=1e-4)


@pytest.mark.parametrize("name,scipy_name", [("hann", "hann"), ("rect", "boxcar")])
def test_window_response_is_the_dtft(name: str, scipy_name: str) -> None:
    n = 147
    f = np.linspace(0, 0.5, 301)
    _, h = signal.freqz(signal.get_window(scipy_name, n), worN=2 * np.pi * f)
    np.testing.assert_allclose(wi.response(name, n, f), np.abs(h) / np.abs(h[0]), atol=1e-10)


def test_seed_003_tables_for_n_147() -> None:
    """The numbers printed in seed 003 (rounded there; inf rows used its rounded widths 0.008 / 0.014)."""
    rows = {r.period: r for r in wi.support_table(n=147)}
    post_support = {  # period: (rect low, rect high, hann low, hann high)
        2.25: (2.23, 2.27, 2.21, 2.29), 4.5: (4.4, 4.6, 4.3, 4.7), 8.8: (8.5, 9.1, 8.3, 9.4),
        18.0: (17, 19, 16, 21), 36.0: (31, 42, 28, 48),
    }
    for p, (rl, rh, hl, hh) in post_support.items():
        r = rows[p]
        tol = 0.011 if p < 3 else 0.07 if p < 10 else 1.0
        assert r.support["rect"] == pytest.approx((rl, rh), abs=tol)
        assert r.support["hann"] == pytest.approx((hl, hh), abs=tol)
    post_sidelobes = {
        2.25: (2.20, 2.30, 2.17, 2.33), 4.5: (4.3, 4.7, 4.2, 4.8), 8.8: (8.0, 9.6, 7.7, 10.2),
        18.0: (15, 22, 14, 25), 36.0: (26, 56, 23, 85),
    }
    for p, (r1, r2, h1, h2) in post_sidelobes.items():
        r = rows[p]
        tol = 0.011 if p < 3 else 0.12 if p < 10 else 1.0
        assert sorted(r.sidelobes["rect"]) == pytest.approx([r1, r2], abs=tol)
        assert sorted(r.sidelobes["hann"]) == pytest.approx([h1, h2], abs=tol)
    dc = rows[math.inf]
    assert math.isinf(dc.support["hann"][1]) and dc.support["hann"][0] == pytest.approx(147 / 1.0, rel=0.01)
    assert dc.support["rect"][0] == pytest.approx(244, abs=1)  # the post: 250 (from its rounded 0.008)
    assert dc.sidelobes["hann"] == pytest.approx((63,), abs=1)
    assert dc.sidelobes["rect"] == pytest.approx((100,), abs=3.5)  # 1.43 bins: 102.8


def test_support_edges_sit_at_minus_6_db() -> None:
    for name in ("rect", "hann"):
        lo, hi = wi.main_lobe_support(8.8, 147, name)
        for edge in (lo, hi):
            assert wi.response(name, 147, abs(1 / edge - 1 / 8.8))[0] == pytest.approx(10 ** (-6 / 20), abs=1e-6)
    with pytest.raises(ValueError, match="period must be at least 2 steps"):
        wi.main_lobe_support(1.5, 147, "hann")
    with pytest.raises(ValueError, match="window must be 'hann' or 'rect'; got 'kaiser'"):
        wi.window_properties("kaiser")
