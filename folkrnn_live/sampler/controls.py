"""Per-voice interventions: what a performer changes between any two steps.

Each intervention is plain state with a method that turns it into what one step needs (a bias
vector, a suppress mask, snip masks, a steering vector, a forced input mix).  They compose: all
active interventions apply to the same step.  Value ranges are defined here once and reused by the
command registry, the CLI and the docs.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from folkrnn_live.tokens.vocab import Vocabulary

SnipMode = Literal["out", "all"]

TEMPERATURE_RANGE = (0.01, 10.0)  # folkrnn.org's range
BIAS_RANGE = (-100.0, 100.0)
STEER_ALPHA_RANGE = (-100.0, 100.0)
SEED_RANGE = (0, 2**32 - 1)
MAX_TOKENS_RANGE = (1, 100_000)
DEFAULT_MAX_TOKENS = 1000
FORCE_WEIGHT_RANGE = (0.0, 1.0)
STEPS_RANGE = (1, 1_000_000)  # for N-step interventions; None means "until cleared"


def check_range(name: str, value: float, lo: float, hi: float) -> None:
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in range {lo}..{hi}; got {value}")


def check_steps(name: str, steps: int | None) -> None:
    if steps is not None:
        check_range(name, steps, *STEPS_RANGE)


@dataclass
class Snip:
    """Silenced units of one layer.  ``out``: only the unit's outgoing connections (to the next
    layer or the softmax) are cut; ``all``: its recurrence too (its h is zeroed in the state)."""

    units: tuple[int, ...]
    mode: SnipMode = "out"

    def mask(self, hidden: int) -> np.ndarray:
        m = np.ones((1, hidden), np.float32)
        m[0, list(self.units)] = 0.0
        return m


@dataclass
class Force:
    """Replace the one-hot input with a mix: ``weight_generated`` x the token just generated plus,
    for each (candidates, weight), that weight x a token drawn at random from the candidates."""

    weight_generated: float
    mix: tuple[tuple[tuple[int, ...], float], ...]
    steps_left: int | None = None  # None: until cleared


@dataclass
class Controls:
    """Every intervention of one voice.  ``version`` changes whenever anything changes, so callers
    can tell whether a cached preview of the next step is still valid."""

    vocab_size: int
    hidden_size: int
    num_layers: int
    temperature: float = 1.0
    bias: np.ndarray = field(init=False)
    suppress: dict[int, int | None] = field(default_factory=dict)  # token -> steps left (None: until cleared)
    snips: dict[int, Snip] = field(default_factory=dict)  # layer -> snip
    force: Force | None = None
    inject: deque[int] = field(default_factory=deque)
    steer: tuple[int, float] | None = None  # (singular vector index, alpha)
    version: int = 0

    def __post_init__(self) -> None:
        self.bias = np.zeros(self.vocab_size, np.float64)
        self._summary: tuple[int, dict[str, Any]] | None = None

    def touch(self) -> None:
        self.version += 1

    # --- setters with validation (messages name the field and the allowed values) --------------
    def set_temperature(self, t: float) -> None:
        check_range("temperature", t, *TEMPERATURE_RANGE)
        self.temperature = float(t)
        self.touch()

    def add_bias(self, indices: list[int], amount: float) -> None:
        check_range("bias amount", amount, *BIAS_RANGE)
        self.bias[indices] += amount
        self.touch()

    def set_bias(self, indices: list[int], amount: float) -> None:
        check_range("bias amount", amount, *BIAS_RANGE)
        self.bias[indices] = amount
        self.touch()

    def clear_bias(self) -> None:
        self.bias[:] = 0.0
        self.touch()

    def add_suppress(self, indices: list[int], steps: int | None) -> None:
        check_steps("suppress steps", steps)
        remaining = set(range(self.vocab_size)) - set(self.suppress) - set(indices)
        if not remaining:
            raise ValueError("suppress would forbid every token; at least one token must stay allowed")
        for i in indices:
            self.suppress[i] = steps
        self.touch()

    def clear_suppress(self) -> None:
        self.suppress.clear()
        self.touch()

    def set_snip(self, layer: int, units: list[int], mode: SnipMode) -> None:
        if not 0 <= layer < self.num_layers:
            raise ValueError(f"layer must be in range 0..{self.num_layers - 1}; got {layer}")
        if mode not in ("out", "all"):
            raise ValueError(f"snip mode must be 'out' or 'all'; got {mode!r}")
        bad = [u for u in units if not 0 <= u < self.hidden_size]
        if bad:
            raise ValueError(f"snip units must be in range 0..{self.hidden_size - 1}; got {bad[:5]}")
        self.snips[layer] = Snip(tuple(sorted(set(units))), mode)
        self.touch()

    def restore(self, layer: int | None = None) -> None:
        if layer is None:
            self.snips.clear()
        else:
            if not 0 <= layer < self.num_layers:
                raise ValueError(f"layer must be in range 0..{self.num_layers - 1}; got {layer}")
            self.snips.pop(layer, None)
        self.touch()

    def set_force(self, weight_generated: float, mix: list[tuple[list[int], float]], steps: int | None) -> None:
        check_range("force weight", weight_generated, *FORCE_WEIGHT_RANGE)
        check_steps("force steps", steps)
        for cands, w in mix:
            check_range("force mix weight", w, *FORCE_WEIGHT_RANGE)
            if not cands:
                raise ValueError("force mix entries must name at least one token")
        self.force = Force(weight_generated, tuple((tuple(c), float(w)) for c, w in mix), steps)
        self.touch()

    def clear_force(self) -> None:
        self.force = None
        self.touch()

    def add_inject(self, indices: list[int]) -> None:
        self.inject.extend(indices)
        self.touch()

    def set_steer(self, component: int, alpha: float) -> None:
        if not 0 <= component < min(self.vocab_size, self.hidden_size):
            raise ValueError(f"steer component must be in range 0..{min(self.vocab_size, self.hidden_size) - 1}")
        check_range("steer alpha", alpha, *STEER_ALPHA_RANGE)
        self.steer = (component, float(alpha))
        self.touch()

    def clear_steer(self) -> None:
        self.steer = None
        self.touch()

    def clear_all(self) -> None:
        """Back to plain sampling (temperature kept)."""
        self.bias[:] = 0.0
        self.suppress.clear()
        self.snips.clear()
        self.force = None
        self.inject.clear()
        self.steer = None
        self.touch()

    # --- per-step views --------------------------------------------------------------------------
    def snip_masks(self) -> tuple[list[np.ndarray | None] | None, list[np.ndarray | None] | None]:
        if not self.snips:
            return None, None
        out: list[np.ndarray | None] = [None] * self.num_layers
        rec: list[np.ndarray | None] = [None] * self.num_layers
        for layer, snip in self.snips.items():
            m = snip.mask(self.hidden_size)
            out[layer] = m
            if snip.mode == "all":
                rec[layer] = m
        return out, (rec if any(r is not None for r in rec) else None)

    def adjusted_logits(self, logits: np.ndarray) -> np.ndarray:
        """(logits + bias) / temperature, with suppressed tokens at -inf.  logits: [V] float."""
        z = (logits.astype(np.float64) + self.bias) / self.temperature
        if self.suppress:
            z[list(self.suppress)] = -np.inf
        return z

    def tick(self) -> None:
        """One step has been generated: count down N-step interventions."""
        changed = False
        for tok, left in list(self.suppress.items()):
            if left is not None:
                changed = True
                if left <= 1:
                    del self.suppress[tok]
                else:
                    self.suppress[tok] = left - 1
        if self.force is not None and self.force.steps_left is not None:
            changed = True
            self.force.steps_left -= 1
            if self.force.steps_left <= 0:
                self.force = None
        if changed:
            self.touch()

    def summary(self, vocab: Vocabulary) -> dict[str, Any]:
        """A JSON-able snapshot of what is active (recorded with every step, sent as state).

        Built once per ``version`` and shared by every step until something changes, so capture
        costs nothing per step when the controls stand still; treat the dict as read-only."""
        if self._summary is not None and self._summary[0] == self.version:
            return self._summary[1]
        nz = np.flatnonzero(self.bias)
        doc = {
            "temperature": self.temperature,
            "bias": {vocab.tokens[i]: float(self.bias[i]) for i in nz},
            "suppress": {vocab.tokens[i]: s for i, s in self.suppress.items()},
            "snip": {str(k): {"mode": s.mode, "units": len(s.units)} for k, s in self.snips.items()},
            "force": None
            if self.force is None
            else {
                "weight_generated": self.force.weight_generated,
                "mix": [[len(c), w] for c, w in self.force.mix],
                "steps_left": self.force.steps_left,
            },
            "inject": [vocab.tokens[i] for i in self.inject],
            "steer": None if self.steer is None else {"component": self.steer[0], "alpha": self.steer[1]},
        }
        self._summary = (self.version, doc)
        return doc
