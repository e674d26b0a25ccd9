"""Gramians over time (seed 001): how similar the network's vectors are between two steps.

For a sequence of vectors a_1..a_T (rows of ``a`` [T, D]) the Gramian is the T x T matrix of inner
products.  Activations are unit-normalised first and the magnitude taken, so 1 means "same
direction, ignoring polarity" and 0 "orthogonal".  Softmax outputs are compared by L1 distance,
which lies in [0, 2]: 2 means the two distributions put mass on disjoint sets of tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from folkrnn_live.tokens.vocab import classify

#: Seed 001's colour classes for L1 distances.
NEAR = (0.0, 0.02)
FAR = (1.98, 2.0)


def _as2d(a: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{what} must be a [steps, dims] array; got shape {a.shape}")
    return a


def gramian(a: np.ndarray) -> np.ndarray:
    """A Aᵀ for ``a`` [T, D]: inner products between the vectors of every two steps."""
    a = _as2d(a, "vectors")
    return a @ a.T


def onehot_gramian(x: np.ndarray) -> np.ndarray:
    """XᵀX of seed 001 (X = the one-hot inputs as columns): 1 where two steps input the same token."""
    return gramian(x)


def unit_normalise(a: np.ndarray) -> np.ndarray:
    """Each row divided by its Euclidean norm; an all-zero row stays zero (it has no direction)."""
    a = _as2d(a, "vectors")
    n = np.linalg.norm(a, axis=1, keepdims=True)
    return np.divide(a, n, out=np.zeros_like(a), where=n > 0)


def magnitude_gramian(a: np.ndarray) -> np.ndarray:
    """|Â Âᵀ| with Â the unit-normalised rows of ``a`` [T, D]: |cos| of the angle between steps."""
    u = unit_normalise(a)
    return np.abs(u @ u.T)


def cross_products(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Â B̂ᵀ: inner products of the unit-normalised activations of two gates of one layer, step by
    step (row t of ``a`` against every row of ``b``); seed 001's "between different gates"."""
    a, b = _as2d(a, "first gate"), _as2d(b, "second gate")
    if a.shape != b.shape:
        raise ValueError(f"the two gates must have the same shape; got {a.shape} and {b.shape}")
    return unit_normalise(a) @ unit_normalise(b).T


def l1_distances(p: np.ndarray) -> np.ndarray:
    """Pairwise L1 distances between the rows of ``p`` [T, V] (probability vectors): [T, T]."""
    p = _as2d(p, "distributions")
    # Row by row keeps memory at T x V instead of T x T x V.
    return np.stack([np.abs(p - p[t]).sum(axis=1) for t in range(p.shape[0])]) if len(p) else np.zeros((0, 0))


@dataclass(frozen=True)
class L1Summary:
    """Counts over the unique pairs of different steps (t < s)."""

    pairs: int
    near: int  # distance in [0, 0.02]
    far: int  # distance in [1.98, 2]
    above_far: int  # distance > 1.98 (seed 001 counts these: 2,642 of 5,671)
    near_range: tuple[float, float] = NEAR
    far_range: tuple[float, float] = FAR

    def to_json(self) -> dict[str, object]:
        return {
            "pairs": self.pairs,
            "near": self.near,
            "far": self.far,
            "above_1.98": self.above_far,
            "near_range": list(self.near_range),
            "far_range": list(self.far_range),
        }


def l1_summary(d: np.ndarray) -> L1Summary:
    iu = np.triu_indices(d.shape[0], k=1)
    v = d[iu]
    return L1Summary(
        pairs=int(v.size),
        near=int(np.count_nonzero((v >= NEAR[0]) & (v <= NEAR[1]))),
        far=int(np.count_nonzero((v >= FAR[0]) & (v <= FAR[1]))),
        above_far=int(np.count_nonzero(v > FAR[0])),
    )


def l1_colour_classes(d: np.ndarray) -> np.ndarray:
    """0 for gray-scale pairs, 1 for "sanguine" (near, [0, 0.02]), 2 for "powder blue" (far)."""
    c = np.zeros(d.shape, np.int8)
    c[(d >= NEAR[0]) & (d <= NEAR[1])] = 1
    c[d >= FAR[0]] = 2
    return c


def layer_gramians(gates: dict[str, np.ndarray], layer: int) -> dict[str, np.ndarray]:
    """Magnitude Gramians of one layer's activations, with and without tanh: ``h``, ``c`` and
    ``tanh_c``, the gates ``i f o``, the cell candidate ``g`` (after tanh) and ``g_pre`` (before).
    ``gates`` maps names to [T, L, H] arrays (as in a recording)."""
    src = {name: gates[name][:, layer, :] for name in ("h", "c", "i", "f", "o", "g", "g_pre")}
    src["tanh_c"] = np.tanh(np.asarray(src["c"], dtype=np.float64))
    order = ("h", "c", "tanh_c", "i", "f", "o", "g", "g_pre")
    return {name: magnitude_gramian(src[name]) for name in order}


GATE_PAIRS = (("o", "i"), ("o", "f"), ("o", "g"), ("f", "i"), ("h", "i"), ("h", "f"), ("h", "o"))


def gate_cross_products(gates: dict[str, np.ndarray], layer: int) -> dict[str, np.ndarray]:
    """Inner products between different gates of one layer (first gate of each pair on the
    vertical axis, as in seed 001: the out gate against the others)."""
    return {f"{a}-{b}": cross_products(gates[a][:, layer, :], gates[b][:, layer, :]) for a, b in GATE_PAIRS}


def bar_steps(tokens: list[str]) -> list[int]:
    """Steps whose token is a bar line (class ``bar``: ``| |: :| |1 |2``), for the lines drawn on plots."""
    return [t for t, tok in enumerate(tokens) if _is_bar(tok)]


def _is_bar(tok: str) -> bool:
    try:
        return classify(tok).cls == "bar"
    except ValueError:
        return False


def same_token(tokens: np.ndarray) -> np.ndarray:
    """[T, T]: 1 where two steps have the same token (XᵀX of their one-hot vectors)."""
    t = np.asarray(tokens)
    return (t[:, None] == t[None, :]).astype(np.float64)


def offdiag_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r between two T x T matrices over their pairs of different steps (t < s); 0 when
    either is constant there."""
    if a.shape != b.shape or a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"the Gramians must be square and of one shape; got {a.shape} and {b.shape}")
    iu = np.triu_indices(a.shape[0], k=1)
    x, y = a[iu] - a[iu].mean(), b[iu] - b[iu].mean()
    den = float(np.linalg.norm(x) * np.linalg.norm(y))
    return float(x @ y / den) if den > 0 else 0.0


def onehot_similarity(
    mats: dict[str, np.ndarray], input_tokens: np.ndarray, output_tokens: np.ndarray
) -> dict[str, dict[str, float]]:
    """Seed 001's comparison, measured: each Gramian's correlation with the one-hot Gramian of the
    tokens input at the same steps (XᵀX) and of the tokens generated there (XᵀX shifted by one
    step: the token generated at step t is input at t + 1)."""
    g_in, g_out = same_token(input_tokens), same_token(output_tokens)
    return {
        name: {"input token (XᵀX)": offdiag_correlation(m, g_in), "generated token (shifted 1)": offdiag_correlation(m, g_out)}  # noqa: E501
        for name, m in mats.items()
    }
