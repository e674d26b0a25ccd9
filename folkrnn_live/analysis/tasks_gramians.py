"""Gramians over one tune (seed post 001): one-hot inputs, L1 distances between softmax outputs,
magnitude Gramians of every activation per layer, and inner products between different gates."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from folkrnn_live.analysis import gramians as gr
from folkrnn_live.analysis import plots, plots_units
from folkrnn_live.analysis.sections import Section, check_layers, write_csv, write_json, write_npz
from folkrnn_live.recording.recording import Recording

LABELS = {"tanh_c": "tanh(c)", "g_pre": "g before tanh", "g": "g = tanh(g_pre)"}


def gramians_task(rec: Recording, out: Path, layers: Sequence[int] | None = None, cross: bool = True) -> Section:
    """Every Gramian of seed 001 for the layers asked for (default all): figures, the matrices
    (``gramians.npz``), their summaries (``gramians.json``) and the input and softmax ones as CSV."""
    out.mkdir(parents=True, exist_ok=True)
    inputs, outputs = rec.input_tokens, rec.tokens
    in_bars, out_bars = gr.bar_steps(inputs), gr.bar_steps(outputs)
    sec = Section(
        "gramians",
        "Gramians over time",
        [
            "Seed 001. One-hot inputs XᵀX (1 where two steps input the same token; diagonals are "
            "repetitions); L1 distances between softmax outputs (sanguine: [0, 0.02], powder blue: "
            "[1.98, 2], gray between); magnitude Gramians |ÂÂᵀ| of unit-normalised activations per layer "
            "(sanguine: |cos| ≥ 0.99, the same direction; powder blue: |cos| ≤ 0.01, orthogonal), with and "
            "without tanh; and inner products between different gates of one layer (first-named gate on the "
            "vertical axis). Green lines mark bar tokens (input side; output side for the softmax)."
        ],
    )
    store: dict[str, np.ndarray] = {}
    g = gr.onehot_gramian(rec.x)
    store["onehot"] = g
    img = plots.gramian(g, out / "gramian_onehot.png", "One-hot inputs XᵀX", in_bars, inputs)
    sec.images.append((img.name, "one-hot inputs"))
    d = gr.l1_distances(rec.probs)
    store["softmax_l1"] = d
    summ = gr.l1_summary(d)
    img = plots.l1_map(d, out / "gramian_softmax_l1.png", "L1 distances between softmax outputs", out_bars, outputs)
    sec.images.append((img.name, "softmax L1 distances"))
    sec.text.append(
        f"Softmax outputs: of {summ.pairs} unique pairs of different steps, {summ.above_far} have an L1 "
        f"distance above 1.98 and {summ.near} at most 0.02 (seed 001: 2,642 of 5,671 above 1.98)."
    )
    summary: dict[str, Any] = {"softmax_l1": summ.to_json(), "layers": {}}
    rows = []
    compared: dict[str, np.ndarray] = {"softmax (1 - L1/2)": 1.0 - d / 2.0}
    for k in check_layers(rec, layers):
        lg = gr.layer_gramians(rec.gates, k)
        summary["layers"][f"layer{k}"] = {}
        for name, m in lg.items():
            store[f"layer{k}_{name}"] = m
            compared[f"layer {k} {LABELS.get(name, name)}"] = m
            off = m[~np.eye(len(m), dtype=bool)]
            mean_off = float(off.mean()) if off.size else float("nan")
            summary["layers"][f"layer{k}"][name] = {"mean_offdiag": mean_off}
            rows.append([str(k), LABELS.get(name, name), f"{mean_off:.4f}"])
        title = f"|Gramian| of unit-normalised h, layer {k}"
        img = plots.gramian(lg["h"], out / f"gramian_layer{k}_h.png", title, in_bars, inputs)
        sec.images.append((img.name, f"layer {k}: h"))
        img = plots.gramian_grid(
            {LABELS.get(n, n): m for n, m in lg.items()},
            out / f"gramians_layer{k}.png",
            f"Magnitude Gramians of unit-normalised activations, layer {k}",
            in_bars,
        )
        sec.images.append((img.name, f"layer {k}: h, c, tanh(c), gates i f o, g and g before tanh"))
        if cross:
            cp = gr.gate_cross_products(rec.gates, k)
            for pair, m in cp.items():
                store[f"layer{k}_cross_{pair}"] = m
                summary["layers"][f"layer{k}"][f"cross_{pair}_mean_abs"] = float(np.abs(m).mean())
            img = plots.gramian_grid(
                {f"{p.split('-')[0]} (vertical) vs {p.split('-')[1]}": m for p, m in cp.items()},
                out / f"gates_layer{k}.png",
                f"Inner products between gates of layer {k} (unit-normalised)",
                in_bars,
                signed=True,
            )
            sec.images.append((img.name, f"layer {k}: inner products between different gates"))
    sim = gr.onehot_similarity(compared, np.array(inputs), np.array(outputs))
    summary["onehot_similarity"] = sim
    _similarity(sec, sim, out)
    sec.files += [
        write_json(out / "gramians.json", summary),
        write_npz(out / "gramians.npz", store),
        write_csv(out / "gramian_onehot.csv", inputs, g.astype(int).tolist()),
        write_csv(out / "softmax_l1.csv", outputs, [[f"{v:.5f}" for v in r] for r in d]),
    ]
    sec.tables.append((["layer", "Gramian", "mean off-diagonal"], rows))
    return sec


def _similarity(sec: Section, sim: dict[str, dict[str, float]], out: Path) -> None:
    """Seed 001's comparison with XᵀX, measured: figure, table, CSV and one line of reading."""
    img = plots_units.gramian_similarity(
        sim, out / "gramian_similarity.png", "How much each Gramian resembles the one-hot Gramian (measured)"
    )
    sec.images.append((img.name, "Pearson r of each Gramian with XᵀX, unshifted and shifted by one step"))
    h_rows = {k: v for k, v in sim.items() if k.endswith(" h")}
    if h_rows:
        best_in = max(h_rows, key=lambda k: h_rows[k]["input token (XᵀX)"])
        best_out = max(h_rows, key=lambda k: h_rows[k]["generated token (shifted 1)"])
        sec.text.append(
            f"Measured against the one-hot Gramian (Pearson r over the pairs of different steps): the `h` Gramian "
            f"most like the input tokens' XᵀX is {best_in} (r = {h_rows[best_in]['input token (XᵀX)']:.3f}); "
            f"most like the generated tokens' (XᵀX shifted by one step) is {best_out} "
            f"(r = {h_rows[best_out]['generated token (shifted 1)']:.3f}). Seed 001 judged by eye that the "
            "second layer (our layer 1) resembles XᵀX most."
        )
    sec.tables.append(
        (["Gramian", "r with XᵀX (input token)", "r with XᵀX shifted 1 (generated token)"],
         [[n, f"{v['input token (XᵀX)']:.3f}", f"{v['generated token (shifted 1)']:.3f}"] for n, v in sim.items()])
    )  # fmt: skip
    sec.files.append(
        write_csv(out / "gramian_similarity.csv", ["gramian", "r_input_onehot", "r_generated_onehot"],
                  [[n, f"{v['input token (XᵀX)']:.5f}", f"{v['generated token (shifted 1)']:.5f}"]
                   for n, v in sim.items()])
    )  # fmt: skip
