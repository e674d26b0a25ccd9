"""The streaming interpreter: ABC 2.1 semantics for the v2 vocabulary, and malformed input."""

from __future__ import annotations

import random
from fractions import Fraction as F

import pytest

from folkrnn_live.player import Bar, Interpreter, Meter, Note, TuneEnd, interpret, tuplet_ratio
from folkrnn_live.tokens import V2, Vocabulary


def toks(text: str) -> list[str]:
    return text.split()


def notes(text: str) -> list[Note]:
    events, _ = interpret(text.split())
    return [e for e in events if isinstance(e, Note)]


def pitches(text: str) -> list[int]:
    return [n.pitches[0] for n in notes(text)]


def lengths(text: str) -> list[F]:
    return [n.length for n in notes(text)]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        # C D E F G A B c: which letters the mode's key signature flattens.
        ("Cmaj", [60, 62, 64, 65, 67, 69, 71, 72]),
        ("Cmin", [60, 62, 63, 65, 67, 68, 70, 72]),
        ("Cdor", [60, 62, 63, 65, 67, 69, 70, 72]),
        ("Cmix", [60, 62, 64, 65, 67, 69, 70, 72]),
    ],
)
def test_key_signature_from_mode(mode: str, expected: list[int]) -> None:
    assert pitches(f"M:4/4 K:{mode} C D E F G A B c") == expected


def test_accidental_holds_to_bar_line_for_that_octave_only() -> None:
    # ^F sharpens the later F of the same bar, not f (another octave), and not after the bar line.
    assert pitches("K:Cmaj ^F F f | F") == [66, 66, 77, 65]


def test_natural_cancels_key_signature_until_bar_line() -> None:
    assert pitches("K:Cmin =B B | B") == [71, 71, 70]


def test_explicit_flat_and_sharp_override_key() -> None:
    assert pitches("K:Cdor ^E E _A A | A") == [65, 65, 68, 68, 69]


def test_durations_follow_their_note_in_eighths() -> None:
    assert lengths("A 2 B C /2 D 3/2 E 16 F /4") == [2, 1, F(1, 2), F(3, 2), 16, F(1, 4)]


def test_rest_is_a_note_without_pitches() -> None:
    ns = notes("z 2 A")
    assert ns[0].is_rest and ns[0].length == 2 and ns[1].pitches == (69,)


def test_chord_with_duration_after_closing_bracket() -> None:
    ns = notes("K:Cmin [ E G c ] 2 D")
    assert ns[0].pitches == (63, 67, 72) and ns[0].length == 2
    assert ns[1].pitches == (62,)


def test_chord_inner_length_is_first_notes_times_outer() -> None:
    assert lengths("[ E 2 G 2 ] 3/2") == [3]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A > B", [F(3, 2), F(1, 2)]),
        ("A < B", [F(1, 2), F(3, 2)]),
        ("A 2> B 2", [3, 1]),  # glued v2 form: duration 2, then >
        ("A /2< B /2", [F(1, 4), F(3, 4)]),
        ("A 4> B 4", [6, 2]),
        ("A 2< B 2", [1, 3]),
        ("A /2> B /2", [F(3, 4), F(1, 4)]),
        ("A 2 > B 2", [3, 1]),  # unglued form works as well
        ("A > B > C", [F(3, 2), F(3, 4), F(1, 2)]),
    ],
)
def test_broken_rhythms(text: str, expected: list[F]) -> None:
    assert lengths(text) == expected


@pytest.mark.parametrize(
    ("p", "meter", "q"),
    [
        (2, "M:4/4", 3), (3, "M:4/4", 2), (4, "M:4/4", 3), (6, "M:4/4", 2), (8, "M:4/4", 3),
        (5, "M:4/4", 2), (7, "M:2/4", 2), (9, "M:3/2", 2),
        (5, "M:6/8", 3), (7, "M:9/8", 3), (9, "M:12/8", 3), (3, "M:6/8", 2), (2, "M:6/8", 3),
    ],
)
def test_tuplet_ratio(p: int, meter: str, q: int) -> None:
    m = Meter(int(meter[2:].split("/")[0]), int(meter.split("/")[1]), 0)
    assert tuplet_ratio(p, m) == F(q, p)
    body = " ".join(["c"] * p) + " d"
    assert lengths(f"{meter} K:Cmaj ({p} {body}") == [F(q, p)] * p + [1]


def test_tuplet_applies_to_next_p_notes_including_rests_and_durations() -> None:
    assert lengths("(3 A 2 z B 2 C") == [F(4, 3), F(2, 3), F(4, 3), 1]


def test_note_is_fixed_only_when_the_next_token_decides_it() -> None:
    it = Interpreter()
    assert it.feed("A") == [] and it.pending
    assert it.feed("2") == [] and it.pending  # a broken rhythm could still follow
    out = it.feed("B")
    assert [e.length for e in out if isinstance(e, Note)] == [2]
    out = it.feed(">")  # nothing can change B once its broken rhythm is known
    assert [e.length for e in out if isinstance(e, Note)] == [F(3, 2)]
    assert not it.pending
    assert it.feed("[") == [] and it.pending


def test_bars_repeats_and_endings_are_events_in_order() -> None:
    events, problems = interpret(toks("|: A :| |1 B :| |2 C |"))
    kinds = [e.kind if isinstance(e, Bar) else "note" for e in events if not isinstance(e, TuneEnd)]
    assert kinds == ["repeat_start", "note", "repeat_end", "ending1", "note", "repeat_end", "ending2", "note", "bar"]
    assert problems == []


def test_meter_and_key_of_the_header_then_new_tune_after_end() -> None:
    events, _ = interpret(toks("M:6/8 K:Cmin B </s> M:3/4 K:Cmaj B"))
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["Meter", "TuneKey", "Note", "TuneEnd", "Meter", "TuneKey", "Note", "TuneEnd"]
    ns = [e for e in events if isinstance(e, Note)]
    assert [n.pitches for n in ns] == [(70,), (71,)]  # the second tune is not in C minor any more
    assert [e.reason for e in events if isinstance(e, TuneEnd)] == ["end", "exhausted"]


@pytest.mark.parametrize(
    ("text", "reason", "expected_lengths"),
    [
        ("(3 A B | C", "tuplet cut by the bar line", [F(2, 3), F(2, 3), 1]),
        ("A ] B", "] without [", [1, 1]),
        ("| 2 A", "duration with no note", [1]),
        ("A 2 3 B", "second duration", [2, 1]),
        ("[ A B </s> C", "</s> inside a chord", [1, 1]),
        ("A | M:3/4 B", "meter token inside the tune body", [1, 1]),
        ("A | K:Cmin B", "mode token inside the tune body", [1, 1]),
        ("> A", "broken rhythm with no note before", [1]),
        ("A > | B", "broken rhythm with no note after", [F(3, 2), 1]),
        ("[ ] A", "empty chord", [1]),
        ("[ A [ B ] C", "[ inside a chord", [1, 1]),
        ("[ A | B", "chord not closed", [1, 1]),
        ("A xyz B", "not a v2 token", [1, 1]),
        ("(3 A (3 B C D", "tuplet inside a tuplet", [F(2, 3), F(2, 3), F(2, 3), F(2, 3)]),
        ("(1 A", "tuplet must be", [1]),
        ("A <s> B", "<s> inside a tune", [1, 1]),
    ],
)
def test_malformed_sequences_are_skipped_and_reported(text: str, reason: str, expected_lengths: list[F]) -> None:
    events, problems = interpret(text.split())
    assert [e.length for e in events if isinstance(e, Note)] == expected_lengths
    assert any(reason in p.reason for p in problems), problems
    bad = next(p for p in problems if reason in p.reason)
    assert text.split()[bad.step] == bad.token or bad.token == ""  # the step points at the token


def test_problems_are_counted_and_reported_to_a_callback() -> None:
    seen = []
    it = Interpreter(report=seen.append)
    for tok in toks("] ] ] A"):
        it.feed(tok)
    assert it.problem_count == 3 and [p.step for p in seen] == [0, 1, 2]


def test_random_token_soup_never_raises() -> None:
    rng = random.Random(4)
    it = Interpreter()
    total = 0
    for _ in range(20_000):
        for ev in it.feed(rng.choice(V2.tokens)):
            if isinstance(ev, Note):
                assert ev.length > 0 and all(0 <= p <= 127 for p in ev.pitches)
                total += 1
    it.finish()
    assert total > 1000 and it.problem_count > 0


def test_indices_are_read_in_the_models_own_vocabulary_order() -> None:
    # A model carries its own token order; the player is handed indices into it.
    shuffled = list(V2.tokens)
    random.Random(7).shuffle(shuffled)
    vocab = Vocabulary(tuple(shuffled))
    tune = toks("M:6/8 K:Cdor |: G 2> A ^F [ c e ] 3/2 (3 B c d :| z 2 </s>")
    by_index, by_text = Interpreter(vocab=vocab), Interpreter()
    played = [ev for i in vocab.encode(tune) for ev in by_index.feed_index(i)]
    assert played == [ev for t in tune for ev in by_text.feed(t)]
    assert [e.length for e in played if isinstance(e, Note)][:3] == [3, F(1, 2), 1]
    assert by_index.problems == [] and by_index.feed_index(len(vocab)) == []
    assert "token index must be in range 0..136" in by_index.problems[0].reason
