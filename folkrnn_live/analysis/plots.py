"""Figures for the analyses: matplotlib with the Agg canvas, no pyplot.

Figures are built on :class:`matplotlib.figure.Figure` with an explicit Agg canvas, so nothing here
touches pyplot's global state or a GUI backend (a server process may plot from a worker thread).
Every function writes one PNG and returns its path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from folkrnn_live.analysis.spectra import MeanSpectrum, Spectra

SANGUINE = "#b2443a"  # seed 001's colour for near pairs
POWDER_BLUE = "#b0e0e6"  # and for far / orthogonal pairs
DPI = 110
# Magnitude Gramians on [0, 1] in 100 levels: |cos| >= 0.99 sanguine (the same direction), <= 0.01
# powder blue (orthogonal), gray between (darker = smaller angle): the L1 map's 1 % thresholds.
MAGNITUDE_CMAP = ListedColormap([POWDER_BLUE, *[(v, v, v) for v in np.linspace(0.92, 0.05, 98)], SANGUINE])


def _figure(w: float = 8.0, h: float = 5.0, layout: Literal["constrained"] | None = None) -> Figure:
    """A figure on its own Agg canvas; ``layout="constrained"`` leaves room for every panel's labels."""
    fig = Figure(figsize=(w, h), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, bbox_inches="tight")
    return p


def _bar_lines(ax: Axes, bars: Sequence[int], axis: str = "x", color: str = "k", alpha: float = 0.35) -> None:
    """A line before each bar step, one collection per axis (one artist per line is slow to draw)."""
    if not len(bars):
        return
    at = [b - 0.5 for b in bars]
    if axis in ("x", "both"):
        ax.vlines(at, 0, 1, transform=ax.get_xaxis_transform(), colors=color, lw=0.6, alpha=alpha)
    if axis in ("y", "both"):
        ax.hlines(at, 0, 1, transform=ax.get_yaxis_transform(), colors=color, lw=0.6, alpha=alpha)


def _token_ticks(ax: Axes, tokens: Sequence[str], axis: str = "x", max_labels: int = 160) -> None:
    n = len(tokens)
    if n == 0:
        return
    step = max(1, math.ceil(n / max_labels))
    idx = list(range(0, n, step))
    size = 5 if n > 80 else 7
    if axis in ("x", "both"):
        ax.set_xticks(idx)
        ax.set_xticklabels([tokens[i] for i in idx], rotation=90, fontsize=size)
    if axis in ("y", "both"):
        ax.set_yticks(idx)
        ax.set_yticklabels([tokens[i] for i in idx], fontsize=size)


def posterior(
    probs: np.ndarray,
    tokens: Sequence[str],
    vocab_tokens: Sequence[str],
    order: Sequence[int],
    bars: Sequence[int],
    path: str | Path,
    title: str = "Posterior over time",
) -> Path:
    """Vocabulary (grouped by class) x step; x labels are the sampled tokens; lines at bar steps."""
    fig = _figure(max(8.0, len(tokens) * 0.09), 12.0)
    ax = fig.add_subplot()
    img = np.asarray(probs, dtype=np.float64)[:, list(order)].T
    im = ax.imshow(
        img, aspect="auto", origin="lower", cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest"
    )
    ax.set_yticks(range(len(order)))
    ax.set_yticklabels([vocab_tokens[i] for i in order], fontsize=4.5)
    _token_ticks(ax, tokens, "x")
    _bar_lines(ax, bars, "x", color="tab:red", alpha=0.5)
    ax.set_xlabel("step (sampled token)")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.02, label="probability")
    return _save(fig, path)


def heatmap(
    a: np.ndarray,
    path: str | Path,
    title: str,
    bars: Sequence[int] = (),
    tokens: Sequence[str] = (),
    cmap: str = "RdBu_r",
    symmetric: bool = True,
) -> Path:
    """Unit x step image of one layer's activation [T, H]."""
    a = np.asarray(a, dtype=np.float64)
    fig = _figure(max(8.0, a.shape[0] * 0.07), 7.0)
    ax = fig.add_subplot()
    lim = float(np.abs(a).max()) if a.size else 1.0
    lim = lim or 1.0
    vmin, vmax = (-lim, lim) if symmetric else (None, None)
    im = ax.imshow(a.T, aspect="auto", origin="lower", cmap=cmap, interpolation="nearest", vmin=vmin, vmax=vmax)
    _bar_lines(ax, bars, "x")
    if tokens:
        _token_ticks(ax, tokens, "x")
    ax.set_ylabel("unit")
    ax.set_xlabel("step (input token)" if tokens else "step")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.02)
    return _save(fig, path)


def histograms(layers: Sequence[np.ndarray], path: str | Path, name: str = "h", bins: int = 101) -> Path:
    """Distribution of activation values per layer (log counts)."""
    fig = _figure(8.0, 4.5)
    ax = fig.add_subplot()
    lo = min(float(np.min(a)) for a in layers)
    hi = max(float(np.max(a)) for a in layers)
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    for k, a in enumerate(layers):
        ax.hist(np.ravel(a), bins=list(edges), histtype="step", lw=1.3, label=f"layer {k}")
    ax.set_yscale("log")
    ax.set_xlabel(f"{name} value")
    ax.set_ylabel("count (unit x step)")
    ax.set_title(f"Activation histograms of {name} per layer (0-based)")
    ax.legend()
    return _save(fig, path)


def max_magnitudes(sorted_max: Sequence[np.ndarray], path: str | Path, name: str = "h") -> Path:
    """Each unit's largest |activation| over the tune, sorted, one line per layer."""
    fig = _figure(8.0, 4.5)
    ax = fig.add_subplot()
    for k, m in enumerate(sorted_max):
        ax.plot(np.arange(len(m)), m, lw=1.3, label=f"layer {k}")
    ax.set_xlabel("unit (sorted)")
    ax.set_ylabel(f"max |{name}| over the tune")
    ax.set_title("Sorted maximum magnitude per unit")
    ax.legend()
    return _save(fig, path)


def _period_axis(ax: Axes) -> None:
    """Frequency axis labelled in periods (steps): the DFT bins are even in frequency."""
    ticks = [p for p in (2, 2.25, 3, 4.5, 6, 9, 18, 36, 72) if 1 / p <= 0.5]
    ax.set_xticks([1 / p for p in ticks] + [0.0])
    ax.set_xticklabels([f"{p:g}" for p in ticks] + ["inf"], fontsize=8)
    ax.set_xlabel("period (steps)")


def unit_spectra(sp: Spectra, path: str | Path, title: str, floor_db: float = -60.0) -> Path:
    """Every unit's magnitude spectrum in dB (relative to the largest), units sorted by peak period."""
    mag = sp.magnitude
    ref = float(mag.max()) or 1.0
    with np.errstate(divide="ignore"):
        db = np.maximum(20 * np.log10(np.maximum(mag / ref, 1e-300)), floor_db)
    order = np.argsort(sp.peak_periods(), kind="stable") if sp.magnitude.shape[1] > 1 else np.arange(len(mag))
    fig = _figure(8.0, 6.0)
    ax = fig.add_subplot()
    f = sp.freqs
    df = f[1] - f[0] if len(f) > 1 else 0.5
    edges = np.concatenate([[f[0]], (f[:-1] + f[1:]) / 2, [min(f[-1] + df / 2, 0.5)]])
    im = ax.pcolormesh(edges, np.arange(len(order) + 1), db[order], cmap="magma", vmin=floor_db, vmax=0)
    _period_axis(ax)
    ax.set_ylabel("unit (sorted by peak period)")
    ax.set_title(
        f"{title} ({sp.window} window, n={sp.n}, nfft={sp.nfft}, mean {'removed' if sp.mean_removed else 'kept'})"
    )
    fig.colorbar(im, ax=ax, fraction=0.03, label="dB re max")
    return _save(fig, path)


def mean_spectra(means: dict[str, MeanSpectrum], path: str | Path, title: str, mean_removed: bool = False) -> Path:
    """Seed 003's figure: mean normalised magnitude (dB) per layer with ±1 standard error shaded."""
    fig = _figure(9.0, 5.0)
    ax = fig.add_subplot()
    # With each sequence's mean removed, DC holds (almost) nothing by construction (exactly 0 with
    # the rectangular window): a plunge there is the removal, not the network, so DC is left out.
    k0 = 1 if mean_removed else 0
    for name, m in means.items():
        (line,) = ax.plot(m.freqs[k0:], m.mean_db[k0:], lw=1.2, label=name)
        ax.fill_between(m.freqs[k0:], m.lower_db[k0:], m.upper_db[k0:], color=line.get_color(), alpha=0.25, lw=0)
    if mean_removed:
        ax.annotate("DC left out:\nmeans removed", (0.0, 1.0), xycoords=("data", "axes fraction"), va="top",
                    fontsize=7)  # fmt: skip
    lows = [float(np.percentile(m.mean_db[k0:], 1)) for m in means.values()]
    ax.set_ylim(bottom=max(min(lows) - 10, -120))
    _period_axis(ax)
    ax.set_ylabel("mean normalised magnitude (dB)")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def gramian(
    g: np.ndarray,
    path: str | Path,
    title: str,
    bars: Sequence[int] = (),
    tokens: Sequence[str] = (),
    signed: bool = False,
) -> Path:
    """A T x T Gramian; magnitude Gramians map 1 (same direction) to sanguine and 0 (orthogonal) to
    powder blue over a gray scale, as in seed 001 (:data:`MAGNITUDE_CMAP`); signed ones use a
    diverging map."""
    fig = _figure(8.0, 7.5)
    ax = fig.add_subplot()
    if signed:
        im = ax.imshow(g, origin="lower", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    else:
        im = ax.imshow(g, origin="lower", cmap=MAGNITUDE_CMAP, vmin=0.0, vmax=1.0, interpolation="nearest")
    _bar_lines(ax, bars, "both", color="tab:green", alpha=0.6)
    if tokens:
        _token_ticks(ax, tokens, "both", max_labels=120)
    ax.set_xlabel("step (token)")
    ax.set_ylabel("step (token)")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.03, label="inner product of unit vectors" if signed else "|cos| between steps")
    return _save(fig, path)


def gramian_grid(
    mats: dict[str, np.ndarray], path: str | Path, title: str, bars: Sequence[int] = (), signed: bool = False
) -> Path:
    """Several T x T Gramians side by side (same colours as :func:`gramian`).  Panels carry no tick
    labels (the bar lines place them; tick text is most of the drawing time); step 0 is bottom left."""
    n = len(mats)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig = _figure(4.6 * cols, 4.2 * rows + 0.6)
    label = "inner product of unit vectors" if signed else "|cos| between steps"
    axes = []
    for j, (name, g) in enumerate(mats.items()):
        ax = fig.add_subplot(rows, cols, j + 1)
        if signed:
            im = ax.imshow(g, origin="lower", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        else:
            im = ax.imshow(g, origin="lower", cmap=MAGNITUDE_CMAP, vmin=0.0, vmax=1.0, interpolation="nearest")
        _bar_lines(ax, bars, "both", color="tab:green", alpha=0.5)
        ax.set_title(name, fontsize=10)
        ax.set_xticks([0, len(g) - 1])
        ax.set_yticks([0, len(g) - 1])
        ax.set_xlabel("step", fontsize=8, labelpad=-6)
        ax.set_ylabel("step", fontsize=8, labelpad=-6)
        axes.append(ax)
    # Every panel has the same colour scale: one colour bar serves them all (a bar per panel doubles
    # the axes to draw).
    fig.colorbar(im, ax=axes, fraction=0.02, pad=0.02, label=label)
    fig.suptitle(title)
    return _save(fig, path)


def l1_map(
    d: np.ndarray, path: str | Path, title: str, bars: Sequence[int] = (), tokens: Sequence[str] = ()
) -> Path:
    """L1 distances with seed 001's colours: [0, 0.02] sanguine, [1.98, 2] powder blue, gray between."""
    fig = _figure(8.0, 7.5)
    ax = fig.add_subplot()
    # 200 levels over [0, 2]: the first (0-0.01) and second (0.01-0.02) are sanguine, the last two
    # (1.98-2) powder blue, the rest gray (dark = close).
    gray = [(v, v, v) for v in np.linspace(0.1, 0.9, 196)]
    cmap = ListedColormap([SANGUINE, SANGUINE, *gray, POWDER_BLUE, POWDER_BLUE])
    im = ax.imshow(d, origin="lower", cmap=cmap, vmin=0.0, vmax=2.0, interpolation="nearest")
    _bar_lines(ax, bars, "both", color="tab:green", alpha=0.6)
    if tokens:
        _token_ticks(ax, tokens, "both", max_labels=120)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.03, label="L1 distance")
    return _save(fig, path)


def bars_plot(
    values: np.ndarray, labels: Sequence[str], path: str | Path, title: str, ylabel: str, log: bool = False
) -> Path:
    """One value per index (bars; points joined on a log scale, where bars from 0 cannot be drawn)."""
    fig = _figure(min(24.0, max(8.0, len(values) * 0.08)), 4.5)
    ax = fig.add_subplot()
    if log:
        ax.plot(np.arange(len(values)), values, "o-", color="tab:blue", ms=2.5, lw=1)
        ax.set_yscale("log")
    else:
        _stems(ax, values, "tab:blue")
    if labels:
        ax.set_xticks(np.arange(len(values)))
        ax.set_xticklabels(labels, rotation=90, fontsize=5 if len(values) > 60 else 8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return _save(fig, path)


def _stems(ax: Axes, values: np.ndarray, color: str) -> None:
    """A bar chart drawn as one collection of thick lines (a Rectangle per bar draws slowly)."""
    v = np.asarray(values, dtype=np.float64)
    x = np.arange(len(v))
    ax.vlines(x, np.minimum(v, 0), np.maximum(v, 0), colors=color, lw=max(1.0, min(4.0, 400 / max(len(v), 1))))
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlim(-0.5, len(v) - 0.5)


def _class_groups(tokens: Sequence[str]) -> list[tuple[str, int, int]]:
    """(class, first, stop) runs of a token list already grouped by class."""
    from folkrnn_live.tokens.vocab import classify

    groups: list[tuple[str, int, int]] = []
    for i, t in enumerate(tokens):
        try:
            cls: str = classify(t).cls
        except ValueError:
            cls = "?"
        if groups and groups[-1][0] == cls:
            groups[-1] = (cls, groups[-1][1], i + 1)
        else:
            groups.append((cls, i, i + 1))
    return groups


def _class_axis(ax: Axes, tokens: Sequence[str], axis: str = "x") -> None:
    """Label an axis of tokens by class (one label per class, lines between classes): 137 token
    labels are unreadable on a small panel and slow to draw."""
    groups = _class_groups(tokens)
    mids = [(a + b - 1) / 2 for _, a, b in groups]
    names = [c for c, _, _ in groups]
    for _, a, _ in groups[1:]:
        (ax.axvline if axis == "x" else ax.axhline)(a - 0.5, color="k", lw=0.5, alpha=0.5)
    if axis == "x":
        ax.set_xticks(mids)
        ax.set_xticklabels(names, rotation=90, fontsize=7)
    else:
        ax.set_yticks(mids)
        ax.set_yticklabels(names, fontsize=7)


def token_bars(
    series: dict[str, np.ndarray], tokens: Sequence[str], path: str | Path, title: str, ylabel: str
) -> Path:
    """One bar chart per series over tokens (already grouped by class); token names on the bottom
    panel only, class names and separators on every panel."""
    k = len(series)
    fig = _figure(max(10.0, len(tokens) * 0.09), 2.6 * k + 1.2, layout="constrained")
    for j, (name, values) in enumerate(series.items()):
        ax = fig.add_subplot(k, 1, j + 1)
        _stems(ax, values, "tab:purple")
        ax.set_ylabel(f"{ylabel} {name}", fontsize=8)
        ax.set_xlim(-0.5, len(tokens) - 0.5)
        if j == k - 1:
            ax.set_xticks(np.arange(len(tokens)))
            ax.set_xticklabels(tokens, rotation=90, fontsize=5)
            for _, a, _ in _class_groups(tokens)[1:]:
                ax.axvline(a - 0.5, color="k", lw=0.5, alpha=0.5)
        else:
            _class_axis(ax, tokens, "x")
    fig.suptitle(title)
    return _save(fig, path)


def token_gramians(
    gs: dict[str, np.ndarray], order: Sequence[int], vocab_tokens: Sequence[str], path: str | Path, title: str
) -> Path:
    """One V x V image per gate, tokens grouped by class."""
    n = len(gs)
    fig = _figure(7.0 * min(n, 2), 6.5 * math.ceil(n / 2), layout="constrained")
    o = list(order)
    toks = [vocab_tokens[i] for i in o]
    for j, (name, g) in enumerate(gs.items()):
        ax = fig.add_subplot(math.ceil(n / 2), min(n, 2), j + 1)
        img = g[np.ix_(o, o)]
        lim = float(np.abs(img).max()) or 1.0
        im = ax.imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim, origin="lower", interpolation="nearest")
        ax.set_title(f"gate {name}")
        _class_axis(ax, toks, "x")
        _class_axis(ax, toks, "y")
        ax.set_xlabel("token (grouped by class)")
        ax.set_ylabel("token (grouped by class)")
        fig.colorbar(im, ax=ax, fraction=0.046, label="inner product of token columns")
    fig.suptitle(title)
    return _save(fig, path)
