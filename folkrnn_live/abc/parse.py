"""ABC 2.1 reading: split a file into tunes and parse the header fields (M:, L:, K:).

Written for speed on large collections (music21's parser is far too slow for 13,000 tunes) and for
what real collections contain: comments, free text between tunes, damaged header lines, latin-1.
The tune body is read by :mod:`folkrnn_live.abc.lex`.

A problem inside one tune raises :class:`TuneError` with a short *reason* category (counted by the
corpus report) and a detail naming what was found; it never aborts the whole file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal, get_args

from folkrnn_live.tokens import LETTER_SEMITONE, LETTERS

#: The modes a K: field may name (the v2 vocabulary has four of them: :data:`folkrnn_live.tokens.Mode`).
AbcMode = Literal["maj", "min", "dor", "mix", "lyd", "phr", "loc"]
#: Why a tune is not in the corpus (the rows of the corpus report, in this order).
DropReason = Literal[
    "meter not in v2",
    "meter change",
    "key unsupported",
    "mode not in v2",
    "key change",
    "multiple voices",
    "multi-bar rest",
    "broken rhythm >>",
    "tuplet not in v2",
    "ending other than 1/2",
    "duration not in vocabulary",
    "pitch out of range",
    "pitch not in vocabulary",
    "token not in vocabulary",
    "unparseable",
    "empty tune",
    "wrong bar lengths",
    "duplicate",
]
DROP_REASONS: tuple[DropReason, ...] = get_args(DropReason)


class TuneError(ValueError):
    """One tune cannot be used.  ``reason`` is a short category, ``detail`` says what was found."""

    def __init__(self, reason: DropReason, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True)
class AbcTune:
    """One tune as written: header fields up to and including K:, and the body lines after it."""

    source: str
    line: int  # 1-based line number of the X: field
    number: str
    title: str
    headers: tuple[tuple[str, str], ...]
    body: tuple[tuple[int, str], ...]  # (line number, text without comment), continuations not yet joined

    def header(self, name: str) -> str | None:
        """The last value of a header field (ABC: a later field overrides an earlier one)."""
        value = None
        for key, v in self.headers:
            if key == name:
                value = v
        return value


FIELD_LINE = re.compile(r"([A-Za-z+]):(.*)")


def strip_comment(line: str) -> str:
    """Remove a ``%`` comment (``\\%`` is a literal percent sign)."""
    i = line.find("%")
    while i > 0 and line[i - 1] == "\\":
        i = line.find("%", i + 1)
    return line if i < 0 else line[:i]


def decode_abc(data: bytes) -> str:
    """ABC files in collections are UTF-8 or latin-1; latin-1 never fails, so it is the fallback."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_abc_file(path: str | Path) -> str:
    return decode_abc(Path(path).read_bytes())


def split_tunes(text: str, source: str = "<text>") -> list[AbcTune]:
    """All tunes of an ABC text, in file order.  A tune starts at ``X:`` and ends at a blank line or
    the next ``X:``; text outside tunes (file headers, notes) is ignored."""
    tunes: list[AbcTune] = []
    cur: dict[str, object] | None = None

    def finish() -> None:
        if cur is not None:
            headers = cur["headers"]
            title = next((v for k, v in headers if k == "T"), "")  # type: ignore[attr-defined]
            tunes.append(
                AbcTune(
                    source=source,
                    line=cur["line"],  # type: ignore[arg-type]
                    number=cur["number"],  # type: ignore[arg-type]
                    title=title,
                    headers=tuple(headers),  # type: ignore[arg-type]
                    body=tuple(cur["body"]),  # type: ignore[arg-type]
                )
            )

    for lineno, raw in enumerate(text.splitlines(), 1):
        if raw.startswith("%"):
            continue  # comment or %% directive: never ends a tune
        line = strip_comment(raw).rstrip()
        if raw.startswith("X:"):
            finish()
            number = line[2:].strip()
            cur = {"line": lineno, "number": number, "headers": [("X", number)], "body": [], "in_body": False}
            continue
        if cur is None:
            continue
        if not raw.strip():
            finish()
            cur = None
            continue
        if not line.strip():
            continue
        if not cur["in_body"]:
            m = FIELD_LINE.match(line)
            if m:
                cur["headers"].append((m.group(1), m.group(2).strip()))  # type: ignore[attr-defined]
                if m.group(1) == "K":
                    cur["in_body"] = True
            # Anything else before K: is a damaged header line ("3/8=120" missing its "Q:"); ABC
            # 2.1 has no music before K:, so it is skipped.  A tune without K: is dropped later.
        else:
            cur["body"].append((lineno, line))  # type: ignore[attr-defined]
    finish()
    return tunes


# --------------------------------------------------------------------------- header fields

Meter = tuple[int, int]


def parse_meter(value: str) -> Meter | None:
    """``M:`` value to (numerator, denominator); ``C`` is 4/4 and ``C|`` is 2/2.  None for ``M:none``
    (free meter).  Raises TuneError for anything else that is not a plain fraction."""
    v = value.strip().replace(" ", "")
    if v == "C":
        return (4, 4)
    if v == "C|":
        return (2, 2)
    if v.lower() in ("none", ""):
        return None
    m = re.fullmatch(r"(\d+)/(\d+)", v)
    if not m:
        raise TuneError("meter not in v2", f"meter {value!r} is not a plain fraction")
    return int(m.group(1)), int(m.group(2))


def parse_unit(value: str) -> Fraction:
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", value)
    if not m or int(m.group(1)) == 0 or int(m.group(2)) == 0:
        raise TuneError("unparseable", f"unit length L:{value} is not a fraction like 1/8")
    return Fraction(int(m.group(1)), int(m.group(2)))


def default_unit(meter: Meter | None) -> Fraction:
    """ABC 2.1: without L:, the unit is 1/16 when the meter is below 0.75, else 1/8."""
    if meter is not None and Fraction(*meter) < Fraction(3, 4):
        return Fraction(1, 16)
    return Fraction(1, 8)


# Position of each major key on the circle of fifths (sharps positive), and each mode's offset.
_MAJOR_FIFTHS = {"C": 0, "G": 1, "D": 2, "A": 3, "E": 4, "B": 5, "F": -1}
_MODE_FIFTHS: dict[AbcMode, int] = {"lyd": 1, "maj": 0, "mix": -1, "dor": -2, "min": -3, "phr": -4, "loc": -5}
_MODE_WORDS: dict[str, AbcMode] = {
    "maj": "maj",
    "ion": "maj",
    "min": "min",
    "aeo": "min",
    "m": "min",
    "dor": "dor",
    "mix": "mix",
    "lyd": "lyd",
    "phr": "phr",
    "loc": "loc",
}
_SHARP_ORDER = "FCGDAEB"
#: Semitones of each ABC accidental (ABC has double ones; v2 tokens do not).
ACC_ALTER = {"^^": 2, "^": 1, "=": 0, "_": -1, "__": -2}
# German key names found in the Essen collection.
_GERMAN_TONICS = {"H": "B", "Es": "Eb", "As": "Ab", "Des": "Db", "Fis": "F#", "Cis": "C#", "Gis": "G#"}


@dataclass(frozen=True)
class Key:
    """A parsed K: field: tonic (letter and alteration), mode, and the signature per letter."""

    letter: str
    alter: int
    mode: AbcMode
    mode_given: bool  # False for a bare tonic (``K:G``), where the mode is only assumed major
    signature: dict[str, int] = field(default_factory=dict)

    @property
    def tonic_pc(self) -> int:
        return (LETTER_SEMITONE[self.letter] + self.alter) % 12


def signature_for(letter: str, alter: int, mode: AbcMode) -> dict[str, int]:
    fifths = _MAJOR_FIFTHS[letter] + 7 * alter + _MODE_FIFTHS[mode]
    if not -7 <= fifths <= 7:
        raise TuneError("key unsupported", f"key {letter}{'#' * alter or 'b' * -alter} {mode} needs {fifths} fifths")
    sig = dict.fromkeys(LETTERS, 0)
    order = _SHARP_ORDER if fifths > 0 else _SHARP_ORDER[::-1]
    for ch in order[: abs(fifths)]:
        sig[ch] = 1 if fifths > 0 else -1
    return sig


def parse_key(value: str) -> Key:
    """``K:`` value: tonic, mode (first three letters of the word, any case), explicit accidentals
    (``^f _b``, with ``exp`` meaning only those), clef and other keywords ignored."""
    text = value.strip()
    for german, std in _GERMAN_TONICS.items():
        if re.fullmatch(german, text):
            text = std
    if not text or text.lower().startswith("none"):
        raise TuneError("key unsupported", f"K:{value} has no tonic")
    if text.startswith(("HP", "Hp")):
        raise TuneError("key unsupported", f"K:{value} (highland pipes) has no standard tonic")
    m = re.match(r"([A-G])([#b]?)\s*", text)
    if not m:
        raise TuneError("key unsupported", f"K:{value} does not start with a tonic A-G")
    letter, acc = m.group(1), m.group(2)
    alter = {"#": 1, "b": -1, "": 0}[acc]
    rest = text[m.end() :].split()
    mode: AbcMode = "maj"
    mode_given = False
    explicit: list[tuple[str, int]] = []
    exp_only = False
    for word in rest:
        low = word.lower()
        am = re.fullmatch(r"(\^\^|\^|__|_|=)([A-Ga-g])", word)
        if am:
            explicit.append((am.group(2).upper(), ACC_ALTER[am.group(1)]))
        elif low == "exp":
            exp_only = True
        elif "=" in word:
            continue  # clef=, transpose=, middle= ...
        elif not mode_given and not explicit and (low[:3] in _MODE_WORDS or low == "m"):
            mode = _MODE_WORDS["m" if low == "m" else low[:3]]
            mode_given = True
        elif low in ("treble", "bass", "alto", "tenor", "perc", "none"):
            continue
        else:
            raise TuneError("key unsupported", f"K:{value}: {word!r} is not a mode (maj, min, dor, mix, ...)")
    sig = dict.fromkeys(LETTERS, 0) if exp_only else signature_for(letter, alter, mode)
    for ch, a in explicit:
        sig[ch] = a
    return Key(letter, alter, mode, mode_given, sig)
