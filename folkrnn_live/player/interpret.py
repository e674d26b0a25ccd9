"""Streaming interpreter: v2 tokens in, fixed musical events out, with ABC 2.1 semantics.

A note's length is only known when the token after it arrives (a duration or a broken-rhythm token may
follow), so :meth:`Interpreter.feed` returns the events that became *fixed* with that token and
:attr:`Interpreter.pending` says whether an undecided note is waiting.  A real-time player pulls tokens
only until its next note is fixed.  Malformed input never raises: it is skipped, counted and reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

from folkrnn_live.player.events import DEFAULT_METER, Bar, Event, Key, Meter, Note, Problem, TuneEnd
from folkrnn_live.tokens.vocab import MODE_SIGNATURES, Mode, TokenInfo, classify, tuplet_q

_SHIFT = {"^": 1, "_": -1, "=": 0}
_BROKEN = {">": (Fraction(3, 2), Fraction(1, 2)), "<": (Fraction(1, 2), Fraction(3, 2))}
MAX_PROBLEMS = 10_000  # kept in memory; the count goes on


def tuplet_ratio(p: int, meter: Meter) -> Fraction:
    """q/p for ``(p``: p notes in the time of q (ABC 2.1 section 4.13)."""
    return Fraction(tuplet_q(p, (meter.num, meter.den)), p)


@dataclass
class _Pending:
    pitches: tuple[int, ...]
    step: int
    factor: Fraction  # tuplet and broken-rhythm factors so far
    base: Fraction = Fraction(1)  # a chord's inner length (`[ E 2 G ]`)
    length: Fraction | None = None  # explicit duration token


@dataclass
class _Chord:
    step: int
    pitches: list[int] = field(default_factory=list)
    inner: Fraction | None = None


class Interpreter:
    """Feed tokens one at a time; get fixed events back.  One instance plays tune after tune."""

    def __init__(self, report: Callable[[Problem], None] | None = None) -> None:
        self.problems: list[Problem] = []
        self.problem_count = 0
        self.step = 0  # index of the next token fed
        self._report = report
        self._new_tune()

    def _new_tune(self) -> None:
        self.meter: Meter = DEFAULT_METER
        self.mode: Mode = "maj"
        self._in_header = True
        self._started = False  # any token of this tune seen (other than <s>)
        self._bar_acc: dict[tuple[str, int], int] = {}
        self._pending: _Pending | None = None
        self._chord: _Chord | None = None
        self._tuplet_left = 0
        self._tuplet_ratio = Fraction(1)
        self._next_factor: Fraction | None = None  # from a broken rhythm, for the note after it

    @property
    def pending(self) -> bool:
        """True while a note (or chord) has been started but its length is not decided yet."""
        return self._pending is not None or self._chord is not None

    def reset(self) -> None:
        """Forget the tune in progress (a new tune starts); problems and step count are kept."""
        self._new_tune()

    # --- problems ---

    def _problem(self, step: int, token: str, reason: str) -> None:
        self.problem_count += 1
        p = Problem(step, token, reason)
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(p)
        if self._report is not None:
            self._report(p)

    # --- feeding ---

    def feed(self, token: str) -> list[Event]:
        """Interpret one token; returns the events it fixed, in playing order."""
        step = self.step
        self.step += 1
        out: list[Event] = []
        try:
            info = classify(token)
        except ValueError:
            self._problem(step, token, "not a v2 token; skipped")
            return out
        if info.cls == "start":
            if self._started:
                self._problem(step, token, "<s> inside a tune; skipped")
            return out
        self._started = True
        if self._chord is not None and info.cls not in ("pitch", "duration", "chord"):
            reason = "</s> inside a chord" if info.cls == "end" else "chord not closed"
            self._problem(step, token, f"{reason}; chord closed here")
            self._close_chord(step, token, out)
        handler = getattr(self, f"_on_{info.cls}")
        handler(step, token, info, out)
        return out

    def finish(self) -> list[Event]:
        """The source is exhausted: flush the pending note and end the tune (if one was started)."""
        out: list[Event] = []
        if not self._started:
            return out
        if self._chord is not None:
            self._problem(self.step, "", "token source ended inside a chord; chord closed")
            self._close_chord(self.step, "", out)
        self._end_tune(self.step, "", "exhausted", out)
        return out

    # --- token classes ---

    def _on_pitch(self, step: int, token: str, info: TokenInfo, out: list[Event]) -> None:
        midi = self._midi(info)
        if self._chord is not None:
            self._chord.pitches.append(midi)
            return
        self._flush(out)
        self._begin((midi,), step)

    def _on_rest(self, step: int, token: str, info: TokenInfo, out: list[Event]) -> None:
        self._flush(out)
        self._begin((), step)

    def _on_chord(self, step: int, token: str, info: TokenInfo, out: list[Event]) -> None:
        if info.chord == "open":
            if self._chord is not None:
                self._problem(step, token, "[ inside a chord; skipped")
                return
            self._flush(out)
            self._in_header = False
            self._chord = _Chord(step)
        elif self._chord is None:
            self._problem(step, token, "] without [; skipped")
        else:
            self._close_chord(step, token, out)

    def _close_chord(self, step: int, token: str, out: list[Event]) -> None:
        chord, self._chord = self._chord, None
        assert chord is not None
        if not chord.pitches:
            self._problem(step, token, "empty chord; skipped")
            return
        self._begin(tuple(sorted(set(chord.pitches))), chord.step)
        assert self._pending is not None
        self._pending.base = chord.inner or Fraction(1)

    def _on_duration(self, step: int, token: str, info: TokenInfo, out: list[Event]) -> None:
        assert info.duration is not None
        self._set_length(step, token, info.duration)

    def _set_length(self, step: int, token: str, length: Fraction) -> None:
        if self._chord is not None:
            if not self._chord.pitches:
                self._problem(step, token, "duration before any note of the chord; skipped")
            elif self._chord.inner is None:
                # ABC: a chord lasts as long as its first note (times the length after `]`).
                self._chord.inner = length
            return
        if self._pending is None:
            self._problem(step, token, "duration with no note; skipped")
        elif self._pending.length is not None:
            self._problem(step, token, "second duration for one note; skipped")
        else:
            self._pending.length = length

    def _on_broken(self, step: int, token: str, info: TokenInfo, out: list[Event]) -> None:
        assert info.broken is not None
        if info.duration is not None:  # glued v2 form: `2>` is duration 2, then `>`
            self._set_length(step, token, info.duration)
        if self._pending is None:
            self._problem(step, token, "broken rhythm with no note before it; skipped")
            return
        before, after = _BROKEN[info.broken]
        self._pending.factor *= before
        self._flush(out)  # nothing can change the note before a broken rhythm any more
        self._next_factor = after

    def _on_tuplet(self, step: int, token: str, info: TokenInfo, out: list[Event]) -> None:
        self._flush(out)
        p = info.tuplet or 0
        if not 2 <= p <= 9:
            self._problem(step, token, "tuplet must be (2..(9; skipped")
            return
        if self._tuplet_left:
            missing = self._tuplet_left
            self._problem(step, token, f"tuplet inside a tuplet ({missing} notes missing); restarted")
        self._in_header = False
        self._tuplet_left = p
        self._tuplet_ratio = tuplet_ratio(p, self.meter)

    def _on_bar(self, step: int, token: str, info: TokenInfo, out: list[Event]) -> None:
        self._flush(out)
        self._check_dangling(step, token, "bar line")
        self._bar_acc.clear()
        self._in_header = False
        assert info.bar is not None
        out.append(Bar(info.bar, step))

    def _on_meter(self, step: int, token: str, info: TokenInfo, out: list[Event]) -> None:
        if not self._in_header:
            self._problem(step, token, "meter token inside the tune body; ignored")
            return
        if self.meter is not DEFAULT_METER:
            self._problem(step, token, "second meter token in the header; replaces the first")
        assert info.meter is not None
        self.meter = Meter(info.meter[0], info.meter[1], step)
        out.append(self.meter)

    def _on_mode(self, step: int, token: str, info: TokenInfo, out: list[Event]) -> None:
        if not self._in_header:
            self._problem(step, token, "mode token inside the tune body; ignored")
            return
        assert info.mode is not None
        self.mode = info.mode
        out.append(Key(info.mode, step))

    def _on_start(self, step: int, token: str, info: TokenInfo, out: list[Event]) -> None:  # pragma: no cover
        pass  # handled in feed()

    def _on_end(self, step: int, token: str, info: TokenInfo, out: list[Event]) -> None:
        self._end_tune(step, token, "end", out)

    # --- helpers ---

    def _end_tune(self, step: int, token: str, reason: str, out: list[Event]) -> None:
        self._flush(out)
        self._check_dangling(step, token, "end of tune")
        out.append(TuneEnd(step, reason))  # type: ignore[arg-type]
        self._new_tune()

    def _check_dangling(self, step: int, token: str, where: str) -> None:
        if self._tuplet_left:
            self._problem(step, token, f"tuplet cut by the {where} ({self._tuplet_left} notes missing)")
            self._tuplet_left = 0
        if self._next_factor is not None:
            self._problem(step, token, f"broken rhythm with no note after it before the {where}")
            self._next_factor = None

    def _midi(self, info: TokenInfo) -> int:
        assert info.letter is not None and info.octave is not None and info.midi is not None
        natural = info.midi - _SHIFT.get(info.accidental or "", 0)
        key = (info.letter.upper(), info.octave)
        if info.accidental:
            # An explicit accidental (`=` included) holds for this letter and octave to the bar line.
            self._bar_acc[key] = _SHIFT[info.accidental]
        shift = self._bar_acc.get(key, MODE_SIGNATURES[self.mode].get(key[0], 0))
        return natural + shift

    def _begin(self, pitches: tuple[int, ...], step: int) -> None:
        self._in_header = False
        factor = Fraction(1)
        if self._tuplet_left:
            factor *= self._tuplet_ratio
            self._tuplet_left -= 1
        if self._next_factor is not None:
            factor *= self._next_factor
            self._next_factor = None
        self._pending = _Pending(pitches, step, factor)

    def _flush(self, out: list[Event]) -> None:
        p, self._pending = self._pending, None
        if p is not None:
            length = p.base * (p.length if p.length is not None else Fraction(1)) * p.factor
            out.append(Note(p.pitches, length, p.step))


def interpret(tokens: list[str] | tuple[str, ...]) -> tuple[list[Event], list[Problem]]:
    """Interpret a whole token sequence (offline): all events, then the problems found."""
    it = Interpreter()
    events: list[Event] = []
    for t in tokens:
        events.extend(it.feed(t))
    events.extend(it.finish())
    return events, it.problems
