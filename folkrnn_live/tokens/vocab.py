"""The folk-rnn v2 vocabulary and its token classes: defined once, here.

One table (``TOKEN_CLASSES``) drives classification, validation and the tests: each row is a token
class, the pattern its tokens match and the parser that fills in the class's fields.  The v2 index
order is arbitrary (it came from a Python set), so every model carries its own token list and all
code maps through a :class:`Vocabulary`, never through literal indices.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property, lru_cache
from importlib import resources
from typing import Literal

import numpy as np

TokenClass = Literal[
    "pitch", "duration", "broken", "tuplet", "bar", "chord", "rest", "meter", "mode", "start", "end"
]
BarKind = Literal["bar", "repeat_start", "repeat_end", "ending1", "ending2"]
Mode = Literal["maj", "min", "dor", "mix"]

START = "<s>"
END = "</s>"

#: The letters in scale order, the semitones above C of each, and the MIDI number of ABC's "C".
LETTERS = "CDEFGAB"
LETTER_SEMITONE = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
MIDDLE_C = 60
_ACCIDENTAL_SHIFT = {"^": 1, "_": -1, "=": 0, "": 0}
#: The key signature each mode token stands for (every v2 tune has tonic C): letter -> semitones.
MODE_SIGNATURES: dict[Mode, dict[str, int]] = {
    "maj": {},
    "min": {"B": -1, "E": -1, "A": -1},
    "dor": {"B": -1, "E": -1},
    "mix": {"B": -1},
}
COMPOUND_METERS = frozenset({(6, 8), (9, 8), (12, 8)})
#: Note lengths are counted in ticks, TICKS per 1/8 unit: every v2 duration, and every tuplet or
#: broken rhythm of one, is a whole number of ticks (integer sums are exact and fast).
TICKS = 2**7 * 3**3 * 5 * 7
Ticks = int | Fraction  # a Fraction only for lengths no v2 token makes (a hand-written ``1/11``)


def tuplet_q(p: int, meter: tuple[int, int] | None) -> int:
    """The q of a tuplet token ``(p``: p notes in the time of q (ABC 2.1: 3 for p = 2, 4, 8; 2 for
    p = 3, 6; for 5, 7, 9, 3 in compound meters and 2 otherwise)."""
    if p in (2, 4, 8):
        return 3
    if p in (3, 6):
        return 2
    return 3 if meter in COMPOUND_METERS else 2
PITCH_CLASS_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# Flat spellings accepted as pitch-class names too.
_PC_ALIASES = {"Db": 1, "D#": 3, "Gb": 6, "G#": 8, "A#": 10, "Cb": 11, "B#": 0, "E#": 5, "Fb": 4}


@dataclass(frozen=True)
class TokenInfo:
    """What one token means.  Fields not of the token's class are None."""

    text: str
    cls: TokenClass
    # pitch: letter as written (case carries the octave), accidental, octave offset from the
    # C..B octave (C, = -1, c = +1, c' = +2), MIDI number in C major (explicit accidental applied).
    letter: str | None = None
    accidental: Literal["^", "_", "=", ""] | None = None
    octave: int | None = None
    midi: int | None = None
    # duration in units of 1/8 (L:1/8); for a glued broken rhythm, the duration it carries.
    duration: Fraction | None = None
    ticks: Ticks | None = None  # the same duration in ticks (see TICKS)
    # broken rhythm direction: '>' lengthens the note before, '<' the note after.
    broken: Literal[">", "<"] | None = None
    tuplet: int | None = None
    bar: BarKind | None = None
    chord: Literal["open", "close"] | None = None
    meter: tuple[int, int] | None = None
    mode: Mode | None = None

    @property
    def pitch_class(self) -> int | None:
        return None if self.midi is None else self.midi % 12


def _pitch(m: re.Match[str]) -> dict[str, object]:
    acc, letter, marks = m.group(1), m.group(2), m.group(3)
    octave = (1 if letter.islower() else 0) + marks.count("'") - marks.count(",")
    midi = MIDDLE_C + 12 * octave + LETTER_SEMITONE[letter.upper()] + _ACCIDENTAL_SHIFT[acc]
    return {"letter": letter, "accidental": acc, "octave": octave, "midi": midi}


def _fraction(text: str) -> Fraction:
    # ABC shorthand: "/2" is 1/2, "3/2" is 3/2, "2" is 2.
    return Fraction(text) if not text.startswith("/") else Fraction(1, int(text[1:]))


def _in_ticks(duration: Fraction) -> Ticks:
    t = duration * TICKS
    return t.numerator if t.denominator == 1 else t


def _duration(m: re.Match[str]) -> dict[str, object]:
    d = _fraction(m.group(0))
    return {"duration": d, "ticks": _in_ticks(d)}


def _broken(m: re.Match[str]) -> dict[str, object]:
    glued = m.group(1)
    if not glued:
        return {"broken": m.group(2)}
    d = _fraction(glued)
    return {"broken": m.group(2), "duration": d, "ticks": _in_ticks(d)}


_BAR_KINDS: dict[str, BarKind] = {
    "|": "bar", "|:": "repeat_start", ":|": "repeat_end", "|1": "ending1", "|2": "ending2"
}
_MODES: dict[str, Mode] = {"Cmaj": "maj", "Cmin": "min", "Cdor": "dor", "Cmix": "mix"}


@dataclass(frozen=True)
class ClassRow:
    """One row of the class table: the class, the full-match pattern, and the field parser."""

    cls: TokenClass
    pattern: re.Pattern[str]
    parse: Callable[[re.Match[str]], dict[str, object]]
    example: str  # a v2 token of this class, used in help texts and tests


TOKEN_CLASSES: tuple[ClassRow, ...] = (
    ClassRow("pitch", re.compile(r"([=^_]?)([A-Ga-g])([,']*)"), _pitch, "^F"),
    ClassRow("duration", re.compile(r"\d+/\d+|/\d+|\d+"), _duration, "3/2"),
    ClassRow("broken", re.compile(r"(\d*/?\d+)?([<>])"), _broken, "2>"),
    ClassRow("tuplet", re.compile(r"\((\d)"), lambda m: {"tuplet": int(m.group(1))}, "(3"),
    ClassRow("bar", re.compile(r"\||\|:|:\||\|1|\|2"), lambda m: {"bar": _BAR_KINDS[m.group(0)]}, "|"),
    ClassRow("chord", re.compile(r"[\[\]]"), lambda m: {"chord": "open" if m.group(0) == "[" else "close"}, "["),
    ClassRow("rest", re.compile(r"z"), lambda m: {}, "z"),
    ClassRow("meter", re.compile(r"M:(\d+)/(\d+)"), lambda m: {"meter": (int(m.group(1)), int(m.group(2)))}, "M:6/8"),
    ClassRow("mode", re.compile(r"K:(Cmaj|Cmin|Cdor|Cmix)"), lambda m: {"mode": _MODES[m.group(1)]}, "K:Cdor"),
    ClassRow("start", re.compile(re.escape(START)), lambda m: {}, START),
    ClassRow("end", re.compile(re.escape(END)), lambda m: {}, END),
)
CLASS_NAMES: tuple[TokenClass, ...] = tuple(row.cls for row in TOKEN_CLASSES)


def classify(text: str) -> TokenInfo:
    """Classify a token string by the first matching row of ``TOKEN_CLASSES``."""
    for row in TOKEN_CLASSES:
        m = row.pattern.fullmatch(text)
        if m:
            return TokenInfo(text=text, cls=row.cls, **row.parse(m))  # type: ignore[arg-type]
    raise ValueError(f"token {text!r} belongs to no token class ({', '.join(CLASS_NAMES)})")


@lru_cache(maxsize=512)
def _classify_text(text: str) -> TokenInfo | None:
    try:
        return classify(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class UnknownToken:
    position: int
    text: str
    nearest: tuple[str, ...]

    def __str__(self) -> str:
        hint = f" (nearest: {', '.join(self.nearest)})" if self.nearest else ""
        return f"position {self.position}: unknown token {self.text!r}{hint}"


class UnknownTokenError(ValueError):
    """Raised with every unknown token of a sequence, not only the first."""

    def __init__(self, unknown: Sequence[UnknownToken]) -> None:
        self.unknown = tuple(unknown)
        super().__init__("; ".join(str(u) for u in self.unknown))


@dataclass(frozen=True)
class Vocabulary:
    """A model's tokens in its own index order, with per-index class information."""

    tokens: tuple[str, ...]
    info: tuple[TokenInfo, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(set(self.tokens)) != len(self.tokens):
            dupes = sorted({t for t in self.tokens if self.tokens.count(t) > 1})
            raise ValueError(f"vocabulary tokens must be unique; repeated: {dupes}")
        object.__setattr__(self, "info", tuple(classify(t) for t in self.tokens))
        for required in (START, END):
            if required not in self.tokens:
                raise ValueError(f"vocabulary must contain {required!r}")

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self.index

    @cached_property
    def index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tokens)}

    @property
    def start(self) -> int:
        return self.index[START]

    @property
    def end(self) -> int:
        return self.index[END]

    @cached_property
    def info_of(self) -> dict[str, TokenInfo]:
        """Each token's row of the table, by its text."""
        return dict(zip(self.tokens, self.info, strict=True))

    def lookup(self, text: str) -> TokenInfo | None:
        """What a token text means: the table's row for a token of this vocabulary (no pattern is
        matched), else the class the text matches (a hand-written token no model emits, such as
        ``(1``), else None."""
        info = self.info_of.get(text)
        return info if info is not None else _classify_text(text)

    def nearest(self, text: str, n: int = 3) -> tuple[str, ...]:
        return tuple(difflib.get_close_matches(text, self.tokens, n=n, cutoff=0.3))

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Token strings to indices; reports every unknown token with its position."""
        out: list[int] = []
        unknown: list[UnknownToken] = []
        for pos, t in enumerate(tokens):
            i = self.index.get(t)
            if i is None:
                unknown.append(UnknownToken(pos, t, self.nearest(t)))
            else:
                out.append(i)
        if unknown:
            raise UnknownTokenError(unknown)
        return out

    def parse(self, text: str) -> list[int]:
        """A whitespace-separated token string to indices (see :meth:`encode`)."""
        return self.encode(text.split())

    def decode(self, indices: Iterable[int]) -> list[str]:
        return [self.tokens[int(i)] for i in indices]

    def tokens_of(self, cls: TokenClass) -> tuple[str, ...]:
        """The tokens of one class, in index order."""
        return tuple(inf.text for inf in self.info if inf.cls == cls)

    @cached_property
    def meters(self) -> tuple[tuple[int, int], ...]:
        """The meters of the meter tokens, shortest bar first (2/4, 3/4, 6/8, 4/4, ...)."""
        found = {inf.meter for inf in self.info if inf.meter is not None}
        return tuple(sorted(found, key=lambda m: (Fraction(*m), m[1])))

    @cached_property
    def midi_range(self) -> tuple[int, int]:
        """Lowest and highest MIDI number a pitch token spells (v2: ``C,`` 48 .. ``b'`` 95)."""
        midis = [inf.midi for inf in self.info if inf.midi is not None]
        return min(midis), max(midis)

    def mask(self, cls: TokenClass) -> np.ndarray:
        """Boolean mask over the vocabulary of one token class."""
        if cls not in CLASS_NAMES:
            raise ValueError(f"token class must be one of {', '.join(CLASS_NAMES)}; got {cls!r}")
        return np.array([inf.cls == cls for inf in self.info], dtype=bool)

    def pitch_class_mask(self, pitch_class: int) -> np.ndarray:
        return np.array([inf.pitch_class == pitch_class for inf in self.info], dtype=bool)

    def select(self, selector: str) -> list[int]:
        """Indices named by a selector: a token (``|``), a class (``@bar``) or a pitch class
        (``pc:G``, ``pc:F#``, ``pc:7``).  Used by bias, suppress and every command that names tokens."""
        if selector.startswith("@"):
            cls = selector[1:]
            if cls not in CLASS_NAMES:
                raise ValueError(
                    f"token class {selector!r} is unknown; allowed: {', '.join('@' + c for c in CLASS_NAMES)}"
                )
            return np.flatnonzero(self.mask(cls)).tolist()
        if selector.startswith("pc:"):
            return np.flatnonzero(self.pitch_class_mask(parse_pitch_class(selector[3:]))).tolist()
        if selector in self.index:
            return [self.index[selector]]
        raise UnknownTokenError([UnknownToken(0, selector, self.nearest(selector))])

    def select_many(self, selectors: Iterable[str]) -> list[int]:
        seen: dict[int, None] = {}
        for s in selectors:
            for i in self.select(s):
                seen[i] = None
        return list(seen)


def parse_pitch_class(name: str) -> int:
    """``G`` / ``F#`` / ``Bb`` / ``7`` to a pitch class 0..11."""
    if name.isdigit():
        pc = int(name)
        if not 0 <= pc <= 11:
            raise ValueError(f"pitch class must be in range 0..11; got {pc}")
        return pc
    if name in PITCH_CLASS_NAMES:
        return PITCH_CLASS_NAMES.index(name)
    if name in _PC_ALIASES:
        return _PC_ALIASES[name]
    raise ValueError(
        f"pitch class {name!r} is unknown; allowed: 0..11 or {', '.join(PITCH_CLASS_NAMES)} (and flat/sharp spellings)"
    )


def _load_v2_tokens() -> tuple[str, ...]:
    text = resources.files("folkrnn_live.tokens").joinpath("v2_vocab.json").read_text(encoding="utf-8")
    return tuple(json.loads(text))


#: The v2 vocabulary in the v2 model's index order (index 0 ``d'``, 59 ``</s>``, 80 ``<s>``).
V2 = Vocabulary(_load_v2_tokens())
