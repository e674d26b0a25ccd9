"""A plain numpy implementation of the v2 equations, written from the reference and nothing else.

It works directly on the 45 arrays of an original folk-rnn ``param_values`` list (Lasagne layout:
per layer and gate an input matrix [in, 512], a hidden matrix [512, 512] and a bias, matrices that
multiply from the right), one matrix per gate, as the original fast sampler did.  It serves two
purposes: the independent check of the importer and step path in the tests, and the baseline that
``benchmarks/bench_step.py`` measures against.  It shares no code with :mod:`folkrnn_live.model`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

GATES = ("in", "forget", "cell", "out")  # param_values order within a layer


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class ReferenceLSTM:
    """folk-rnn v2 from ``param_values``: [0] one-hot embedding, 14 arrays per layer, [-2:] softmax."""

    def __init__(self, param_values: Sequence[np.ndarray], num_layers: int = 3) -> None:
        p = [np.asarray(a, dtype=np.float32) for a in param_values]
        self.embedding = p[0]  # [V, V] identity in v2 (untrained)
        self.layers = []
        for j in range(num_layers):
            b = 1 + 14 * j
            gates = {
                name: (p[b + 3 * n], p[b + 3 * n + 1], p[b + 3 * n + 2]) for n, name in enumerate(GATES)
            }
            self.layers.append((gates, p[b + 12].reshape(-1), p[b + 13].reshape(-1)))  # cell_init, hid_init
        self.w_out, self.b_out = p[1 + 14 * num_layers], p[2 + 14 * num_layers]
        self.reset()

    def reset(self) -> None:
        self.h = [hid.copy() for (_, _, hid) in self.layers]
        self.c = [cell.copy() for (_, cell, _) in self.layers]

    def step(self, token: int, temperature: float = 1.0) -> np.ndarray:
        """Feed one token index; return the softmax distribution over the next token."""
        x = self.embedding[token]
        for j, (g, _, _) in enumerate(self.layers):
            h, c = self.h[j], self.c[j]
            i = _sigmoid(x @ g["in"][0] + h @ g["in"][1] + g["in"][2])
            f = _sigmoid(x @ g["forget"][0] + h @ g["forget"][1] + g["forget"][2])
            cand = np.tanh(x @ g["cell"][0] + h @ g["cell"][1] + g["cell"][2])
            o = _sigmoid(x @ g["out"][0] + h @ g["out"][1] + g["out"][2])
            c = f * c + i * cand
            h = o * np.tanh(c)
            self.h[j], self.c[j] = h, c
            x = h
        z = (x @ self.w_out + self.b_out) / temperature
        e = np.exp(z - z.max())
        return e / e.sum()
