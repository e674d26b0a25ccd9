"""How a voice plays: its settings (tempo, channel, velocity, accents, swing, gate ...), every player
range defined once, and the checks that validate them (errors name the field and the allowed values).

The ranges are used by these checks, the server's command table and the docs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from folkrnn_live.player.events import PlayMode
from folkrnn_live.player.unfold import check_play_mode

TEMPO_RANGE = (10.0, 600.0)
SWING_RANGE = (1.0, 3.0)
CHANNEL_RANGE = (0, 15)
PROGRAM_RANGE = (0, 127)
VELOCITY_RANGE = (1, 127)
ACCENT_RANGE = (-127, 127)
GATE_RANGE = (0.05, 1.0)


def check_int(name: str, value: object, lo: int, hi: int) -> None:
    """Raise ValueError('<name> must be in range lo..hi; got value') unless value is an int (not a
    bool) in lo..hi."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} must be in range {lo}..{hi}; got {value!r}")


def check_float(name: str, value: object, lo: float, hi: float, unit: str = "") -> None:
    """Like :func:`check_int` for a finite number (int or float, not bool); ``unit`` follows the range."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not lo <= value <= hi:  # type: ignore[operator]
        raise ValueError(f"{name} must be in range {lo:g}..{hi:g}{unit}; got {value!r}")


@dataclass(frozen=True)
class Accent:
    """Velocity added by metrical position: bar downbeats, other beats, everything else."""

    downbeat: int = 16
    beat: int = 6
    offbeat: int = 0

    def __post_init__(self) -> None:
        for name in ("downbeat", "beat", "offbeat"):
            check_int(f"accent.{name}", getattr(self, name), *ACCENT_RANGE)


@dataclass(frozen=True)
class VoiceSettings:
    """How one voice plays.  Every field is validated; errors name the field and the allowed values."""

    tempo: float = 120.0  # BPM of the meter's beat: quarter (x/4), half (3/2), dotted quarter (6/8 9/8 12/8)
    mode: PlayMode = "linear"
    channel: int = 0
    program: int | None = None  # None: send no program change
    velocity: int = 80
    accent: Accent = field(default_factory=Accent)
    swing: float = 1.0  # long:short ratio of eighth pairs in simple meters; 1 straight, 2 triplet swing
    gate: float = 0.9  # fraction of a note's length it sounds
    tune_gap: float = 2.0  # beats of silence between tunes
    send_clock: bool = False  # send MIDI clock (24 ppqn) with start/stop/continue

    def __post_init__(self) -> None:
        check_float("tempo", self.tempo, *TEMPO_RANGE, " BPM")
        check_play_mode(self.mode)
        check_int("channel", self.channel, *CHANNEL_RANGE)
        if self.program is not None:
            check_int("program", self.program, *PROGRAM_RANGE)
        check_int("velocity", self.velocity, *VELOCITY_RANGE)
        if not isinstance(self.accent, Accent):
            raise ValueError(f"accent must be an Accent; got {self.accent!r}")
        check_float("swing", self.swing, *SWING_RANGE)
        check_float("gate", self.gate, *GATE_RANGE)
        check_float("tune_gap", self.tune_gap, 0.0, 64.0, " beats")
        if not isinstance(self.send_clock, bool):
            raise ValueError(f"send_clock must be true or false; got {self.send_clock!r}")
