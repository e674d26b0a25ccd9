"""The pages of part 8 (the summary of parts 1-7 and the ideas to try) and part 9 (Gramians over
time); see :mod:`.reproduce`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from folkrnn_live.analysis import gramians as gr
from folkrnn_live.analysis import params as pa
from folkrnn_live.analysis import softmax as sm
from folkrnn_live.analysis import spectra as sp
from folkrnn_live.analysis import units as un
from folkrnn_live.analysis.bar_period import band_around, bar_period
from folkrnn_live.analysis.reproduce import Page, Runner
from folkrnn_live.analysis.reproduce_posts import PRIME_44, ablation, bars_text, comparison_text
from folkrnn_live.recording.recording import Recording
from folkrnn_live.sampler.voice import Voice


def _tokens(reading: sm.SVDReading, toks: list[str], which: str, k: int) -> str:
    return ", ".join(f"`{t}` ({v:+.2f})" for t, v in reading.top_tokens(toks, which, k, 4))


def suppressed(r: Runner, seed: int, selectors: list[str], steps: int | None, max_tokens: int) -> list[str]:
    """Part 8's idea 5 with the sampler's own controls: forbid tokens after the prime."""
    voice = Voice(r.model, seed=seed, prime=list(PRIME_44), max_tokens=max_tokens)
    while voice.controls.inject and voice.step() is not None:
        pass
    voice.controls.add_suppress(voice.vocab.select_many(selectors), steps)
    return voice.generate()


def part8(r: Runner, meta: dict[str, Any]) -> Page:
    pg = Page("part8")
    seed, _ = r.pick_seed(PRIME_44, 150)
    rec = r.record("tune", seed, PRIME_44)
    pg.intro = [
        f"Part 8 summarises parts 1-7. We rerun what each item measured on one tune (seed {seed}, prime "
        f"`M:4/4 K:Cmaj`, {rec.n_steps} steps) and on the model's parameters, and try its idea 5 (suppress "
        "bar tokens or `</s>` for a while) with the sampler's suppress, as `folkrnn-live record --suppress` does."
    ]
    pg.code.append((f"The tune ({bars_text(rec.tokens)})", " ".join(rec.tokens)))
    for name in ("params", "softmax", "projections", "posterior", "spectra", "traces"):
        r.run(name, rec if name != "params" else None)
    res = ablation(r, rec, rec.num_layers - 1, (0.0, 0.2, 0.27, 0.33), PRIME_44, seed)
    n_long = 3 * r.settings.max_tokens // 2
    no_bars = suppressed(r, seed, ["@bar"], 32, r.settings.max_tokens)
    no_end = suppressed(r, seed, ["</s>"], None, n_long)
    pg.code += [(f"Bar tokens suppressed for the first 32 generated steps ({bars_text(no_bars)})", " ".join(no_bars)),
                (f"`</s>` suppressed for the whole tune, {n_long} tokens ({bars_text(no_end)})",
                 " ".join(no_end))]  # fmt: skip
    last = rec.num_layers - 1
    fig = pg.figure
    fig("The tune the model generated for the post (a score)", [], "Ours is printed above as tokens.")
    fig("Item 6 (part 3): singular values of the softmax matrix V, one an order of magnitude above the rest",
        ["output_singular_values.png"], "Raw SVD; the common-mode-removed values are in the numbers below.")
    cos1 = sm.svd_reading(r.model).cos_ones
    fig("Items 6-7: the left singular vectors' token loadings", ["output_loadings.png"],
        f"Raw directions of another model; the first has |cos| {cos1:.2f} with the all-ones vector (see below).")
    fig("Item 4: correlation of V's columns with the bias v", ["output_bias_correlation.png"], "Another model.")
    fig("Item 5 (part 2): how a change of one softmax input moves a token's probability", ["delta_softmax.png"],
        "The post derives the relation; the figure draws it for several starting probabilities.")
    fig("Item 7's open question: h of the last layer projected on the singular directions over a tune",
        ["projections.png"], "Not in the posts; the common mode removed.")
    fig("Items 8-9 (part 4): first-layer input column norms per gate and the Gramians W_xᵀW_x",
        ["input_norms.png", "input_gramians.png"], "Another model; tokens grouped by class.")
    fig("Item 11 (part 5): the posterior over a tune, bar tokens spiking", ["posterior.png"], "Another tune.")
    fig("Item 12 (part 6): last-layer spectra, periodicity of about 9 steps", [f"spectra_hann_layer{last}.png"],
        "Another tune of another model.")
    fig("Item 13 (part 6): snipping 20 / 27 / 33 % of the last layer's periodic units vs 33 % random",
        [f"ablation_layer{last}.png"], "Ours over seeds, with intervals and a paired test.")
    fig("Item 17 (part 7): units against bar input and output", ["unit_traces.png"], "Model-specific units.")
    _part8_numbers(pg, r, rec, res, no_bars, no_end)
    return pg


def _part8_numbers(pg: Page, r: Runner, rec: Recording, res: Any, no_bars: list[str], no_end: list[str]) -> None:
    model, num = r.model, pg.number
    toks = list(model.config.tokens)
    reading = sm.svd_reading(model)
    corr = pa.output_bias_correlation(model)
    summ = pa.parameter_summary(model)
    f_norm = summ["input_column_norms_mean_by_class"]["f"]
    others = np.mean([v for c, v in f_norm.items() if c not in ("meter", "mode")])
    align = summ["input_recurrent_alignment"]["layer0"]
    bars = rec.vocab.select("@bar")
    mass = rec.probs[:, bars].sum(axis=1)
    at_bar = np.isin(rec.token, bars)
    last = rec.num_layers - 1
    band = band_around(bar_period(rec.tokens))
    peaks = sp.magnitude_spectra(rec.gate("h", last), "hann", sp.band_nfft(rec.n_steps), True).peak_periods()
    in_band = float(np.mean((peaks >= band[0]) & (peaks <= band[1]))) * 100
    bc = un.bar_correlations(rec).layer_summary()
    num("item 4: |r| of V's columns with v, max / mean", "about 0.8 / 0.4",
        f"{np.abs(corr).max():.2f} / {np.abs(corr).mean():.2f}", "another model")
    num("item 6: first / second singular value of V", "an order of magnitude",
        f"{reading.ratio_raw:.2f} raw; {reading.ratio_centred:.2f} with the common mode removed",
        f"our first left singular vector has |cos| {reading.cos_ones:.3f} with all-ones: a shift of every logit, "
        "which softmax ignores; only the centred ratio says how much one direction moves the distribution")
    push = sm.projections(rec.gate("h", rec.num_layers - 1), reading, 1, centred=True)[:, 0].mean()
    num("item 6: tokens of the first direction (largest loadings)", "raises `|:` and `</s>`",
        f"raw: {_tokens(reading, toks, 'raw', 0)}; centred: {_tokens(reading, toks, 'centred', 0)}; over our "
        f"tune h's centred coefficient averages {push:+.1f}", "what our model shows: with a negative coefficient "
        "the direction lowers the tokens of positive loading")  # fmt: skip
    num("item 7: second / third directions", "meter and mode tokens / a broken rhythm token",
        f"{_tokens(reading, toks, 'centred', 1)} / {_tokens(reading, toks, 'centred', 2)} (centred)", "our model")
    num("item 8: forget-gate column norms, meter and mode vs other tokens", "very small for meter and mode",
        f"meter {f_norm.get('meter', float('nan')):.3f}, mode {f_norm.get('mode', float('nan')):.3f}, "
        f"other classes {others:.3f} (means)", "another model")
    num("item 10: |cos| between layer 0's W_x and W_h columns", "quite small",
        ", ".join(f"{g} {v['mean_abs_cos']:.3f}" for g, v in align.items())
        + f" (random directions {align['i']['random_mean_abs_cos']:.3f})", "ours beside the chance level")
    num("item 11: probability mass on bar tokens, at bar steps / elsewhere", "spikes at bar steps",
        f"{mass[at_bar].mean():.3f} / {mass[~at_bar].mean():.3f}" if at_bar.any() and (~at_bar).any()
        else "the tune has no bar step", "a measured contrast of one tune")  # fmt: skip
    num("item 12: last-layer units whose peak period is in the bar band", "a periodicity of about 9 steps",
        f"{in_band:.1f} % (band {band[0]:g}-{band[1]:g})", "the band is our tune's measured bar period")
    for f, post in ((0.2, "bars still right"), (0.27, "losing its counting"), (0.33, "can no longer count; "
                                                                                   "33 % random still counts")):
        num(f"item 13: {f * 100:g} % of the last layer snipped by band power", post, comparison_text(res, f),
            "the post judged one tune per setting by eye")
    num("item 17: mean |r| of the top 10 units with bar input / output, layer 0 and last",
        "layer 1 reacts to input bars, layer 3 causes output bars",
        f"layer 0: {bc[0]['mean_abs_r_in_top10']:.2f} / {bc[0]['mean_abs_r_out_top10']:.2f}; layer {last}: "
        f"{bc[last]['mean_abs_r_in_top10']:.2f} / {bc[last]['mean_abs_r_out_top10']:.2f}",
        "a correlation, not a cause; see the traces")  # fmt: skip
    num("idea 5: bars suppressed for 32 steps", "(not tried)", bars_text(no_bars), "tried here")
    num("idea 5: `</s>` suppressed", "will it count for 16 measures only? (not tried)",
        f"{bars_text(no_end)} over {len(no_end)} tokens", "tried here")


def part9(r: Runner, meta: dict[str, Any]) -> Page:
    pg = Page("part9")
    seed, _ = r.pick_seed(PRIME_44, 107)
    rec = r.record("tune", seed, PRIME_44)
    pg.intro = [
        f"Gramians over one tune (seed {seed}, prime `M:4/4 K:Cmaj`, {rec.n_steps} steps; the post's had 107, "
        "which gives its 5,671 pairs). Layers are 0-based: the post's first layer is our layer 0."
    ]
    pg.code.append((f"The tune ({bars_text(rec.tokens)})", " ".join(rec.tokens)))
    r.run("gramians", rec)
    L = rec.num_layers
    fig = pg.figure
    fig("The one-hot Gramian XᵀX, lines at bar tokens: diagonals are repetitions", ["gramian_onehot.png"],
        "Another tune.")
    fig("L1 distances between the softmax outputs (sanguine ≤ 0.02, powder blue ≥ 1.98)",
        ["gramian_softmax_l1.png"], "Same colours; another tune.")
    fig("|Gramian| of the third layer's hidden states, then the second's and the first's",
        [f"gramian_layer{k}_h.png" for k in reversed(range(L))], "Same colours (|cos| ≥ 0.99 sanguine).")
    fig("An animation comparing each layer's Gramian with XᵀX: 'the second layer resembles it most'",
        ["gramian_similarity.png"], "Measured instead of seen: Pearson r with XᵀX, unshifted and shifted one step.")
    fig("Out-gate, cell-gate (tanh), cell state without tanh, in-gate and forget-gate Gramians per layer",
        [f"gramians_layer{k}.png" for k in range(L)], "All gates of a layer in one figure, with colour bars.")
    fig("Inner products between the first layer's gates (out gate on the vertical axis): no structure",
        [f"gates_layer{k}.png" for k in range(L)], "Every layer, signed colour scale.")
    _part9_numbers(pg, rec)
    return pg


def _part9_numbers(pg: Page, rec: Recording) -> None:
    d = gr.l1_distances(rec.probs)
    s = gr.l1_summary(d)
    bars = gr.bar_steps(rec.tokens)
    iu = np.triu_indices(len(bars), k=1)
    bar_d = d[np.ix_(bars, bars)][iu] if len(bars) > 1 else np.zeros(0)
    g_in = gr.same_token(np.array(rec.input_tokens))
    r_h = {k: gr.offdiag_correlation(gr.magnitude_gramian(rec.gate("h", k)), g_in) for k in range(rec.num_layers)}
    best = max(r_h, key=lambda k: r_h[k])
    f_mean = [float(rec.gate("f", k).mean()) for k in range(rec.num_layers)]
    cross = [gr.offdiag_correlation(np.abs(m), g_in) for m in gr.gate_cross_products(rec.gates, 0).values()]
    num = pg.number
    num("unique pairs of different steps; L1 distance above 1.98", "5,671; 2,642 (46.6 %)",
        f"{s.pairs:,}; {s.above_far:,} ({100 * s.above_far / max(s.pairs, 1):.1f} %)", "a tune of another length "
        "from another model")  # fmt: skip
    num("L1 distance between distributions at bar-generating steps (mean)", "close to identical",
        f"{bar_d.mean():.3f} over {bar_d.size} pairs (all pairs: {d[np.triu_indices(len(d), 1)].mean():.3f})"
        if bar_d.size else "fewer than two bar steps", "measured instead of seen")
    num("layer whose h Gramian resembles XᵀX most", "the second (our layer 1)",
        f"layer {best} (r = {r_h[best]:.3f}; " + ", ".join(f"layer {k} {v:.3f}" for k, v in r_h.items()) + ")",
        "Pearson r with XᵀX over the pairs of steps; the post compared by eye")
    num("forget-gate activations", "nearly saturated across the tune",
        " / ".join(f"mean f {v:.2f}" for v in f_mean), "the layer means of f in [0, 1]")
    num("layer 0's cross-gate products against XᵀX", "none of the structures above",
        f"mean r {np.mean(cross):.3f} (h Gramian: {r_h[0]:.3f})", "measured instead of seen")


BUILDERS: dict[str, Callable[[Runner, dict[str, Any]], Page]] = {"part8": part8, "part9": part9}
