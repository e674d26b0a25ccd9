"""The softmax layer read against the vocabulary (seed 000 items 5-7):

- **Δsoftmax** (item 5): adding Δ to the logit of token t moves its probability from p to
  p' = p e^Δ / (1 − p + p e^Δ); a change δ of unit u of the last layer's h adds δ·V[t, u] to token
  t's logit and moves every probability: ∂p_t/∂h_u = p_t (V[t, u] − Σ_s p_s V[s, u]).
- **The output matrix's SVD with the common mode removed** (items 6-7): adding the same amount to
  every logit changes nothing after softmax, so a singular direction close to the all-ones vector
  says little about which tokens it favours.  V's SVD is reported raw and with each column's mean
  over the vocabulary removed (V − 1 mᵀ, the part softmax sees).
- **The last layer's state on the singular directions** (item 7's open question): over a tune,
  s_k w_kᵀ h_t, what direction k adds to the logits along u_k at each step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from folkrnn_live.model.network import FolkRNN


def moved_probability(p: np.ndarray | float, delta: np.ndarray | float) -> np.ndarray:
    """p' after adding ``delta`` to the token's own logit (the others unchanged)."""
    p = np.asarray(p, dtype=np.float64)
    e = np.exp(np.asarray(delta, dtype=np.float64))
    return p * e / (1.0 - p + p * e)


def delta_for(p: float, target: float) -> float:
    """The logit change that takes a token from probability ``p`` to ``target``."""
    if not (0.0 < p < 1.0 and 0.0 < target < 1.0):
        raise ValueError(f"probabilities must be in range (0, 1); got {p} and {target}")
    return float(np.log(target * (1 - p) / (p * (1 - target))))


def softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def jacobian(probs: np.ndarray, v: np.ndarray) -> np.ndarray:
    """∂p/∂h [V, H] at one step: p_t (V[t, u] − Σ_s p_s V[s, u])."""
    p = np.asarray(probs, dtype=np.float64)
    return p[:, None] * (v - p @ v)


@dataclass(frozen=True)
class SVDReading:
    """The output matrix's SVD, raw and with the common mode removed."""

    raw: np.ndarray  # singular values
    centred: np.ndarray
    u_raw: np.ndarray  # [V, K]
    u_centred: np.ndarray
    vt_raw: np.ndarray  # [K, H]
    vt_centred: np.ndarray
    cos_ones: float  # |cos| of the first raw left singular vector with the all-ones vector

    @property
    def ratio_raw(self) -> float:
        return float(self.raw[0] / self.raw[1])

    @property
    def ratio_centred(self) -> float:
        return float(self.centred[0] / self.centred[1])

    def top_tokens(self, tokens: list[str], which: str = "centred", k: int = 0, n: int = 6) -> list[tuple[str, float]]:
        u = self.u_centred if which == "centred" else self.u_raw
        col = u[:, k]
        # Largest |loading| first, signed: an SVD direction's sign is arbitrary, so whether it raises or
        # lowers these tokens depends on the sign of h's projection on it (see projections()).
        idx = np.argsort(-np.abs(col), kind="stable")[:n]
        return [(tokens[i], float(col[i])) for i in idx]

    def to_json(self, tokens: list[str]) -> dict[str, Any]:
        return {
            "singular_values_raw": self.raw.tolist(),
            "singular_values_centred": self.centred.tolist(),
            "ratio_first_second_raw": self.ratio_raw,
            "ratio_first_second_centred": self.ratio_centred,
            "cos_first_left_vector_with_ones": self.cos_ones,
            "largest_loadings_first_raw": self.top_tokens(tokens, "raw"),
            "largest_loadings_first_centred": self.top_tokens(tokens, "centred"),
        }


def _signed_svd(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    flip = np.sign(u[np.abs(u).argmax(axis=0), np.arange(u.shape[1])])
    flip[flip == 0] = 1.0
    return u * flip, s, vt * flip[:, None]


def svd_reading(model: FolkRNN) -> SVDReading:
    w = model.out.weight.detach().cpu().double().numpy()  # [V, H]
    u, s, vt = _signed_svd(w)
    uc, sc, vtc = _signed_svd(w - w.mean(axis=0, keepdims=True))
    ones = np.ones(w.shape[0]) / np.sqrt(w.shape[0])
    return SVDReading(s, sc, u, uc, vt, vtc, float(abs(u[:, 0] @ ones)))


def projections(h_last: np.ndarray, reading: SVDReading, k: int = 4, centred: bool = True) -> np.ndarray:
    """[T, k]: s_j w_jᵀ h_t for the first k singular directions (what each adds to the logits along
    its token loadings u_j at every step)."""
    vt, s = (reading.vt_centred, reading.centred) if centred else (reading.vt_raw, reading.raw)
    k = min(k, len(s))
    return np.asarray(h_last, dtype=np.float64) @ vt[:k].T * s[:k]


def linear_check(logits: np.ndarray, v: np.ndarray, unit: int, delta: float, token: int) -> tuple[float, float]:
    """(exact, first-order) change of p_token when unit ``unit`` of h changes by ``delta``."""
    p = softmax(logits)
    exact = softmax(logits + delta * v[:, unit])[token] - p[token]
    return float(exact), float(delta * jacobian(p, v)[token, unit])
