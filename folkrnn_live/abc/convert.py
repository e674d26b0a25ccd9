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
from dataclasses import dataclass
from fractions import Fraction

from folkrnn_live.abc import bars as barmod
from folkrnn_live.abc.lex import (
    BarLine,
    Broken,
    Chord,
    Ending,
    InlineField,
    LineEnd,
    Rest,
    Tuplet,
    WrittenNote,
    lex_body,
)
from folkrnn_live.abc.notate import (
    HIGH,
    LOW,
    Event,
    Unspellable,
    best_mode,
    duration_token,
    emit,
    shifts,
)
from folkrnn_live.abc.parse import (
    ACC_ALTER,
    AbcTune,
    DropReason,
    Key,
    Meter,
    TuneError,
    default_unit,
    parse_key,
    parse_meter,
    parse_unit,
    split_tunes,
)
from folkrnn_live.abc.repeats import DOUBLE, v2_repeats
from folkrnn_live.tokens import LETTER_SEMITONE, LETTERS, MODE_SIGNATURES, V2, Mode, tuplet_q

_METER_MAP: dict[Meter, Meter] = {m: m for m in V2.meters} | {(2, 2): (4, 4)}
_V2_MODES: dict[str, Mode] = {m: m for m in MODE_SIGNATURES}  # convert_tune refuses the others first


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
    folds: int = 0  # written-out repeats folded into |: ... :| (see folkrnn_live.abc.repeats)


def map_meter(meter: Meter | None) -> Meter:
    if meter is None:
        raise TuneError("meter not in v2", "free meter (M:none or no M:)")
    mapped = _METER_MAP.get(meter)
    if mapped is None:
        allowed = ", ".join(f"{a}/{b}" for a, b in V2.meters)
        raise TuneError(
            "meter not in v2",
            f"meter {meter[0]}/{meter[1]} is not a v2 meter; allowed: {allowed}, C, C|, 2/2",
        )
    return mapped


def v2_shifts(key: Key) -> list[tuple[int, int]]:
    """Transpositions to C in the v2 data's order: tonics C..G go down to C, A..B up (a G tune goes down
    a fifth, so a G jig's opening D becomes ``G,``); the other way and the octaves only when the
    preferred one leaves the vocabulary's range or spelling."""
    cands = shifts(key)
    down = LETTERS.index(key.letter) <= LETTERS.index("G")
    preferred = next(c for c in cands if (c[0] >= 0) == down and abs(c[0]) < 7)
    return [preferred, *(c for c in cands if c != preferred)]


def _duration_ok(units: Fraction) -> bool:
    tok = duration_token(units)
    return tok is None or tok in V2.index


def _bar_tokens(bar: BarLine) -> list[str]:
    t = bar.text.replace("[", "").replace("]", "")
    if t.startswith(":") and t.endswith(":"):
        toks = [":|", "|:"]
    elif t.startswith(":"):
        toks = [":|"]
    elif t.endswith(":"):
        toks = ["|:"]
    elif t in ("||", "|") and bar.text != "|":
        toks = [DOUBLE]  # '||', '|]', '[|': a section boundary for the repeat rules, written '|' at the end
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

    def event(self, kind: str, notes: list[WrittenNote], length: Fraction, tie: bool = False) -> Event:
        units, ticks = self.units(length)
        return Event(kind, notes, units, tie, self.counted(), ticks=ticks)

    def counted(self) -> bool:
        if self.tuplet_left > 0:
            self.tuplet_left -= 1
            return True
        return False

    def read(self, elements: list) -> list[Event]:
        ev: list[Event] = []
        for el in elements:
            if isinstance(el, WrittenNote):
                ev.append(self.event("note", [el], el.length, el.tie))
            elif isinstance(el, Chord):
                kind = "note" if len(el.notes) == 1 else "chord"
                ev.append(self.event(kind, el.notes, el.length))
            elif isinstance(el, Rest):
                ev.append(self.event("rest", [], el.length))
            elif isinstance(el, Broken):
                if el.count > 1:
                    raise TuneError("broken rhythm >>", f"{el.direction * el.count} has no v2 token")
                ev.append(Event("broken", text=el.direction))
            elif isinstance(el, Tuplet):
                q_default = tuplet_q(el.p, self.meter)
                if (el.q is not None and el.q != q_default) or (el.r is not None and el.r != el.p):
                    raise TuneError("tuplet not in v2", f"tuplet ({el.p}:{el.q}:{el.r}) has no v2 form")
                if f"({el.p}" not in V2.index:
                    raise TuneError("tuplet not in v2", f"tuplet ({el.p} is not a v2 token")
                ev.append(Event("tuplet", text=f"({el.p}"))
                self.tuplet_left = el.p
            elif isinstance(el, BarLine):
                ev.extend(Event("bar", text=t) for t in _bar_tokens(el))
            elif isinstance(el, Ending):
                ev.append(Event("bar", text=_ending_token(el.number)))
            elif isinstance(el, InlineField):
                self.field(el)
            elif isinstance(el, LineEnd):
                ev.append(Event("eol"))
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


def _imply_bars(events: list[Event], meter: Meter) -> list[Event]:
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
    out: list[Event] = []
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
            tuplet, tuplet_left = (tuplet_q(p, meter), p), p
        elif kind == "bar":
            running, last_len = 0, None
        elif kind == "eol":
            total = running + (last_len or 0)
            nxt = next((x.kind for x in events[k + 1 :] if x.kind != "eol"), None)
            if total == full and nxt not in (None, "bar", "broken") and out and out[-1].kind != "bar":
                out.append(Event("bar", text="|"))
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


def _resolve_pitches(events: list[Event], key: Key) -> None:
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
                alter = ACC_ALTER[note.acc]
                bar_acc[where] = alter
            elif where in bar_acc:
                alter = bar_acc[where]
            elif tie_from is not None and tie_from[:2] == where:
                alter = tie_from[2]
            else:
                alter = sig[note.letter]
            pitches.append(
                (
                    LETTERS.index(note.letter) + 7 * note.octave,
                    60 + 12 * note.octave + LETTER_SEMITONE[note.letter] + alter,
                )
            )
        e.pitches = pitches
        note = e.notes[0]
        tie_from = (
            (note.letter, note.octave, pitches[0][1] - (60 + 12 * note.octave + LETTER_SEMITONE[note.letter]))
            if e.tie
            else None
        )


def _merge_ties(events: list[Event]) -> list[Event]:
    out: list[Event] = []
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
                    events[j] = Event(
                        "note", e.notes, e.length + f.length, f.tie, False, pitches=e.pitches, ticks=e.ticks + f.ticks
                    )
                    i = j
                    continue
        out.append(e)
        i += 1
    return out


def convert_tune(tune: AbcTune, options: ConvertOptions = ConvertOptions()) -> list[str]:
    """One ABC tune to v2 tokens (no ``<s>``/``</s>``).  Raises TuneError with the drop reason."""
    return _convert(tune, options)[0]


def _convert(tune: AbcTune, options: ConvertOptions) -> tuple[list[str], int]:
    """The tokens and the number of written-out repeats folded."""
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


def _convert_body(
    tune: AbcTune, meter: Meter, unit: Fraction, key: Key, options: ConvertOptions
) -> tuple[list[str], int]:
    events = _imply_bars(_Reader(meter, unit, key).read(lex_body(tune)), meter)
    _resolve_pitches(events, key)
    events = _merge_ties(events)
    if not any(e.kind in ("note", "chord") for e in events):
        raise TuneError("empty tune", "no notes")
    for e in events:
        if e.kind in ("note", "rest", "chord") and not _duration_ok(e.length):
            raise TuneError("duration not in vocabulary", f"a length of {e.length} eighths has no v2 token")
    # On ties the signature with fewer flats wins (a tune without sixths is dorian rather than minor).
    infer = options.infer_mode and not key.mode_given
    modes: list[Mode] = ["maj", "mix", "dor", "min"] if infer else [_V2_MODES[key.mode]]
    best: tuple[list[str], Mode] | None = None
    failures: list[Unspellable] = []
    for shift in v2_shifts(key):
        mode = best_mode(events, shift, modes)
        try:
            best = (emit(events, shift, mode), mode)
            break
        except Unspellable as exc:
            failures.append(exc)
    if best is None:
        if all(not LOW <= f.midi <= HIGH for f in failures):
            where = f"C, .. b' (MIDI {LOW}..{HIGH})"
            raise TuneError("pitch out of range", f"{failures[0].text} falls outside {where} however transposed")
        f = next(f for f in failures if LOW <= f.midi <= HIGH)
        raise TuneError("pitch not in vocabulary", f"{f.text} has no v2 token (nor has any enharmonic spelling)")
    body, mode = best
    tokens, folds = v2_repeats([f"M:{meter[0]}/{meter[1]}", f"K:C{mode}", *body], meter)
    unknown = [t for t in tokens if t not in V2.index]
    if unknown:
        raise TuneError("token not in vocabulary", f"{unknown[0]!r} is not one of the 137 v2 tokens")
    if options.check_bars:
        report = barmod.check_bars(tokens, meter)
        if not report.all_ok:
            w = report.wrong[0] if report.wrong else None
            detail = f"bar {w.index + 1} is {w.length} eighths, expected {w.expected}" if w else "no bars"
            raise TuneError("wrong bar lengths", detail)
    return tokens, folds


def convert_tunes(tunes: list[AbcTune], options: ConvertOptions = ConvertOptions()) -> Iterator[Converted]:
    for tune in tunes:
        try:
            tokens, folds = _convert(tune, options)
            yield Converted(tune, tuple(tokens), folds=folds)
        except TuneError as exc:
            yield Converted(tune, None, exc.reason, exc.detail)


def convert_abc(text: str, source: str = "<text>", options: ConvertOptions = ConvertOptions()) -> list[Converted]:
    """Every tune of an ABC text, converted or with its drop reason."""
    return list(convert_tunes(split_tunes(text, source), options))
