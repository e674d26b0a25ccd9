"""ABC -> v2 tokens on hand-written tunes whose tokens were worked out by hand (tests/data/abc)."""

from __future__ import annotations

from pathlib import Path

import pytest

from folkrnn_live.abc.convert import ConvertOptions, convert_abc, convert_tune
from folkrnn_live.abc.parse import DROP_REASONS, TuneError, parse_key, parse_meter, read_abc_file, split_tunes
from folkrnn_live.tokens import V2

DATA = Path(__file__).parent / "data" / "abc"


def toks(text: str) -> list[str]:
    """A token tune written as text, split on spaces."""
    return text.split()


def expected_tokens() -> dict[str, str]:
    out = {}
    for line in (DATA / "tunes.expected").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            number, tokens = line.split("\t")
            out[number] = tokens
    return out


EXPECTED = expected_tokens()
TUNES = {r.tune.number: r for r in convert_abc(read_abc_file(DATA / "tunes.abc"), "tunes.abc")}


def test_every_hand_written_tune_is_read() -> None:
    assert sorted(TUNES, key=int) == sorted(EXPECTED, key=int)


@pytest.mark.parametrize("number", sorted(EXPECTED, key=int))
def test_tune_converts_to_the_hand_worked_tokens(number: str) -> None:
    result = TUNES[number]
    assert result.reason is None, f"{result.tune.title}: dropped for {result.reason}: {result.detail}"
    assert " ".join(result.tokens or ()) == EXPECTED[number], result.tune.title


def test_output_tokens_are_all_v2_tokens_and_start_with_meter_and_mode() -> None:
    for result in TUNES.values():
        tokens = result.tokens or ()
        assert all(t in V2 for t in tokens)
        assert tokens[0].startswith("M:") and tokens[1].startswith("K:C")
        assert "<s>" not in tokens and "</s>" not in tokens


def test_latin1_file_is_read() -> None:
    (result,) = convert_abc(read_abc_file(DATA / "latin1.abc"))
    assert "Mädchen" in result.tune.title
    assert result.tokens == tuple(toks("M:4/4 K:Cmaj C D E F G 2 E 2 | F 2 D 2 C 4 |"))  # G goes down a fifth


def test_free_text_and_comments_between_tunes_are_not_tunes() -> None:
    tunes = split_tunes(read_abc_file(DATA / "tunes.abc"))
    assert [t.number for t in tunes] == ["1", "2", "3", "4", "5", "6", "7", "8", "9", "11", "12", "14", "15", "16"]


DROPS = convert_abc(read_abc_file(DATA / "drops.abc"), "drops.abc")


@pytest.mark.parametrize("result", DROPS, ids=lambda r: r.tune.title)
def test_broken_or_unsupported_tune_is_dropped_with_its_reason(result) -> None:  # type: ignore[no-untyped-def]
    # Each tune's title names the reason it must be dropped for.
    assert result.tokens is None
    assert result.reason == result.tune.title, result.detail
    assert result.reason in DROP_REASONS


def test_drop_details_name_what_was_found() -> None:
    details = {r.reason: r.detail for r in DROPS}
    assert "5/4" in details["meter not in v2"] and "allowed" in details["meter not in v2"]
    assert "[3" in details["ending other than 1/2"]
    assert "10" in details["duration not in vocabulary"]


def test_bare_tonic_gets_the_mode_its_notes_fit_when_asked() -> None:
    # D with F and C natural and B natural is D dorian; the Essen files write it "K:D".
    abc = "X:1\nM:2/4\nL:1/8\nK:D\nd2 =c2|B2 A2|=F2 E2|D4|]\n"
    (plain,) = convert_abc(abc)
    (inferred,) = convert_abc(abc, options=ConvertOptions(infer_mode=True))
    assert " ".join(plain.tokens or ()) == "M:2/4 K:Cmaj c 2 _B 2 | A 2 G 2 | _E 2 D 2 | C 4 |"
    assert " ".join(inferred.tokens or ()) == "M:2/4 K:Cdor c 2 B 2 | A 2 G 2 | E 2 D 2 | C 4 |"


def test_explicit_mode_is_kept_even_when_inferring() -> None:
    abc = "X:1\nM:2/4\nL:1/8\nK:Dm\nd2 c2|B2 A2|F2 E2|D4|]\n"
    (result,) = convert_abc(abc, options=ConvertOptions(infer_mode=True))
    assert result.tokens is not None and result.tokens[1] == "K:Cmin"


def test_wrong_bars_are_kept_only_when_the_check_is_off() -> None:
    (tune,) = split_tunes("X:1\nM:2/4\nL:1/8\nK:C\nC2 D2|E2 F2 G2|]\n")
    with pytest.raises(TuneError, match="bar 2 is 6 eighths, expected 4"):
        convert_tune(tune)
    assert convert_tune(tune, ConvertOptions(check_bars=False))[2:] == toks("C 2 D 2 | E 2 F 2 G 2 |")


def test_cut_time_keeps_eighths_and_reads_as_four_four() -> None:
    assert parse_meter("C|") == (2, 2) and parse_meter("C") == (4, 4)
    (result,) = convert_abc("X:1\nM:2/2\nL:1/8\nK:C\nc4 B4|c8|]\n")
    assert result.tokens == tuple(toks("M:4/4 K:Cmaj c 4 B 4 | c 8 |"))


@pytest.mark.parametrize(
    ("value", "tonic", "mode", "sig"),
    [
        ("G", ("G", 0), "maj", {"F": 1}),
        ("Edor", ("E", 0), "dor", {"F": 1, "C": 1}),
        ("Bb", ("B", -1), "maj", {"B": -1, "E": -1}),
        ("F#m", ("F", 1), "min", {"F": 1, "C": 1, "G": 1}),
        ("A Mixolydian", ("A", 0), "mix", {"F": 1, "C": 1}),
        ("D ^g", ("D", 0), "maj", {"F": 1, "C": 1, "G": 1}),
        ("D exp ^f", ("D", 0), "maj", {"F": 1}),
        ("G clef=bass", ("G", 0), "maj", {"F": 1}),
    ],
)
def test_key_fields(value: str, tonic: tuple[str, int], mode: str, sig: dict[str, int]) -> None:
    key = parse_key(value)
    assert (key.letter, key.alter) == tonic and key.mode == mode
    assert {k: v for k, v in key.signature.items() if v} == sig


def test_key_errors_say_what_is_allowed() -> None:
    with pytest.raises(TuneError, match="not a mode"):
        parse_key("Gfoo")
    with pytest.raises(TuneError, match="no tonic"):
        parse_key("none")


def test_missing_unit_length_falls_back_to_eighths_only_when_sixteenths_give_wrong_bars() -> None:
    # 2/4 without L: is L:1/16 by ABC 2.1 (tunes.abc X:2); this one was plainly written in eighths.
    (result,) = convert_abc("X:1\nM:2/4\nK:C\nc2 d2|e2 f2|g4|]\n")
    assert result.tokens == tuple(toks("M:2/4 K:Cmaj c 2 d 2 | e 2 f 2 | g 4 |"))
    (wrong,) = convert_abc("X:1\nM:2/4\nK:C\nc2 d2|e2 f2 g|g4|]\n")
    assert wrong.reason == "wrong bar lengths"


def test_only_the_first_voice_of_a_multi_voice_tune_is_read() -> None:
    abc = (
        "X:1\nM:2/4\nL:1/8\nV:1\nV:2\nK:C\n"
        "V:1\nc2 d2|e4|]\nV:2\nC2 D2|E4|]\n"
        "X:2\nM:2/4\nL:1/8\nK:C\n[V:1] c2 d2|e4|\n[V:2] x4|x4|\n[V:1] f2 e2|d4|]\n[V:2] x4|x4|]\n"
    )
    first, second = convert_abc(abc)
    assert first.tokens == tuple(toks("M:2/4 K:Cmaj c 2 d 2 | e 4 |"))
    assert second.tokens == tuple(toks("M:2/4 K:Cmaj c 2 d 2 | e 4 | f 2 e 2 | d 4 |"))
