"""Streaming interpreter: v2 tokens in, fixed musical events out, with ABC 2.1 semantics.

A note's length is only known when the token after it arrives (a duration or a broken-rhythm token may
follow), so :meth:`Interpreter.feed` returns the events that became *fixed* with that token and
:attr:`Interpreter.pending` says whether an undecided note is waiting.  A real-time player pulls tokens
only until its next note is fixed.  Malformed input never raises: it is skipped, counted and reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from fractions import Fraction

from folkrnn_live.player.events import DEFAULT_METER, Bar, Meter, MusicEvent, Note, Problem, TuneEnd, TuneKey
from folkrnn_live.tokens.rhythm import TICKS, RhythmReader
from folkrnn_live.tokens.vocab import MODE_SIGNATURES, V2, Mode, TokenInfo, Vocabulary, tuplet_q

_SHIFT = {"^": 1, "_": -1, "=": 0}
MAX_PROBLEMS = 10_000  # kept in memory; the count goes on


def tuplet_ratio(p: int, meter: Meter) -> Fraction:
    """q/p for ``(p``: p notes in the time of q (ABC 2.1 section 4.13)."""
    return Fraction(tuplet_q(p, (meter.num, meter.den)), p)


class Interpreter:
    """Feed tokens one at a time (:meth:`feed_index` for a vocabulary index, :meth:`feed` for a
    token's text); get fixed events back.  One instance plays tune after tune.

    Note lengths come from :class:`~folkrnn_live.tokens.rhythm.RhythmReader` (the rules the bar
    checker uses too); this class adds pitches (key signature and accidentals), the tune's header,
    bar lines and tune ends."""

    def __init__(self, report: Callable[[Problem], None] | None = None, vocab: Vocabulary = V2) -> None:
        self.vocab = vocab
        self.problems: list[Problem] = []
        self.problem_count = 0
        self.step = 0  # index of the next token fed
        self._report = report
        self._rhythm = RhythmReader(problem=self._problem)
        self._handlers: dict[str, Callable[[int, TokenInfo, list[MusicEvent]], None]] = {
            "bar": self._on_bar, "meter": self._on_meter, "mode": self._on_mode, "end": self._on_end,
        }
        self._new_tune()

    def _new_tune(self) -> None:
        self.meter: Meter = DEFAULT_METER
        self.mode: Mode = "maj"
        self._started = False  # any token of this tune seen (other than <s>)
        self._bar_acc: dict[tuple[str, int], int] = {}
        self._rhythm.reset()
        self._rhythm.meter = (self.meter.num, self.meter.den)

    @property
    def pending(self) -> bool:
        """True while a note (or chord) has been started but its length is not decided yet."""
        return self._rhythm.pending

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

    def feed_index(self, index: int) -> list[MusicEvent]:
        """Interpret the token at ``index`` of the vocabulary; returns the events it fixed, in
        playing order."""
        step = self.step
        self.step += 1
        if not 0 <= index < len(self.vocab.info):
            self._problem(step, str(index), f"token index must be in range 0..{len(self.vocab.info) - 1}; skipped")
            return []
        return self._feed(step, self.vocab.info[index])

    def feed(self, token: str) -> list[MusicEvent]:
        """Interpret one token given as text (see :meth:`feed_index`)."""
        step = self.step
        self.step += 1
        info = self.vocab.lookup(token)
        if info is None:
            self._problem(step, token, "not a v2 token; skipped")
            return []
        return self._feed(step, info)

    def _feed(self, step: int, info: TokenInfo) -> list[MusicEvent]:
        out: list[MusicEvent] = []
        if info.cls == "start":
            if self._started:
                self._problem(step, info.text, "<s> inside a tune; skipped")
            return out
        self._started = True
        rhythm = self._rhythm
        rhythm.feed(step, info, self._midi(info) if info.cls == "pitch" else 0)
        if rhythm.fixed:
            self._take_notes(out)
        handler = self._handlers.get(info.cls)
        if handler is not None:
            handler(step, info, out)
        return out

    def finish(self) -> list[MusicEvent]:
        """The source is exhausted: flush the pending note and end the tune (if one was started)."""
        out: list[MusicEvent] = []
        if not self._started:
            return out
        self._rhythm.finish(self.step)
        self._take_notes(out)
        out.append(TuneEnd(self.step, "exhausted"))
        self._new_tune()
        return out

    def _take_notes(self, out: list[MusicEvent]) -> None:
        fixed = self._rhythm.fixed
        out.extend(Note(n.pitches, Fraction(n.ticks, TICKS), n.step) for n in fixed)
        fixed.clear()

    # --- token classes other than notes and lengths ---

    def _on_bar(self, step: int, info: TokenInfo, out: list[MusicEvent]) -> None:
        self._bar_acc.clear()
        assert info.bar is not None
        out.append(Bar(info.bar, step))

    def _on_meter(self, step: int, info: TokenInfo, out: list[MusicEvent]) -> None:
        if self._rhythm.in_body:
            self._problem(step, info.text, "meter token inside the tune body; ignored")
            return
        if self.meter is not DEFAULT_METER:
            self._problem(step, info.text, "second meter token in the header; replaces the first")
        assert info.meter is not None
        self.meter = Meter(info.meter[0], info.meter[1], step)
        self._rhythm.meter = info.meter
        out.append(self.meter)

    def _on_mode(self, step: int, info: TokenInfo, out: list[MusicEvent]) -> None:
        if self._rhythm.in_body:
            self._problem(step, info.text, "mode token inside the tune body; ignored")
            return
        assert info.mode is not None
        self.mode = info.mode
        out.append(TuneKey(info.mode, step))

    def _on_end(self, step: int, info: TokenInfo, out: list[MusicEvent]) -> None:
        out.append(TuneEnd(step, "end"))
        self._new_tune()

    # --- helpers ---

    def _midi(self, info: TokenInfo) -> int:
        assert info.letter is not None and info.octave is not None and info.midi is not None
        natural = info.midi - _SHIFT.get(info.accidental or "", 0)
        key = (info.letter.upper(), info.octave)
        if info.accidental:
            # An explicit accidental (`=` included) holds for this letter and octave to the bar line.
            self._bar_acc[key] = _SHIFT[info.accidental]
        shift = self._bar_acc.get(key, MODE_SIGNATURES[self.mode].get(key[0], 0))
        return natural + shift


def interpret(tokens: Iterable[str]) -> tuple[list[MusicEvent], list[Problem]]:
    """Interpret a whole token sequence (offline): all events, then the problems found."""
    it = Interpreter()
    events: list[MusicEvent] = []
    for t in tokens:
        events.extend(it.feed(t))
    events.extend(it.finish())
    return events, it.problems
