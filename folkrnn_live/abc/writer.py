"""v2 token tunes to standard ABC text that ordinary ABC tools read.

``M:6/8 K:Cmaj |: G 2 A ...`` becomes::

    X:1
    M:6/8
    L:1/8
    K:C
    |: G2A ...

Tokens of a note are written together (``A2>B``, ``[CEG]2``, ``(3ABc``), bars separated by spaces, a
line break every few bars (never inside a tuplet: ABC tools refuse a tuplet cut by a line end).
``:| |2`` is written ``:|2`` and ``:| |:`` as ``:||:`` (one bar line each in ABC).  A meter or mode
token inside the body becomes an inline field (``[M:3/4]``).  ``<s>`` and ``</s>`` are skipped.

A sampled tune, above all from a perturbed network, need not follow the v2 grammar.  What ABC cannot
notate is left out, and an ABC comment line says how many tokens that was, so the output is always
ABC that standard tools read; a well-formed tune is written exactly (ABC → tokens → ABC → tokens is the
identity).  Left out:

* a duration that follows no note, rest or chord (``c 3 2``: ABC would read ``c32``), or sits inside a
  chord (v2 writes a chord's duration after ``]``), and ``/3`` (a third of a unit: standard tools read
  only lengths built from halvings; no tune of the music21 collections has one);
* ``]`` without ``[``, an empty chord, and the ``[`` of a chord that never closes (its notes are kept);
* a broken rhythm not between two notes in the same bar (``> A``, ``A > |``, ``A > > B``, which ABC
  would read as the double ``>>``), and a glued one (``2>``) after a note that already has a duration;
* a tuplet not followed by its p notes (cut short by the end, an inline field or another tuplet).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from folkrnn_live.tokens import END, START, V2, TokenInfo, UnknownToken, UnknownTokenError

#: K: value for each v2 mode.
MODE_KEYS = {"maj": "C", "min": "Cm", "dor": "Cdor", "mix": "Cmix"}

ItemKind = Literal["note", "chord", "rest", "broken", "tuplet", "bar", "field"]
_SOUNDING = ("note", "chord", "rest")


@dataclass
class _Item:
    """One thing ABC notates: a note, chord or rest (with its duration), a broken rhythm, a tuplet
    (``p`` notes), a bar token or an inline field."""

    kind: ItemKind
    text: str
    duration: str = ""
    p: int = 0


def _classify_all(tokens: Sequence[str]) -> list[TokenInfo]:
    """Token classes, with every token outside the v2 classes reported (with its position)."""
    infos: list[TokenInfo] = []
    unknown: list[UnknownToken] = []
    for pos, tok in enumerate(tokens):
        info = V2.lookup(tok)
        if info is None:
            unknown.append(UnknownToken(pos, tok, V2.nearest(tok)))
        else:
            infos.append(info)
    if unknown:
        raise UnknownTokenError(unknown)
    return infos


def _notatable(duration: TokenInfo) -> bool:
    # ABC tools build lengths from halvings: abc2midi stops at 'C/3' (and at every tune after it),
    # abcm2ps refuses it.  v2's '/3' is the one such duration.
    assert duration.duration is not None
    d = duration.duration.denominator
    return d & (d - 1) == 0


def _key(info: TokenInfo) -> str:
    assert info.mode is not None
    return MODE_KEYS[info.mode]


def tokens_to_abc(tokens: Sequence[str], number: int = 1, title: str | None = None, bars_per_line: int = 4) -> str:
    """One token tune as an ABC tune (no trailing blank line).  Without a meter token the tune is
    written ``M:none``; without a mode token ``K:C``.  Raises :class:`UnknownTokenError` for tokens
    outside the v2 token classes; leaves out (and counts in a ``%`` line) what cannot be notated."""
    if bars_per_line < 1:
        raise ValueError(f"bars_per_line must be at least 1; got {bars_per_line}")
    toks = [t for t in tokens if t not in (START, END)]
    infos = _classify_all(toks)
    meter: str | None = None
    mode: TokenInfo | None = None
    i = 0
    # The header: leading meter and mode tokens, in either order, each at most once.
    while i < len(infos):
        if infos[i].cls == "meter" and meter is None:
            meter = toks[i][2:]
        elif infos[i].cls == "mode" and mode is None:
            mode = infos[i]
        else:
            break
        i += 1
    items, skipped = _items(infos[i:])
    skipped += _drop_unnotatable(items)
    head = [f"X:{number}"]
    if title:
        head.append(f"T:{title}")
    head += [f"M:{meter or 'none'}", "L:1/8", f"K:{_key(mode) if mode else 'C'}"]
    if skipped:
        head.append(f"% {skipped} of the tune's tokens left out: ABC cannot notate them where they stand")
    return "\n".join(head + _lines(items, bars_per_line))


def _items(infos: Sequence[TokenInfo]) -> tuple[list[_Item], int]:
    """Group tokens into ABC items; returns the items and how many tokens fit nowhere."""
    items: list[_Item] = []
    skipped = 0
    chord: list[str] | None = None  # pitches of the open chord

    def abort_chord() -> None:
        # A chord that never closes: its '[' is left out, its pitches become plain notes.
        nonlocal chord, skipped
        if chord is not None:
            skipped += 1
            items.extend(_Item("note", p) for p in chord)
            chord = None

    def open_note() -> _Item | None:
        """The note, chord or rest just written that has no duration yet."""
        last = items[-1] if items else None
        return last if last is not None and last.kind in _SOUNDING and not last.duration else None

    for info in infos:
        cls = info.cls
        if chord is not None:
            if cls == "pitch":
                chord.append(info.text)
                continue
            if cls == "chord" and info.chord == "close":
                if chord:
                    items.append(_Item("chord", "[" + "".join(chord) + "]"))
                else:
                    skipped += 2  # '[ ]' notates nothing
                chord = None
                continue
            if cls == "duration" or (cls == "chord" and info.chord == "open"):
                skipped += 1  # v2 puts a chord's duration after ']'; chords do not nest
                continue
            abort_chord()
        if cls == "pitch":
            items.append(_Item("note", info.text))
        elif cls == "rest":
            items.append(_Item("rest", "z"))
        elif cls == "chord":
            if info.chord == "open":
                chord = []
            else:
                skipped += 1  # ']' without '['
        elif cls == "duration":
            target = open_note()
            if target is None or not _notatable(info):
                skipped += 1  # a duration of nothing (or a second one: 'c 3 2' would read 'c32')
            else:
                target.duration = info.text
        elif cls == "broken":
            assert info.broken is not None
            if info.duration is not None:  # glued '2>': the duration belongs to the note before
                target = open_note()
                if target is None:
                    skipped += 1
                    continue
                target.duration = info.text[:-1]
            items.append(_Item("broken", info.broken))
        elif cls == "tuplet":
            assert info.tuplet is not None
            items.append(_Item("tuplet", info.text, p=info.tuplet))
        elif cls == "bar":
            items.append(_Item("bar", info.text))
        elif cls == "meter":
            items.append(_Item("field", f"[M:{info.text[2:]}]"))
        elif cls == "mode":
            items.append(_Item("field", f"[K:{_key(info)}]"))
    abort_chord()
    return items, skipped


def _drop_unnotatable(items: list[_Item]) -> int:
    """Remove tuplets and broken rhythms that ABC cannot read where they stand; returns how many."""
    before = len(items)
    items[:] = [it for k, it in enumerate(items) if it.kind != "tuplet" or _tuplet_complete(items, k)]
    # A broken rhythm joins two notes of one bar.  Judged after the tuplets, so that a tuplet left
    # out does not leave a '>' in front of it; and against the items kept so far, so that of
    # 'A > > B' one '>' stays.
    kept: list[_Item] = []
    for k, it in enumerate(items):
        nxt = items[k + 1] if k + 1 < len(items) else None
        if it.kind == "broken" and not (kept and kept[-1].kind in _SOUNDING and nxt and nxt.kind in _SOUNDING):
            continue
        kept.append(it)
    items[:] = kept
    return before - len(items)


def _tuplet_complete(items: Sequence[_Item], k: int) -> bool:
    """Whether the tuplet at k is followed by its p notes (broken rhythms and bar lines may come
    between them; another tuplet or an inline field may not), the first one straight away."""
    if k + 1 >= len(items) or items[k + 1].kind not in _SOUNDING:
        return False
    need = items[k].p
    for it in items[k + 1 :]:
        if it.kind in _SOUNDING:
            need -= 1
            if need == 0:
                return True
        elif it.kind in ("tuplet", "field"):
            return False
    return False


_JOINED = {(":|", "|1"): ":|1", (":|", "|2"): ":|2", (":|", "|:"): ":||:"}


def _lines(items: Sequence[_Item], bars_per_line: int) -> list[str]:
    # pieces: (text, is a bar line, a line may end after it)
    pieces: list[tuple[str, bool, bool]] = []
    cur = ""  # the notes since the last bar line
    prev_bar = ""  # the bar token just written, when nothing came after it
    tuplet_left = 0  # notes of the current tuplet still to come
    for it in items:
        if it.kind == "bar":
            if cur:
                pieces.append((cur, False, False))
                cur = ""
            elif (prev_bar, it.text) in _JOINED and pieces and pieces[-1][0] == prev_bar:
                pieces[-1] = (_JOINED[prev_bar, it.text], True, tuplet_left == 0)  # one ABC bar line
                prev_bar = it.text
                continue
            pieces.append((it.text, True, tuplet_left == 0))
            prev_bar = it.text
            continue
        prev_bar = ""
        cur += it.text + it.duration
        if it.kind == "tuplet":
            tuplet_left = it.p
        elif it.kind in _SOUNDING and tuplet_left:
            tuplet_left -= 1
    if cur:
        pieces.append((cur, False, False))
    lines: list[str] = []
    line: list[str] = []
    groups = 0  # bars of notes on this line
    for k, (text, is_bar, may_break) in enumerate(pieces):
        line.append(text)
        if not is_bar:
            groups += 1
            continue
        # Break after a bar line, but not where an ending starts or another bar line follows.
        nxt_is_bar = k + 1 < len(pieces) and pieces[k + 1][1]
        if groups >= bars_per_line and may_break and not text.endswith(("1", "2")) and not nxt_is_bar:
            lines.append(" ".join(line))
            line, groups = [], 0
    if line:
        lines.append(" ".join(line))
    return lines


def tunes_to_abc(tunes: Iterable[Sequence[str]], titles: Sequence[str] | None = None, bars_per_line: int = 4) -> str:
    """Many token tunes as one ABC file, numbered from 1, a blank line after each."""
    out = []
    for n, tune in enumerate(tunes, 1):
        title = titles[n - 1] if titles is not None and n - 1 < len(titles) else None
        out.append(tokens_to_abc(tune, n, title, bars_per_line) + "\n")
    return "\n".join(out)
