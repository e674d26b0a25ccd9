"""ABC tunes to v2 token tunes (``M:6/8 K:Cmaj |: G 2 A ...``), exactly as the v2 data writes them.

Decisions (each dropped tune is counted under its reason, see :data:`DROP_REASONS`):

* Meter: ``C`` is 4/4.  ``C|`` and ``2/2`` become ``M:4/4`` with durations unchanged in 1/8 units (a
  cut-time bar holds 8 eighths, so bar lengths stay right; the v2 data writes reels the same way).
  Any other meter outside M:2/4 3/4 4/4 6/8 9/8 12/8 3/2 (3/8, 6/4, 4/2, 5/4, none, ...) drops the tune.
* Unit length: every tune is rewritten in L:1/8; an absent L: is ABC's default (1/16 below 0.75),
  unless that gives wrong bars and 1/8 gives right ones (transcribers who forgot L: meant 1/8).
* Key: the tune is transposed so its tonic is C, with ionian → K:Cmaj, aeolian → K:Cmin, K:Cdor,
  K:Cmix.  Lydian, phrygian and locrian tunes are dropped ("mode not in v2"), as are K:none and
  highland-pipe keys.  A bare tonic (``K:G``) is major, except with ``infer_mode`` (the Essen
  collection, whose K: names the tonic with a major signature and writes the real mode with
  accidentals): there the mode is the one of maj/min/dor/mix whose C signature agrees with the most
  notes.
* Transposition is diatonic (a D major ``^g`` becomes ``^f``), by the smaller shift to C unless that
  leaves the vocabulary's range (``C,`` .. ``b'``) or spelling, then the other way or an octave.
  Pitches are written relative to the C-mode signature and accidentals hold to the end of the bar per
  pitch and octave, so an accidental token appears only where a transcriber would write one; a
  spelling outside the 137 tokens is replaced by an enharmonic one inside them when possible.
* Ties join two notes of the same pitch into one note of the summed length when that length is a v2
  duration and no broken rhythm or tuplet is involved; otherwise (and across bar lines) the tie is
  just dropped.  Chords keep their first note's length; ``x`` rests become ``z``.
* Bar lines: ``||`` ``|]`` ``[|`` → ``|``, ``::`` → ``:| |:``, ``[1`` / ``|[1`` → ``|1``, ``:|2`` →
  ``:| |2``.  A line that ends with a complete bar and no bar line (the Essen files mark phrases by
  line ends) gets the implied ``|``.
* Every bar is checked with :func:`folkrnn_live.abc.bars.check_bars`; a tune with a bar of the wrong
  length is dropped ("wrong bar lengths"): the model is trained to count bars.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

from folkrnn_live.abc import bars as barmod
from folkrnn_live.abc.parse import (
    LETTERS,
    NATURAL,
    AbcTune,
    Bar,
    Broken,
    Chord,
    DropReason,
    Ending,
    InlineField,
    Key,
    LineEnd,
    Meter,
    Note,
    Rest,
    TuneError,
    Tuplet,
    default_unit,
    lex_body,
    parse_key,
    parse_meter,
    parse_unit,
    split_tunes,
)
from folkrnn_live.tokens import V2

V2_METERS: tuple[Meter, ...] = ((2, 4), (3, 4), (4, 4), (6, 8), (9, 8), (12, 8), (3, 2))
_METER_MAP: dict[Meter, Meter] = {m: m for m in V2_METERS} | {(2, 2): (4, 4)}
_MODE_SIG: dict[str, dict[str, int]] = {
    "maj": {},
    "min": {"B": -1, "E": -1, "A": -1},
    "dor": {"B": -1, "E": -1},
    "mix": {"B": -1},
}
_ACC_TEXT = {1: "^", -1: "_", 0: "="}
_ACC_ALTER = {"^^": 2, "^": 1, "=": 0, "_": -1, "__": -2}
_LOW, _HIGH = 48, 95  # MIDI of C, and b'
_BAR_TOKENS = frozenset(("|", "|:", ":|", "|1", "|2"))


@dataclass(frozen=True)
class ConvertOptions:
    infer_mode: bool = False  # a bare K: tonic gets the mode its notes fit best (Essen)
    check_bars: bool = True  # drop tunes with a bar of the wrong length


@dataclass(frozen=True)
class Converted:
    """One tune's outcome: its tokens, or the reason (one of DROP_REASONS) and detail it was dropped."""

    tune: AbcTune
    tokens: tuple[str, ...] | None
    reason: DropReason | None = None
    detail: str | None = None


def map_meter(meter: Meter | None) -> Meter:
    if meter is None:
        raise TuneError("meter not in v2", "free meter (M:none or no M:)")
    mapped = _METER_MAP.get(meter)
    if mapped is None:
        allowed = ", ".join(f"{a}/{b}" for a, b in V2_METERS)
        raise TuneError(
            "meter not in v2",
            f"meter {meter[0]}/{meter[1]} is not a v2 meter; allowed: {allowed}, C, C|, 2/2",
        )
    return mapped


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


def _duration_ok(units: Fraction) -> bool:
    tok = duration_token(units)
    return tok is None or tok in V2.index


@dataclass(slots=True)
class _Ev:
    kind: str  # note, rest, chord, broken, tuplet, bar, eol
    notes: list[Note] = field(default_factory=list)  # as written
    length: Fraction = Fraction(1)  # in 1/8 units, as written (before broken rhythm and tuplet)
    tie: bool = False
    in_tuplet: bool = False
    text: str = ""
    pitches: list[tuple[int, int]] = field(default_factory=list)  # sounding: (diatonic step, midi)
    ticks: int | Fraction = barmod.TICKS  # length in ticks (integer arithmetic is far faster)


def _bar_tokens(bar: Bar) -> list[str]:
    t = bar.text.replace("[", "").replace("]", "")
    if t.startswith(":") and t.endswith(":"):
        toks = [":|", "|:"]
    elif t.startswith(":"):
        toks = [":|"]
    elif t.endswith(":"):
        toks = ["|:"]
    else:
        toks = ["|"]
    if bar.ending is not None:
        toks.append(_ending_token(bar.ending))
    return toks


def _ending_token(number: str) -> str:
    if number not in ("1", "2"):
        raise TuneError("ending other than 1/2", f"ending [{number}")
    return "|" + number


class _Reader:
    """Turns lexed elements into events: lengths in 1/8 units, v2 bar tokens, checked fields."""

    def __init__(self, meter: Meter, unit: Fraction, key: Key) -> None:
        self.meter, self.unit, self.key = meter, unit, key
        self.tuplet_left = 0
        self._units: dict[tuple[int, int], tuple[Fraction, int | Fraction]] = {}

    def units(self, length: Fraction) -> tuple[Fraction, int | Fraction]:
        """A written length in units of L as (1/8 units, ticks)."""
        key = (length.numerator, length.denominator)
        got = self._units.get(key)
        if got is None:
            units = length * self.unit * 8
            ticks = units * barmod.TICKS
            got = self._units[key] = (units, ticks.numerator if ticks.denominator == 1 else ticks)
        return got

    def event(self, kind: str, notes: list[Note], length: Fraction, tie: bool = False) -> _Ev:
        units, ticks = self.units(length)
        return _Ev(kind, notes, units, tie, self.counted(), ticks=ticks)

    def counted(self) -> bool:
        if self.tuplet_left > 0:
            self.tuplet_left -= 1
            return True
        return False

    def read(self, elements: list) -> list[_Ev]:
        ev: list[_Ev] = []
        for el in elements:
            if isinstance(el, Note):
                ev.append(self.event("note", [el], el.length, el.tie))
            elif isinstance(el, Chord):
                kind = "note" if len(el.notes) == 1 else "chord"
                ev.append(self.event(kind, el.notes, el.length))
            elif isinstance(el, Rest):
                ev.append(self.event("rest", [], el.length))
            elif isinstance(el, Broken):
                if el.count > 1:
                    raise TuneError("broken rhythm >>", f"{el.direction * el.count} has no v2 token")
                ev.append(_Ev("broken", text=el.direction))
            elif isinstance(el, Tuplet):
                q_default = barmod.tuplet_q(el.p, self.meter)
                if (el.q is not None and el.q != q_default) or (el.r is not None and el.r != el.p):
                    raise TuneError("tuplet not in v2", f"tuplet ({el.p}:{el.q}:{el.r}) has no v2 form")
                if f"({el.p}" not in V2.index:
                    raise TuneError("tuplet not in v2", f"tuplet ({el.p} is not a v2 token")
                ev.append(_Ev("tuplet", text=f"({el.p}"))
                self.tuplet_left = el.p
            elif isinstance(el, Bar):
                ev.extend(_Ev("bar", text=t) for t in _bar_tokens(el))
            elif isinstance(el, Ending):
                ev.append(_Ev("bar", text=_ending_token(el.number)))
            elif isinstance(el, InlineField):
                self.field(el)
            elif isinstance(el, LineEnd):
                ev.append(_Ev("eol"))
        return ev

    def field(self, el: InlineField) -> None:
        if el.name == "L":
            self.unit = parse_unit(el.value)
            self._units.clear()
        elif el.name == "M":
            if map_meter(parse_meter(el.value)) != self.meter:
                raise TuneError("meter change", f"M:{el.value} inside the tune")
        elif el.name == "K":
            k = parse_key(el.value)
            same = (k.letter, k.alter, k.signature) == (self.key.letter, self.key.alter, self.key.signature)
            if not same:
                raise TuneError("key change", f"K:{el.value} inside the tune")


def _imply_bars(events: list[_Ev], meter: Meter) -> list[_Ev]:
    """Drop line ends, turning into '|' those that end a complete bar without a bar line (the Essen
    files mark phrases by line ends and leave such bar lines out).  Sounding lengths are read as in
    :mod:`folkrnn_live.abc.bars`."""
    needed = any(
        e.kind == "eol" and k and events[k - 1].kind != "bar" and k + 1 < len(events) and events[k + 1].kind != "bar"
        for k, e in enumerate(events)
    )
    if not needed:  # every line ends at a bar line (most collections): nothing to compute
        return [e for e in events if e.kind != "eol"]
    full = barmod.bar_units(meter) * barmod.TICKS
    out: list[_Ev] = []
    running: int | Fraction = 0
    pending = (1, 1)  # factor of the next note's length, from a broken rhythm
    tuplet, tuplet_left = (1, 1), 0
    last_len: int | Fraction | None = None  # sounding length of the last note, while a '>' can change it
    for k, e in enumerate(events):
        kind = e.kind
        if kind in ("note", "rest", "chord"):
            if last_len is not None:
                running += last_len
            length = _scale(e.ticks, pending)
            pending = (1, 1)
            if tuplet_left:
                length, tuplet_left = _scale(length, tuplet), tuplet_left - 1
            last_len = length
        elif kind == "broken":
            if last_len is not None:
                last_len = _scale(last_len, (3, 2) if e.text == ">" else (1, 2))
                pending = (1, 2) if e.text == ">" else (3, 2)
        elif kind == "tuplet":
            p = int(e.text[1:])
            tuplet, tuplet_left = (barmod.tuplet_q(p, meter), p), p
        elif kind == "bar":
            running, last_len = 0, None
        elif kind == "eol":
            total = running + (last_len or 0)
            nxt = next((x.kind for x in events[k + 1 :] if x.kind != "eol"), None)
            if total == full and nxt not in (None, "bar", "broken") and out and out[-1].kind != "bar":
                out.append(_Ev("bar", text="|"))
                running, last_len = 0, None
            continue
        out.append(e)
    return out


def _scale(x: int | Fraction, factor: tuple[int, int]) -> int | Fraction:
    num, den = factor
    if num == den:
        return x
    y = x * num
    if isinstance(y, int) and y % den == 0:
        return y // den
    return Fraction(y, den)


def _resolve_pitches(events: list[_Ev], key: Key) -> None:
    """Sounding pitches by ABC 2.1 rules: an accidental holds to the end of the bar for that letter and
    octave, else the key signature; a note tied over a bar line keeps the tied note's pitch."""
    bar_acc: dict[tuple[str, int], int] = {}
    tie_from: tuple[str, int, int] | None = None
    sig = key.signature
    for e in events:
        if e.kind == "bar":
            bar_acc.clear()
            continue
        if e.kind not in ("note", "chord"):
            if e.kind == "rest":
                tie_from = None
            continue
        pitches = []
        for note in e.notes:
            where = (note.letter, note.octave)
            if note.acc is not None:
                alter = _ACC_ALTER[note.acc]
                bar_acc[where] = alter
            elif where in bar_acc:
                alter = bar_acc[where]
            elif tie_from is not None and tie_from[:2] == where:
                alter = tie_from[2]
            else:
                alter = sig[note.letter]
            pitches.append(
                (LETTERS.index(note.letter) + 7 * note.octave, 60 + 12 * note.octave + NATURAL[note.letter] + alter)
            )
        e.pitches = pitches
        note = e.notes[0]
        tie_from = (
            (note.letter, note.octave, pitches[0][1] - (60 + 12 * note.octave + NATURAL[note.letter]))
            if e.tie
            else None
        )


def _merge_ties(events: list[_Ev]) -> list[_Ev]:
    out: list[_Ev] = []
    i = 0
    n = len(events)
    while i < n:
        e = events[i]
        if e.kind == "note" and e.tie and not e.in_tuplet and not (out and out[-1].kind == "broken"):
            j = i + 1
            if j < n:
                f = events[j]
                after = events[j + 1] if j + 1 < n else None
                if (
                    f.kind == "note"
                    and f.pitches[0][1] == e.pitches[0][1]
                    and not f.in_tuplet
                    and not (after is not None and after.kind == "broken")
                    and _duration_ok(e.length + f.length)
                ):
                    events[j] = _Ev(
                        "note", e.notes, e.length + f.length, f.tie, False, pitches=e.pitches, ticks=e.ticks + f.ticks
                    )
                    i = j
                    continue
        out.append(e)
        i += 1
    return out


class _Unspellable(Exception):
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
        alter = midi - (60 + 12 * octave + NATURAL[LETTERS[li]])
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
    raise _Unspellable(midi, first or f"midi {midi}")


def _best_mode(events: list[_Ev], shift: tuple[int, int], modes: list[str]) -> str:
    """The mode whose C signature agrees with the most notes (diatonic spelling), first on ties."""
    if len(modes) == 1:
        return modes[0]
    dsteps, dsemis = shift
    counts = dict.fromkeys(modes, 0)
    for e in events:
        for step, midi in e.pitches:
            s = step - dsteps
            letter = LETTERS[s % 7]
            alter = midi - dsemis - (60 + 12 * (s // 7) + NATURAL[letter])
            for mode in modes:
                if _MODE_SIG[mode].get(letter, 0) != alter:
                    counts[mode] += 1
    return min(modes, key=lambda m: (counts[m], modes.index(m)))


def _emit(events: list[_Ev], shift: tuple[int, int], mode: str) -> list[str]:
    """The body tokens for one transposition and mode."""
    dsteps, dsemis = shift
    sig = _MODE_SIG[mode]
    state: dict[tuple[int, int], int] = {}
    out: list[str] = []

    def pitch_tok(step: int, midi: int) -> str:
        s, m = step - dsteps, midi - dsemis
        if not _LOW <= m <= _HIGH:
            raise _Unspellable(m, f"MIDI {m}")
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
    if last in _BAR_TOKENS:
        if last == "|":
            out[-1] = bar
            return
        if bar == "|":
            return
    out.append(bar)


def _shifts(key: Key) -> list[tuple[int, int]]:
    """Transpositions (diatonic steps, semitones) taking the tonic to C, smaller shift first."""
    steps = LETTERS.index(key.letter)
    semis = NATURAL[key.letter] + key.alter
    cands = [(steps, semis), (steps - 7, semis - 12), (steps + 7, semis + 12)]
    return sorted(cands, key=lambda c: (abs(c[1]), c[1]))


def convert_tune(tune: AbcTune, options: ConvertOptions = ConvertOptions()) -> list[str]:
    """One ABC tune to v2 tokens (no ``<s>``/``</s>``).  Raises TuneError with the drop reason."""
    k_value = tune.header("K")
    if k_value is None:
        raise TuneError("unparseable", "no K: field")
    m_value = tune.header("M")
    raw_meter = parse_meter(m_value) if m_value is not None else None
    meter = map_meter(raw_meter)
    l_value = tune.header("L")
    key = parse_key(k_value)
    if key.mode in ("lyd", "phr", "loc"):
        raise TuneError("mode not in v2", f"K:{k_value} ({key.mode})")
    if l_value is not None:
        return _convert_body(tune, meter, parse_unit(l_value), key, options)
    unit = default_unit(raw_meter)
    try:
        return _convert_body(tune, meter, unit, key, options)
    except TuneError as exc:
        # Without L:, ABC 2.1 reads a 2/4 tune in sixteenths, but many transcribers meant eighths (the
        # usual unit); when the standard reading gives wrong bars, the eighths reading may be kept.
        if exc.reason != "wrong bar lengths" or unit == Fraction(1, 8) or not options.check_bars:
            raise
        try:
            return _convert_body(tune, meter, Fraction(1, 8), key, options)
        except TuneError:
            raise exc from None


def _convert_body(tune: AbcTune, meter: Meter, unit: Fraction, key: Key, options: ConvertOptions) -> list[str]:
    events = _imply_bars(_Reader(meter, unit, key).read(lex_body(tune)), meter)
    _resolve_pitches(events, key)
    events = _merge_ties(events)
    if not any(e.kind in ("note", "chord") for e in events):
        raise TuneError("empty tune", "no notes")
    for e in events:
        if e.kind in ("note", "rest", "chord") and not _duration_ok(e.length):
            raise TuneError("duration not in vocabulary", f"a length of {e.length} eighths has no v2 token")
    # On ties the signature with fewer flats wins (a tune without sixths is dorian rather than minor).
    modes: list[str] = ["maj", "mix", "dor", "min"] if options.infer_mode and not key.mode_given else [key.mode]
    best: tuple[list[str], str] | None = None
    failures: list[_Unspellable] = []
    for shift in _shifts(key):
        mode = _best_mode(events, shift, modes)
        try:
            best = (_emit(events, shift, mode), mode)
            break
        except _Unspellable as exc:
            failures.append(exc)
    if best is None:
        if all(not _LOW <= f.midi <= _HIGH for f in failures):
            raise TuneError(
                "pitch out of range", f"{failures[0].text} falls outside C, .. b' (MIDI 48..95) however transposed"
            )
        f = next(f for f in failures if _LOW <= f.midi <= _HIGH)
        raise TuneError("pitch not in vocabulary", f"{f.text} has no v2 token (nor has any enharmonic spelling)")
    body, mode = best
    tokens = [f"M:{meter[0]}/{meter[1]}", f"K:C{mode}", *body]
    unknown = [t for t in tokens if t not in V2.index]
    if unknown:
        raise TuneError("token not in vocabulary", f"{unknown[0]!r} is not one of the 137 v2 tokens")
    if options.check_bars:
        report = barmod.check_bars(tokens, meter)
        if not report.all_ok:
            w = report.wrong[0] if report.wrong else None
            detail = f"bar {w.index + 1} is {w.length} eighths, expected {w.expected}" if w else "no bars"
            raise TuneError("wrong bar lengths", detail)
    return tokens


def convert_tunes(tunes: list[AbcTune], options: ConvertOptions = ConvertOptions()) -> Iterator[Converted]:
    for tune in tunes:
        try:
            yield Converted(tune, tuple(convert_tune(tune, options)))
        except TuneError as exc:
            yield Converted(tune, None, exc.reason, exc.detail)


def convert_abc(text: str, source: str = "<text>", options: ConvertOptions = ConvertOptions()) -> list[Converted]:
    """Every tune of an ABC text, converted or with its drop reason."""
    return list(convert_tunes(split_tunes(text, source), options))
