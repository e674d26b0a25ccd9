"""How long each note of a v2 token tune sounds: the one reader of the duration, broken-rhythm, tuplet
and chord rules.  The player's interpreter and the bar checker both read tunes through
:class:`RhythmReader`, so a tune's bars are counted exactly as the player plays them.

The rules (ABC 2.1 as the v2 data writes it, unit 1/8):

* a duration token follows its note or rest (``A 2``); a second duration for one note is skipped;
* a chord ``[ E 2 G ] 3/2`` lasts as long as its first note's duration inside (1 without one) times
  the duration after ``]``;
* ``>`` gives the note before 3/2 and the note after 1/2 of their lengths, ``<`` the other way round;
  the glued forms (``2>``, ``/2<``) carry the note before's duration;
* ``(p`` puts the next p notes (chords and rests count) in the time of q (:func:`tuplet_q`: q depends
  on the meter, set by the reader's user);
* a bar line or the end of the tune cuts a tuplet or a broken rhythm still waiting for notes.

Nothing here raises on malformed input (tunes sampled from a perturbed network): what cannot be read
is skipped and reported to the ``problem`` callback with the token's step and a reason.

Lengths are integer ticks (:data:`TICKS` per 1/8 unit): summing ints is exact and far faster than
summing Fractions, and every v2 duration, tuplet and broken rhythm is a whole number of ticks (anything
else, such as a hand-written ``1/11``, falls back to a Fraction of ticks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import NamedTuple

from folkrnn_live.tokens.vocab import TICKS, Ticks, TokenInfo, tuplet_q

#: (step, token text, reason): a malformed spot, skipped.
ProblemSink = Callable[[int, str, str], None]

_ONE = Fraction(1)
_BROKEN = {">": (Fraction(3, 2), Fraction(1, 2)), "<": (Fraction(1, 2), Fraction(3, 2))}
# Tokens that may stand inside an open chord; any other token closes it (and is reported).
_IN_CHORD = frozenset({"pitch", "duration", "chord"})


class NoteLength(NamedTuple):
    """A note, chord or rest whose length is decided: nothing later can change it."""

    step: int  # token step of its first token (the pitch, ``[`` or ``z``)
    pitches: tuple[int, ...]  # what the reader's user passed with the pitch tokens; empty for a rest
    ticks: Ticks  # sounding length, after tuplet and broken-rhythm factors


def scale(ticks: Ticks, factor: Fraction) -> Ticks:
    """``ticks * factor``, as an int whenever it is whole."""
    if factor == 1:
        return ticks
    x = ticks * factor
    return x.numerator if x.denominator == 1 else x


@dataclass(slots=True)
class _Pending:
    pitches: tuple[int, ...]
    step: int
    factor: Fraction  # tuplet and broken-rhythm factors so far
    base: Ticks = TICKS  # a chord's inner length (``[ E 2 G ]``)
    length: Ticks | None = None  # explicit duration token


@dataclass(slots=True)
class _Chord:
    step: int
    pitches: list[int] = field(default_factory=list)
    inner: Ticks | None = None


def _no_problem(step: int, token: str, reason: str) -> None:
    pass


class RhythmReader:
    """Feed token infos one at a time (:meth:`feed`); decided notes collect in :attr:`fixed`, in
    playing order, as soon as no later token can change them.  One reader reads tune after tune
    (:meth:`reset` between them)."""

    def __init__(self, meter: tuple[int, int] | None = None, problem: ProblemSink | None = None) -> None:
        #: The meter whose tuplet rule applies (None reads as a simple meter).
        self.meter = meter
        self.fixed: list[NoteLength] = []
        self._problem = problem or _no_problem
        self._handlers: dict[str, Callable[[int, TokenInfo, int], None]] = {
            "pitch": self._on_pitch,
            "rest": self._on_rest,
            "chord": self._on_chord,
            "duration": self._on_duration,
            "broken": self._on_broken,
            "tuplet": self._on_tuplet,
            "bar": self._on_bar,
            "end": self._on_end,
        }
        self._tuplet_ratios: dict[tuple[int, tuple[int, int] | None], Fraction] = {}
        self.reset()

    def reset(self) -> None:
        """Forget the tune in progress (notes already in :attr:`fixed` stay there)."""
        #: False until the tune's body starts (a note, chord, tuplet or bar line): meter and mode
        #: tokens belong before it.
        self.in_body = False
        self._pending: _Pending | None = None
        self._chord: _Chord | None = None
        self._tuplet_left = 0
        self._tuplet_ratio = _ONE
        self._next_factor: Fraction | None = None  # from a broken rhythm, for the note after it

    @property
    def pending(self) -> bool:
        """True while a note (or chord) has been started but its length is not decided yet."""
        return self._pending is not None or self._chord is not None

    def tuplet_ratio(self, p: int) -> Fraction:
        """q/p for ``(p`` in the reader's meter."""
        key = (p, self.meter)
        ratio = self._tuplet_ratios.get(key)
        if ratio is None:
            ratio = self._tuplet_ratios[key] = Fraction(tuplet_q(p, self.meter), p)
        return ratio

    def feed(self, step: int, info: TokenInfo, pitch: int = 0) -> None:
        """Read one token (``<s>`` is the caller's business).  ``pitch`` is what a pitch token
        contributes to its note's :attr:`NoteLength.pitches` (the player passes the sounding MIDI
        number); meter and mode tokens change nothing here but close an open chord."""
        cls = info.cls
        if self._chord is None:
            # The common cases first, without the dispatch.
            if cls == "pitch":
                self._flush()
                self._begin((pitch,), step)
                return
            pending = self._pending
            if cls == "duration" and pending is not None and pending.length is None:
                pending.length = info.ticks
                return
        elif cls not in _IN_CHORD:
            reason = "</s> inside a chord" if cls == "end" else "chord not closed"
            self._problem(step, info.text, f"{reason}; chord closed here")
            self._close_chord(step, info.text)
        handler = self._handlers.get(cls)
        if handler is not None:
            handler(step, info, pitch)

    def finish(self, step: int) -> None:
        """The tokens ran out at ``step``: close an open chord, decide the last note."""
        if self._chord is not None:
            self._problem(step, "", "token source ended inside a chord; chord closed")
            self._close_chord(step, "")
        self._flush()
        self._check_dangling(step, "", "end of tune")

    # --- token classes ---

    def _on_pitch(self, step: int, info: TokenInfo, pitch: int) -> None:
        if self._chord is not None:
            self._chord.pitches.append(pitch)
            return
        self._flush()
        self._begin((pitch,), step)

    def _on_rest(self, step: int, info: TokenInfo, pitch: int) -> None:
        self._flush()
        self._begin((), step)

    def _on_chord(self, step: int, info: TokenInfo, pitch: int) -> None:
        if info.chord == "open":
            if self._chord is not None:
                self._problem(step, info.text, "[ inside a chord; skipped")
                return
            self._flush()
            self.in_body = True
            self._chord = _Chord(step)
        elif self._chord is None:
            self._problem(step, info.text, "] without [; skipped")
        else:
            self._close_chord(step, info.text)

    def _close_chord(self, step: int, token: str) -> None:
        chord, self._chord = self._chord, None
        assert chord is not None
        if not chord.pitches:
            self._problem(step, token, "empty chord; skipped")
            return
        self._begin(tuple(sorted(set(chord.pitches))), chord.step)
        assert self._pending is not None
        self._pending.base = chord.inner or TICKS  # (a hand-written duration 0 counts as none)

    def _on_duration(self, step: int, info: TokenInfo, pitch: int) -> None:
        assert info.ticks is not None
        self._set_length(step, info.text, info.ticks)

    def _set_length(self, step: int, token: str, ticks: Ticks) -> None:
        if self._chord is not None:
            if not self._chord.pitches:
                self._problem(step, token, "duration before any note of the chord; skipped")
            elif self._chord.inner is None:
                # ABC: a chord lasts as long as its first note (times the length after `]`).
                self._chord.inner = ticks
            return
        if self._pending is None:
            self._problem(step, token, "duration with no note; skipped")
        elif self._pending.length is not None:
            self._problem(step, token, "second duration for one note; skipped")
        else:
            self._pending.length = ticks

    def _on_broken(self, step: int, info: TokenInfo, pitch: int) -> None:
        assert info.broken is not None
        if info.ticks is not None:  # glued v2 form: `2>` is duration 2, then `>`
            self._set_length(step, info.text, info.ticks)
        if self._pending is None:
            self._problem(step, info.text, "broken rhythm with no note before it; skipped")
            return
        before, after = _BROKEN[info.broken]
        self._pending.factor *= before
        self._flush()  # nothing can change the note before a broken rhythm any more
        self._next_factor = after

    def _on_tuplet(self, step: int, info: TokenInfo, pitch: int) -> None:
        self._flush()
        p = info.tuplet or 0
        if not 2 <= p <= 9:
            self._problem(step, info.text, "tuplet must be (2..(9; skipped")
            return
        if self._tuplet_left:
            missing = self._tuplet_left
            self._problem(step, info.text, f"tuplet inside a tuplet ({missing} notes missing); restarted")
        self.in_body = True
        self._tuplet_left = p
        self._tuplet_ratio = self.tuplet_ratio(p)

    def _on_bar(self, step: int, info: TokenInfo, pitch: int) -> None:
        self._flush()
        self._check_dangling(step, info.text, "bar line")
        self.in_body = True

    def _on_end(self, step: int, info: TokenInfo, pitch: int) -> None:
        self._flush()
        self._check_dangling(step, info.text, "end of tune")

    # --- helpers ---

    def _check_dangling(self, step: int, token: str, where: str) -> None:
        if self._tuplet_left:
            self._problem(step, token, f"tuplet cut by the {where} ({self._tuplet_left} notes missing)")
            self._tuplet_left = 0
        if self._next_factor is not None:
            self._problem(step, token, f"broken rhythm with no note after it before the {where}")
            self._next_factor = None

    def _begin(self, pitches: tuple[int, ...], step: int) -> None:
        self.in_body = True
        factor = _ONE
        if self._tuplet_left:
            factor = self._tuplet_ratio
            self._tuplet_left -= 1
        if self._next_factor is not None:
            factor = factor * self._next_factor
            self._next_factor = None
        self._pending = _Pending(pitches, step, factor)

    def _flush(self) -> None:
        p, self._pending = self._pending, None
        if p is None:
            return
        if p.length is None:
            ticks = p.base
        elif p.base == TICKS:
            ticks = p.length
        else:
            ticks = scale(p.base, Fraction(p.length) / TICKS)
        if p.factor is not _ONE:  # (most notes: no tuplet, no broken rhythm, no Fraction arithmetic)
            ticks = scale(ticks, p.factor)
        self.fixed.append(NoteLength(p.step, p.pitches, ticks))
