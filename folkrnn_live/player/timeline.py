"""The timeline that turns fixed events into timed notes: onsets, lengths, velocities, swing.

Shared by the real-time player and the offline renderer, so both play a tune the same way.  Times
are computed note by note from the previous onset (the tempo in force when a note starts decides its
length: a tempo change takes effect from the next note), never by summing sleeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from folkrnn_live.player.events import DEFAULT_METER, Bar, Meter, MusicEvent, Note, TuneEnd, TuneKey
from folkrnn_live.player.settings import VoiceSettings


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
        self, event: MusicEvent, t: float, seconds_per_quarter: float | None = None
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
        if isinstance(event, TuneKey):
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
