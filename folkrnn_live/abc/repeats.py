"""Repeat signs the way the v2 data writes them (``../shared/reference/folkrnn-v2.md``, "Conventions").

The v2 transcriptions write every repeated section with an explicit ``|:`` and write a part played
twice once, between repeat signs.  ABC sources often do neither: ABC lets the first ``|:`` be implied
(a ``:|`` with no ``|:`` before it goes back to the tune start or to the previous ``:|``/``||``), and
O'Neill's collection writes many reels' parts out twice note for note.  This pass, run on the token
list the converter emits (with the source's double bars still marked ``||``), makes both explicit:

* **Written-out repeats** (:func:`fold_repeats`): a run of k >= 4 bars followed at once by the same
  k bars, token for token, starting at a section start (after the anacrusis, after ``:|`` or a
  double bar, or a whole number of 4-bar phrases after one), becomes ``|: ... :|``.  Runs already
  inside repeat signs are left alone (folding them would change how often they are played).
* **Implicit repeat starts** (:func:`explicit_starts`): a ``:|`` with no ``|:`` since the last section
  boundary gets one where its section starts: after the anacrusis at the tune start (``A |: G E C``),
  right after the previous ``:|`` (``:| |:``), at a double bar (``||`` becomes ``|:``), or after the
  second ending of the previous part (as many bars after ``|2`` as the first ending had).

Double bars become ``|`` afterwards (the v2 tokenising rule ``||`` → ``|``).  Bar lengths are never
changed, so a tune that passed the bar check still passes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from folkrnn_live.abc import bars as barmod

DOUBLE = "||"  # the converter's marker for a source double bar (``||``, ``|]``, ``[|``); not a v2 token
_BARS = {"|", "|:", ":|", "|1", "|2", DOUBLE}
_REPEATS = {"|:", ":|", "|1", "|2"}
MIN_FOLD_BARS = 4


@dataclass
class _Tune:
    """Header tokens, then groups[0] contents[0] groups[1] ... contents[m-1] groups[m]: each group the
    (possibly empty) run of bar tokens between two bars' contents."""

    header: list[str]
    groups: list[list[str]]
    contents: list[list[str]]

    def tokens(self) -> list[str]:
        out = list(self.header)
        for g, c in zip(self.groups, self.contents, strict=False):
            out += g
            out += c
        out += self.groups[-1]
        return out


def _alternate(header: list[str], body: Sequence[str]) -> _Tune:
    groups: list[list[str]] = [[]]
    contents: list[list[str]] = []
    in_content = False
    for t in body:
        if t in _BARS:
            if in_content:
                groups.append([])
                in_content = False
            groups[-1].append(t)
        else:
            if not in_content:
                contents.append([])
                in_content = True
            contents[-1].append(t)
    if in_content:
        groups.append([])
    return _Tune(header, groups, contents)


def _pickup(tune: _Tune, meter: tuple[int, int]) -> bool | None:
    """Whether the tune opens with a short bar (an anacrusis), or None when the bar checker sees other
    bars than we do (then nothing is folded).  Folding never changes the first bar, so this is read
    once per tune."""
    plain = [("|" if t == DOUBLE else t) for t in tune.tokens()]
    bars = barmod.check_bars(plain, meter).bars
    if len(bars) != len(tune.contents):
        return None
    return len(bars) > 1 and bars[0].length < barmod.bar_units(meter)


def _has(group: list[str], tokens: set[str]) -> bool:
    return any(t in tokens for t in group)


def _open(group: list[str]) -> list[str]:
    """The group with a ``|:`` added where a section starts."""
    if "|:" in group:
        return group
    rest = [t for t in group if t not in ("|", DOUBLE)]
    if rest and rest[-1] in ("|1", "|2"):
        return group  # never open a section inside an ending's bar line
    return [*rest, "|:"]


def _close(group: list[str]) -> list[str]:
    """The group after the first copy of a folded section: ``:|`` then whatever followed the second."""
    rest = [t for t in group if t not in ("|", DOUBLE)]
    return [":|", *rest]


def _inside(tune: _Tune) -> list[bool]:
    """For each bar: whether it lies inside repeat signs or an ending (written or implied), where a
    fold would change how often something is played."""
    inside = [False] * len(tune.contents)
    seg_start, in_ending = 0, False
    for i, g in enumerate(tune.groups):
        if ":|" in g:
            for j in range(seg_start, i):
                inside[j] = True
            in_ending = "|2" in g
        if _has(g, {"|:", ":|", DOUBLE}):
            seg_start = i
        if _has(g, {"|1", "|2"}):
            in_ending = True
        elif DOUBLE in g or "|:" in g:
            in_ending = False
        if i < len(inside) and in_ending:
            inside[i] = True
    return inside


def fold_repeats(tune: _Tune, pickup: bool) -> int:
    """Fold written-out repeats in place; returns how many sections were folded."""
    folds = 0
    while _fold_once(tune, 1 if pickup else 0):
        folds += 1
    return folds


def _fold_once(tune: _Tune, first: int) -> bool:
    """One fold at the earliest section start that has one; ``first`` is the bar after the anacrusis."""
    inside = _inside(tune)
    phrase_start = first
    for p in range(first, len(tune.contents)):
        if p > first and _has(tune.groups[p], {"|:", ":|", DOUBLE}):
            phrase_start = p
        if (p - phrase_start) % MIN_FOLD_BARS == 0 and not inside[p] and _fold_at(tune, p, inside):
            return True
    return False


def _fold_at(tune: _Tune, p: int, inside: list[bool]) -> bool:
    """Fold the longest run of k bars at p that the next k bars repeat: note for note (``|: A :|``), or
    note for note but for the last bar (written-out first and second endings: ``|: A |1 x :| |2 y``)."""
    c, g = tune.contents, tune.groups
    for k in range((len(c) - p) // 2, MIN_FOLD_BARS - 1, -1):
        mid, end = p + k, p + 2 * k
        if c[p : mid - 1] != c[mid : end - 1] or any(inside[p:end]):
            continue
        if any(_has(x, _REPEATS) for x in g[p + 1 : end]) or "|:" in g[p] or ":|" in g[end]:
            continue
        g[p] = _open(g[p])
        if c[mid - 1] == c[end - 1]:
            g[mid] = _close(g[end])
            del c[mid:end]
            del g[mid + 1 : end + 1]
        else:
            g[mid - 1] = ["|1"]
            g[mid] = [":|", "|2"]
            del c[mid : end - 1]
            del g[mid + 1 : end]
        return True
    return False


def explicit_starts(tune: _Tune, pickup: bool) -> None:
    """Add the implied ``|:`` of each ``:|`` that has none."""
    start: int | None = 1 if pickup else 0  # the group where the current section starts
    opened = False
    ending_at: int | None = None  # the group holding the current first ending's '|1'
    for i, g in enumerate(tune.groups):
        if ":|" in g:
            k = g.index(":|")
            if not opened and "|:" not in g[:k] and start is not None:
                tune.groups[start] = _open(tune.groups[start])
            after = g[k + 1 :]
            opened = "|:" in after
            start = i
            if "|2" in after:  # the next part starts after the second ending, as long as the first
                start = None
                if ending_at is not None:
                    nxt = i + (i - ending_at)
                    if nxt < len(tune.groups) and not _has(tune.groups[nxt], _REPEATS):
                        start = nxt
            ending_at = None
            continue
        if "|1" in g:
            ending_at = i
        if "|:" in g:
            opened, start = True, i
        elif DOUBLE in g and not opened:
            start = i


def _normalise(tune: _Tune) -> list[str]:
    """Double bars become ``|``; runs of bar tokens fold the way the v2 data has them."""
    groups: list[list[str]] = []
    for k, g in enumerate(tune.groups):
        toks = ["|" if t == DOUBLE else t for t in g]
        out: list[str] = []
        for t in toks:
            if out and out[-1] == "|":
                out[-1] = t
            elif not (out and t == "|"):
                out.append(t)
        if k == 0 and out == ["|"]:
            out = []  # a leading plain '|' carries nothing
        groups.append(out)
    tune.groups = groups
    return tune.tokens()


def v2_repeats(tokens: Sequence[str], meter: tuple[int, int]) -> tuple[list[str], int]:
    """Tokens (header first, double bars as ``||``) in the v2 data's repeat form, and the folds made."""
    tune = _alternate([t for t in tokens[:2] if t.startswith(("M:", "K:"))], tokens[2:])
    pickup = _pickup(tune, meter)
    folds = 0 if pickup is None else fold_repeats(tune, pickup)
    explicit_starts(tune, bool(pickup))
    return _normalise(tune), folds
