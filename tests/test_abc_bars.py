"""Bar checker on hand-checked token tunes (tests/data/abc/bar_cases.txt)."""

from __future__ import annotations

import random
from fractions import Fraction
from pathlib import Path

import pytest

from folkrnn_live.abc.bars import bar_accuracy, bar_units, check_bars, segments
from folkrnn_live.tokens import V2

DATA = Path(__file__).parent / "data" / "abc"


def toks(text: str) -> list[str]:
    """A token tune written as text, split on spaces."""
    return text.split()


def cases() -> list[tuple[list[str], list[str]]]:
    out = []
    for line in (DATA / "bar_cases.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            verdicts, tokens = line.split("\t")
            out.append((verdicts.split(), tokens.split()))
    return out


CASES = cases()


def test_there_are_enough_hand_checked_tunes() -> None:
    assert len(CASES) >= 15


@pytest.mark.parametrize(("verdicts", "tokens"), CASES, ids=[" ".join(t[:12]) for _, t in CASES])
def test_bar_verdicts_match_the_hand_checked_ones(verdicts: list[str], tokens: list[str]) -> None:
    report = check_bars(tokens)
    assert ["ok" if b.ok else "bad" for b in report.bars] == verdicts, [(b.length, b.reason) for b in report.bars]
    assert report.share_ok == pytest.approx(verdicts.count("ok") / len(verdicts))


def test_bar_accuracy_pools_all_bars_of_all_tunes() -> None:
    all_verdicts = [v for verdicts, _ in CASES for v in verdicts]
    expected = all_verdicts.count("ok") / len(all_verdicts)
    assert bar_accuracy(tokens for _, tokens in CASES) == pytest.approx(expected)
    assert bar_accuracy([]) == 0.0


def test_report_gives_lengths_expectations_and_reasons() -> None:
    report = check_bars(toks("M:6/8 K:Cmaj G | c 2 d e d c | g 5 :|"))
    assert report.meter == (6, 8)
    assert [b.length for b in report.bars] == [1, 6, 5]
    assert [b.reason for b in report.bars] == ["pickup", "full", "completes pickup"]
    assert [b.expected for b in report.bars] == [1, 6, 5]
    assert [b.index for b in report.bars] == [0, 1, 2]
    wrong = check_bars(toks("M:2/4 K:Cmaj C D E F | G 4 A | c 4 |")).wrong
    assert [(b.index, b.length, b.expected, b.reason) for b in wrong] == [(1, 5, 4, "too long")]


def test_token_span_of_each_bar() -> None:
    tokens = toks("M:2/4 K:Cmaj C D E F | G 4 |")
    first, second = check_bars(tokens).bars
    assert tokens[first.start : first.stop][-4:] == ["C", "D", "E", "F"]
    assert tokens[second.start : second.stop] == ["G", "4"]


def test_meter_can_be_given_for_a_body_without_meter_token() -> None:
    report = check_bars(toks("C D E F | G 4 |"), meter=(2, 4))
    assert report.all_ok and report.n_bars == 2


@pytest.mark.parametrize(
    ("meter", "units"),
    [((4, 4), 8), ((6, 8), 6), ((2, 4), 4), ((3, 4), 6), ((9, 8), 9), ((12, 8), 12), ((3, 2), 12)],
)
def test_bar_units_per_meter(meter: tuple[int, int], units: int) -> None:
    assert bar_units(meter) == Fraction(units)


def test_random_token_soup_never_raises() -> None:
    rng = random.Random(3)
    tokens = list(V2.tokens)
    for _ in range(300):
        soup = [rng.choice(tokens) for _ in range(rng.randint(0, 60))]
        report = check_bars(soup)
        assert 0.0 <= report.share_ok <= 1.0
    assert bar_accuracy([["garbage", "|", "M:2/4"], []]) == 0.0


def test_bars_are_counted_as_the_player_plays_them() -> None:
    # One reader of the duration rules: whatever a (perturbed) model writes, each bar's length is the
    # sum of the notes the player plays between its bar lines, malformed spots included.
    from folkrnn_live.player import Bar, Note, interpret

    rng = random.Random(5)
    rhythm = [t for t in V2.tokens if V2.lookup(t).cls not in ("meter", "mode", "start", "end")]  # type: ignore[union-attr]
    for _ in range(300):
        tune = ["M:6/8", "K:Cmaj", *(rng.choice(rhythm) for _ in range(rng.randint(1, 60)))]
        played: list[Fraction] = [Fraction(0)]
        for ev in interpret(tune)[0]:
            if isinstance(ev, Note):
                played[-1] += ev.length
            elif isinstance(ev, Bar):
                played.append(Fraction(0))
        counted = [s.length for s in segments(tune)]
        assert counted == played, tune
