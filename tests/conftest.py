"""Shared fixtures: a free localhost UDP port and a tiny model directory."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing is bound to right now."""
    from live_server import free_port

    return free_port("udp")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved 3 x 16 LSTM with random weights (the shipped model is not needed)."""
    from _models import tiny_model

    from folkrnn_live.model import checkpoint

    return checkpoint.save(tiny_model(), tmp_path_factory.mktemp("tiny-model"))
