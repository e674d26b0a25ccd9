"""The pages of parts 1 and 7 (and the table of every page's builder); parts 8 and 9 are in
:mod:`.reproduce_summary`.  Each builder records what its post analysed, runs the analyses and
fills a :class:`~.reproduce.Page`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from folkrnn_live.analysis import spectra as sp
from folkrnn_live.analysis import units as un
from folkrnn_live.analysis import windows as wi
from folkrnn_live.analysis.ablation import AblationResult, run_ablation
from folkrnn_live.analysis.bar_period import band_around, bar_period
from folkrnn_live.analysis.reproduce import Page, Runner
from folkrnn_live.analysis.tasks_model import ablation_task
from folkrnn_live.recording.recording import Recording
from folkrnn_live.tokens import V2

PRIME_44 = ("M:4/4", "K:Cmaj")


def bars_text(tokens: list[str]) -> str:
    from folkrnn_live.abc.bars import check_bars

    r = check_bars(tokens)
    return f"{r.n_ok} of {r.n_bars} bars right" if r.meter else f"{r.n_bars} bars, no meter"


def ablation(r: Runner, rec: Recording, layer: int, fractions: tuple[float, ...], prime: tuple[str, ...],
             seed: int) -> AblationResult:  # fmt: skip
    """The posts' snipping experiment, with the seeds the page uses (the page's own seed among them)."""
    r.say(f"ablation, layer {layer}")
    seeds = tuple(sorted({*r.settings.seeds, seed}))
    res = run_ablation(r.model, layer, fractions, seeds, band=band_around(bar_period(rec.tokens)), prime=prime,
                       max_tokens=r.settings.max_tokens, random_sets=1)  # fmt: skip
    r.sections[f"ablation{layer}"] = ablation_task(res, r.data)
    return res


def comparison_text(res: AblationResult, fraction: float) -> str:
    c = next(c for c in res.comparisons() if c.fraction == fraction)
    return (f"band-ranked: {c.band.text()} right bars, random: {c.random.text()}, difference "
            f"{c.difference.text(unit=' pts')}, p = {c.p_value:.3g} ({len(res.seeds)} seeds, paired)")  # fmt: skip


def spectrum_peaks(rec: Recording, layer: int, count: int = 8) -> list[float]:
    """Periods of the ``count`` largest local maxima of one layer's mean normalised Hann spectrum
    (means removed, DC left out), in increasing period."""
    m = sp.mean_normalised_spectrum(sp.magnitude_spectra(rec.gate("h", layer), "hann", None, True))
    v = m.mean[1:]
    peaks = [k for k in range(1, len(v) - 1) if v[k] >= v[k - 1] and v[k] >= v[k + 1]]
    top = sorted(peaks, key=lambda k: -v[k])[:count]
    return sorted(float(m.periods[k + 1]) for k in top)


def _round(x: object) -> str:
    return f"{x:.4f}" if isinstance(x, float) else "?"


def part1(r: Runner, meta: dict[str, Any]) -> Page:
    pg = Page("part1")
    cfg = r.model.config
    V, H, L = cfg.vocab_size, cfg.hidden_size, cfg.num_layers
    v2_count = 4 * V * H + (L - 1) * 4 * H * H + L * 4 * H * H + L * 4 * H + V * H + V
    numel = sum(int(p.numel()) for p in r.model.parameters())
    same = sum(a == b for a, b in zip(cfg.tokens, V2.tokens, strict=False))
    prov = meta.get("provenance", {}) if isinstance(meta.get("provenance"), dict) else {}
    seed, toks = r.pick_seed(PRIME_44, 150)
    pg.intro = [
        "Part 1 describes the network: three LSTM layers and a softmax output layer over a 137-token "
        "vocabulary, the LSTM equations and the training. We read the same facts off the loaded model."
    ]
    pg.code.append((f"A tune of ours (seed {seed}, prime `M:4/4 K:Cmaj`; {bars_text(toks)})", " ".join(toks)))
    pg.figure("The three tunes of Úna Monaghan's \"Safe Houses\" and X:488 \"The Mainframe March\" (scores)", [],
              "Tunes of the original model's 30,000 transcriptions; ours is printed above as tokens.")  # fmt: skip
    pg.figure("Mean negative log loss on the training and validation sets over 100 epochs", [],
              "The checkpoint keeps no per-epoch losses; the shipped model's curves are docs/loss.png, written by "
              "its training run (the numbers below give its last epoch).")  # fmt: skip
    pg.number("LSTM layers × units", "3 × 512", f"{L} × {H}", "same architecture" if (L, H) == (3, 512) else
              "a different model size was loaded")  # fmt: skip
    pg.number("vocabulary", "137 tokens", f"{V} tokens, {same} at the post's index",
              "the same list in the same order" if same == 137 else "a different vocabulary or order")
    pg.number("index of `M:4/4`", "104 (\"the 105th dimension\")", str(cfg.vocab.index.get("M:4/4", "none")),
              "same index order" if cfg.vocab.index.get("M:4/4") == 104 else "another index order")  # fmt: skip
    extra = numel - v2_count
    pg.number("parameters", "5,599,881", f"{v2_count:,} counted as the post does; {numel:,} stored",
              f"PyTorch keeps two bias vectors per gate (b_ih + b_hh: {L} × 4 × {H} = {L * 4 * H:,} more), whose "
              "sum is the post's one bias" + ("" if extra == L * 4 * H else f"; {extra - L * 4 * H:,} other values"))
    pg.number("training", "~23,000 transcriptions, 100 epochs (35,000 iterations)",
              f"{prov.get('train_tunes', '?')} tunes, epoch {prov.get('epoch', '?')} of "
              f"{(prov.get('recipe') or {}).get('epochs', '?')}, validation loss {_round(prov.get('valid_loss'))}",
              "our model was trained on music21's collections on a CPU, stopped early (see docs/model-card.md)")
    return pg


def part7(r: Runner, meta: dict[str, Any]) -> Page:
    pg = Page("part7")
    seed, _ = r.pick_seed(PRIME_44, 147)
    rec = r.record("tune", seed, PRIME_44)
    stim = r.record("stimulated", seed, PRIME_44, stimulate=0.3)
    period = bar_period(rec.tokens)
    pg.intro = [
        f"One tune (seed {seed}, prime `M:4/4 K:Cmaj`, {rec.n_steps} steps; the post's had 147) recorded with "
        f"every activation, and the same seed with seed 003's two-hot input (0.7 generated token + 0.3 random "
        f"pitch token). Its measured bar period is {period if period is None else round(period, 2)} steps; "
        "the band analyses use that ± 0.3 steps. Layers are 0-based: the post's layer 1 is our layer 0."
    ]
    pg.code += [(f"The tune ({bars_text(rec.tokens)})", " ".join(rec.tokens)),
                (f"Stimulated, 0.7/0.3 ({bars_text(stim.tokens)})", " ".join(stim.tokens))]  # fmt: skip
    for name in ("heatmaps", "distributions", "posterior", "traces"):
        r.run(name, rec)
    r.run("spectra", rec, key="hann")
    r.run("spectra", rec, key="hann_keep", remove_mean=False)
    r.run("spectra", rec, key="rect", window="rect")
    r.run("windows", None, length=147)
    sel = r.run("select", rec, key="select0", layer=0, min_fraction=0.00025)
    res = ablation(r, rec, 0, (0.0, 0.33), PRIME_44, seed)
    _part7_figures(pg, seed, res, rec.num_layers)
    _part7_numbers(pg, r, rec, res, sel.text[0])
    return pg


def _part7_figures(pg: Page, seed: int, res: AblationResult, layers: int) -> None:
    snipped = next(t for p in res.points if p.kind == "band" for t in p.tunes if t.seed == seed)
    pg.code.append((f"Seed {seed} with the top 33 % of layer 0 by band power snipped "
                    f"({snipped.bars_ok} of {snipped.bars} bars right)", " ".join(snipped.tokens)))  # fmt: skip
    why_unit = "our model's units are not v2's: the same roles fall on other unit numbers"
    fig = pg.figure
    fig("\"Experimental lobotomy ... (2)\": a piece from the two-hot stimulation", [],
        "The post's is a score and a recording; ours is the stimulated tune printed above, same settings.")
    fig("Layer 1 hidden states, time bottom to top (tune_ht_Layer1.png)", ["heatmap_h_layer0.png"],
        "Ours runs left to right with the input tokens on the axis; different weights give different units.")
    fig("Layer 2 hidden states (tune_ht_Layer2.png): a more active scene than layer 1", ["heatmap_h_layer1.png"],
        why_unit)
    fig("Distributions of activation values of the three layers: sparse, larger magnitudes deeper",
        ["histogram_h.png", "max_magnitude_h.png"], "Same analysis; the shares per layer are in the table below.")
    fig("Magnitude spectra of layer 1's units: fewer periodicities than layer 3, some at 9 and 2.5 steps",
        ["spectra_hann_layer0.png"], "Sorted by peak period here; the post's order is not given.")
    last = layers - 1
    fig("Layer 3's spectra (tune_ht_Layer3_dft.png) and layer 2's (tune_ht_Layer2_dft.png)",
        [f"spectra_hann_layer{last}.png", f"spectra_hann_layer{min(1, last)}.png"], why_unit)
    fig("Mean normalised spectra per layer (Hann, ± 1 SEM): most power at DC, peaks at 36, 18, 9, 4.5, 3, 2.25",
        ["mean_spectra_hann_keepmean.png", "mean_spectra_hann.png"],
        "The first keeps the means as the post did (DC dominates); the second removes them, DC left out.")
    fig("Magnitude responses of Hann and rectangular windows of length 147", ["windows.png"],
        "Computed from the windows' DTFT rather than read off a plot; numbers below.")
    fig("Rectangular-window spectra: peaks at 60-67 and about 100 steps", ["mean_spectra_rect.png"],
        "Our tune has its own repeats; a peak at a sidelobe position may be leakage (see docs/analysis.md).")
    fig("The posterior during the tune: `(3`, `2`, `/2` switching with a period of about 2",
        ["posterior.png"], "A different tune from a different model.")
    fig("Layer 1 unit 247, layer 2 unit 97, layer 3 unit 156 against the bar tokens", ["unit_traces.png"],
        "We plot each layer's most bar-correlated units (ranked in bar_correlations.csv); " + why_unit + ".")
    fig("The transcription with 33 % of layer 1's periodic units snipped: every measure but one right",
        ["ablation_layer0.png"], "Ours over several seeds, with random units beside and confidence intervals.")


def _part7_numbers(pg: Page, r: Runner, rec: Recording, res: AblationResult, select_text: str) -> None:
    hann, rect = wi.window_properties("hann", 147), wi.window_properties("rect", 147)
    row88, dc = wi.support_table((8.8, float("inf")), 147)
    bc = un.bar_correlations(rec)
    best_in, best_out = bc.ranking(0, "in", 1)[0], bc.ranking(rec.num_layers - 1, "out", 1)[0]
    sat = [float((np.abs(rec.gate("h", k)) > 0.9).mean()) * 100 for k in range(rec.num_layers)]
    num = pg.number
    num("Hann main lobe width (2 × the −6 dB frequency)", "about 0.014 cycles/step",
        f"{hann.width_6db_bins / 147:.4f}", "the post read it off a plot")
    num("rectangular main lobe width", "0.008", f"{rect.width_6db_bins / 147:.4f}", "read off a plot")
    num("first sidelobe below the main lobe: Hann / rect", "more than 30 dB / just 12 dB",
        f"{-hann.first_sidelobe_db:.2f} dB / {-rect.first_sidelobe_db:.2f} dB", "rounded in the post")
    num("Hann support at period 8.8", "[8.3, 9.4]", f"[{row88.support['hann'][0]:.2f}, {row88.support['hann'][1]:.2f}]",
        "the post's width was rounded (docs/analysis.md)")  # fmt: skip
    num("Hann first sidelobes at 8.8; at DC", "7.7, 10.2; 63",
        f"{row88.sidelobes['hann'][0]:.2f}, {row88.sidelobes['hann'][1]:.2f}; {dc.sidelobes['hann'][0]:.1f}",
        "the same up to rounding")
    num("peaks of the mean spectrum (periods)", "2.25, 3, 4.5, 6, 8.8, 11.5, 18, 36",
        ", ".join(f"{p:.2f}" for p in spectrum_peaks(rec, rec.num_layers - 1)) + " (last layer)",
        "ours: the 8 largest local maxima of the last layer's Hann mean spectrum, means removed; another tune "
        "of another model")
    num("units above 0.025 % of their power in the band, layer 0", "33 % of them were snipped",
        select_text.split(" (")[0], "0.025 % selects nearly every unit: the post's 33 % is a ranking, so the "
            "ablation snips the top 33 % by band share")  # fmt: skip
    num("33 % of layer 0 snipped by band power", "every measure but one right (one tune)",
        comparison_text(res, 0.33), "ours pools several seeds and tests against random units")
    num("strongest bar-input unit, layer 0; bar-output unit, last layer", "unit 247 spikes at bar input; "
        "unit 156 at bar output", f"unit {best_in[0]}: r_in {best_in[1]:+.2f} (r_out {best_in[2]:+.2f}); unit "
        f"{best_out[0]}: r_out {best_out[2]:+.2f} (r_in {best_out[1]:+.2f})", "units are model-specific; r is "
        "a correlation over the tune, the post judged spikes by eye")  # fmt: skip
    num("share of |h| > 0.9 per layer", "grows with depth (\"more saturated\")",
        " / ".join(f"{s:.1f} %" for s in sat), "same reading if it grows from layer 0 to the last")


BUILDERS: dict[str, Callable[[Runner, dict[str, Any]], Page]] = {"part1": part1, "part7": part7}
