"""Analyses of what the network did over one tune (seed posts 000 item 11 and 003): the posterior
over time, activation heatmaps, histograms and each unit's largest magnitude."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from folkrnn_live.analysis import gramians as gr
from folkrnn_live.analysis import params as pa
from folkrnn_live.analysis import plots
from folkrnn_live.analysis.sections import Section, check_layers, write_csv, write_json, write_npz
from folkrnn_live.recording.recording import Recording

#: Activations that take both signs (a diverging colour map centred on 0); the gates are in [0, 1].
SIGNED = ("h", "c", "g", "g_pre")


def posterior_task(rec: Recording, out: Path) -> Section:
    """Vocabulary x step image of the distributions sampled from, with bar steps marked."""
    out.mkdir(parents=True, exist_ok=True)
    tokens = rec.tokens
    bars = gr.bar_steps(tokens)
    order = pa.vocab_order(rec.vocab)
    img = plots.posterior(rec.probs, tokens, rec.vocab.tokens, order, bars, out / "posterior.png")
    top = np.argmax(rec.probs, axis=1) if rec.n_steps else np.zeros(0, int)
    p_tok, p_top = rec.probs[np.arange(rec.n_steps), rec.token], rec.probs[np.arange(rec.n_steps), top]
    rows = [
        [t, tokens[t], f"{p_tok[t]:.5f}", rec.vocab.tokens[int(top[t])], f"{p_top[t]:.5f}"] for t in range(rec.n_steps)
    ]
    f1 = write_csv(out / "posterior_steps.csv", ["step", "token", "p_token", "argmax", "p_argmax"], rows)
    f2 = write_npz(out / "posterior.npz", {"probs": rec.probs, "tokens": np.array(tokens, dtype=np.str_)})
    bar_p = rec.probs[:, rec.vocab.select("@bar")].sum(axis=1).tolist()
    f3 = write_csv(
        out / "posterior_bar_mass.csv",
        ["step", "token", "p_bar_tokens"],
        [[t, tokens[t], f"{p:.5f}"] for t, p in enumerate(bar_p)],
    )
    return Section(
        "posterior",
        "Posterior over time",
        [
            "Probability of every token (rows grouped by class) at every step; red lines at steps that "
            "sampled a bar token. `posterior_bar_mass.csv` is the total mass on bar tokens per step "
            "(seed 000 item 11: it spikes at bar steps)."
        ],
        images=[(img.name, "posterior: vocabulary x step")],
        files=[f1, f3, f2],
    )


def heatmaps_task(rec: Recording, out: Path, gate: str = "h", layers: Sequence[int] | None = None) -> Section:
    """Unit x step image of one activation per layer, lines at steps that input a bar token."""
    rec.gate(gate)  # names the allowed activations when ``gate`` is wrong
    bars = gr.bar_steps(rec.input_tokens)
    sec = Section(
        f"heatmaps_{gate}",
        f"Activation heatmaps ({gate})",
        [
            f"`{gate}` of every unit (vertical) at every step (horizontal, labelled with the input token); "
            "lines at steps that input a bar token. Layers are 0-based."
        ],
    )
    for k in check_layers(rec, layers):
        img = plots.heatmap(
            rec.gate(gate, k),
            out / f"heatmap_{gate}_layer{k}.png",
            f"{gate}, layer {k}",
            bars,
            rec.input_tokens,
            cmap="RdBu_r" if gate in SIGNED else "viridis",
            symmetric=gate in SIGNED,
        )
        sec.images.append((img.name, f"{gate}, layer {k}"))
    return sec


def distributions_task(rec: Recording, out: Path, gate: str = "h") -> Section:
    """Histograms of one activation per layer and each unit's largest magnitude, sorted."""
    out.mkdir(parents=True, exist_ok=True)
    layers = [rec.gate(gate, k).astype(np.float64) for k in range(rec.num_layers)]
    maxes = [np.sort(np.abs(a).max(axis=0))[::-1] for a in layers]
    i1 = plots.histograms(layers, out / f"histogram_{gate}.png", gate)
    i2 = plots.max_magnitudes(maxes, out / f"max_magnitude_{gate}.png", gate)
    # Shared edges so the layers' counts compare bin by bin: [-1, 1] holds h, g and the gates.
    lo = min(-1.0, *(float(a.min()) for a in layers))
    hi = max(1.0, *(float(a.max()) for a in layers))
    edges = np.linspace(lo, hi, 41)
    stats = {}
    for k, a in enumerate(layers):
        v = np.abs(a)
        stats[f"layer{k}"] = {
            "mean_abs": float(v.mean()),
            "share_below_0.1": float((v < 0.1).mean()),
            "share_above_0.9": float((v > 0.9).mean()),
            "max_abs": float(v.max()),
            "histogram": np.histogram(a, bins=edges)[0].tolist(),
        }
    f1 = write_json(out / f"distribution_{gate}.json", {"edges": edges.tolist(), **stats})
    f2 = write_csv(
        out / f"max_magnitude_{gate}.csv",
        ["rank", *[f"layer{k}" for k in range(len(maxes))]],
        [[r, *[f"{m[r]:.6f}" for m in maxes]] for r in range(len(maxes[0]))],
    )
    rows = [
        [f"{k}", f"{s['mean_abs']:.4f}", f"{s['share_below_0.1'] * 100:.1f} %", f"{s['share_above_0.9'] * 100:.1f} %"]
        for k, s in enumerate(stats.values())
    ]
    return Section(
        f"distributions_{gate}",
        f"Activation histograms and maximum magnitudes ({gate})",
        ["Seed 003: activations are sparse, and larger magnitudes are more likely deeper in the network."],
        tables=[(["layer", "mean abs", "share abs < 0.1", "share abs > 0.9"], rows)],
        images=[(i1.name, "histogram per layer"), (i2.name, "sorted max |activation| per unit")],
        files=[f1, f2],
    )
