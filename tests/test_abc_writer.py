"""v2 tokens -> standard ABC, and the round trip ABC -> tokens -> ABC -> tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from folkrnn_live.abc.convert import convert_abc
from folkrnn_live.abc.parse import read_abc_file
from folkrnn_live.abc.writer import tokens_to_abc, tunes_to_abc
from folkrnn_live.tokens import UnknownTokenError

DATA = Path(__file__).parent / "data" / "abc"


def toks(text: str) -> list[str]:
    """A token tune written as text, split on spaces."""
    return text.split()


REEL = toks(
    "M:4/4 K:Cmaj |: c 2 e c (3 d e d c A | G 2 E G c 4 | G 2 E G c e d B |1 c 2 c 6 :| |2 c 8 :| "
    "|: g 2 e g a 2 g e |1 f 2 d 2 d 4 :| |2 f 8 |"
)


def test_writes_a_standard_abc_tune() -> None:
    assert tokens_to_abc(REEL).splitlines() == [
        "X:1",
        "M:4/4",
        "L:1/8",
        "K:C",
        "|: c2ec(3dedcA | G2EGc4 | G2EGcedB |1 c2c6 :|2 c8 :||:",
        "g2ega2ge |1 f2d2d4 :|2 f8 |",
    ]


def test_header_title_number_and_mode_keys() -> None:
    tokens = ["<s>", "M:6/8", "K:Cmin", "G", "|", "c", "2", ">", "d", "[", "C", "E", "]", "2", "|", "</s>"]
    text = tokens_to_abc(tokens, number=7, title="A jig")
    assert text.splitlines() == ["X:7", "T:A jig", "M:6/8", "L:1/8", "K:Cm", "G | c2>d[CE]2 |"]
    assert tokens_to_abc(["M:2/4", "K:Cdor", "C", "4"]).splitlines()[3] == "K:Cdor"
    assert tokens_to_abc(["M:2/4", "K:Cmix", "C", "4"]).splitlines()[3] == "K:Cmix"
    assert tokens_to_abc(["M:2/4", "K:Cmaj", "C", "4"]).splitlines()[3] == "K:C"


def test_missing_header_tokens_and_mid_tune_fields() -> None:
    text = tokens_to_abc(["C", "4", "|", "M:3/4", "K:Cmin", "E", "6", "|"])
    assert text.splitlines() == ["X:1", "M:none", "L:1/8", "K:C", "C4 | [M:3/4][K:Cm]E6 |"]


def test_two_durations_in_a_row_stay_apart() -> None:
    assert tokens_to_abc(["M:2/4", "K:Cmaj", "C", "/2", "3", "|"]).splitlines()[-1] == "C/2 3 |"


def test_unknown_tokens_are_reported_with_positions() -> None:
    with pytest.raises(UnknownTokenError, match="position 3: unknown token 'H'"):
        tokens_to_abc(["M:2/4", "K:Cmaj", "C", "H", "4"])
    with pytest.raises(ValueError, match="bars_per_line must be at least 1"):
        tokens_to_abc(REEL, bars_per_line=0)


def converted(path: Path) -> list[tuple[str, ...]]:
    return [r.tokens for r in convert_abc(read_abc_file(path)) if r.tokens is not None]


@pytest.mark.parametrize("name", ["tunes.abc", "latin1.abc"])
def test_round_trip_gives_the_same_tokens(name: str) -> None:
    tunes = converted(DATA / name)
    assert tunes
    again = [r.tokens for r in convert_abc(tunes_to_abc(tunes))]
    assert again == tunes


def test_many_tunes_are_numbered_and_separated() -> None:
    text = tunes_to_abc([REEL, REEL[:6]], titles=["one", "two"])
    blocks = text.strip().split("\n\n")
    assert [b.splitlines()[:2] for b in blocks] == [["X:1", "T:one"], ["X:2", "T:two"]]
