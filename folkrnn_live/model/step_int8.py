"""The opt-in int8 CPU step: int8 weights with one scale per output row, float32 state.

The kernel is fbgemm's dynamic-quantization linear, the one PyTorch itself uses for
``torch.ao.nn.quantized.dynamic.Linear`` on x86 (AVX2/AVX-512 int8 GEMV and GEMM), reached through
``torch.ops.quantized.linear_dynamic``: no new dependency, and on this project's 2-core CPU a
2048 x 1024 product takes ~30-40 us against ~55-70 us for OpenBLAS float32 (see
docs/benchmarks.md).  What is int8 and what is not:

* the three big products (layer 1's recurrent W_hh, layers 2-3's fused [W_ih | W_hh]) hold int8
  weights, symmetric, one float scale per output row (per channel): 5.2 MB instead of 21 MB, the
  traffic a batch-1 step is bound by;
* fbgemm quantizes each product's *input* row block (x and h) to 8 bits on the fly with one
  scale for the whole [B, in] block (dynamic quantization), accumulates in int32 and hands back
  float32 with the bias added in float32: everything between the products (gates, c, h, the
  interventions) stays float32;
* layer 1's input (a one-hot row lookup, or the forced mix's x @ W_ih0.T) and the output layer
  (137 x 512, 0.3 MB, where int8 is slower than float32) stay float32.

Because the input scale is shared by a product's whole row block, a batch row's numbers depend a
little on its neighbours: int8 tunes are reproducible per seed at a fixed batch size, not across
batch sizes.  Fidelity (KL divergence to float32, evaluate figures): docs/benchmarks.md.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from folkrnn_live.model.network import FolkRNN
from folkrnn_live.model.step import TORCH_CELL_MIN_BATCH, Activations, NumpyStepper, Precision, StepState

#: fbgemm's input quantization to 7 bits instead of 8: its AVX2 kernel multiplies u8 x s8 pairs
#: into saturating int16 sums, and the 7-bit range keeps those from saturating (PyTorch's default
#: for x86 dynamic quantization).
REDUCE_RANGE = True


def _engine() -> str:
    """The quantized engine fbgemm's kernels are reached through on this CPU."""
    engines = torch.backends.quantized.supported_engines
    for name in ("x86", "fbgemm", "qnnpack"):
        if name in engines:
            return name
    raise ValueError(f"precision int8 needs a quantized engine (x86, fbgemm or qnnpack); this torch has {engines}")


# Rows from which a product goes through oneDNN's int8 GEMM instead of fbgemm's: on this project's
# 2-core AVX2 CPU, with the same int8 weights and the same outputs (checked equal on the shipped
# model's weights), oneDNN ran 512-row generation 15 % faster (30.3k against 26.3k tokens/s, 3
# alternated runs) but a 1-row product slower (65 against 42 us), so live voices keep fbgemm.
BATCH_ENGINE = "onednn"
BATCH_ENGINE_MIN_ROWS = 64


def pack_int8(w: torch.Tensor, b: torch.Tensor, engine: str | None = None) -> tuple[object, np.ndarray]:
    """w [N, K] float32 as int8 with one symmetric scale per row, packed with bias b [N] for the
    quantized engine in use (or ``engine``: the packed weights carry their kernel with them).
    Also returns the dequantized weights (for tests and the fidelity benchmark)."""
    if engine is not None and engine != torch.backends.quantized.engine:
        before = torch.backends.quantized.engine
        torch.backends.quantized.engine = engine
        try:
            return pack_int8(w, b)
        finally:
            torch.backends.quantized.engine = before
    w = w.detach().float().contiguous()
    scales = (w.abs().amax(dim=1) / 127.0).clamp_min(1e-12).double()
    zero = torch.zeros(w.shape[0], dtype=torch.long)
    with warnings.catch_warnings():
        # PyTorch 2.13 announces that quantized tensor *creation* functions will move to torchao;
        # the packed-weight kernels used here are what torchao's CPU path dispatches to as well.
        warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor", category=UserWarning)
        qw = torch.quantize_per_channel(w, scales, zero, 0, torch.qint8)
        packed = torch.ops.quantized.linear_prepack(qw, b.detach().float().contiguous())
    return packed, qw.dequantize().numpy()


class Int8Stepper(NumpyStepper):
    """:class:`NumpyStepper` with the three big products on int8 weights (fbgemm)."""

    precision: Precision = "int8"
    batches_well: bool = True  # fbgemm: 24 rows in 1.7 ms against 0.40 ms for one
    default_batch_threads = 1

    def __init__(self, model: FolkRNN) -> None:
        engine = _engine()
        if torch.backends.quantized.engine != engine:
            torch.backends.quantized.engine = engine
        super().__init__(model)
        #: torch threads for a batched step (a voice's step always runs on one).  One by default:
        #: on this project's shared 2-core VM two threads made a 512-row step 5x *slower* (78 vs
        #: 406 ms) as soon as anything else ran; set ``len(os.sched_getaffinity(0))`` on an idle machine.
        self.batch_threads = self.default_batch_threads

    def refresh(self) -> None:
        super().refresh()
        H, L = self.hidden_size, self.num_layers
        zero_bias = torch.zeros(4 * H)
        # layer 1's bias is in embed0
        weights = [(torch.from_numpy(self.w_hh[0]), zero_bias)]
        for k in range(1, L):
            w_cat = self.w_cat[k]
            assert w_cat is not None
            weights.append((torch.from_numpy(w_cat), torch.from_numpy(self.b[k])))
        self._packed: list[object] = [pack_int8(w, b)[0] for w, b in weights]
        batch_engine = BATCH_ENGINE in torch.backends.quantized.supported_engines
        self._packed_batch = [pack_int8(w, b, BATCH_ENGINE)[0] for w, b in weights] if batch_engine else self._packed
        self._w_out_t, self._b_out_t = torch.from_numpy(self.w_out), torch.from_numpy(self.b_out)
        # The float32 fused copies are not needed any more: int8 keeps 5 MB, not 21 MB, hot.
        self.w_cat = [None] * L

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
        """At batch 1 (a live voice) on one thread, as the float32 step; a batch runs everything on
        torch's thread pool, every core (fbgemm's GEMM and the cell arithmetic both scale), and
        keeps OpenBLAS out of it: two pools spinning on the same cores starve each other."""
        kw: dict[str, Any] = {"x": x, "snip_out": snip_out, "snip_rec": snip_rec, "steer": steer, "capture": capture}
        if state.batch < TORCH_CELL_MIN_BATCH or self.batch_threads <= 1:
            return super().step(tokens, state, **kw)
        before = torch.get_num_threads()
        torch.set_num_threads(self.batch_threads)
        try:
            return super().step(tokens, state, **kw)
        finally:
            torch.set_num_threads(before)

    def _output(self, h: np.ndarray) -> np.ndarray:
        if h.shape[0] < TORCH_CELL_MIN_BATCH:
            return super()._output(h)
        return torch.addmm(self._b_out_t, torch.from_numpy(h), self._w_out_t.t()).numpy()

    def _recurrent0(self, h0: np.ndarray) -> np.ndarray:
        return self._linear(0, h0)

    def _gates(self, k: int, xh: np.ndarray) -> np.ndarray:
        return self._linear(k, xh)

    def _linear(self, k: int, a: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
        packed = self._packed_batch[k] if a.shape[0] >= BATCH_ENGINE_MIN_ROWS else self._packed[k]
        return torch.ops.quantized.linear_dynamic(x, packed, REDUCE_RANGE).numpy()
