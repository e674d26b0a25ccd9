"""The step path: one generation step for B independent voices, with explicit (h, c) state.

Unlike a transformer sampler, an LSTM carries its state forward, so a step costs one pass through
the network for one token and the prefix is never re-run.

Backends over the tensors of one :class:`~folkrnn_live.model.network.FolkRNN`:

* ``NumpyStepper`` (CPU): numpy views of the model's own CPU tensors (no copies of the big
  matrices).  On the CPUs we measured, OpenBLAS's gemv/gemm is 2-3x faster than the MKL that
  PyTorch's CPU wheels bundle, so this is the CPU default (see docs/benchmarks.md).
* ``Int8Stepper`` (CPU, opt-in, :mod:`folkrnn_live.model.step_int8`): int8 weights.
* ``TorchStepper`` (any torch device): the same arithmetic in torch;
  ``CudaGraphStepper`` (:mod:`folkrnn_live.model.step_cuda`, the GPU default) replays it as one
  CUDA graph.

:func:`folkrnn_live.model.steppers.make_stepper` picks one.  The sampler never asks which backend
it has: every stepper converts host arrays to its own form (:meth:`Stepper.from_numpy`), back
(:meth:`Stepper.to_numpy`) and draws tokens where its logits live (:meth:`Stepper.draw`).

Per-step interventions that act *inside* the network are arguments of :meth:`step`:

* ``x``: input vectors [B, V] instead of token indices (forcing a mix such as 0.7/0.3);
* ``snip_out[l]`` [B, H] 0/1 masks on what layer l sends onward (to layer l+1 or the softmax);
* ``snip_rec[l]`` [B, H] 0/1 masks on what layer l feeds back to itself (its carried h);
* ``steer`` [B, H] added to the last layer's output on its way to the softmax.

Everything on the logits (temperature, bias, suppress) is the sampler's business.

With ``capture=True`` the step also hands back every activation (:class:`Activations`); with it
off nothing extra is computed or kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import torch
from scipy.special import expit

from folkrnn_live.model.draw import draw_numpy, draw_torch
from folkrnn_live.model.network import FolkRNN

#: Activation names per layer, in the order the recorder stores them.
GATE_NAMES = ("i", "f", "o", "g_pre", "g", "c", "h")


@dataclass
class StepState:
    """(h, c) of every layer for B voices: each a list of L arrays [B, H] (numpy or torch)."""

    h: list[Any]
    c: list[Any]

    @property
    def batch(self) -> int:
        return int(self.h[0].shape[0])


@dataclass
class Activations:
    """Everything one step computed.  Per-layer lists hold L arrays of shape [B, H].

    ``h`` is each layer's output as sent onward (after snip/steer); ``c`` the new cell state;
    ``g_pre``/``g`` the cell candidate before/after tanh.  ``x`` is the input vector [B, V] (None
    when the input was plain token indices: it is then one-hot at ``tokens``)."""

    x: Any | None
    tokens: Any | None
    i: list[Any]
    f: list[Any]
    o: list[Any]
    g_pre: list[Any]
    g: list[Any]
    c: list[Any]
    h: list[Any]
    logits: Any  # [B, V] network logits (before temperature, bias and suppress)

    def input_vectors(self, vocab_size: int) -> np.ndarray:
        """The input as dense vectors [B, V], whatever form it was given in."""
        if self.x is not None:
            return _to_numpy(self.x)
        toks = _to_numpy(self.tokens)
        out = np.zeros((len(toks), vocab_size), np.float32)
        out[np.arange(len(toks)), toks] = 1.0
        return out

    def layer_stack(self, name: str) -> np.ndarray:
        """One activation of all layers as a numpy array [L, B, H]."""
        return np.stack([_to_numpy(a) for a in getattr(self, name)])


def _to_numpy(a: Any) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


Precision = Literal["fp32", "int8"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "int8")
Backend = Literal["auto", "numpy", "torch"]
BACKENDS: tuple[Backend, ...] = ("auto", "numpy", "torch")


class Stepper(Protocol):
    """What the sampler needs of a step path, whatever arrays and device it computes on."""

    vocab_size: int
    num_layers: int
    hidden_size: int
    precision: Precision
    # Whether stepping several live voices as one batch costs less than stepping them one by one
    # (folkrnn_live.sampler.together): the server batches voices only on such a path.
    batches_well: bool

    def from_numpy(self, a: np.ndarray) -> Any:
        """A host array (token indices, input vectors, snip masks, steer) in this backend's form."""
        ...

    def to_numpy(self, a: Any) -> np.ndarray:
        """One of this backend's arrays (logits) as a host numpy array."""
        ...

    def draw(self, logits: Any, temperature: float, u: np.ndarray) -> np.ndarray:
        """Token indices [B] drawn from softmax(logits / temperature) [B, V] with one uniform
        number per row (the rule of :func:`folkrnn_live.model.draw.sample_index`), computed
        where the logits are; the result on the host."""
        ...

    def initial_state(self, batch: int) -> StepState: ...

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
    ) -> tuple[Any, StepState, Activations | None]: ...

    def reset_rows(self, state: StepState, rows: Any) -> None: ...


# Element-wise gate arithmetic: numpy has the lower per-call overhead for a few rows, torch's
# vectorised sigmoid/tanh win from about 8 rows on (measured on this project's 2-core CPU: 1 row
# 17 vs 36 us per layer, 64 rows 771 vs 407 us, 512 rows 6.0 vs 3.0 ms).
TORCH_CELL_MIN_BATCH = 8


def _cell_numpy(gates: np.ndarray, c_prev: np.ndarray, H: int) -> tuple[np.ndarray, ...]:
    """gates [B, 4H] pre-activations (i, f, g, o) -> i, f, o, g_pre, g, c, h."""
    sig = expit(gates)  # all four blocks in one call: fewer calls beat skipping the g block
    i, f, o = sig[:, :H], sig[:, H : 2 * H], sig[:, 3 * H :]
    g_pre = gates[:, 2 * H : 3 * H]
    g = np.tanh(g_pre)
    c = f * c_prev
    c += i * g
    return i, f, o, g_pre, g, c, o * np.tanh(c)


def _tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh(x) as 2 sigmoid(2x) - 1: torch's CPU tanh took 1.3-1.9 ns per element against 0.2 for
    sigmoid (512 x 512: 0.33-0.50 ms against 0.10), and 512-row int8 generation ran 9 % faster
    with this (24.5k -> 26.8k tokens/s, 3 alternated runs); the two agree to within float32
    rounding (absolute error below 2e-7).  Doubling the g block in place to share the gates'
    sigmoid was slower still (the copy of g_pre it needs for capture)."""
    return torch.sigmoid(x * 2.0).mul_(2.0).sub_(1.0)


def _cell_torch(gates: np.ndarray, c_prev: np.ndarray, H: int) -> tuple[np.ndarray, ...]:
    """The same on the same buffers through torch (zero-copy views both ways)."""
    gt = torch.from_numpy(gates)
    sig = torch.sigmoid(gt)
    i, f, o = sig[:, :H], sig[:, H : 2 * H], sig[:, 3 * H :]
    g_pre = gt[:, 2 * H : 3 * H]
    g = _tanh(g_pre)
    c = torch.addcmul(f * torch.from_numpy(c_prev), i, g)
    h = o * _tanh(c)
    return i.numpy(), f.numpy(), o.numpy(), g_pre.numpy(), g.numpy(), c.numpy(), h.numpy()


def _carry_and_send(
    k: int, L: int, h: Any, snip_out: list[Any | None] | None, snip_rec: list[Any | None] | None, steer: Any | None
) -> tuple[Any, Any]:
    """Layer k's new h as carried to its next step (``snip_rec`` applied) and as sent onward to
    layer k+1 or the softmax (``snip_out``, and ``steer`` on the last layer).  numpy or torch."""
    rec = snip_rec[k] if snip_rec is not None else None
    out = snip_out[k] if snip_out is not None else None
    h_carry = h if rec is None else h * rec
    h_send = h if out is None else h * out
    if k == L - 1 and steer is not None:
        h_send = h_send + steer
    return h_carry, h_send


def _record(acts: dict[str, list[Any]], values: tuple[Any, ...]) -> None:
    """Append one layer's activations, in GATE_NAMES order (h as sent onward)."""
    for name, value in zip(GATE_NAMES, values, strict=True):
        acts[name].append(value)


class _HostArrays:
    """Conversions and drawing for steppers that compute on host numpy arrays."""

    def from_numpy(self, a: np.ndarray) -> np.ndarray:
        return a

    def to_numpy(self, a: Any) -> np.ndarray:
        return np.asarray(a)

    def draw(self, logits: Any, temperature: float, u: np.ndarray) -> np.ndarray:
        return draw_numpy(np.asarray(logits), temperature, u)


class NumpyStepper(_HostArrays):
    """CPU step path on numpy views of the model's tensors (float32, OpenBLAS)."""

    precision: Precision = "fp32"
    # OpenBLAS packs the whole weight matrix for a product of more than one row: a 2-row step cost
    # 3.5x a 1-row step here (5.1 vs 1.45 ms), so live voices step one by one on this path.
    batches_well: bool = False

    def __init__(self, model: FolkRNN) -> None:
        if next(model.parameters()).device.type != "cpu":
            raise ValueError("NumpyStepper needs a model on the CPU; use TorchStepper for other devices")
        # OpenBLAS (numpy) runs the matrix products on every core; torch only does element-wise
        # work here.  Two thread pools spinning on the same cores starve each other (a 512-row step
        # went from 52 ms to 250 ms on 2 cores), so torch's intra-op pool is kept to one thread.
        torch.set_num_threads(1)
        cfg = model.config
        self.vocab_size, self.num_layers, self.hidden_size = cfg.vocab_size, cfg.num_layers, cfg.hidden_size
        v = lambda t: t.detach().numpy()  # noqa: E731 - a view, shares memory with the model
        self.w_ih = [v(model.weight_ih(k)) for k in range(cfg.num_layers)]  # [4H, in]
        self.w_hh = [v(model.weight_hh(k)) for k in range(cfg.num_layers)]  # [4H, H]
        self.b = [v(model.bias(k)) for k in range(cfg.num_layers)]  # [4H]
        self.w_out = v(model.out.weight)  # [V, H]
        self.b_out = v(model.out.bias)  # [V]
        self.h0 = v(model.hid_init)  # [L, H]
        self.c0 = v(model.cell_init)  # [L, H]
        # Derived data, rebuilt by refresh() if the model's weights change:
        # * layer 1 sees one-hot inputs: x @ W_ih0.T is a row lookup in a [V, 4H] table (1.1 MB,
        #   bias folded in);
        # * layers 2.. take one product [x, h] @ [W_ih | W_hh].T instead of two: at batch 1 a step
        #   is a handful of matrix-vector products and the per-call cost is a visible share of it
        #   (16 MB of copies; a batch-1 step 3-17 % faster on this project's 2-core CPU).
        self.refresh()

    def refresh(self) -> None:
        self.embed0 = np.ascontiguousarray(self.w_ih[0].T) + self.b[0]  # [V, 4H]
        self.w_cat: list[np.ndarray | None] = [None] + [
            np.ascontiguousarray(np.concatenate([self.w_ih[k], self.w_hh[k]], axis=1))  # [4H, in + H]
            for k in range(1, self.num_layers)
        ]

    def initial_state(self, batch: int) -> StepState:
        h = [np.repeat(self.h0[k][None], batch, axis=0) for k in range(self.num_layers)]
        c = [np.repeat(self.c0[k][None], batch, axis=0) for k in range(self.num_layers)]
        return StepState(h, c)

    def reset_rows(self, state: StepState, rows: Any) -> None:
        for k in range(self.num_layers):
            state.h[k][rows] = self.h0[k]
            state.c[k][rows] = self.c0[k]

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
    ) -> tuple[np.ndarray, StepState, Activations | None]:
        H = self.hidden_size
        cell = _cell_numpy if state.batch < TORCH_CELL_MIN_BATCH else _cell_torch
        L = self.num_layers
        new_h: list[np.ndarray] = []
        new_c: list[np.ndarray] = []
        acts: dict[str, list[np.ndarray]] | None = {n: [] for n in GATE_NAMES} if capture else None
        inp: np.ndarray | None = None
        for k in range(L):
            if k == 0:
                if x is None:
                    gates_np = self.embed0[tokens]  # [B, 4H] (a fresh array: fancy indexing copies)
                else:
                    gates_np = x @ self.w_ih[0].T
                    gates_np += self.b[0]
                gates_np += self._recurrent0(state.h[0])
            else:
                assert inp is not None
                gates_np = self._gates(k, np.concatenate((inp, state.h[k]), axis=1))  # [B, 4H]
            i, f, o, g_pre, g, c, h = cell(gates_np, state.c[k], H)
            h_carry, h_send = _carry_and_send(k, L, h, snip_out, snip_rec, steer)
            new_h.append(h_carry)
            new_c.append(c)
            if acts is not None:
                _record(acts, (i, f, o, g_pre, g, c, h_send))
            inp = h_send
        assert inp is not None
        logits = self._output(inp)
        new_state = StepState(new_h, new_c)
        if acts is None:
            return logits, new_state, None
        return logits, new_state, Activations(x=x, tokens=None if x is not None else tokens, logits=logits, **acts)

    # The products a subclass may compute differently (Int8Stepper: int8 weights, torch threads).
    def _output(self, h: np.ndarray) -> np.ndarray:
        """Logits [B, V] from the last layer's output."""
        logits = h @ self.w_out.T
        logits += self.b_out
        return logits

    def _recurrent0(self, h0: np.ndarray) -> np.ndarray:
        """Layer 1's recurrent input h @ W_hh0.T [B, 4H]."""
        return h0 @ self.w_hh[0].T

    def _gates(self, k: int, xh: np.ndarray) -> np.ndarray:
        """Layer k's (k >= 1) gate pre-activations from [x, h] [B, in + H], bias included."""
        w_cat = self.w_cat[k]
        assert w_cat is not None
        gates = xh @ w_cat.T
        gates += self.b[k]
        return gates


class TorchStepper:
    """The same step in torch, on the model's device."""

    precision: Precision = "fp32"
    batches_well: bool = True  # a GPU step is launch-bound: rows are nearly free

    def __init__(self, model: FolkRNN) -> None:
        cfg = model.config
        self.vocab_size, self.num_layers, self.hidden_size = cfg.vocab_size, cfg.num_layers, cfg.hidden_size
        self.device = next(model.parameters()).device
        self.w_ih = [model.weight_ih(k).detach() for k in range(cfg.num_layers)]
        self.w_hh = [model.weight_hh(k).detach() for k in range(cfg.num_layers)]
        self.b = [model.bias(k).detach() for k in range(cfg.num_layers)]
        self.w_out = model.out.weight.detach()
        self.b_out = model.out.bias.detach()
        self.h0 = model.hid_init.detach()
        self.c0 = model.cell_init.detach()
        self.refresh()

    def refresh(self) -> None:
        self.embed0 = (self.w_ih[0].t() + self.b[0]).contiguous()

    def from_numpy(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    def to_numpy(self, a: Any) -> np.ndarray:
        return _to_numpy(a)

    def draw(self, logits: Any, temperature: float, u: np.ndarray) -> np.ndarray:
        return draw_torch(logits, temperature, u)

    def initial_state(self, batch: int) -> StepState:
        h = [self.h0[k].expand(batch, -1).clone() for k in range(self.num_layers)]
        c = [self.c0[k].expand(batch, -1).clone() for k in range(self.num_layers)]
        return StepState(h, c)

    def reset_rows(self, state: StepState, rows: Any) -> None:
        for k in range(self.num_layers):
            state.h[k][rows] = self.h0[k]
            state.c[k][rows] = self.c0[k]

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
        H, L = self.hidden_size, self.num_layers
        acts: dict[str, list[torch.Tensor]] | None = {n: [] for n in GATE_NAMES} if capture else None
        new_h: list[torch.Tensor] = []
        new_c: list[torch.Tensor] = []
        inp = torch.empty(0)
        for k in range(L):
            if k == 0:
                gates = self.embed0[tokens] if x is None else torch.addmm(self.b[0], x, self.w_ih[0].t())
            else:
                gates = torch.addmm(self.b[k], inp, self.w_ih[k].t())
            gates = torch.addmm(gates, state.h[k], self.w_hh[k].t())
            sig = torch.sigmoid(gates)
            i, f, o = sig[:, :H], sig[:, H : 2 * H], sig[:, 3 * H :]
            g_pre = gates[:, 2 * H : 3 * H]
            g = torch.tanh(g_pre)
            c = torch.addcmul(f * state.c[k], i, g)
            h = o * torch.tanh(c)
            h_carry, h_send = _carry_and_send(k, L, h, snip_out, snip_rec, steer)
            new_h.append(h_carry)
            new_c.append(c)
            if acts is not None:
                _record(acts, (i, f, o, g_pre, g, c, h_send))
            inp = h_send
        logits = torch.addmm(self.b_out, inp, self.w_out.t())
        new_state = StepState(new_h, new_c)
        if acts is None:
            return logits, new_state, None
        return logits, new_state, Activations(x=x, tokens=None if x is not None else tokens, logits=logits, **acts)
