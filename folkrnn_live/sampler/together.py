"""Live voices stepped as one batch: one forward pass for every voice that will need a token.

Each live voice asks for its next token when its player needs it, at its own moment.  Stepping the
voices one by one costs one full read of the weights per token (the step is bound by that traffic);
stepping the waiting voices together reads them once for all.  :func:`forward_together` computes
the next forward pass of every given voice that does not have it yet, as one batch per shared
stepper, and hands each voice its row (:meth:`Voice.set_forward`).  The voice then draws its token
when its player asks, exactly as from a preview.

Nothing a performer does is delayed by this: a voice's cached forward is keyed by its controls'
version, its step, its tune and its stepper (:meth:`Voice.forward_key`), so a command applied after
the batch (snip, force, steer, precision, a restart) makes that voice recompute its row alone, and
the token is still the first one under the command.  Rows are independent, so a tune depends only on
its seed and commands, up to the last-bit differences BLAS may make between batch sizes; in int8 the
activations of one step share one quantization scale, so a row moves by int8 rounding with its
neighbours (KL under 0.001 nats in the tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from folkrnn_live.model.step import GATE_NAMES, Activations, StepState
from folkrnn_live.sampler.voice import ForwardInputs, Voice, step_host


def forward_together(voices: Sequence[Voice]) -> int:
    """Compute the next forward pass of each voice that lacks one (one batched step per shared
    stepper; a voice alone on its stepper steps alone; a voice on a path that gains nothing from
    batches, ``Stepper.batches_well`` false, is left to step alone when asked).  Returns how many
    rows were computed."""
    groups: dict[int, list[Voice]] = {}
    for v in voices:
        if v.ended is None and not v.forward_ready() and v.stepper.batches_well:
            groups.setdefault(id(v.stepper), []).append(v)
    for group in groups.values():
        if len(group) == 1:
            group[0].preview_forward()
        else:
            _step_group(group)
    return sum(len(g) for g in groups.values())


def _step_group(given: list[Voice]) -> None:
    stepper = given[0].stepper
    voices = list(given)
    if getattr(stepper, "use_graph", False):
        # A CUDA graph is recorded per batch size: batches padded to a power of two (the last
        # voice's row repeated, its copies' results dropped) need 7 graphs for 64 voices, not 64.
        voices += [given[-1]] * ((1 << (len(given) - 1).bit_length()) - len(given))
    inputs = [v.forward_inputs() for v in voices]
    tokens, x = _inputs(inputs, stepper.vocab_size)
    H, L = stepper.hidden_size, stepper.num_layers
    state = StepState([_cat([v.state.h[k] for v in voices]) for k in range(L)],
                      [_cat([v.state.c[k] for v in voices]) for k in range(L)])  # fmt: skip
    snip_out = _masks([i.snip_out for i in inputs], L, H)
    snip_rec = _masks([i.snip_rec for i in inputs], L, H)
    steer = None
    if any(i.steer is not None for i in inputs):
        steer = np.concatenate([i.steer if i.steer is not None else np.zeros((1, H), np.float32) for i in inputs])
    logits, new_state, acts = step_host(
        stepper, state, tokens, x, snip_out, snip_rec, steer, any(v.capture for v in voices)
    )
    rows = stepper.to_numpy(logits)
    for r, v in enumerate(given):
        row_state = StepState([_row(a, r) for a in new_state.h], [_row(a, r) for a in new_state.c])
        v.set_forward(rows[r].copy(), row_state, _row_acts(acts, r, inputs[r]) if v.capture else None)


def _inputs(inputs: list[ForwardInputs], vocab_size: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Token indices [B], or dense input vectors [B, V] when any voice has a forced mix."""
    if all(i.x is None for i in inputs):
        return np.array([i.token for i in inputs]), None
    x = np.zeros((len(inputs), vocab_size), np.float32)
    for r, i in enumerate(inputs):
        if i.x is not None:
            x[r] = i.x[0]
        else:
            x[r, i.token] = 1.0
    return None, x


def _masks(per_voice: list[list[np.ndarray | None] | None], L: int, H: int) -> list[np.ndarray | None] | None:
    """Per layer, the voices' [1, H] masks stacked to [B, H] (all ones for a voice without one)."""
    if all(m is None for m in per_voice):
        return None
    out: list[np.ndarray | None] = []
    for k in range(L):
        layer = [None if m is None else m[k] for m in per_voice]
        if all(m is None for m in layer):
            out.append(None)
        else:
            out.append(np.concatenate([np.ones((1, H), np.float32) if m is None else m for m in layer]))
    return out


def _cat(arrays: list[Any]) -> Any:
    return torch.cat(arrays) if isinstance(arrays[0], torch.Tensor) else np.concatenate(arrays)


def _row(a: Any, r: int) -> Any:
    """Row r as a [1, ...] array of its own (a view would keep the whole batch alive)."""
    return a[r : r + 1].clone() if isinstance(a, torch.Tensor) else a[r : r + 1].copy()


def _row_acts(acts: Activations | None, r: int, inp: ForwardInputs) -> Activations | None:
    """Row r's activations, its input as the voice gave it (a token stays a token when other
    voices' forced mixes made the batch's input dense), as a recording of it alone would hold."""
    if acts is None:
        return None
    per_layer = {name: [_row(a, r) for a in getattr(acts, name)] for name in GATE_NAMES}
    return Activations(
        x=None if inp.x is None else _row(acts.x, r),
        tokens=np.array([inp.token]) if inp.x is None else None,
        logits=_row(acts.logits, r),
        **per_layer,
    )


__all__ = ["forward_together"]
