"""The one sampling rule of every sampler here: inverse-CDF with one uniform number per token.

A tune depends on its seed only, whether a voice, a batch row, the CPU or the GPU drew it: the
uniform numbers always come from the tune's own numpy generator on the host, and only the
arithmetic below runs where the logits are (float64 in both, so the CPU and the GPU differ only
where the float32 logits themselves differ in their last bits).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sample_index(probs: np.ndarray, u: Any) -> Any:
    """Inverse-CDF sampling with one uniform number per distribution: probs [..., V] and u [...]
    give token indices [...] (float64 cumulative sums)."""
    cdf = np.cumsum(probs, axis=-1, dtype=np.float64)
    drawn = (cdf <= np.asarray(u)[..., None] * cdf[..., -1:]).sum(axis=-1)
    return np.minimum(drawn, probs.shape[-1] - 1)


def draw_numpy(logits: np.ndarray, temperature: float, u: np.ndarray) -> np.ndarray:
    """Token indices [B] from logits [B, V] at ``temperature`` with uniforms u [B]."""
    return np.asarray(sample_index(softmax(logits.astype(np.float64) / temperature), u))


def draw_torch(logits: torch.Tensor, temperature: float, u: np.ndarray) -> np.ndarray:
    """The same rule on the logits' device: only u goes in and only the B indices come back, so a
    GPU batch moves B numbers each way per step instead of its [B, V] logits."""
    z = logits.double() / temperature
    e = torch.exp(z - z.amax(dim=-1, keepdim=True))
    probs = e / e.sum(dim=-1, keepdim=True)
    cdf = torch.cumsum(probs, dim=-1)
    ut = torch.from_numpy(np.asarray(u, np.float64)).to(logits.device)
    drawn = (cdf <= ut[..., None] * cdf[..., -1:]).sum(dim=-1)
    return torch.clamp(drawn, max=logits.shape[-1] - 1).cpu().numpy()
