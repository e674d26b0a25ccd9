"""Choosing a step path: by backend and precision, and one shared stepper per model and choice."""

from __future__ import annotations

import weakref

from folkrnn_live.model.network import FolkRNN
from folkrnn_live.model.step import BACKENDS, PRECISIONS, NumpyStepper, Stepper, TorchStepper


def make_stepper(model: FolkRNN, backend: str = "auto", precision: str = "fp32") -> Stepper:
    """``auto``: numpy on the CPU, a CUDA graph on a GPU, torch elsewhere.  ``precision="int8"``
    (CPU only) takes int8 weights (:class:`~folkrnn_live.model.step_int8.Int8Stepper`)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    device = next(model.parameters()).device
    if precision == "int8":
        if device.type != "cpu" or backend == "torch":
            raise ValueError("precision int8 is a CPU path (backend auto or numpy, model on the CPU)")
        from folkrnn_live.model.step_int8 import Int8Stepper

        return Int8Stepper(model)
    if backend == "auto" and device.type == "cuda":
        from folkrnn_live.model.step_cuda import CudaGraphStepper

        return CudaGraphStepper(model)
    if backend == "numpy" or (backend == "auto" and device.type == "cpu"):
        return NumpyStepper(model)
    return TorchStepper(model)


_SHARED: weakref.WeakKeyDictionary[FolkRNN, dict[tuple[str, str], Stepper]] = weakref.WeakKeyDictionary()


def shared_stepper(model: FolkRNN, backend: str = "auto", precision: str = "fp32") -> Stepper:
    """One stepper per (model, backend, precision), built on first use: voices that switch precision
    share it instead of each packing its own int8 weights (a step holds no per-voice state)."""
    per_model = _SHARED.setdefault(model, {})
    key = (backend, precision)
    if key not in per_model:
        per_model[key] = make_stepper(model, backend, precision)
    return per_model[key]
