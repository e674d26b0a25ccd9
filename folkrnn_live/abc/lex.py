"""ABC 2.1 tune body lexer: notes, rests, chords, broken rhythms, tuplets, bar lines, inline fields.

Handles what real collections contain: ``\\`` line continuations (and e-mail quoted-printable soft
breaks), inline fields, multi-voice tunes (only the first voice is read), old ``!`` line breaks.
Chord symbols, annotations, decorations, grace notes, slurs and fingerings are skipped: the v2
vocabulary has no tokens for them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from folkrnn_live.abc.parse import FIELD_LINE, AbcTune, TuneError


@dataclass(slots=True)
class WrittenNote:
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
    notes: list[WrittenNote]
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
class BarLine:
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


Element = WrittenNote | Rest | Chord | Broken | Tuplet | BarLine | Ending | InlineField | LineEnd

_NOTE = re.compile(r"(\^\^|\^|__|_|=)?([A-Ga-g])([,']*)(\d*)(/*)(\d*)")
_LENGTH = re.compile(r"(\d*)(/*)(\d*)")
_BAR = re.compile(r"\.?(?:\[\||:*\|+\]?:*|::+)(\d+(?:[,-]\d+)*)?")
_TUPLET = re.compile(r"\((\d+)(?::(\d*))?(?::(\d*))?")
_INLINE = re.compile(r"\[([A-Za-z]):([^\]]*)\]")
_LEADING_VOICE = re.compile(r"\s*\[V:([^\]]*)\]")
_ENDING = re.compile(r"\[(\d+(?:[,-]\d+)*)")
# Spacers, slurs and decoration symbols: ABC 2.1 reserves H-W and h-w for (user-definable) decorations.
_SKIP_CHARS = frozenset(" \t`y$*~.()" + "HIJKLMNOPQRSTUVW" + "hijklmnopqrstuvw")


@lru_cache(maxsize=1024)
def _length(num: str, slashes: str, den: str) -> Fraction:
    n = int(num) if num else 1
    if not slashes:
        return Fraction(n)
    d = int(den) * 2 ** (len(slashes) - 1) if den else 2 ** len(slashes)
    if n == 0 or d == 0:
        raise TuneError("unparseable", f"note length {num}{slashes}{den} is zero")
    return Fraction(n, d)


def _note(m: re.Match[str]) -> WrittenNote:
    return WrittenNote(*_note_fields(m.group(0)))


@lru_cache(maxsize=4096)
def _note_fields(text: str) -> tuple[str, int, str | None, Fraction]:
    # Collections repeat the same few hundred note spellings; parse each once.
    m = _NOTE.fullmatch(text)
    assert m is not None
    acc, letter, marks, num, slashes, den = m.groups()
    octave = (1 if letter.islower() else 0) + marks.count("'") - marks.count(",")
    return letter.upper(), octave, acc, _length(num, slashes, den)


def _music_lines(tune: AbcTune) -> list[tuple[int, str, bool]]:
    """Body lines joined over ``\\`` continuations: (first line number, text, is a field line)."""
    out: list[tuple[int, str, bool]] = []
    pending = ""
    start = 0
    for lineno, text in tune.body:
        fm = FIELD_LINE.match(text)
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
        if c == " ":
            i += 1
        elif c in "^_=" or "A" <= c <= "G" or "a" <= c <= "g":
            m = _NOTE.match(s, i)
            if not m:
                if s.startswith(("^/", "_/"), i):
                    raise TuneError("token not in vocabulary", f"{where}: microtonal accidental")
                raise TuneError("unparseable", f"{where}: accidental without a note at {s[i : i + 8]!r}")
            out.append(_note(m))
            i = m.end()
        elif c == '"':
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
            out.append(BarLine(text.lstrip("."), ending))
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
        if isinstance(el, WrittenNote | Chord):
            el.tie = True
            return
        if isinstance(el, BarLine | LineEnd):
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
        out.append(BarLine(text[: -len(ending)] if ending else text, ending))
        return m2.end()
    m = _ENDING.match(s, i)
    if m:
        out.append(Ending(m.group(1)))
        return m.end()
    # A chord: notes (with their own lengths) up to ']', then the chord's length.
    j = i + 1
    notes: list[WrittenNote] = []
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
