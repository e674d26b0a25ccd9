"""The folk-rnn v2 network: read it top to bottom.

    x_t  one-hot (or a forced mix) over the vocabulary           [B, V]
    for each layer l = 1..L (LSTM, no peepholes, gate order i, f, g, o):
        i = σ(W_xi x + W_hi h + b_i)     f = σ(W_xf x + W_hf h + b_f)
        g = tanh(W_xc x + W_hc h + b_c)  o = σ(W_xo x + W_ho h + b_o)
        c = f ⊙ c₋₁ + i ⊙ g              h = o ⊙ tanh(c)          [B, H]
        x = dropout(h)  (training only)
    logits = V h_L + v                                           [B, V]
    p = softmax(logits / T)

The weights live in a ``torch.nn.LSTM`` (its gate order is v2's) so training gets the fused oneDNN /
cuDNN kernels.  v2 has one bias per gate; nn.LSTM has two, so ``bias_hh`` is frozen at zero and the
trainable count is exactly v2's 5,599,881.  The initial state is per layer: h₀ = ``hid_init`` and
c₀ = ``cell_init`` (both stored, untrained; the v2 files hold a random unit-norm h₀ and a zero c₀).

This module is the *sequence* path (training, scoring).  The *step* path for live generation is
:mod:`folkrnn_live.model.step`; it reads these same tensors.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from folkrnn_live.model.config import ModelConfig

State = tuple[torch.Tensor, torch.Tensor]  # (h, c), each [L, B, H]


class FolkRNN(nn.Module):
    hid_init: torch.Tensor  # [L, H] buffers (registered below)
    cell_init: torch.Tensor
    eye: torch.Tensor  # [V, V]

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        V, H, L = config.vocab_size, config.hidden_size, config.num_layers
        # nn.LSTM applies dropout between layers; v2 also drops after the last one (self.drop).
        self.lstm = nn.LSTM(V, H, L, batch_first=True, dropout=config.dropout if L > 1 else 0.0)
        self.drop = nn.Dropout(config.dropout)
        self.out = nn.Linear(H, V)
        for k in range(L):
            b_hh = getattr(self.lstm, f"bias_hh_l{k}")
            with torch.no_grad():
                b_hh.zero_()
            b_hh.requires_grad_(False)
        self.register_buffer("hid_init", torch.zeros(L, H))
        self.register_buffer("cell_init", torch.zeros(L, H))
        self.register_buffer("eye", torch.eye(V), persistent=False)  # the untrained one-hot "embedding"

    # --- parameter views shared with the step path ----------------------------------------------
    def weight_ih(self, k: int) -> torch.Tensor:  # [4H, in]
        return getattr(self.lstm, f"weight_ih_l{k}")

    def weight_hh(self, k: int) -> torch.Tensor:  # [4H, H]
        return getattr(self.lstm, f"weight_hh_l{k}")

    def bias(self, k: int) -> torch.Tensor:  # [4H]
        return getattr(self.lstm, f"bias_ih_l{k}")

    def num_trainable(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    # --- sequence path ---------------------------------------------------------------------------
    def initial_state(self, batch: int) -> State:
        h0 = self.hid_init.unsqueeze(1).expand(-1, batch, -1).contiguous()
        c0 = self.cell_init.unsqueeze(1).expand(-1, batch, -1).contiguous()
        return h0, c0

    def forward(self, tokens: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """tokens [B, T] (int) or input vectors [B, T, V] (float) -> logits [B, T, V], final state."""
        x = self.eye[tokens] if tokens.dtype in (torch.int64, torch.int32) else tokens  # [B, T, V]
        if state is None:
            state = self.initial_state(x.shape[0])
        h, state = self.lstm(x, state)  # h [B, T, H]
        return self.out(self.drop(h)), state

    @torch.no_grad()
    def output_svd(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """SVD of the output matrix W [V, H] = U diag(S) Vt.  Rows of Vt live in the last layer's
        hidden space (what steering adds to h); columns of U are their token loadings.  Signs are
        fixed so that each U column's largest-magnitude entry is positive (SVD signs are arbitrary)."""
        w = self.out.weight.detach().cpu().double().numpy()
        u, s, vt = np.linalg.svd(w, full_matrices=False)
        flip = np.sign(u[np.abs(u).argmax(axis=0), np.arange(u.shape[1])])
        flip[flip == 0] = 1.0
        return u * flip, s, vt * flip[:, None]

    @torch.no_grad()
    def log_probs(self, tokens: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Log p(token_t+1 | tokens_..t) for every position: [B, T, V]."""
        logits, _ = self.forward(tokens)
        return F.log_softmax(logits / temperature, dim=-1)
