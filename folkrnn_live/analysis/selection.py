"""Choosing units to snip: by band power (seed posts 000 and 003) or at random, for comparison.

A selection prints as what the server's snip command takes: JSON ``{"layer": L, "mode": "out",
"units": [...]}`` or the OSC line ``/folkrnn/<voice>/snip L out u1 u2 ...``.  Layers are 0-based
everywhere in the API: layer 0 is the first LSTM layer (the seed posts' "layer 1"), layer 2 the
third.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from folkrnn_live.analysis.spectra import band_power_fraction, check_band

SnipMode = Literal["out", "all"]


@dataclass(frozen=True)
class UnitSelection:
    """Units of one layer (0-based), how to snip them, and why they were chosen."""

    layer: int
    units: tuple[int, ...]
    mode: SnipMode = "out"
    criterion: dict[str, Any] = field(default_factory=dict)
    scores: tuple[float, ...] = ()  # the band-power share of each selected unit, when selected by band

    def __post_init__(self) -> None:
        if self.layer < 0:
            raise ValueError(f"layer must be 0 or more (0 is the first LSTM layer); got {self.layer}")
        if self.mode not in ("out", "all"):
            raise ValueError(f"snip mode must be 'out' or 'all'; got {self.mode!r}")

    def snip_json(self) -> dict[str, Any]:
        """The server's snip command as JSON (what ``controls.set_snip`` takes)."""
        return {"layer": self.layer, "mode": self.mode, "units": list(self.units)}

    def osc(self, voice: str = "a") -> str:
        """The same command as an OSC line."""
        return " ".join([f"/folkrnn/{voice}/snip", str(self.layer), self.mode, *map(str, self.units)])

    def to_json(self, voice: str = "a") -> dict[str, Any]:
        return {
            "snip": self.snip_json(),
            "osc": self.osc(voice),
            "count": len(self.units),
            "criterion": self.criterion,
            "scores": [round(s, 6) for s in self.scores],
        }

    def dumps(self) -> str:
        return json.dumps(self.snip_json())


def _check_layer(layer: int, num_layers: int | None) -> None:
    if layer < 0 or (num_layers is not None and layer >= num_layers):
        top = "" if num_layers is None else f"..{num_layers - 1}"
        raise ValueError(f"layer must be in range 0{top} (0 is the first LSTM layer); got {layer}")


def select_by_band(
    seq: np.ndarray,
    layer: int,
    band: tuple[float, float] = (8.7, 9.3),
    min_fraction: float = 0.05,
    window_name: str = "hann",
    pad_to: int | None = None,
    mode: SnipMode = "out",
) -> UnitSelection:
    """Units of ``seq`` [T, H] (one layer's h over a tune) with at least ``min_fraction`` of their
    power in periods ``band`` (steps), strongest first (seed 000: layer 2, 5 % in 8.7-9.3)."""
    if not 0.0 <= min_fraction <= 1.0:
        raise ValueError(f"min_fraction must be in range 0..1; got {min_fraction}")
    lo, hi = check_band(band)
    share = band_power_fraction(seq, (lo, hi), window_name, pad_to)
    order = np.argsort(-share, kind="stable")
    units = [int(u) for u in order if share[u] >= min_fraction and share[u] > 0]
    return UnitSelection(
        layer,
        tuple(units),
        mode,
        {
            "by": "band",
            "band": [lo, hi],
            "min_fraction": min_fraction,
            "window": window_name,
            "pad_to": pad_to,
        },
        tuple(float(share[u]) for u in units),
    )


def top_by_band(
    share: np.ndarray,
    layer: int,
    count: int,
    band: tuple[float, float],
    mode: SnipMode = "out",
    **criterion: Any,
) -> UnitSelection:
    """The ``count`` units with the largest band-power shares ``share`` [H] (ties: lower index)."""
    if not 0 <= count <= len(share):
        raise ValueError(f"count must be in range 0..{len(share)}; got {count}")
    order = np.argsort(-np.asarray(share), kind="stable")[:count]
    return UnitSelection(
        layer,
        tuple(int(u) for u in order),
        mode,
        {"by": "band-rank", "band": list(band), **criterion},
        tuple(float(share[u]) for u in order),
    )


def random_units(
    hidden: int, count: int, layer: int, seed: int = 0, mode: SnipMode = "out", exclude: tuple[int, ...] = ()
) -> UnitSelection:
    """``count`` distinct units of ``hidden`` drawn at random (reproducible from ``seed``), avoiding
    ``exclude`` when there is room: the comparison set for a band selection of the same size."""
    if not 0 <= count <= hidden:
        raise ValueError(f"count must be in range 0..{hidden}; got {count}")
    rng = np.random.default_rng(seed)
    pool = np.setdiff1d(np.arange(hidden), np.asarray(exclude, dtype=int))
    if len(pool) < count:
        pool = np.arange(hidden)
    units = sorted(int(u) for u in rng.choice(pool, size=count, replace=False))
    crit = {"by": "random", "seed": seed, "excluded": len(exclude) if len(pool) < hidden else 0}
    return UnitSelection(layer, tuple(units), mode, crit)
