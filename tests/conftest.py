"""Shared fixtures: a free localhost UDP port and a tiny model directory."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest


@pytest.fixture
def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing is bound to right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved 3 x 16 LSTM with random weights (the shipped model is not needed)."""
    import torch

    from folkrnn_live.model import checkpoint
    from folkrnn_live.model.config import ModelConfig
    from folkrnn_live.model.network import FolkRNN

    torch.manual_seed(0)
    model = FolkRNN(ModelConfig(hidden_size=16, num_layers=3)).eval()
    return checkpoint.save(model, tmp_path_factory.mktemp("tiny-model"))
