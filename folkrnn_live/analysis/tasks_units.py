"""Analyses added for issue 15: single units against the bars (seed 003), how one softmax input
moves a token's probability and the last layer's state on the output matrix's singular directions
(seed 000 items 5-7)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from folkrnn_live.analysis import plots_units
from folkrnn_live.analysis import softmax as sm
from folkrnn_live.analysis import units as un
from folkrnn_live.analysis.sections import Section, need_steps, write_csv, write_json
from folkrnn_live.model.network import FolkRNN
from folkrnn_live.recording.recording import Recording

P0 = (0.001, 0.01, 0.1, 0.5, 0.9)
PROJ_HEAD = ["direction", "singular value", "largest loadings", "mean", "std over the tune", "r, bar output"]


def default_units(bc: un.BarCorrelations) -> list[tuple[int, int]]:
    """Per layer, the unit most correlated with bar input and the one most with bar output."""
    picked: list[tuple[int, int]] = []
    for k in range(bc.r_in.shape[0]):
        for by in ("in", "out"):
            u = bc.ranking(k, by, 1)[0][0]
            if (k, u) not in picked:
                picked.append((k, u))
    return picked


def traces_task(rec: Recording, out: Path, units: list[tuple[int, int]] | None = None, top: int = 10) -> Section:
    """Every unit's correlation with bar input and bar output, ranked per layer, and the traces of
    chosen units (default: each layer's most bar-correlated units) with the bar steps marked."""
    need_steps(rec, 3)
    out.mkdir(parents=True, exist_ok=True)
    bc = un.bar_correlations(rec)
    rows = [
        [k, u, f"{bc.r_in[k, u]:.4f}", f"{bc.r_out[k, u]:.4f}"]
        for k in range(rec.num_layers)
        for u in range(rec.hidden_size)
    ]
    f1 = write_csv(out / "bar_correlations.csv", ["layer", "unit", "r_bar_in", "r_bar_out"], rows)
    summary = bc.layer_summary(top)
    ranking = {
        f"layer{k}": {by: bc.ranking(k, by, top) for by in ("in", "out")} for k in range(rec.num_layers)
    }
    f2 = write_json(out / "bar_correlations.json", {"summary": summary, "ranking": ranking})
    bad = [f"{k}:{u}" for k, u in units or () if not (0 <= k < rec.num_layers and 0 <= u < rec.hidden_size)]
    if bad:
        raise ValueError(
            f"--units: layer must be in range 0..{rec.num_layers - 1} and unit in range 0..{rec.hidden_size - 1}; "
            f"got {', '.join(bad)}"
        )
    chosen = units or default_units(bc)
    traces = {f"layer {k} unit {u}": rec.gate("h", k)[:, u] for k, u in chosen}
    img = plots_units.unit_traces(
        traces, rec.tokens, bc.bars_out, out / "unit_traces.png", "Single units against the bar tokens"
    )
    head = ["layer", "max |r| bar in", "max |r| bar out", f"mean |r| in, top {top}", f"mean |r| out, top {top}",
            "units with |r_in| > |r_out|"]  # fmt: skip
    table = [
        [str(s["layer"]), f"{s['max_abs_r_in']:.3f}", f"{s['max_abs_r_out']:.3f}",
         f"{s[f'mean_abs_r_in_top{top}']:.3f}", f"{s[f'mean_abs_r_out_top{top}']:.3f}",
         f"{s['units_in_above_out']} of {rec.hidden_size}"]
        for s in summary
    ]  # fmt: skip
    best = [
        [str(k), ", ".join(f"{u} ({ri:+.2f})" for u, ri, _ in ranking[f"layer{k}"]["in"][:5]),
         ", ".join(f"{u} ({ro:+.2f})" for u, _, ro in ranking[f"layer{k}"]["out"][:5])]
        for k in range(rec.num_layers)
    ]  # fmt: skip
    return Section(
        "traces",
        "Single units against the bars",
        [
            "Seed 003's last figure: each unit's `h` over the tune, dashed lines where a bar token is "
            "generated (it is input at the next step). For every unit, r_in is the Pearson correlation of its "
            "`h` with 'this step inputs a bar token' and r_out with 'this step generates one'. The post reads "
            "layer 0 as reacting to bars coming in and the last layer as causing them: then layer 0's strongest "
            "units go with r_in and the last layer's with r_out. Units are 0-based and model-specific: the "
            "post's units (layer 1 unit 247, layer 3 unit 156) are the v2 model's, not ours."
        ],
        tables=[(head, table), (["layer", "top units by |r_in|", "top units by |r_out|"], best)],
        images=[(img.name, "traces of " + ", ".join(traces))],
        files=[f1, f2],
    )


def softmax_task(rec: Recording | None, model: FolkRNN, out: Path) -> Section:
    """The Δsoftmax relation as a figure and numbers; on a recorded tune, which last-layer units
    move the bar tokens' probability most at the bar steps, and the linear estimate checked."""
    out.mkdir(parents=True, exist_ok=True)
    deltas = np.linspace(-10, 10, 401)
    curves = {p: sm.moved_probability(p, deltas) for p in P0}
    img = plots_units.delta_softmax(deltas, curves, out / "delta_softmax.png")
    pairs = [(0.01, 0.1), (0.01, 0.5), (0.1, 0.5), (0.5, 0.9), (0.9, 0.99), (0.5, 0.01)]
    rows = [[f"{a:g}", f"{b:g}", f"{sm.delta_for(a, b):+.3f}"] for a, b in pairs]
    data: dict[str, object] = {"delta_needed": [{"from": a, "to": b, "delta": sm.delta_for(a, b)} for a, b in pairs]}
    text = [
        "Seed 000 item 5: adding Δ to token t's logit moves its probability from p to p e^Δ / (1 − p + p e^Δ). "
        "A change δ of unit u of the last layer's h adds δ·V[t, u] to every token t's logit, so "
        "∂p_t/∂h_u = p_t (V[t, u] − Σ_s p_s V[s, u]). The table gives the logit change that moves a token "
        "between two probabilities."
    ]
    tables = [(["from p", "to p'", "Δ logit needed"], rows)]
    if rec is not None and rec.n_steps >= 2:
        v = model.out.weight.detach().cpu().double().numpy()
        bars = rec.vocab.select("@bar")
        steps = [t for t, tok in enumerate(rec.tokens) if int(rec.vocab.index[tok]) in bars] or list(range(rec.n_steps))
        sens = np.mean([sm.jacobian(sm.softmax(rec.logits[t]), v)[bars].sum(axis=0) for t in steps], axis=0)
        order = np.argsort(-np.abs(sens), kind="stable")[:10]
        t0, u0 = steps[0], int(order[0])
        tok0 = int(rec.token[t0])
        checks = [(d, *sm.linear_check(rec.logits[t0].astype(np.float64), v, u0, d, tok0)) for d in (0.01, 0.1, 0.5)]
        data["bar_sensitivity"] = {"steps": steps, "top_units": [[int(u), float(sens[u])] for u in order]}
        data["linear_check"] = [{"delta": d, "exact": e, "linear": lin} for d, e, lin in checks]
        text.append(
            f"On this tune, averaged over its {len(steps)} bar steps, the last-layer units whose change moves "
            f"the total probability of bar tokens most are {', '.join(f'{u} ({sens[u]:+.3f})' for u in order[:5])} "
            f"(∂p_bar/∂h_u). At step {t0} (token `{rec.tokens[t0]}`), changing unit {u0} by δ moves that token's "
            "probability as the table shows: exactly (softmax recomputed) and by the first-order estimate."
        )
        tables.append(
            (["δ", "exact Δp", "first-order Δp"], [[f"{d:g}", f"{e:+.5f}", f"{lin:+.5f}"] for d, e, lin in checks])
        )
    f1 = write_json(out / "delta_softmax.json", data)
    return Section("softmax", "How one softmax input moves a token's probability", text, tables=tables,
                   images=[(img.name, "p' against Δ for several starting probabilities")], files=[f1])  # fmt: skip


def projections_task(rec: Recording, model: FolkRNN, out: Path, k: int = 4) -> Section:
    """The last layer's h over the tune on the output matrix's first singular directions (common
    mode removed), each direction's correlation with bar output."""
    need_steps(rec, 3)
    out.mkdir(parents=True, exist_ok=True)
    reading = sm.svd_reading(model)
    h = rec.gate("h", rec.num_layers - 1)
    coeffs = sm.projections(h, reading, k, centred=True)
    toks = list(model.config.tokens)
    labels = [
        f"dir {j}: " + " ".join(t for t, _ in reading.top_tokens(toks, "centred", j, 3)) for j in range(coeffs.shape[1])
    ]
    bars_out = un.bar_steps_out(rec)
    ind = un.indicator(rec.n_steps, bars_out)
    r = un.correlations(coeffs, ind)
    img = plots_units.projections(
        coeffs, labels, rec.tokens, bars_out, out / "projections.png",
        "Last layer's h on the output matrix's singular directions (common mode removed): s_k w_kᵀ h_t",
    )  # fmt: skip
    f1 = write_csv(
        out / "projections.csv", ["step", "token", *[f"dir{j}" for j in range(coeffs.shape[1])]],
        [[t, rec.tokens[t], *[f"{c:.5f}" for c in coeffs[t]]] for t in range(rec.n_steps)],
    )  # fmt: skip
    loads = [", ".join(f"{t} ({v:+.2f})" for t, v in reading.top_tokens(toks, "centred", j, 5)) for j in range(len(r))]
    rows = [
        [str(j), f"{reading.centred[j]:.3f}", loads[j], f"{float(np.mean(coeffs[:, j])):+.2f}",
         f"{float(np.std(coeffs[:, j])):.3f}", f"{r[j]:+.3f}"]
        for j in range(len(r))
    ]  # fmt: skip
    return Section(
        "projections",
        "The last layer's state on the output matrix's singular directions",
        [
            "Seed 000 item 7 asks whether the model uses the output matrix's singular directions. With V "
            "[vocab × hidden] = U S Wᵀ after removing the common mode (the part of V that shifts every logit "
            "alike, which softmax ignores), s_k w_kᵀ h_t is what direction k adds to the logits along its token "
            "loadings u_k at step t. The table lists each direction's largest loadings (signed: with a "
            "negative contribution the direction lowers the tokens of positive loading), its mean "
            "contribution, how much it varies over the tune (standard deviation) and its correlation with 'this step "
            "generates a bar token'."
        ],
        tables=[(PROJ_HEAD, rows)],
        images=[(img.name, "contribution of each singular direction over the tune; red: bar tokens generated")],
        files=[f1],
    )
