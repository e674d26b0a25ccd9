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
from folkrnn_live.analysis.softmax import svd_reading as softmax_svd_reading
from folkrnn_live.model.network import FolkRNN

SVD_HEAD = ["direction", "raw singular value", "raw: largest loadings", "centred singular value",
            "centred: largest loadings"]  # fmt: skip


def params_task(model: FolkRNN, out: Path, directions: int = 5) -> Section:
    """Output-matrix SVD and token loadings, first-layer input column norms and Gramians per gate,
    output columns against the output bias, input/recurrent alignment per layer."""
    out.mkdir(parents=True, exist_ok=True)
    vocab = model.config.vocab
    order = pa.vocab_order(vocab)
    toks = [vocab.tokens[i] for i in order]
    summ = pa.parameter_summary(model, directions)
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
    f3, f4 = _input_and_bias(model, out, order, toks, imgs)
    reading = softmax_svd_reading(model)
    toks = list(vocab.tokens)
    f_c = write_csv(
        out / "output_singular_values_centred.csv", ["k", "singular_value_raw", "singular_value_centred"],
        [[k, f"{a:.6f}", f"{b:.6f}"] for k, (a, b) in enumerate(zip(reading.raw, reading.centred, strict=True))],
    )  # fmt: skip
    summ["output_svd_centred"] = reading.to_json(toks)
    f1 = write_json(out / "params.json", summ)
    top_rows = [
        [str(k), f"{s[k]:.4f}", ", ".join(f"{t} ({v:+.3f})" for t, v in svd.top[k][:6]),
         f"{reading.centred[k]:.4f}", ", ".join(f"{t} ({v:+.3f})" for t, v in reading.top_tokens(toks, "centred", k))]
        for k in range(min(directions, len(s)))
    ]  # fmt: skip
    cb = summ["output_bias_correlation"]
    raised = ", ".join(f"`{t}`" for t, _ in reading.top_tokens(toks, "raw")[:3])
    raised_c = ", ".join(f"`{t}`" for t, _ in reading.top_tokens(toks, "centred")[:3])
    return Section(
        "params",
        "Parameters",
        [
            f"Output matrix V: singular values {s[0]:.3f} and {s[1] if len(s) > 1 else float('nan'):.3f}, a ratio "
            f"of {reading.ratio_raw:.2f}. Its first left singular vector has |cos| {reading.cos_ones:.3f} with the "
            "all-ones vector: much of it shifts every logit alike, which softmax ignores. With that common mode "
            f"removed (each column's mean over the vocabulary subtracted) the first two are {reading.centred[0]:.3f} "
            f"and {reading.centred[1]:.3f}, a ratio of {reading.ratio_centred:.2f}. The first raw direction loads "
            f"most on {raised}, the first centred one on {raised_c} (signs as in the table: whether a direction "
            "raises or lowers them depends on the sign of h's projection, see `projections`). Output columns "
            "against the output bias: "
            f"max |r| {cb['max_abs']:.3f}, mean |r| {cb['mean_abs']:.3f}. Input column norms of layer 0 per gate "
            "are in `input_column_norms.csv`; their means per token class in `params.json`."
        ],
        tables=[(SVD_HEAD, top_rows)],
        images=[(i.name, i.stem.replace("_", " ")) for i in imgs],
        files=[f1, f2, f_c, f_load, f3, f4],
    )


def _input_and_bias(model: FolkRNN, out: Path, order: list[int], toks: list[str], imgs: list[Path]) -> tuple[str, str]:
    """Layer 0's input column norms and Gramians per gate, and V's columns against the bias."""
    vocab = model.config.vocab
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
    return f3, f4


def ablation_task(result: AblationResult, out: Path) -> Section:
    """Write an :class:`AblationResult` (run by :func:`folkrnn_live.analysis.ablation.run_ablation`):
    pooled shares, per-seed means with 95 % confidence intervals and the paired test per fraction."""
    from folkrnn_live.analysis import plots_units
    from folkrnn_live.analysis.stats import TEST_NAME

    out.mkdir(parents=True, exist_ok=True)
    f1 = write_json(out / f"ablation_layer{result.layer}.json", result.to_json())
    f2 = result.write_csv(out / f"ablation_layer{result.layer}.csv").name
    band, rnd = result.curve("band"), result.curve("random")
    comps = result.comparisons()
    img = plots_units.ablation(
        comps,
        {"band": [r[1] for r in band], "random": [r[1] for r in rnd]},
        [r[0] for r in band],
        out / f"ablation_layer{result.layer}.png",
        f"Layer {result.layer}: snipping by power in {result.band[0]:g}-{result.band[1]:g} steps vs random",
    )
    H = len(result.band_share)
    by_f = {c.fraction: c for c in comps}
    rows = []
    for b, r in zip(band, rnd, strict=True):
        c = by_f.get(b[0])
        rows.append(
            [
                f"{b[0]:g}",
                str(round(b[0] * H)),
                f"{b[1] * 100:.1f} %",
                f"{r[1] * 100:.1f} % ({r[2] * 100:.1f}-{r[3] * 100:.1f})",
                c.band.text() if c else "",
                c.random.text() if c else "",
                c.difference.text(unit=" pts") if c else "",
                f"{c.p_value:.3g}" if c else "",
            ]
        )
    period = result.settings.get("measured_bar_period")
    ptxt = f"{period:.2f} steps" if isinstance(period, float) else "none (fewer than two bars)"
    head = ["fraction", "units", "band: pooled", "random: pooled (range)", "band: per-seed mean [95 % CI]",
            "random: per-seed mean [95 % CI]", "band - random [95 % CI]", "p"]  # fmt: skip
    return Section(
        f"ablation_layer{result.layer}",
        f"Ablation: snipping layer {result.layer} units",
        [
            f"Share of bars with the right length in tunes generated with seeds {seed_text(result.seeds)} "
            f"(prime `{' '.join(result.settings.get('prime', [])) or 'none'}`), snipping (mode `{result.mode}`) "
            f"the units of layer {result.layer} (0-based) with the largest share of power in periods "
            f"{result.band[0]:g}-{result.band[1]:g} steps, beside random units of the same count (seeds 000 and "
            f"003). Units are ranked by their share averaged over the unsnipped tunes, whose measured bar period "
            f"is {ptxt}. Pooled: right bars over all bars of the seeds' tunes. Per seed: each tune's share (0 "
            f"for a tune without a bar), random sets averaged per seed; intervals are Student-t 95 % intervals "
            f"over the {len(result.seeds)} seeds, and p is the {TEST_NAME} (band against random)."
        ],
        tables=[(head, rows)],
        images=[(img.name, "share of right bars against the fraction snipped, 95 % confidence intervals")],
        files=[f1, f2],
    )


def seed_text(seeds: Sequence[int]) -> str:
    s = list(seeds)
    return f"{s[0]}..{s[-1]}" if len(s) > 2 and s == list(range(s[0], s[-1] + 1)) else ", ".join(map(str, s))
