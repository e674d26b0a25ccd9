"""Checkpoints: ``model.safetensors`` (weights) + ``model.json`` (architecture, vocabulary, provenance).

A model rebuilds from these two files alone.  Loading treats both files as untrusted: safetensors
cannot run code, and every tensor's name, shape, dtype and finiteness is checked against the
architecture in the JSON before anything is used.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from folkrnn_live.model.config import ModelConfig
from folkrnn_live.model.network import FolkRNN

WEIGHTS = "model.safetensors"
META = "model.json"
FORMAT = "folkrnn-live/1"
MAX_META_BYTES = 1 << 20


class CheckpointError(ValueError):
    """A model directory that cannot be loaded; the message names the file and the field."""


@dataclass
class Checkpoint:
    model: FolkRNN
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def config(self) -> ModelConfig:
        return self.model.config


def expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    V, H, L = config.vocab_size, config.hidden_size, config.num_layers
    shapes: dict[str, tuple[int, ...]] = {}
    for k in range(L):
        shapes[f"lstm.weight_ih_l{k}"] = (4 * H, V if k == 0 else H)
        shapes[f"lstm.weight_hh_l{k}"] = (4 * H, H)
        shapes[f"lstm.bias_l{k}"] = (4 * H,)
    shapes["out.weight"] = (V, H)
    shapes["out.bias"] = (V,)
    shapes["hid_init"] = (L, H)
    shapes["cell_init"] = (L, H)
    return shapes


def state_tensors(model: FolkRNN) -> dict[str, torch.Tensor]:
    """The canonical tensors of a model, keyed as in the file (v2's single bias per gate)."""
    t: dict[str, torch.Tensor] = {}
    for k in range(model.config.num_layers):
        t[f"lstm.weight_ih_l{k}"] = model.weight_ih(k)
        t[f"lstm.weight_hh_l{k}"] = model.weight_hh(k)
        t[f"lstm.bias_l{k}"] = model.bias(k)
    t["out.weight"] = model.out.weight
    t["out.bias"] = model.out.bias
    t["hid_init"] = model.hid_init
    t["cell_init"] = model.cell_init
    return {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in t.items()}


def check_tensors(config: ModelConfig, tensors: dict[str, torch.Tensor], source: str = "tensors") -> None:
    """Names, shapes and values of canonical tensors against an architecture.  Run before a model
    of that architecture is built: a hostile model.json could otherwise ask for gigabytes."""
    shapes = expected_shapes(config)
    missing = sorted(set(shapes) - set(tensors))
    extra = sorted(set(tensors) - set(shapes))
    if missing or extra:
        raise CheckpointError(f"{source}: tensors missing {missing}, unexpected {extra}")
    for name, shape in shapes.items():
        t = tensors[name]
        if tuple(t.shape) != shape:
            raise CheckpointError(f"{source}: tensor {name!r} must have shape {shape}; got {tuple(t.shape)}")
        if not t.is_floating_point():
            raise CheckpointError(f"{source}: tensor {name!r} must be floating point; got {t.dtype}")
        if not torch.isfinite(t).all():
            raise CheckpointError(f"{source}: tensor {name!r} contains NaN or infinite values")


@torch.no_grad()
def load_state_tensors(model: FolkRNN, tensors: dict[str, torch.Tensor], source: str = "tensors") -> None:
    """Copy canonical tensors into a model after checking names, shapes and values."""
    check_tensors(model.config, tensors, source)
    for k in range(model.config.num_layers):
        model.weight_ih(k).copy_(tensors[f"lstm.weight_ih_l{k}"])
        model.weight_hh(k).copy_(tensors[f"lstm.weight_hh_l{k}"])
        model.bias(k).copy_(tensors[f"lstm.bias_l{k}"])
    model.out.weight.copy_(tensors["out.weight"])
    model.out.bias.copy_(tensors["out.bias"])
    model.hid_init.copy_(tensors["hid_init"])
    model.cell_init.copy_(tensors["cell_init"])


def save(model: FolkRNN, directory: str | Path, **meta: Any) -> Path:
    """Write ``model.safetensors`` and ``model.json``; extra keyword arguments go into the JSON."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / (WEIGHTS + ".tmp")
    save_file(state_tensors(model), str(tmp), metadata={"format": FORMAT})
    tmp.replace(d / WEIGHTS)  # atomic: a crash mid-write never leaves a half checkpoint
    doc = {"format": FORMAT, "config": model.config.to_json(), **meta}
    tmpj = d / (META + ".tmp")
    tmpj.write_text(json.dumps(doc, indent=1, default=_json_default), encoding="utf-8")
    tmpj.replace(d / META)
    return d


def _json_default(o: object) -> object:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_meta(directory: str | Path) -> dict[str, Any]:
    p = Path(directory) / META
    if not p.is_file():
        raise CheckpointError(f"{p}: no such file (a model directory holds {META} and {WEIGHTS})")
    if p.stat().st_size > MAX_META_BYTES:
        raise CheckpointError(f"{p}: larger than {MAX_META_BYTES} bytes")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # RecursionError: deep nesting
        raise CheckpointError(f"{p}: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"{p}: 'format' must be {FORMAT!r}")
    if not isinstance(doc.get("config"), dict):
        raise CheckpointError(f"{p}: 'config' must be an object")
    return doc


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` (CUDA when present, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``, checked."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not re.fullmatch(r"cpu|cuda(:\d+)?", name):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N; got {name!r}")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but CUDA is not available")
        index = int(name[5:] or 0)
        if index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: this machine has CUDA devices 0..{torch.cuda.device_count() - 1}")
    return torch.device(name)


def load(directory: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild a model from its directory; raises :class:`CheckpointError` naming what is wrong
    (and ValueError for a device that is not there)."""
    target = resolve_device(device)
    d = Path(directory)
    doc = read_meta(d)
    try:
        config = ModelConfig.from_json(doc["config"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{d / META}: config: {exc}") from exc
    w = d / WEIGHTS
    if not w.is_file():
        raise CheckpointError(f"{w}: no such file")
    try:
        tensors = load_file(str(w))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{w}: not a readable safetensors file ({exc})") from exc
    check_tensors(config, tensors, source=str(w))
    model = FolkRNN(config)
    load_state_tensors(model, tensors, source=str(w))
    model.eval()
    meta = {k: v for k, v in doc.items() if k not in ("format", "config")}
    return Checkpoint(model.to(target), meta, d)


def shipped_model_dir() -> Path:
    """The default model shipped inside the package."""
    return Path(str(resources.files("folkrnn_live.model").joinpath("shipped")))


def load_default_or(directory: str | Path | None, device: str | torch.device = "cpu") -> Checkpoint:
    """``directory`` if given, else the shipped model (with a clear error if it is missing)."""
    if directory is not None:
        return load(directory, device)
    d = shipped_model_dir()
    if not (d / WEIGHTS).is_file():
        raise CheckpointError(f"no shipped model in {d}; pass --model DIR")
    return load(d, device)
