"""Model builders shared by the core tests (random weights, optionally a shuffled vocabulary)."""

from __future__ import annotations

import torch

from folkrnn_live.model.config import ModelConfig
from folkrnn_live.model.network import FolkRNN
from folkrnn_live.tokens import V2


def tiny_model(hidden: int = 16, layers: int = 3, seed: int = 0) -> FolkRNN:
    """The tests' small model: PyTorch's initial weights for ``seed`` (the same every run), in
    eval mode.  Far from the shipped model's behaviour, but every code path is the same."""
    torch.manual_seed(seed)
    return FolkRNN(ModelConfig(hidden_size=hidden, num_layers=layers)).eval()


def random_model(hidden: int = 32, layers: int = 3, seed: int = 0, scale: float = 0.3, tokens=V2.tokens) -> FolkRNN:
    """A model with weights large enough that its distributions are far from uniform, and a
    random unit-norm hid_init per layer like the v2 files."""
    torch.manual_seed(seed)
    m = FolkRNN(ModelConfig(tokens=tuple(tokens), num_layers=layers, hidden_size=hidden))
    with torch.no_grad():
        for p in m.parameters():
            if p.requires_grad:
                p.uniform_(-scale, scale)
        h0 = torch.randn(layers, hidden)
        m.hid_init.copy_(h0 / h0.norm(dim=1, keepdim=True))
    return m.eval()
