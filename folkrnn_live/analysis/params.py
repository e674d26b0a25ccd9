"""Analyses of a model's parameters (seed 000 items 3-10): the output layer's SVD and its token
loadings, the first layer's input matrices in vocabulary terms, output columns against the output
bias, and how the input and recurrent matrices of a layer share directions.

Orientation: as in the network, out.weight is V [vocab, hidden] (logits = V h + v); a layer's input
matrix for one gate is W_x [hidden, in], so for the first layer its column for token t is the
vector that token adds to the gate's pre-activation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from folkrnn_live.model.network import FolkRNN
from folkrnn_live.tokens.vocab import CLASS_NAMES, Vocabulary

#: Gate blocks of a layer's [4H, in] matrices, in v2 / nn.LSTM order; "g" is the cell gate.
GATE_BLOCKS = ("i", "f", "g", "o")


def gate_block(w: np.ndarray, gate: str, hidden: int) -> np.ndarray:
    """The [H, in] block of a [4H, in] matrix (or [H] of a [4H] bias) for one gate."""
    if gate not in GATE_BLOCKS:
        raise ValueError(f"gate must be one of {', '.join(GATE_BLOCKS)}; got {gate!r}")
    k = GATE_BLOCKS.index(gate)
    return w[k * hidden : (k + 1) * hidden]


def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def vocab_order(vocab: Vocabulary) -> list[int]:
    """Token indices grouped by class (pitches low to high, then durations, ...), for axes that a
    reader can follow; the model's own index order is arbitrary."""

    def key(i: int) -> tuple[Any, ...]:
        info = vocab.info[i]
        sub = info.midi if info.midi is not None else float(info.duration) if info.duration is not None else 0
        return (CLASS_NAMES.index(info.cls), sub, info.text)

    return sorted(range(len(vocab)), key=key)


@dataclass(frozen=True)
class OutputSVD:
    singular_values: np.ndarray  # [K], largest first
    loadings: np.ndarray  # U [V, K]: column k = the token loadings of singular direction k
    top: list[list[tuple[str, float]]]  # per direction: the tokens with the largest |loading|

    def to_json(self, k: int = 10) -> dict[str, Any]:
        s = self.singular_values
        return {
            "singular_values": [float(x) for x in s],
            "ratio_first_second": float(s[0] / s[1]) if len(s) > 1 and s[1] > 0 else None,
            "top_tokens": [[{"token": t, "loading": round(v, 5)} for t, v in row] for row in self.top[:k]],
        }


def output_svd(model: FolkRNN, directions: int = 5, top: int = 8) -> OutputSVD:
    """Singular values of the output matrix and, for the first ``directions`` left singular vectors,
    the ``top`` tokens by loading magnitude (seed 000 items 6-7: one dominant direction raising
    ``|:`` and ``</s>``).  Signs follow ``model.output_svd()``: each vector's largest entry > 0."""
    u, s, _ = model.output_svd()
    vocab = model.config.vocab
    rows = []
    for k in range(min(directions, u.shape[1])):
        col = u[:, k]
        idx = np.argsort(-np.abs(col), kind="stable")[:top]
        rows.append([(vocab.tokens[i], float(col[i])) for i in idx])
    return OutputSVD(s, u, rows)


def input_column_norms(model: FolkRNN) -> dict[str, np.ndarray]:
    """Per gate of the first layer, the norm of each token's column of W_x (how strongly the token
    drives that gate; seed 000 item 8: small for meter and mode tokens in the forget gate)."""
    w = _np(model.weight_ih(0))
    H = model.config.hidden_size
    return {g: np.linalg.norm(gate_block(w, g, H), axis=0) for g in GATE_BLOCKS}


def input_gramians(model: FolkRNN) -> dict[str, np.ndarray]:
    """Per gate of the first layer, W_xᵀ W_x [V, V]: inner products between tokens' columns
    (seed 000 item 9: enharmonic structure in the cell and out gates)."""
    w = _np(model.weight_ih(0))
    H = model.config.hidden_size
    out = {}
    for g in GATE_BLOCKS:
        b = gate_block(w, g, H)
        out[g] = b.T @ b
    return out


def output_bias_correlation(model: FolkRNN) -> np.ndarray:
    """Pearson correlation of each column of V (one per hidden unit of the last layer, a vector over
    the vocabulary) with the output bias v [H] (seed 000 item 4: |r| at most ~0.8, mean ~0.4)."""
    w = _np(model.out.weight)  # [V, H]
    b = _np(model.out.bias)  # [V]
    wc = w - w.mean(axis=0, keepdims=True)
    bc = b - b.mean()
    den = np.linalg.norm(wc, axis=0) * np.linalg.norm(bc)
    return np.divide(wc.T @ bc, den, out=np.zeros(w.shape[1]), where=den > 0)


def input_recurrent_alignment(model: FolkRNN, layer: int = 0) -> dict[str, dict[str, float]]:
    """Per gate, |cos| between the columns of W_x and those of W_h of one layer (seed 000 item 10:
    small, i.e. input and recurrence use different subspaces), beside what random directions give:
    E|cos| = sqrt(2 / (π H)) for independent directions in R^H."""
    L, H = model.config.num_layers, model.config.hidden_size
    if not 0 <= layer < L:
        raise ValueError(f"layer must be in range 0..{L - 1} (0 is the first LSTM layer); got {layer}")
    wx, wh = _np(model.weight_ih(layer)), _np(model.weight_hh(layer))
    out = {}
    for g in GATE_BLOCKS:
        a, b = gate_block(wx, g, H), gate_block(wh, g, H)
        an = a / np.maximum(np.linalg.norm(a, axis=0, keepdims=True), 1e-300)
        bn = b / np.maximum(np.linalg.norm(b, axis=0, keepdims=True), 1e-300)
        c = np.abs(an.T @ bn)
        out[g] = {
            "mean_abs_cos": float(c.mean()),
            "max_abs_cos": float(c.max()),
            "random_mean_abs_cos": float(np.sqrt(2.0 / (np.pi * H))),
        }
    return out


def parameter_summary(model: FolkRNN, directions: int = 5, top: int = 8) -> dict[str, Any]:
    """All the parameter numbers in one JSON-able dict."""
    vocab = model.config.vocab
    norms = input_column_norms(model)
    corr = output_bias_correlation(model)
    by_class: dict[str, dict[str, float]] = {}
    for g, n in norms.items():
        by_class[g] = {cls: float(n[vocab.mask(cls)].mean()) for cls in CLASS_NAMES if vocab.mask(cls).any()}
    return {
        "output_svd": output_svd(model, directions, top).to_json(directions),
        "input_column_norms": {
            g: {vocab.tokens[i]: float(v) for i, v in enumerate(n)} for g, n in norms.items()
        },
        "input_column_norms_mean_by_class": by_class,
        "output_bias_correlation": {
            "per_unit": [float(x) for x in corr],
            "max_abs": float(np.abs(corr).max()),
            "mean_abs": float(np.abs(corr).mean()),
        },
        "input_recurrent_alignment": {
            f"layer{k}": input_recurrent_alignment(model, k) for k in range(model.config.num_layers)
        },
    }
