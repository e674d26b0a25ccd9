"""Bar checker: which bars of a v2 token tune have the right length for its meter.

Note lengths are read exactly as the player reads them, by :mod:`folkrnn_live.tokens.rhythm` (the one
reader of the v2 duration, broken-rhythm, tuplet and chord rules), in the tune's first meter.

Bars are read as musicians read them:

* a bar of the meter's length is right (``full``);
* a short first bar is an anacrusis (``pickup``); a short first bar after ``|:`` or ``:|`` starts a new
  section with its own pickup;
* a short bar just before ``:|``, ``|:``, an ending or the end of the tune is right when it completes
  the current section's pickup (``completes pickup``: length + pickup = bar);
* two short bars between full bars, separated only by bar lines, that add up to one bar are right
  (``split bar``: a part that ends early for the next part's pickup, the v2 data having turned ``||``
  into ``|``);
* a short bar just before ``|1`` is right when each ending's first bar completes it (``split by ending``);
* every other bar is wrong (``too short`` / ``too long``).

Empty bars (between ``:|`` and ``|:``, or before a leading ``|:``) are not bars and are not reported.
Nothing here raises on malformed input (tunes sampled from a perturbed network): what the rhythm
reader skips (a duration with no note, an empty chord, ...) adds nothing to a bar.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from folkrnn_live.tokens import V2
from folkrnn_live.tokens.rhythm import TICKS, RhythmReader, Ticks

BarReason = Literal[
    "full", "pickup", "completes pickup", "split bar", "split by ending", "too short", "too long", "no meter"
]
_BOUNDARY = {":|", "|:", "|1", "|2"}


def bar_units(meter: tuple[int, int]) -> Fraction:
    """Length of one bar in units of 1/8 (M:4/4 → 8, 6/8 → 6, 3/2 → 12)."""
    return Fraction(8 * meter[0], meter[1])


@dataclass(frozen=True)
class Segment:
    """The notes between two bar tokens: token span [start, stop), length in 1/8, the bar token that
    closes it ('' at the end of the tune)."""

    start: int
    stop: int
    length: Fraction
    closer: str


def note_lengths(tokens: Sequence[str], meter: tuple[int, int] | None = None) -> list[tuple[int, Fraction]]:
    """(token index where a note, rest or chord starts, its sounding length in 1/8 units), in order."""
    notes, _ = _walk(tokens, meter)
    return notes


def segments(tokens: Sequence[str], meter: tuple[int, int] | None = None) -> list[Segment]:
    """The tune cut at its bar tokens (empty segments included)."""
    return _walk(tokens, meter)[1]


def _walk_ticks(
    tokens: Sequence[str], meter: tuple[int, int] | None
) -> tuple[list[tuple[int, Ticks]], list[tuple[int, int, Ticks, str]]]:
    """Note lengths and segments in ticks, read by the player's rules (:mod:`folkrnn_live.tokens.rhythm`)."""
    reader = RhythmReader(meter if meter is not None else find_meter(tokens))
    cuts: list[tuple[int, int, str]] = []  # start token, stop token (the bar token), closer
    seg_start = 0
    known, feed = V2.info_of, reader.feed
    for i, tok in enumerate(tokens):
        info = known.get(tok) or V2.lookup(tok)
        if info is None or info.cls == "start":
            continue  # not a token, or a <s>: nothing to count
        feed(i, info)
        if info.cls == "bar":
            cuts.append((seg_start, i, tok))
            seg_start = i + 1
    reader.finish(len(tokens))
    cuts.append((seg_start, len(tokens), ""))
    lengths = [(n.step, n.ticks) for n in reader.fixed]
    # A note belongs to the segment its first token is in.
    out: list[tuple[int, int, Ticks, str]] = []
    k, n = 0, len(lengths)
    for a, b, closer in cuts:
        total: Ticks = 0
        while k < n and lengths[k][0] < b:
            total += lengths[k][1]
            k += 1
        out.append((a, b, total, closer))
    return lengths, out


def _walk(tokens: Sequence[str], meter: tuple[int, int] | None) -> tuple[list[tuple[int, Fraction]], list[Segment]]:
    notes, segs = _walk_ticks(tokens, meter)
    return (
        [(i, Fraction(t, TICKS)) for i, t in notes],
        [Segment(a, b, Fraction(t, TICKS), closer) for a, b, t, closer in segs],
    )


@dataclass(frozen=True)
class BarCheck:
    """One bar: its index among the reported bars (0-based), token span, length found and expected
    (in units of 1/8), whether it is right and why."""

    index: int
    start: int
    stop: int
    length: Fraction
    expected: Fraction
    ok: bool
    reason: BarReason


@dataclass(frozen=True)
class BarReport:
    meter: tuple[int, int] | None
    bars: tuple[BarCheck, ...]

    @property
    def n_bars(self) -> int:
        return len(self.bars)

    @property
    def n_ok(self) -> int:
        return sum(b.ok for b in self.bars)

    @property
    def share_ok(self) -> float:
        """Share of bars with the right length; 0.0 for a tune without bars."""
        return self.n_ok / self.n_bars if self.bars else 0.0

    @property
    def all_ok(self) -> bool:
        return bool(self.bars) and self.n_ok == self.n_bars

    @property
    def wrong(self) -> tuple[BarCheck, ...]:
        return tuple(b for b in self.bars if not b.ok)


def find_meter(tokens: Sequence[str]) -> tuple[int, int] | None:
    """The meter of the tune's first meter token (None without one)."""
    for t in tokens:
        info = V2.lookup(t)
        if info is not None and info.meter is not None:
            return info.meter
    return None


def check_bars(tokens: Sequence[str], meter: tuple[int, int] | None = None) -> BarReport:
    """Check every bar of a token tune (``<s>``/``</s>`` allowed).  The meter is the tune's first
    meter token unless given."""
    tokens = list(tokens)
    if meter is None:
        meter = find_meter(tokens)
    # Bars are the non-empty segments; the bar tokens of empty segments that follow a bar are part
    # of what closes it (':| |2', ':| |:').
    bars: list[Segment] = []
    closers: list[set[str]] = []
    for a, b, ticks, closer in _walk_ticks(tokens, meter)[1]:
        s = Segment(a, b, Fraction(ticks, TICKS), closer)
        if s.length == 0 and bars:
            if s.closer:
                closers[-1].add(s.closer)
            continue
        if s.length == 0:
            continue
        bars.append(s)
        closers.append({s.closer} if s.closer else {""})
    if meter is None:
        return BarReport(
            None,
            tuple(BarCheck(k, s.start, s.stop, s.length, Fraction(0), False, "no meter") for k, s in enumerate(bars)),
        )
    return BarReport(meter, tuple(_read_bars(bars, closers, bar_units(meter))))


def _read_bars(bars: list[Segment], closers: list[set[str]], full: Fraction) -> list[BarCheck]:
    result: list[BarCheck | None] = [None] * len(bars)
    pickup = Fraction(0)
    n = len(bars)

    def mark(k: int, ok: bool, reason: BarReason, expected: Fraction) -> None:
        s = bars[k]
        result[k] = BarCheck(k, s.start, s.stop, s.length, expected, ok, reason)

    for k, s in enumerate(bars):
        if result[k] is not None:
            continue
        length = s.length
        if length == full:
            mark(k, True, "full", full)
            continue
        if length > full:
            mark(k, False, "too long", full)
            continue
        # A short bar.
        if k == 0:
            pickup = length
            mark(k, True, "pickup", length)
            continue
        if "|1" in closers[k] and k + 1 < n:
            # Endings that start inside a bar: this bar plus each ending's first bar is read as one
            # bar, which may itself complete the pickup or be split for the next part's pickup.
            firsts = [k + 1, *[j for j in range(k + 2, n) if "|2" in closers[j - 1]][:1]]
            readings = [_ending_reading(j, length, bars, closers, full, pickup) for j in firsts]
            if all(r is not None and result[j] is None for j, r in zip(firsts, readings, strict=True)):
                mark(k, True, "split by ending", length)
                for j, split_with in zip(firsts, readings, strict=True):
                    mark(j, True, "split by ending", bars[j].length)
                    if split_with:
                        mark(split_with, True, "split bar", bars[split_with].length)
                        pickup = bars[split_with].length
                continue
        nxt = bars[k + 1].length if k + 1 < n else None
        # A split bar sits between full bars (the end of one part, or its ending, and the start of the
        # next); without that condition a tune read at half its note values would pass as pairs of
        # half bars.
        after_full = bars[k - 1].length == full or bool(closers[k - 1] & {"|1", "|2"})  # or an ending
        between_full = after_full and (k + 2 >= n or bars[k + 2].length == full)
        if nxt is not None and nxt < full and length + nxt == full and between_full:
            mark(k, True, "split bar", full - nxt)
            mark(k + 1, True, "split bar", full - length)
            pickup = nxt  # the second half is the next part's pickup
            continue
        if (k == n - 1 or closers[k] & _BOUNDARY) and pickup and length + pickup == full:
            mark(k, True, "completes pickup", full - pickup)
            continue
        if closers[k - 1] & {"|:", ":|"}:
            pickup = length
            mark(k, True, "pickup", length)
            continue
        mark(k, False, "too short", full)
    return [r for r in result if r is not None]


def _ending_reading(
    j: int, before: Fraction, bars: list[Segment], closers: list[set[str]], full: Fraction, pickup: Fraction
) -> int | None:
    """Whether an ending's first bar j completes the bar begun before the ending: None if not, else 0,
    or the index of the next part's pickup bar that completes it."""
    combined = before + bars[j].length
    if combined == full:
        return 0
    if (j == len(bars) - 1 or closers[j] & _BOUNDARY) and pickup and combined + pickup == full:
        return 0
    if j + 1 < len(bars) and combined + bars[j + 1].length == full:
        return j + 1
    return None


def bar_accuracy(tunes: Iterable[Sequence[str]]) -> float:
    """Share of right bars over all bars of all tunes (pooled, so long tunes weigh more); 0.0 when
    there are no bars at all."""
    ok = total = 0
    for tune in tunes:
        report = check_bars(tune)
        ok += report.n_ok
        total += report.n_bars
    return ok / total if total else 0.0
