"""ABC 2.1 reading: split a file into tunes, parse header fields, lex a tune body.

Written for speed on large collections (music21's parser is far too slow for 13,000 tunes) and for
what real collections contain: comments, free text between tunes, ``\\`` line continuations, inline
fields, multi-voice tunes (only the first voice is read), old ``!`` line breaks.

A problem inside one tune raises :class:`TuneError` with a short *reason* category (counted by the
corpus report) and a detail naming what was found; it never aborts the whole file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

Mode = Literal["maj", "min", "dor", "mix", "lyd", "phr", "loc"]
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


_FIELD = re.compile(r"([A-Za-z+]):(.*)")


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
            m = _FIELD.match(line)
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


LETTERS = "CDEFGAB"
NATURAL = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
# Position of each major key on the circle of fifths (sharps positive), and each mode's offset.
_MAJOR_FIFTHS = {"C": 0, "G": 1, "D": 2, "A": 3, "E": 4, "B": 5, "F": -1}
_MODE_FIFTHS: dict[Mode, int] = {"lyd": 1, "maj": 0, "mix": -1, "dor": -2, "min": -3, "phr": -4, "loc": -5}
_MODE_WORDS: dict[str, Mode] = {
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
_ACC_ALTER = {"^^": 2, "^": 1, "=": 0, "_": -1, "__": -2}
# German key names found in the Essen collection.
_GERMAN_TONICS = {"H": "B", "Es": "Eb", "As": "Ab", "Des": "Db", "Fis": "F#", "Cis": "C#", "Gis": "G#"}


@dataclass(frozen=True)
class Key:
    """A parsed K: field: tonic (letter and alteration), mode, and the signature per letter."""

    letter: str
    alter: int
    mode: Mode
    mode_given: bool  # False for a bare tonic (``K:G``), where the mode is only assumed major
    signature: dict[str, int] = field(default_factory=dict)

    @property
    def tonic_pc(self) -> int:
        return (NATURAL[self.letter] + self.alter) % 12


def signature_for(letter: str, alter: int, mode: Mode) -> dict[str, int]:
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
    mode: Mode = "maj"
    mode_given = False
    explicit: list[tuple[str, int]] = []
    exp_only = False
    for word in rest:
        low = word.lower()
        am = re.fullmatch(r"(\^\^|\^|__|_|=)([A-Ga-g])", word)
        if am:
            explicit.append((am.group(2).upper(), _ACC_ALTER[am.group(1)]))
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


# --------------------------------------------------------------------------- body lexer


@dataclass(slots=True)
class Note:
    """A note as written: letter (upper case), octave (0 = C..B above middle C), explicit accidental
    (None when absent), length in units of L, tie to the next note."""

    letter: str
    octave: int
    acc: str | None
    length: Fraction
    tie: bool = False


@dataclass(slots=True)
class Rest:
    length: Fraction


@dataclass(slots=True)
class Chord:
    notes: list[Note]
    length: Fraction  # the chord's length in units of L (first note's length times the outer one)
    tie: bool = False


@dataclass(slots=True)
class Broken:
    direction: str  # '>' or '<'
    count: int  # 1 for > and <, 2 for >>, ...


@dataclass(slots=True)
class Tuplet:
    p: int
    q: int | None
    r: int | None


@dataclass(slots=True)
class Bar:
    text: str  # as written, e.g. '|', '||', ':|', '::', '|]'
    ending: str | None = None  # '1', '2', '1,3' ... when an ending number follows the bar


@dataclass(slots=True)
class Ending:
    number: str


@dataclass(slots=True)
class InlineField:
    name: str
    value: str


@dataclass(slots=True)
class LineEnd:
    """End of a music line not continued with a backslash."""

    line: int


Element = Note | Rest | Chord | Broken | Tuplet | Bar | Ending | InlineField | LineEnd

_NOTE = re.compile(r"(\^\^|\^|__|_|=)?([A-Ga-g])([,']*)(\d*)(/*)(\d*)")
_LENGTH = re.compile(r"(\d*)(/*)(\d*)")
_BAR = re.compile(r"\.?(?:\[\||:*\|+\]?:*|::+)(\d+(?:[,-]\d+)*)?")
_TUPLET = re.compile(r"\((\d+)(?::(\d*))?(?::(\d*))?")
_INLINE = re.compile(r"\[([A-Za-z]):([^\]]*)\]")
_LEADING_VOICE = re.compile(r"\s*\[V:([^\]]*)\]")
_ENDING = re.compile(r"\[(\d+(?:[,-]\d+)*)")
# Spacers, slurs and decoration symbols: ABC 2.1 reserves H-W and h-w for (user-definable) decorations.
_SKIP_CHARS = frozenset(" \t`y$*~.()" + "HIJKLMNOPQRSTUVW" + "hijklmnopqrstuvw")
_OCTAVE_SHIFT = {",": -1, "'": 1}


@lru_cache(maxsize=1024)
def _length(num: str, slashes: str, den: str) -> Fraction:
    n = int(num) if num else 1
    if not slashes:
        return Fraction(n)
    d = int(den) * 2 ** (len(slashes) - 1) if den else 2 ** len(slashes)
    if n == 0 or d == 0:
        raise TuneError("unparseable", f"note length {num}{slashes}{den} is zero")
    return Fraction(n, d)


def _note(m: re.Match[str]) -> Note:
    acc, letter, marks, num, slashes, den = m.groups()
    octave = (1 if letter.islower() else 0) + sum(_OCTAVE_SHIFT[c] for c in marks)
    return Note(letter.upper(), octave, acc, _length(num, slashes, den))


def _music_lines(tune: AbcTune) -> list[tuple[int, str, bool]]:
    """Body lines joined over ``\\`` continuations: (first line number, text, is a field line)."""
    out: list[tuple[int, str, bool]] = []
    pending = ""
    start = 0
    for lineno, text in tune.body:
        fm = _FIELD.match(text)
        if fm and text[2:3] not in ("|", ":") and not pending:
            out.append((lineno, text, True))
            continue
        if not pending:
            start = lineno
        stripped = text.rstrip()
        # Some collections (Ryan's) went through e-mail quoted-printable: '=20' is a space and a
        # trailing '=' a soft line break.  A natural sign cannot end a line, so this is safe.
        if stripped.endswith("=20"):
            stripped = stripped[:-3].rstrip()
        if stripped.endswith("\\") or (stripped.endswith("=") and not stripped.endswith("==")):
            pending += stripped[:-1]  # a continuation joins the lines as if never broken
            continue
        out.append((start, pending + stripped, False))
        pending = ""
    if pending:
        out.append((start, pending, False))
    return out


def lex_body(tune: AbcTune) -> list[Element]:
    """The musical elements of a tune body, in order; only the first voice of a multi-voice tune.

    Dropped on the way (not in the v2 vocabulary): chord symbols and annotations, decorations,
    grace notes, slurs, fingerings, spacers.  Raises TuneError for what cannot be read."""
    out: list[Element] = []
    first_voice: str | None = None
    voice: str | None = None
    for lineno, text, is_field in _music_lines(tune):
        lead = _LEADING_VOICE.match(text) if not is_field else None
        if lead:  # '[V:2] x8 |...': a voice's line, written with an inline field
            text = text[lead.end() :]
            voice = lead.group(1).split()[0] if lead.group(1).split() else ""
            if first_voice is None:
                first_voice = voice
        if is_field:
            name, value = text[0], text[2:].strip()
            if name == "V":
                voice = value.split()[0] if value.split() else ""
                if first_voice is None:
                    first_voice = voice
            elif name in "KML" and (first_voice is None or voice == first_voice):
                out.append(InlineField(name, value))
            continue
        if first_voice is not None and voice != first_voice:
            continue
        _lex_line(text, lineno, out)
        out.append(LineEnd(lineno))
    return out


def _lex_line(s: str, lineno: int, out: list[Element]) -> None:
    i, n = 0, len(s)
    where = f"line {lineno}"
    while i < n:
        c = s[i]
        if c in '"':
            j = s.find('"', i + 1)
            if j < 0:
                raise TuneError("unparseable", f"{where}: unterminated chord symbol or annotation")
            i = j + 1
        elif c == "!":
            j = s.find("!", i + 1)
            # ABC 2.1 decoration !trill!; a lone '!' is the old ABC line break and means nothing here.
            i = j + 1 if j > 0 and " " not in s[i + 1 : j] and "|" not in s[i + 1 : j] else i + 1
        elif c == "+":
            j = s.find("+", i + 1)
            i = j + 1 if j > 0 else i + 1
        elif c == "{":
            j = s.find("}", i + 1)
            if j < 0:
                raise TuneError("unparseable", f"{where}: unterminated grace notes")
            i = j + 1
        elif c in "^_=" or "A" <= c <= "G" or "a" <= c <= "g":
            m = _NOTE.match(s, i)
            if not m:
                if s.startswith(("^/", "_/"), i):
                    raise TuneError("token not in vocabulary", f"{where}: microtonal accidental")
                raise TuneError("unparseable", f"{where}: accidental without a note at {s[i : i + 8]!r}")
            out.append(_note(m))
            i = m.end()
        elif c in "zx":
            m = _LENGTH.match(s, i + 1)
            assert m is not None
            out.append(Rest(_length(*m.groups())))
            i = m.end()
        elif c == "Z":
            raise TuneError("multi-bar rest", f"{where}: Z (multi-bar rest)")
        elif c == "-":
            _tie_last(out, where)
            i += 1
        elif c in "><":
            j = i
            while j < n and s[j] == c:
                j += 1
            out.append(Broken(c, j - i))
            i = j
        elif c == "(" and i + 1 < n and s[i + 1].isdigit():
            m = _TUPLET.match(s, i)
            assert m is not None
            p = int(m.group(1))
            q = int(m.group(2)) if m.group(2) else None
            r = int(m.group(3)) if m.group(3) else None
            out.append(Tuplet(p, q, r))
            i = m.end()
        elif c == "[":
            i = _lex_bracket(s, i, where, out)
        elif c in "|:" or (c == "." and s.startswith(".|", i)):
            m = _BAR.match(s, i)
            if not m or m.end() == i:
                raise TuneError("unparseable", f"{where}: stray {c!r}")
            text = m.group(0)
            ending = m.group(1)
            if ending:
                text = text[: -len(ending)]
            out.append(Bar(text.lstrip("."), ending))
            i = m.end()
        elif c == "]":
            i += 1  # closing of an invisible bar [|] or stray: nothing to read
        elif c == "&":
            raise TuneError("multiple voices", f"{where}: voice overlay &")
        elif c in _SKIP_CHARS or c == "\\":
            i += 1
        elif c.isdigit():
            # A fingering or a stray number outside a note (a note's own length was already read).
            i += 1
        else:
            raise TuneError("unparseable", f"{where}: unexpected character {c!r}")


def _tie_last(out: list[Element], where: str) -> None:
    for el in reversed(out):
        if isinstance(el, Note | Chord):
            el.tie = True
            return
        if isinstance(el, Bar | LineEnd):
            continue
        return


def _lex_bracket(s: str, i: int, where: str, out: list[Element]) -> int:
    m = _INLINE.match(s, i)
    if m:
        if m.group(1) in "KML":
            out.append(InlineField(m.group(1), m.group(2).strip()))
        elif m.group(1) == "V":
            raise TuneError("multiple voices", f"{where}: inline voice field [V:{m.group(2)}]")
        return m.end()
    if s.startswith("[|", i):
        m2 = _BAR.match(s, i)
        assert m2 is not None
        text, ending = m2.group(0), m2.group(1)
        out.append(Bar(text[: -len(ending)] if ending else text, ending))
        return m2.end()
    m = _ENDING.match(s, i)
    if m:
        out.append(Ending(m.group(1)))
        return m.end()
    # A chord: notes (with their own lengths) up to ']', then the chord's length.
    j = i + 1
    notes: list[Note] = []
    n = len(s)
    while j < n and s[j] != "]":
        c = s[j]
        if c in "^_=" or "A" <= c <= "G" or "a" <= c <= "g":
            nm = _NOTE.match(s, j)
            if not nm:
                raise TuneError("unparseable", f"{where}: bad note in chord {s[i : j + 6]!r}")
            notes.append(_note(nm))
            j = nm.end()
        elif c == '"':
            k = s.find('"', j + 1)
            j = k + 1 if k > 0 else n
        elif c == "!":
            k = s.find("!", j + 1)
            j = k + 1 if k > 0 else j + 1
        elif c in " -.~()><" or c in _SKIP_CHARS or c.isdigit():
            j += 1
        else:
            raise TuneError("unparseable", f"{where}: unexpected {c!r} in chord")
    if j >= n:
        raise TuneError("unparseable", f"{where}: unterminated chord")
    lm = _LENGTH.match(s, j + 1)
    assert lm is not None
    outer = _length(*lm.groups())
    if not notes:
        return lm.end()  # '[]' carries no music
    out.append(Chord(notes, notes[0].length * outer))
    return lm.end()
