"""Form figures of token tunes: what makes folk-rnn's music sound like session dance tunes.

One definition serves `evaluate` (generated tunes) and the corpus figures it prints beside them:

* **two repeated parts**: at least two ``:|`` (each part closed by ``:|``, or by ``|1 ... :| |2``);
* **has ``|:``**: an explicit repeat start anywhere (counted among the tunes that have a ``:|``);
* **repeats balanced**: every ``|:`` closed by a ``:|`` before the next ``|:`` or the end, and every ``:|``
  closing an open ``|:``, as in every tune of the v2-format corpus. The two figures above miss a tune that
  opens a repeat and never closes it;
* **rests per note**: ``z`` tokens over notes, rests and chords;
* **tokens per tune**: the body between ``<s>`` and ``</s>``, header included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from folkrnn_live.tokens import V2


@dataclass(frozen=True)
class FormFigures:
    """Form figures over a set of tunes (shares in 0..1)."""

    tunes: int
    two_repeated_parts: float
    with_repeat_start: float  # among the tunes that have a ':|'
    with_repeat_end: int  # tunes with at least one ':|'
    repeats_balanced: float
    rests_per_note: float
    mean_tokens: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "tunes": self.tunes,
            "two_repeated_parts": round(self.two_repeated_parts, 4),
            "repeat_start_when_repeated": round(self.with_repeat_start, 4),
            "repeats_balanced": round(self.repeats_balanced, 4),
            "rests_per_note": round(self.rests_per_note, 5),
            "mean_tokens_per_tune": round(self.mean_tokens, 2),
        }


def _body(tune: Sequence[str]) -> list[str]:
    return [t for t in tune if t not in ("<s>", "</s>")]


def _notes_and_rests(body: Sequence[str]) -> tuple[int, int]:
    """(sounding events, rests): a chord counts once, a rest once."""
    notes = rests = 0
    depth = 0
    for t in body:
        if t == "[":
            depth += 1
            notes += 1
        elif t == "]":
            depth = max(0, depth - 1)
        elif t == "z":
            rests += 1
        elif depth == 0 and t in V2.index and V2.info[V2.index[t]].cls == "pitch":
            notes += 1
    return notes + rests, rests


def repeats_balanced(body: Sequence[str]) -> bool:
    """True when each ``|:`` is closed by one ``:|`` and each ``:|`` closes an open ``|:``."""
    open_ = False
    for t in body:
        if t == "|:":
            if open_:
                return False
            open_ = True
        elif t == ":|":
            if not open_:
                return False
            open_ = False
    return not open_


def form_figures(tunes: Sequence[Sequence[str]]) -> FormFigures:
    n = len(tunes)
    two = starts = ends = balanced = 0
    events = rests = 0
    tokens = 0
    for tune in tunes:
        body = _body(tune)
        tokens += len(body)
        closes = body.count(":|")
        balanced += repeats_balanced(body)
        two += closes >= 2
        if closes:
            ends += 1
            starts += "|:" in body
        e, r = _notes_and_rests(body)
        events += e
        rests += r
    return FormFigures(
        tunes=n,
        two_repeated_parts=two / n if n else 0.0,
        with_repeat_start=starts / ends if ends else 0.0,
        with_repeat_end=ends,
        repeats_balanced=balanced / n if n else 0.0,
        rests_per_note=rests / events if events else 0.0,
        mean_tokens=tokens / n if n else 0.0,
    )


def tunes_of_meter(tunes: Sequence[Sequence[str]], meter: str) -> list[Sequence[str]]:
    """The tunes whose meter token is ``meter`` (e.g. ``M:6/8``)."""
    return [t for t in tunes if meter in t[:3]]
