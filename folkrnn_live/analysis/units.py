"""Single units against the bars (seed 003's last figure): which units react to a bar token coming
in, and which ones go with a bar token going out.

For one tune, step t inputs token x_t and generates token y_t (= x_{t+1}).  For every unit of every
layer, the Pearson correlation of its ``h`` sequence with the indicator "step t inputs a bar token"
(``r_in``) and with "step t generates a bar token" (``r_out``).  The post's reading, that the first
layer reacts to bars coming in while the last layer causes the bars going out, predicts that layer
0's strongest units correlate with bar input and the last layer's with bar output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from folkrnn_live.analysis.gramians import bar_steps
from folkrnn_live.recording.recording import Recording


def indicator(n: int, steps: list[int]) -> np.ndarray:
    v = np.zeros(n)
    v[[s for s in steps if 0 <= s < n]] = 1.0
    return v


def correlations(a: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Pearson r of each column of ``a`` [T, U] with ``target`` [T]; 0 where either is constant."""
    a = np.asarray(a, dtype=np.float64)
    ac = a - a.mean(axis=0, keepdims=True)
    tc = np.asarray(target, dtype=np.float64) - float(np.mean(target))
    den = np.linalg.norm(ac, axis=0) * np.linalg.norm(tc)
    return np.divide(ac.T @ tc, den, out=np.zeros(a.shape[1]), where=den > 0)


@dataclass(frozen=True)
class BarCorrelations:
    """``r_in`` and ``r_out`` [L, H]: every unit's correlation with bar input and bar output."""

    r_in: np.ndarray
    r_out: np.ndarray
    bars_in: list[int]
    bars_out: list[int]

    def ranking(self, layer: int, by: str, top: int = 10) -> list[tuple[int, float, float]]:
        """(unit, r_in, r_out) of the ``top`` units of a layer by |r_in| (``by='in'``) or |r_out|."""
        if by not in ("in", "out"):
            raise ValueError(f"by must be 'in' or 'out'; got {by!r}")
        r = self.r_in[layer] if by == "in" else self.r_out[layer]
        order = np.argsort(-np.abs(r), kind="stable")[:top]
        return [(int(u), float(self.r_in[layer, u]), float(self.r_out[layer, u])) for u in order]

    def layer_summary(self, top: int = 10) -> list[dict[str, float | int]]:
        """Per layer: the largest |r| for input and output, and the mean |r| of the top units."""
        rows = []
        for k in range(self.r_in.shape[0]):
            ai, ao = np.sort(np.abs(self.r_in[k]))[::-1], np.sort(np.abs(self.r_out[k]))[::-1]
            rows.append(
                {
                    "layer": k,
                    "max_abs_r_in": float(ai[0]),
                    "max_abs_r_out": float(ao[0]),
                    f"mean_abs_r_in_top{top}": float(ai[:top].mean()),
                    f"mean_abs_r_out_top{top}": float(ao[:top].mean()),
                    "units_in_above_out": int(np.sum(np.abs(self.r_in[k]) > np.abs(self.r_out[k]))),
                }
            )
        return rows


def bar_correlations(rec: Recording, gate: str = "h") -> BarCorrelations:
    """Correlations of every unit of every layer with bar input and bar output over the tune."""
    n = rec.n_steps
    if n < 3:
        raise ValueError(f"{rec.path}: the selected tune has {n} steps; bar correlations need at least 3")
    bars_in, bars_out = bar_steps(rec.input_tokens), bar_steps(rec.tokens)
    ind_in, ind_out = indicator(n, bars_in), indicator(n, bars_out)
    r_in = np.stack([correlations(rec.gate(gate, k), ind_in) for k in range(rec.num_layers)])
    r_out = np.stack([correlations(rec.gate(gate, k), ind_out) for k in range(rec.num_layers)])
    return BarCorrelations(r_in, r_out, bars_in, bars_out)


def parse_units(text: str, num_layers: int, hidden: int) -> list[tuple[int, int]]:
    """``--units 0:247,2:156`` as (layer, unit) pairs, each checked against the model."""
    out = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            a, b = part.split(":")
            layer, unit = int(a), int(b)
        except ValueError as exc:
            raise ValueError(f"--units must be LAYER:UNIT pairs like 0:247,2:156; got {text!r}") from exc
        if not 0 <= layer < num_layers or not 0 <= unit < hidden:
            raise ValueError(
                f"--units: layer must be in range 0..{num_layers - 1} and unit in range 0..{hidden - 1}; got {part}"
            )
        out.append((layer, unit))
    if not out:
        raise ValueError(f"--units must name at least one LAYER:UNIT; got {text!r}")
    return out


def bar_steps_out(rec: Recording) -> list[int]:
    """Steps that generate a bar token."""
    return bar_steps(rec.tokens)
