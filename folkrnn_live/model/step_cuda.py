"""The GPU step: the whole torch step replayed from one CUDA graph.

At batch 1 a GPU step is launch-bound: the eager step is ~40 small kernels, each costing more to
launch than to run.  :class:`CudaGraphStepper` records the step once per (batch size, input
kind, capture on/off) into a CUDA graph over static buffers and then replays it: per step one
multi-tensor copy of the state in, the graph, one copy of the results out.

Every intervention goes through the graph: the snip masks and the steer vector are static
buffers too (all ones and zeros when unused: multiplying by one and adding zero change nothing),
and a forced mix (a dense input vector) has its own graph.

Results are handed back as views of one fresh tensor per step (state, logits, activations), so a
state or activation a caller keeps is never overwritten by a later replay, and voices that share
one stepper (the server's) never see each other's state.

``graph=False`` runs the same code through the same buffers without recording (any device):
that is how the CPU tests check the plumbing; the recording itself is checked on a GPU
(tests/test_step_cuda.py, benchmarks/gpu_check.sh).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from folkrnn_live.model.network import FolkRNN
from folkrnn_live.model.step import GATE_NAMES, Activations, StepState, TorchStepper

_WARMUP = 3  # eager runs on a side stream before recording, as torch.cuda.graphs asks


@dataclass
class _Recorded:
    """One recorded step: its static inputs, its output buffer and the graph (None: eager)."""

    inp: torch.Tensor  # [B] token indices or [B, V] input vectors
    state: torch.Tensor  # [2L, B, H]: h of every layer, then c
    snip_out: torch.Tensor  # [L, B, H], ones when unused
    snip_rec: torch.Tensor  # [L, B, H]
    steer: torch.Tensor  # [B, H], zeros when unused
    out: torch.Tensor  # flat: new state [2L*B*H], logits [B*V], activations [7*L*B*H] with capture
    masks_set: bool
    graph: Any


class CudaGraphStepper(TorchStepper):
    """:class:`TorchStepper` replayed from CUDA graphs (``graph=True``, needs a CUDA model)."""

    def __init__(self, model: FolkRNN, graph: bool = True) -> None:
        super().__init__(model)
        if graph and self.device.type != "cuda":
            raise ValueError("a CUDA graph needs the model on a CUDA device; use graph=False or TorchStepper")
        self.use_graph = graph
        self._recorded: dict[tuple[int, bool, bool], _Recorded] = {}

    def refresh(self) -> None:
        super().refresh()
        self._recorded = {}  # recorded graphs read the old derived tensors

    def _body(self, r: _Recorded, dense: bool, capture: bool) -> None:
        """The step on the static buffers, results copied into ``r.out`` (what gets recorded)."""
        L, B, H, V = self.num_layers, r.state.shape[1], self.hidden_size, self.vocab_size
        state = StepState([r.state[k] for k in range(L)], [r.state[L + k] for k in range(L)])
        logits, new, acts = TorchStepper.step(
            self, None if dense else r.inp, state, x=r.inp if dense else None,
            snip_out=list(r.snip_out), snip_rec=list(r.snip_rec), steer=r.steer, capture=capture,
        )  # fmt: skip
        n = 2 * L * B * H
        r.out[:n].view(2 * L, B, H).copy_(torch.stack([*new.h, *new.c]))
        r.out[n : n + B * V].view(B, V).copy_(logits)
        if acts is not None:
            stacked = torch.stack([torch.stack(getattr(acts, name)) for name in GATE_NAMES])  # [7, L, B, H]
            r.out[n + B * V :].view(len(GATE_NAMES), L, B, H).copy_(stacked)

    def _record(self, batch: int, dense: bool, capture: bool) -> _Recorded:
        L, H, V, dev = self.num_layers, self.hidden_size, self.vocab_size, self.device
        n_out = 2 * L * batch * H + batch * V + (len(GATE_NAMES) * L * batch * H if capture else 0)
        r = _Recorded(
            inp=torch.zeros((batch, V), device=dev) if dense else torch.zeros(batch, dtype=torch.long, device=dev),
            state=torch.zeros((2 * L, batch, H), device=dev),
            snip_out=torch.ones((L, batch, H), device=dev),
            snip_rec=torch.ones((L, batch, H), device=dev),
            steer=torch.zeros((batch, H), device=dev),
            out=torch.zeros(n_out, device=dev),
            masks_set=False,
            graph=None,
        )
        if self.use_graph:
            side = torch.cuda.Stream(dev)
            side.wait_stream(torch.cuda.current_stream(dev))
            with torch.cuda.stream(side), torch.no_grad():
                for _ in range(_WARMUP):
                    self._body(r, dense, capture)
            torch.cuda.current_stream(dev).wait_stream(side)
            r.graph = torch.cuda.CUDAGraph()
            # Each graph keeps its own memory pool: sharing one is only safe when graphs replay in
            # the order they were recorded, and voices and batch sizes replay them in any order.
            with torch.cuda.graph(r.graph), torch.no_grad():
                self._body(r, dense, capture)
        self._recorded[(batch, dense, capture)] = r
        return r

    @torch.no_grad()
    def step(
        self,
        tokens: Any | None,
        state: StepState,
        *,
        x: Any | None = None,
        snip_out: list[Any | None] | None = None,
        snip_rec: list[Any | None] | None = None,
        steer: Any | None = None,
        capture: bool = False,
    ) -> tuple[torch.Tensor, StepState, Activations | None]:
        B, L, H, V = state.batch, self.num_layers, self.hidden_size, self.vocab_size
        dense = x is not None
        r = self._recorded.get((B, dense, capture)) or self._record(B, dense, capture)
        src = x if dense else tokens
        if src is None:
            raise ValueError("step needs token indices or input vectors x")
        r.inp.copy_(src, non_blocking=True)
        torch._foreach_copy_([*r.state], [*state.h, *state.c])
        self._set_masks(r, snip_out, snip_rec, steer)
        if r.graph is not None:
            r.graph.replay()
        else:
            self._body(r, dense, capture)
        snap = r.out.clone()  # the caller's own copy: the next replay overwrites r.out
        n = 2 * L * B * H
        st = snap[:n].view(2 * L, B, H)
        logits = snap[n : n + B * V].view(B, V)
        new_state = StepState([st[k] for k in range(L)], [st[L + k] for k in range(L)])
        if not capture:
            return logits, new_state, None
        a = snap[n + B * V :].view(len(GATE_NAMES), L, B, H)
        per_layer = {name: list(a[j]) for j, name in enumerate(GATE_NAMES)}
        return logits, new_state, Activations(x=x, tokens=None if dense else tokens, logits=logits, **per_layer)

    @staticmethod
    def _set_masks(r: _Recorded, snip_out: list[Any | None] | None, snip_rec: list[Any | None] | None,
                   steer: Any | None) -> None:  # fmt: skip
        """Copy the interventions into the static buffers (reset to neutral once they end)."""
        if snip_out is None and snip_rec is None and steer is None:
            if r.masks_set:
                r.snip_out.fill_(1.0)
                r.snip_rec.fill_(1.0)
                r.steer.zero_()
                r.masks_set = False
            return
        for buf, masks in ((r.snip_out, snip_out), (r.snip_rec, snip_rec)):
            for k in range(buf.shape[0]):
                m = None if masks is None else masks[k]
                buf[k].copy_(m.expand_as(buf[k])) if m is not None else buf[k].fill_(1.0)
        r.steer.copy_(steer.expand_as(r.steer)) if steer is not None else r.steer.zero_()
        r.masks_set = True
