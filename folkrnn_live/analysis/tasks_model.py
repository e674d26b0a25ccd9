"""Analyses of a model rather than of one tune: its parameters (seed post 000 items 3-10) and the
ablation experiment (seeds 000 and 003)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from folkrnn_live.analysis import params as pa
from folkrnn_live.analysis import plots
from folkrnn_live.analysis.ablation import AblationResult
from folkrnn_live.analysis.sections import Section, write_csv, write_json, write_npz
from folkrnn_live.model.network import FolkRNN


def params_task(model: FolkRNN, out: Path, directions: int = 5) -> Section:
    """Output-matrix SVD and token loadings, first-layer input column norms and Gramians per gate,
    output columns against the output bias, input/recurrent alignment per layer."""
    out.mkdir(parents=True, exist_ok=True)
    vocab = model.config.vocab
    order = pa.vocab_order(vocab)
    toks = [vocab.tokens[i] for i in order]
    summ = pa.parameter_summary(model, directions)
    f1 = write_json(out / "params.json", summ)
    svd = pa.output_svd(model, directions)
    s = svd.singular_values
    f2 = write_csv(
        out / "output_singular_values.csv", ["k", "singular_value"], [[k, f"{v:.6f}"] for k, v in enumerate(s)]
    )
    k_show = min(4, directions, svd.loadings.shape[1])
    f_load = write_csv(
        out / "output_loadings.csv",
        ["token", *[f"u{k}" for k in range(k_show)]],
        [[vocab.tokens[i], *[f"{svd.loadings[i, k]:.6f}" for k in range(k_show)]] for i in order],
    )
    imgs = [
        plots.bars_plot(
            s, [], out / "output_singular_values.png", "Singular values of the output matrix", "singular value",
            log=True,
        ),
        plots.token_bars(
            {f"u{k}": svd.loadings[order, k] for k in range(k_show)},
            toks,
            out / "output_loadings.png",
            "Token loadings of the output matrix's top left singular vectors",
            "loading",
        ),
    ]
    norms = pa.input_column_norms(model)
    f3 = write_csv(
        out / "input_column_norms.csv",
        ["token", *norms],
        [[vocab.tokens[i], *[f"{norms[g][i]:.6f}" for g in norms]] for i in order],
    )
    imgs.append(
        plots.token_bars(
            {g: n[order] for g, n in norms.items()},
            toks,
            out / "input_norms.png",
            "Layer 0 input weights: column norm per token, per gate (i, f, g = cell, o)",
            "norm",
        )
    )
    grams = pa.input_gramians(model)
    f4 = write_npz(out / "input_gramians.npz", {**grams, "tokens": np.array(vocab.tokens, dtype=np.str_)})
    imgs.append(
        plots.token_gramians(
            grams,
            order,
            vocab.tokens,
            out / "input_gramians.png",
            "Gramians W_xᵀW_x of layer 0's input matrices per gate (tokens grouped by class)",
        )
    )
    corr = pa.output_bias_correlation(model)
    imgs.append(
        plots.bars_plot(
            np.sort(corr),
            [],
            out / "output_bias_correlation.png",
            "Correlation of each output column with the output bias (sorted)",
            "Pearson r",
        )
    )
    top_rows = [
        [str(k), f"{s[k]:.4f}", ", ".join(f"{t} ({v:+.3f})" for t, v in svd.top[k][:6])]
        for k in range(min(directions, len(s)))
    ]
    cb = summ["output_bias_correlation"]
    second = f"{s[1]:.4f}" if len(s) > 1 else "none"
    return Section(
        "params",
        "Parameters",
        [
            f"Output matrix: first singular value {s[0]:.4f}, second {second} "
            "(seed 000 item 6: one direction an order of magnitude above the rest, raising `|:` and `</s>`). "
            f"Output columns against the output bias: max |r| {cb['max_abs']:.3f}, mean |r| {cb['mean_abs']:.3f} "
            "(seed 000 item 4: about 0.8 and 0.4 for v2). Input column norms of layer 0 per gate are in "
            "`input_column_norms.csv` (seed 000 item 8: small for meter and mode tokens in the forget gate)."
        ],
        tables=[(["direction", "singular value", "tokens with the largest loadings"], top_rows)],
        images=[(i.name, i.stem.replace("_", " ")) for i in imgs],
        files=[f1, f2, f_load, f3, f4],
    )


def ablation_task(result: AblationResult, out: Path) -> Section:
    """Write an :class:`AblationResult` (run by :func:`folkrnn_live.analysis.ablation.run_ablation`)."""
    out.mkdir(parents=True, exist_ok=True)
    f1 = write_json(out / f"ablation_layer{result.layer}.json", result.to_json())
    f2 = result.write_csv(out / f"ablation_layer{result.layer}.csv").name
    band, rnd = result.curve("band"), result.curve("random")
    img = plots.ablation(
        [r[0] for r in band],
        [r[1] for r in band],
        [r[1] for r in rnd],
        [r[2] for r in rnd],
        [r[3] for r in rnd],
        out / f"ablation_layer{result.layer}.png",
        f"Layer {result.layer}: snipping by power in {result.band[0]}-{result.band[1]} steps vs random",
    )
    H = len(result.band_share)
    rows = [
        [
            f"{b[0]:g}",
            str(round(b[0] * H)),
            f"{b[1] * 100:.1f} %",
            f"{r[1] * 100:.1f} %",
            f"{r[2] * 100:.1f}-{r[3] * 100:.1f} %",
        ]
        for b, r in zip(band, rnd, strict=True)
    ]
    return Section(
        f"ablation_layer{result.layer}",
        f"Ablation: snipping layer {result.layer} units",
        [
            f"Share of bars with the right length in tunes generated with seeds {seed_text(result.seeds)}, "
            f"snipping (mode `{result.mode}`) the units of layer {result.layer} (0-based) with the largest share "
            f"of power in periods {result.band[0]}-{result.band[1]} steps, beside random units of the same "
            "count (seeds 000 and 003). Units are ranked by their share averaged over the unsnipped tunes."
        ],
        tables=[(["fraction", "units", "band units: right bars", "random: mean", "random: range"], rows)],
        images=[(img.name, "share of right bars against the fraction snipped")],
        files=[f1, f2],
    )


def seed_text(seeds: Sequence[int]) -> str:
    s = list(seeds)
    return f"{s[0]}..{s[-1]}" if len(s) > 2 and s == list(range(s[0], s[-1] + 1)) else ", ".join(map(str, s))
