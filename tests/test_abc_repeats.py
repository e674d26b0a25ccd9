"""The converter writes what the v2 data writes: explicit repeat starts, v2 transposition, folded
written-out repeats (folkrnn_live/abc/repeats.py, docs/v2-conventions.md), on small ABC examples."""

from __future__ import annotations

from pathlib import Path

import pytest

from folkrnn_live.abc.bars import check_bars
from folkrnn_live.abc.convert import convert_abc
from folkrnn_live.abc.corpus import format_report, split_corpus
from folkrnn_live.abc.form import form_figures


def tok(text: str) -> list[str]:
    return text.split()


def convert(body: str, meter: str = "4/4", key: str = "C") -> tuple[str, int]:
    (result,) = convert_abc(f"X:1\nM:{meter}\nL:1/8\nK:{key}\n{body}\n")
    assert result.tokens is not None, f"dropped: {result.reason}: {result.detail}"
    assert check_bars(result.tokens).all_ok
    return " ".join(result.tokens), result.folds


A = "CDEF GABc|cBAG FEDC|EFGA Bcde|edcB AGFE"  # a 4-bar phrase
B = "GABc defg|gfed cBAG|GABc BAGF|E2C2 C4"
a = "C D E F G A B c | c B A G F E D C | E F G A B c d e | e d c B A G F E"
b = "G A B c d e f g | g f e d c B A G | G A B c B A G F | E 2 C 2 C 4"


# --- implicit repeat starts ------------------------------------------------------------------------


def test_implied_first_repeat_after_the_anacrusis_is_written() -> None:
    tokens, _ = convert("G|" + A + ":|", key="C")
    assert tokens == f"M:4/4 K:Cmaj G |: {a} :|"


def test_implied_first_repeat_with_no_anacrusis_opens_the_tune() -> None:
    tokens, _ = convert(A + ":|")
    assert tokens == f"M:4/4 K:Cmaj |: {a} :|"


def test_second_part_repeat_starts_right_after_the_previous_repeat_end() -> None:
    tokens, _ = convert(A + ":|" + B + ":|")
    assert tokens == f"M:4/4 K:Cmaj |: {a} :| |: {b} :|"


def test_a_double_bar_is_where_the_implied_repeat_goes_back_to() -> None:
    tokens, _ = convert(A + "||" + B + ":|")
    assert tokens == f"M:4/4 K:Cmaj {a} |: {b} :|"


def test_next_part_starts_after_the_second_ending() -> None:
    tokens, _ = convert("CDEF GABc|cBAG FEDC|EFGA Bcde|1 edcB AGFE:|2 c8|" + B + ":|")
    assert tokens.startswith("M:4/4 K:Cmaj |: C D E F")
    assert "|1 e d c B A G F E :| |2 c 8 |: G A B c" in tokens


def test_explicit_repeats_are_kept_as_written() -> None:
    tokens, folds = convert("|:" + A + ":|:" + B + ":|")
    assert tokens == f"M:4/4 K:Cmaj |: {a} :| |: {b} :|"
    assert folds == 0


def test_double_bars_become_plain_bars() -> None:
    tokens, _ = convert(A + "||" + B + "|]")
    assert "||" not in tokens.split() and tokens.endswith("C 4 |")


# --- transposition -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "first", "expected"),
    [
        ("G", "D", "G,"),  # G goes down a fifth: a G jig's opening D becomes G,
        ("D", "A", "G"),  # down a tone
        ("E", "B", "G"),  # down a third
        ("F", "c", "G"),  # down a fourth
        ("C", "G", "G"),
        ("A", "e", "g"),  # A goes up a minor third
        ("Bb", "f", "g"),  # B flat goes up a tone
    ],
)
def test_tonics_c_to_g_go_down_to_c_and_a_b_go_up(key: str, first: str, expected: str) -> None:
    tokens, _ = convert(f"{first}8|", key=key)
    assert tokens.split()[2] == expected


# --- written-out repeats -------------------------------------------------------------------------


def test_a_part_written_twice_note_for_note_is_folded() -> None:
    tokens, folds = convert(f"{A}|{A}|{B}|{B}|")
    assert tokens == f"M:4/4 K:Cmaj |: {a} :| |: {b} :|"
    assert folds == 2


def test_written_out_first_and_second_endings_are_folded_into_endings() -> None:
    second = "CDEF GABc|cBAG FEDC|EFGA Bcde|c8"
    tokens, folds = convert(f"{A}|{second}|")
    body = "C D E F G A B c | c B A G F E D C | E F G A B c d e"
    assert tokens == f"M:4/4 K:Cmaj |: {body} |1 e d c B A G F E :| |2 c 8 |"
    assert folds == 1


def test_short_runs_and_runs_inside_repeats_are_not_folded() -> None:
    _, folds = convert("CDEF GABc|cBAG FEDC|CDEF GABc|cBAG FEDC|")  # two bars twice: a phrase, not a part
    assert folds == 0
    tokens, folds = convert(f"|:{A}|{A}:|")  # folding would play the part four times, not twice
    assert folds == 0 and tokens.split().count(":|") == 1


def test_folding_keeps_a_tune_with_a_pickup_right() -> None:
    tokens, folds = convert(f"G|{A}|{A}|")
    assert tokens == f"M:4/4 K:Cmaj G |: {a} :|"
    assert folds == 1


# --- the build report, the split and the form figures ---------------------------------------------


def test_the_build_report_counts_folds_per_source(tmp_path: Path) -> None:
    from folkrnn_live.abc.corpus import build_corpus

    path = tmp_path / "two.abc"
    path.write_text(f"X:1\nM:4/4\nL:1/8\nK:C\n{A}|{A}|\n\nX:2\nM:4/4\nL:1/8\nK:C\n{B}:|\n")
    result = build_corpus([str(path)])
    assert result.stats[0].folds == 1
    header, row = format_report(result).splitlines()[:2]
    assert header.split()[-1] == "folded" and row.split()[-1] == "1"


def test_split_is_seeded_by_tune_and_disjoint() -> None:
    tunes = [["M:4/4", "K:Cmaj", str(k)] for k in range(100)]
    train, test = split_corpus(tunes, 0.05, seed=7)
    assert len(test) == 5 and len(train) == 95
    assert {t[2] for t in train}.isdisjoint({t[2] for t in test})
    assert split_corpus(tunes, 0.05, seed=7)[1] == test
    assert split_corpus(tunes, 0.05, seed=8)[1] != test


def test_form_figures_count_parts_repeat_starts_and_rests() -> None:
    tunes = [
        tok("M:6/8 K:Cmaj |: C 6 :| |: D 6 :|"),  # two repeated parts
        tok("M:6/8 K:Cmaj C 6 :| D 3 z 3 |"),  # one ':|' and no '|:'
    ]  # five notes and rests in all, one of them a rest
    f = form_figures(tunes)
    assert f.two_repeated_parts == 0.5
    assert f.with_repeat_start == 0.5
    assert f.repeats_balanced == 0.5
    assert f.rests_per_note == pytest.approx(1 / 5)
    # A repeat opened and never closed, or opened twice, is as unbalanced as one closed and never opened.
    more = [tok("M:6/8 K:Cmaj |: C 6 | D 6 |"), tok("M:6/8 K:Cmaj |: C 6 |: D 6 :|"), tok("M:6/8 K:Cmaj C 6 | D 6 |")]
    assert form_figures(tunes + more).repeats_balanced == pytest.approx(2 / 5)
