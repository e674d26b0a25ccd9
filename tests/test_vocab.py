"""The v2 vocabulary table: order, classes, parsing errors, selectors."""

from fractions import Fraction

import pytest

from folkrnn_live.tokens import (
    CLASS_NAMES,
    MODE_SIGNATURES,
    TOKEN_CLASSES,
    V2,
    UnknownTokenError,
    Vocabulary,
    classify,
    tuplet_q,
)


def test_v2_order_matches_the_reference_landmarks():
    assert len(V2) == 137
    assert V2.tokens[0] == "d'"
    assert V2.tokens[59] == "</s>"
    assert V2.tokens[80] == "<s>"
    assert V2.tokens[104] == "M:4/4"  # part 1: "the 105th dimension corresponds to M:4/4"
    assert V2.start == 80 and V2.end == 59


@pytest.mark.parametrize("row", TOKEN_CLASSES, ids=lambda r: r.cls)
def test_every_class_row_classifies_its_example_and_it_is_a_v2_token(row):
    assert classify(row.example).cls == row.cls
    assert row.example in V2


def test_class_counts_of_v2():
    counts = {c: 0 for c in CLASS_NAMES}
    for info in V2.info:
        counts[info.cls] += 1
    # 7 letters x (plain, ^, _, =) over the octaves present; hand-counted from v2_vocab.json
    assert counts == {
        "pitch": 84, "duration": 18, "broken": 7, "tuplet": 7, "bar": 5, "chord": 2,
        "rest": 1, "meter": 7, "mode": 4, "start": 1, "end": 1,
    }


@pytest.mark.parametrize(
    ("token", "midi", "octave"),
    [("C", 60, 0), ("c", 72, 1), ("c'", 84, 2), ("C,", 48, -1), ("^F,", 54, -1), ("_B,", 58, -1),
     ("=e", 76, 1), ("b'", 95, 2), ("_d'", 85, 2)],
)
def test_pitch_midi_in_c_major(token, midi, octave):
    info = classify(token)
    assert (info.cls, info.midi, info.octave) == ("pitch", midi, octave)


@pytest.mark.parametrize(
    ("token", "duration"),
    [("2", Fraction(2)), ("3/2", Fraction(3, 2)), ("/2", Fraction(1, 2)), ("/8", Fraction(1, 8)),
     ("7/2", Fraction(7, 2)), ("16", Fraction(16))],
)
def test_duration_values_in_eighths(token, duration):
    assert classify(token).duration == duration


@pytest.mark.parametrize(
    ("token", "direction", "glued"), [(">", ">", None), ("2<", "<", 2), ("/2>", ">", Fraction(1, 2))]
)
def test_broken_rhythms_carry_their_glued_duration(token, direction, glued):
    info = classify(token)
    assert info.cls == "broken" and info.broken == direction and info.duration == glued


def test_other_fields():
    assert classify("(5").tuplet == 5
    assert classify(":|").bar == "repeat_end"
    assert classify("|2").bar == "ending2"
    assert classify("M:12/8").meter == (12, 8)
    assert classify("K:Cmix").mode == "mix"
    with pytest.raises(ValueError, match="belongs to no token class"):
        classify("~")


def test_parse_reports_every_unknown_token_with_position_and_nearest():
    with pytest.raises(UnknownTokenError) as err:
        V2.parse("M:4/4 K:Cmaj A B2 c >> d")
    unknown = err.value.unknown
    assert [(u.position, u.text) for u in unknown] == [(3, "B2"), (5, ">>")]
    assert "B" in unknown[0].nearest and ">" in unknown[1].nearest
    assert "position 3" in str(err.value)


def test_selectors():
    bars = V2.decode(V2.select("@bar"))
    assert sorted(bars) == sorted(["|", "|:", ":|", "|1", "|2"])
    g = V2.decode(V2.select("pc:G"))
    assert "G" in g and "g'" in g and "=G," in g and "A" not in g
    assert V2.select("pc:F#") == V2.select("pc:6") == V2.select("pc:Gb")
    with pytest.raises(ValueError, match="allowed: @pitch"):
        V2.select("@bars")
    with pytest.raises(ValueError, match="pitch class must be in range 0..11"):
        V2.select("pc:12")
    with pytest.raises(UnknownTokenError):
        V2.select("H")


def test_vocabulary_validation():
    with pytest.raises(ValueError, match="must contain '</s>'"):
        Vocabulary(("<s>", "A"))
    with pytest.raises(ValueError, match="unique"):
        Vocabulary(("<s>", "</s>", "A", "A"))
    shuffled = Vocabulary(tuple(reversed(V2.tokens)))
    assert shuffled.index["d'"] == 136 and shuffled.tokens[shuffled.end] == "</s>"


def test_facts_the_abc_code_derives_from_the_table():
    # From the reference: the seven meters, pitches C, (MIDI 48) to b' (95), and (p in the time of q.
    assert sorted(V2.meters) == sorted([(2, 4), (3, 4), (4, 4), (6, 8), (9, 8), (12, 8), (3, 2)])
    assert V2.midi_range == (48, 95)
    assert sorted(V2.tokens_of("bar")) == sorted(["|", "|:", ":|", "|1", "|2"])
    assert [tuplet_q(p, (2, 4)) for p in (2, 3, 4, 5, 6, 7, 8, 9)] == [3, 2, 3, 2, 2, 2, 3, 2]
    assert [tuplet_q(p, (6, 8)) for p in (5, 7, 9)] == [3, 3, 3]
    assert MODE_SIGNATURES["min"] == {"B": -1, "E": -1, "A": -1} and MODE_SIGNATURES["maj"] == {}
