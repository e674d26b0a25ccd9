"""Settings of a voice and the timeline that turns fixed events into timed notes.

Shared by the real-time player and the offline renderer, so both play a tune the same way.  Times
are computed note by note from the previous onset (the tempo in force when a note starts decides its
length: a tempo change takes effect from the next note), never by summing sleeps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

from folkrnn_live.player.events import DEFAULT_METER, Bar, Event, Key, Meter, Note, PlayMode, TuneEnd
from folkrnn_live.player.unfold import check_play_mode

# Every player range, defined once: the checks below, the server's command table and the docs use these.
TEMPO_RANGE = (10.0, 600.0)
SWING_RANGE = (1.0, 3.0)
CHANNEL_RANGE = (0, 15)
PROGRAM_RANGE = (0, 127)
VELOCITY_RANGE = (1, 127)
ACCENT_RANGE = (-127, 127)
GATE_RANGE = (0.05, 1.0)


def _check_int(name: str, value: object, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} must be in range {lo}..{hi}; got {value!r}")


def _check_float(name: str, value: object, lo: float, hi: float, unit: str = "") -> None:
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
            _check_int(f"accent.{name}", getattr(self, name), *ACCENT_RANGE)


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
        _check_float("tempo", self.tempo, *TEMPO_RANGE, " BPM")
        check_play_mode(self.mode)
        _check_int("channel", self.channel, *CHANNEL_RANGE)
        if self.program is not None:
            _check_int("program", self.program, *PROGRAM_RANGE)
        _check_int("velocity", self.velocity, *VELOCITY_RANGE)
        if not isinstance(self.accent, Accent):
            raise ValueError(f"accent must be an Accent; got {self.accent!r}")
        _check_float("swing", self.swing, *SWING_RANGE)
        _check_float("gate", self.gate, *GATE_RANGE)
        _check_float("tune_gap", self.tune_gap, 0.0, 64.0, " beats")
        if not isinstance(self.send_clock, bool):
            raise ValueError(f"send_clock must be true or false; got {self.send_clock!r}")


@dataclass(frozen=True)
class TimedNote:
    note: Note
    onset: float  # seconds on the timeline (loop.time() live, from 0 offline)
    off: float  # note-off time (onset + length * gate)
    end: float  # where the next event starts
    velocity: int
    channel: int
    bar: int
    position: Fraction  # units since the bar line


def swing_warp(pos: Fraction, fraction: float) -> float:
    """Position in a bar (units) to swung position: each pair of eighths (one quarter) is split
    ``fraction`` : ``1 - fraction`` instead of evenly; quarter boundaries stay where they are."""
    k, x = divmod(pos, 2)
    x_f = float(x)
    if x_f <= 1.0:
        return 2.0 * float(k) + x_f * 2.0 * fraction
    return 2.0 * float(k) + 2.0 * fraction + (x_f - 1.0) * 2.0 * (1.0 - fraction)


class Timeline:
    """Consumes events in playing order; gives each note its onset, length and velocity."""

    def __init__(self, settings: VoiceSettings) -> None:
        self.settings = settings
        self.reset()

    def reset(self) -> None:
        self.meter: Meter = DEFAULT_METER
        self.bar_index = 0
        self.position = Fraction(0)

    def seconds_per_unit(self, seconds_per_quarter: float | None = None) -> float:
        """Seconds per 1/8 unit: from the tempo in the meter's beat, or from an external clock."""
        if seconds_per_quarter is not None:
            return seconds_per_quarter / 2.0
        return 60.0 / self.settings.tempo / self.meter.beat_units

    def velocity(self, position: Fraction) -> int:
        s = self.settings
        if position == 0:
            extra = s.accent.downbeat
        elif position % self.meter.beat_units == 0:
            extra = s.accent.beat
        else:
            extra = s.accent.offbeat
        return max(1, min(127, s.velocity + extra))

    def advance(
        self, event: Event, t: float, seconds_per_quarter: float | None = None
    ) -> tuple[TimedNote | None, float]:
        """Apply one event starting at time ``t``; returns its timed note (for notes and rests) and
        the time the following event starts."""
        if isinstance(event, Bar):
            if self.position > 0:
                self.bar_index += 1
            self.position = Fraction(0)
            return None, t
        if isinstance(event, Meter):
            self.meter = event
            return None, t
        if isinstance(event, Key):
            return None, t
        spu = self.seconds_per_unit(seconds_per_quarter)
        if isinstance(event, TuneEnd):
            gap = self.settings.tune_gap * self.meter.beat_units * spu
            self.reset()
            return None, t + gap
        start, stop = self.position, self.position + event.length
        if self.settings.swing != 1.0 and not self.meter.compound:
            f = self.settings.swing / (1.0 + self.settings.swing)
            span = swing_warp(stop, f) - swing_warp(start, f)
        else:
            span = float(event.length)
        dur = max(span, 0.0) * spu
        timed = TimedNote(
            note=event,
            onset=t,
            off=t + dur * self.settings.gate,
            end=t + dur,
            velocity=self.velocity(start),
            channel=self.settings.channel,
            bar=self.bar_index,
            position=start,
        )
        self.position = stop
        return timed, t + dur
