"""What the interpreter produces (musical events in units of 1/8) and what a player reports.

Musical events carry no wall-clock time: the same events are timed live by the player and offline by
the renderer.  Every event remembers the token step it came from so feedback can point at tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from folkrnn_live.tokens.vocab import COMPOUND_METERS, BarKind, Mode

PlayMode = Literal["linear", "unfolded"]
PlayerState = Literal["idle", "playing", "paused", "stopped", "finished", "failed"]
TuneEndReason = Literal["end", "exhausted"]


@dataclass(frozen=True)
class Note:
    """A note, chord or rest whose length is decided ("fixed"): nothing later can change it."""

    pitches: tuple[int, ...]  # MIDI numbers, ascending; empty for a rest
    length: Fraction  # units of 1/8 after tuplet and broken-rhythm factors
    step: int  # token step of its first token (the pitch, `[` or `z`)
    repeat: bool = False  # True when replayed from memory by the unfolder

    @property
    def is_rest(self) -> bool:
        return not self.pitches


@dataclass(frozen=True)
class Bar:
    kind: BarKind
    step: int
    repeat: bool = False  # a replayed bar, or the bar line the unfolder adds after a replayed section


@dataclass(frozen=True)
class Meter:
    num: int
    den: int
    step: int

    @property
    def compound(self) -> bool:
        # 6/8, 9/8, 12/8: the beat is a dotted quarter (three units).
        return (self.num, self.den) in COMPOUND_METERS

    @property
    def beat_units(self) -> int:
        """Units of 1/8 in one beat: quarter in x/4, half in x/2, dotted quarter in compound meters."""
        return (8 // self.den) * (3 if self.compound else 1) if self.den <= 8 else 1

    @property
    def bar_units(self) -> Fraction:
        return Fraction(self.num * 8, self.den)


DEFAULT_METER = Meter(4, 4, -1)


@dataclass(frozen=True)
class TuneKey:
    """The tune's mode token (every v2 tune has tonic C): ``K:Cdor`` is ``TuneKey("dor", step)``."""

    mode: Mode
    step: int


@dataclass(frozen=True)
class TuneEnd:
    step: int
    reason: TuneEndReason  # "end": the `</s>` token; "exhausted": the source returned None


#: What the interpreter produces, in playing order (the player's own reports are PlayerEvent).
MusicEvent = Note | Bar | Meter | TuneKey | TuneEnd


@dataclass(frozen=True)
class Problem:
    """A malformed spot in a token sequence: skipped, counted and reported, never raised."""

    step: int
    token: str
    reason: str

    def __str__(self) -> str:
        return f"step {self.step}: {self.token!r}: {self.reason}"


# --- what a player reports to its listener (the server forwards these as feedback) ---


@dataclass(frozen=True)
class TokenPulled:
    step: int
    token: str | None  # None: the source is exhausted
    at: float


@dataclass(frozen=True)
class NotePlayed:
    note: Note
    onset: float  # scheduled times on the event loop's clock (loop.time())
    off: float
    velocity: int
    channel: int
    bar: int  # bars played in this tune so far
    position: Fraction  # units since the bar line


@dataclass(frozen=True)
class BarPlayed:
    bar: Bar
    index: int
    at: float


@dataclass(frozen=True)
class TunePlayed:
    end: TuneEnd
    at: float


@dataclass(frozen=True)
class ProblemFound:
    problem: Problem


@dataclass(frozen=True)
class OutputFailed:
    output: str
    error: str
    at: float


@dataclass(frozen=True)
class StateChanged:
    state: PlayerState
    at: float


@dataclass
class PlayerStats:
    """A voice's running counts (read by the server's state replies and the benchmarks)."""

    tokens: int = 0
    notes: int = 0
    underruns: int = 0  # a note was due before its tokens had arrived (pulled late, on the spot)
    resyncs: int = 0  # the timeline was moved because a note came more than max_late late
    problems: int = 0


PlayerEvent = TokenPulled | NotePlayed | BarPlayed | TunePlayed | ProblemFound | OutputFailed | StateChanged
