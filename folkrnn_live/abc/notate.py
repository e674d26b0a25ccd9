"""Writing read events as v2 tokens: transposition to C, spelling, accidentals, bar lines.

An :class:`Event` holds sounding pitches (diatonic step and MIDI number), so transposition is diatonic
(a D major ``^g`` becomes ``^f``) and every note is spelled afresh: relative to the C-mode signature,
with accidentals holding to the end of the bar per letter and octave, an accidental token only where a
transcriber would write one, and an enharmonic spelling when the diatonic one has no v2 token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

from folkrnn_live.abc.lex import WrittenNote
from folkrnn_live.abc.parse import Key
from folkrnn_live.tokens import LETTER_SEMITONE, LETTERS, MODE_SIGNATURES, TICKS, V2, Mode

_ACC_TEXT = {1: "^", -1: "_", 0: "="}
LOW, HIGH = V2.midi_range  # MIDI of C, and b'
BAR_TOKENS = frozenset(V2.tokens_of("bar"))


@dataclass(slots=True)
class Event:
    """One musical event of a tune, read from ABC, before it is written as tokens."""

    kind: str  # note, rest, chord, broken, tuplet, bar, eol
    notes: list[WrittenNote] = field(default_factory=list)  # as written
    length: Fraction = Fraction(1)  # in 1/8 units, as written (before broken rhythm and tuplet)
    tie: bool = False
    in_tuplet: bool = False
    text: str = ""
    pitches: list[tuple[int, int]] = field(default_factory=list)  # sounding: (diatonic step, midi)
    ticks: int | Fraction = TICKS  # length in ticks (integer arithmetic is far faster)


def duration_token(units: Fraction) -> str | None:
    """A length in 1/8 units as a v2 duration token (None for 1, which is written without one)."""
    key = (units.numerator, units.denominator)  # hashing a Fraction is slow; this runs per note
    tok = _DURATION_TOKENS.get(key, "?")
    if tok == "?":
        n, d = key
        tok = None if key == (1, 1) else str(n) if d == 1 else f"/{d}" if n == 1 else f"{n}/{d}"
        _DURATION_TOKENS[key] = tok
    return tok


_DURATION_TOKENS: dict[tuple[int, int], str | None] = {}


class Unspellable(Exception):
    """No v2 token spells this pitch (out of range, or no spelling in the vocabulary)."""

    def __init__(self, midi: int, text: str) -> None:
        self.midi, self.text = midi, text


def _letter_text(letter_idx: int, octave: int) -> str:
    ch = LETTERS[letter_idx]
    if octave >= 1:
        return ch.lower() + "'" * (octave - 1)
    return ch + "," * (-octave)


@lru_cache(maxsize=4096)
def _spellings(step: int, midi: int) -> tuple[tuple[int, int, int, str], ...]:
    """Spellings of a sounding pitch as (letter index, octave, alteration, letter text): the diatonic
    one first, then enharmonic ones, naturals before sharps and flats; double accidentals excluded."""
    cands: list[tuple[int, int, int, str]] = []
    for s in (step, step + 1, step - 1):
        li, octave = s % 7, s // 7
        alter = midi - (60 + 12 * octave + LETTER_SEMITONE[LETTERS[li]])
        if -1 <= alter <= 1:
            cands.append((li, octave, alter, _letter_text(li, octave)))
    if cands and cands[0][:2] == (step % 7, step // 7):
        return (cands[0], *sorted(cands[1:], key=lambda c: abs(c[2])))
    return tuple(sorted(cands, key=lambda c: abs(c[2])))


def _spell(
    step: int, midi: int, state: dict[tuple[int, int], int], sig: dict[str, int]
) -> tuple[str, tuple[int, int], int]:
    """The token for a sounding pitch given the bar's accidental state.

    Returns (token, (letter index, octave), alteration)."""
    first = ""
    for li, octave, alter, text in _spellings(step, midi):
        current = state.get((li, octave))
        if current is None:
            current = sig.get(LETTERS[li], 0)
        tok = text if current == alter else _ACC_TEXT[alter] + text
        first = first or tok
        if tok in V2.index:
            return tok, (li, octave), alter
    raise Unspellable(midi, first or f"midi {midi}")


def best_mode(events: list[Event], shift: tuple[int, int], modes: list[Mode]) -> Mode:
    """The mode whose C signature agrees with the most notes (diatonic spelling), first on ties."""
    if len(modes) == 1:
        return modes[0]
    dsteps, dsemis = shift
    counts = dict.fromkeys(modes, 0)
    for e in events:
        for step, midi in e.pitches:
            s = step - dsteps
            letter = LETTERS[s % 7]
            alter = midi - dsemis - (60 + 12 * (s // 7) + LETTER_SEMITONE[letter])
            for mode in modes:
                if MODE_SIGNATURES[mode].get(letter, 0) != alter:
                    counts[mode] += 1
    return min(modes, key=lambda m: (counts[m], modes.index(m)))


def emit(events: list[Event], shift: tuple[int, int], mode: Mode) -> list[str]:
    """The body tokens for one transposition and mode."""
    dsteps, dsemis = shift
    sig = MODE_SIGNATURES[mode]
    state: dict[tuple[int, int], int] = {}
    out: list[str] = []

    def pitch_tok(step: int, midi: int) -> str:
        s, m = step - dsteps, midi - dsemis
        if not LOW <= m <= HIGH:
            raise Unspellable(m, f"MIDI {m}")
        tok, where, alter = _spell(s, m, state, sig)
        if tok[0] in "^_=":
            state[where] = alter
        return tok

    for e in events:
        k = e.kind
        if k in ("note", "rest", "chord"):
            if k == "note":
                out.append(pitch_tok(*e.pitches[0]))
            elif k == "rest":
                out.append("z")
            else:
                out.append("[")
                out.extend(pitch_tok(*p) for p in e.pitches)
                out.append("]")
            d = duration_token(e.length)
            if d is not None:
                out.append(d)
        elif k == "broken":
            prev = out[-1] if out else None
            if prev is not None and prev + e.text in V2.index and prev[0] in "0123456789/":
                out[-1] = prev + e.text  # glued v2 form: '2>' where the source has 'A2>B'
            else:
                out.append(e.text)
        elif k == "tuplet":
            out.append(e.text)
        elif k == "bar":
            state.clear()
            _append_bar(out, e.text)
    return out


def _append_bar(out: list[str], bar: str) -> None:
    """Append a bar token, folding runs of bar lines the way the v2 data has them."""
    if not out:
        if bar != "|":
            out.append(bar)  # a leading plain '|' carries nothing
        return
    last = out[-1]
    if last in BAR_TOKENS:
        if last == "|":
            out[-1] = bar
            return
        if bar == "|":
            return
    out.append(bar)


def shifts(key: Key) -> list[tuple[int, int]]:
    """Transpositions (diatonic steps, semitones) taking the tonic to C, smaller shift first."""
    steps = LETTERS.index(key.letter)
    semis = LETTER_SEMITONE[key.letter] + key.alter
    cands = [(steps, semis), (steps - 7, semis - 12), (steps + 7, semis + 12)]
    return sorted(cands, key=lambda c: (abs(c[1]), c[1]))
