"""More figures: the analysis windows' responses, band selections, single-unit traces, the Δsoftmax curves, the last
layer's state on the output matrix's singular directions, Gramians against the one-hot Gramian,
and the ablation with its confidence intervals.  Same conventions as :mod:`.plots` (Agg canvas,
no pyplot, one PNG per call)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from folkrnn_live.analysis.plots import _bar_lines, _figure, _save, _token_ticks
from folkrnn_live.analysis.stats import PairedComparison


def unit_traces(
    traces: dict[str, np.ndarray], tokens: Sequence[str], bars_out: Sequence[int], path: str | Path, title: str
) -> Path:
    """One panel per unit: its activation over the tune, dashed lines at the steps that generate a
    bar token (the next step inputs it), the generated tokens along the bottom axis."""
    n = max(1, len(traces))
    fig = _figure(max(9.0, len(tokens) * 0.08), 1.9 * n + 1.2)
    axes = [fig.add_subplot(n, 1, j + 1) for j in range(n)]
    x = np.arange(len(tokens))
    for ax, (name, v) in zip(axes, traces.items(), strict=False):
        ax.plot(x, v, lw=1.1, color="tab:blue")
        ax.axhline(0, color="k", lw=0.4)
        ax.vlines(bars_out, 0, 1, transform=ax.get_xaxis_transform(), colors="tab:red", lw=0.8, linestyles="--")
        ax.set_ylabel(name, fontsize=8)
        ax.set_xlim(-0.5, len(tokens) - 0.5)
        ax.tick_params(labelbottom=False)
    _token_ticks(axes[-1], tokens, "x")
    axes[-1].tick_params(labelbottom=True)
    axes[-1].set_xlabel("step (generated token; dashed: a bar token is generated, and input at the next step)")
    fig.suptitle(title)
    return _save(fig, path)


def delta_softmax(deltas: np.ndarray, curves: dict[float, np.ndarray], path: str | Path) -> Path:
    """p' against the change Δ of the token's own logit, one curve per starting probability."""
    fig = _figure(7.5, 4.5)
    ax = fig.add_subplot()
    for p0, p in curves.items():
        ax.plot(deltas, p, lw=1.3, label=f"p = {p0:g}")
    ax.set_xlabel("Δ added to the token's logit (= δ · V[token, unit] for a change δ of one unit of h)")
    ax.set_ylabel("new probability of the token")
    ax.set_yscale("log")
    ax.set_ylim(1e-5, 1.5)
    ax.set_title("How a change of one softmax input moves a token's probability: p' = p e^Δ / (1 - p + p e^Δ)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def projections(
    coeffs: np.ndarray,
    labels: Sequence[str],
    tokens: Sequence[str],
    bars_out: Sequence[int],
    path: str | Path,
    title: str,
) -> Path:
    """Each direction's contribution to the logits over the tune, one panel per direction."""
    k = coeffs.shape[1]
    fig = _figure(max(9.0, len(tokens) * 0.08), 1.7 * k + 1.2)
    axes = [fig.add_subplot(k, 1, j + 1) for j in range(k)]
    for j, ax in enumerate(axes):
        ax.plot(np.arange(len(tokens)), coeffs[:, j], lw=1.1, color="tab:purple")
        ax.axhline(0, color="k", lw=0.4)
        _bar_lines(ax, bars_out, "x", color="tab:red", alpha=0.6)
        ax.set_ylabel(labels[j], fontsize=8)
        ax.set_xlim(-0.5, len(tokens) - 0.5)
        ax.tick_params(labelbottom=False)
    _token_ticks(axes[-1], tokens, "x")
    axes[-1].tick_params(labelbottom=True)
    axes[-1].set_xlabel("step (generated token; red: a bar token is generated)")
    fig.suptitle(title)
    return _save(fig, path)


def gramian_similarity(rows: dict[str, dict[str, float]], path: str | Path, title: str) -> Path:
    """Grouped bars: for each Gramian, its correlation with XᵀX at each alignment."""
    names = list(rows)
    keys = list(next(iter(rows.values()))) if rows else []
    fig = _figure(max(8.0, 0.45 * len(names) * max(1, len(keys))), 4.8)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(keys))
    x = np.arange(len(names))
    for j, key in enumerate(keys):
        ax.bar(x + (j - (len(keys) - 1) / 2) * width, [rows[n][key] for n in names], width, label=key)
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("Pearson r with the one-hot Gramian (off-diagonal)")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)


def ablation(
    comparisons: Sequence[PairedComparison],
    pooled: dict[str, Sequence[float]],
    fractions: Sequence[float],
    path: str | Path,
    title: str,
) -> Path:
    """Per-seed mean share of right bars with 95 % confidence intervals, band-selected against
    random units, the paired test's p-value at each fraction; pooled shares as open markers."""
    fig = _figure(7.5, 4.8)
    ax = fig.add_subplot()
    x = np.array([c.fraction for c in comparisons]) * 100
    for key, label, fmt, shift in (("band", "units by band power", "o-", -0.4), ("random", "random units", "s--", 0.4)):
        iv = [getattr(c, key) for c in comparisons]
        m = np.array([i.mean for i in iv]) * 100
        err = np.array([[i.mean - i.low for i in iv], [i.high - i.mean for i in iv]]) * 100
        ax.errorbar(x + shift, m, yerr=err, fmt=fmt, capsize=3, label=f"{label}: per-seed mean, 95 % CI")
    xs = np.asarray(fractions) * 100
    ax.plot(xs, np.asarray(pooled["band"]) * 100, "o", mfc="none", color="tab:blue", alpha=0.6, label="band, pooled")
    ax.plot(
        xs, np.asarray(pooled["random"]) * 100, "s", mfc="none", color="tab:orange", alpha=0.6, label="random, pooled"
    )
    for c, xi in zip(comparisons, x, strict=True):
        ax.annotate(f"p={c.p_value:.3g}", (xi, 3), ha="center", fontsize=7)
    ax.set_xlabel("units snipped (% of the layer)")
    ax.set_ylabel("bars of the right length (%)")
    ax.set_ylim(-2, 105)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0, 0.08))
    ax.grid(alpha=0.3)
    return _save(fig, path)


def window_responses(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path, n: int) -> Path:
    """|W| in dB against offset in bins, one line per window."""
    fig = _figure(8.0, 4.5)
    ax = fig.add_subplot()
    for name, (bins, db) in curves.items():
        ax.plot(bins, db, lw=1.2, label=name)
    ax.axhline(-6.02, color="k", ls=":", lw=0.8)
    ax.set_ylim(-100, 3)
    ax.set_xlabel(f"offset from the main lobe's centre (bins of 1/{n} cycles per step)")
    ax.set_ylabel("dB")
    ax.set_title(f"Window magnitude responses, n = {n} (periodic windows)")
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def band_selection(share: np.ndarray, threshold: float, path: str | Path, title: str) -> Path:
    """Every unit's share of power in the band, sorted, with the selection threshold."""
    fig = _figure(8.0, 4.0)
    ax = fig.add_subplot()
    s = np.sort(share)[::-1]
    ax.plot(np.arange(len(s)), s * 100, lw=1.3)
    ax.axhline(threshold * 100, color="tab:red", ls="--", lw=1, label=f"threshold {threshold * 100:g} %")
    ax.set_xlabel("unit (sorted)")
    ax.set_ylabel("share of power in band (%)")
    ax.set_title(title)
    ax.legend()
    return _save(fig, path)
