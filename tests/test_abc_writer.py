"""v2 tokens -> standard ABC, and the round trip ABC -> tokens -> ABC -> tokens."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from _models import random_model

from folkrnn_live.abc.convert import convert_abc
from folkrnn_live.abc.corpus import music21_corpus_dir
from folkrnn_live.abc.parse import read_abc_file
from folkrnn_live.abc.writer import tokens_to_abc, tunes_to_abc
from folkrnn_live.cli.main import main
from folkrnn_live.model import checkpoint
from folkrnn_live.tokens import V2, UnknownTokenError

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


# Token sequences a perturbed network writes, the ABC body worked out by hand from the rules in
# writer.py, and how many tokens are left out.
MALFORMED = [
    ("c 3 2 d |", "c3d |", 1),  # a second duration: 'c3 2' is no ABC, 'c32' another note
    ("C /2 3 |", "C/2 |", 1),
    ("2 C |", "C |", 1),  # a duration of nothing
    ("C /3 D |", "CD |", 1),  # a third of a unit: no standard tool reads it
    ("c 2 ] d |", "c2d |", 1),  # ']' without '['
    ("[ C E d |", "CEd |", 1),  # a chord that never closes: its notes stay
    ("[ ] 2 c |", "c |", 3),  # an empty chord and its duration
    ("[ C 2 E ] 2 |", "[CE]2 |", 1),  # a duration inside a chord
    ("[ C [ E ] |", "[CE] |", 1),  # chords do not nest
    ("> A B |", "AB |", 1),  # a broken rhythm needs a note before it ...
    ("A > | B |", "A | B |", 1),  # ... and after it, in the same bar
    ("A > > B |", "A>B |", 1),  # 'A>>B' would be the double-dotted '>>'
    ("A 2 2> B |", "A2B |", 1),  # a glued '2>' after a note that has its duration
    ("A > (3 B c d |", "A(3Bcd |", 1),
    ("(3 A B |", "AB |", 1),  # a tuplet cut short by the end
    ("(3 (3 A B c |", "(3ABc |", 1),  # ... or by another tuplet
    ("(3 A M:3/4 B c |", "A[M:3/4]Bc |", 1),  # ... or by an inline field
    ("(3 | A B c |", "| ABc |", 1),  # a tuplet starts on its first note
]


@pytest.mark.parametrize(("body", "abc", "left_out"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_what_abc_cannot_notate_is_left_out_and_counted(body: str, abc: str, left_out: int) -> None:
    lines = tokens_to_abc(["M:4/4", "K:Cmaj", *body.split()]).splitlines()
    assert lines[4:] == [f"% {left_out} of the tune's tokens left out: ABC cannot notate them where they stand", abc]


@pytest.mark.parametrize(
    ("body", "abc"),
    [
        ("A 2> B z > A [ C E ] /2< [ D F ] |", "A2>Bz>A[CE]/2<[DF] |"),  # broken rhythms as v2 writes them
        ("(3 A B | c d |", "(3AB | cd |"),  # a tuplet may cross a bar line ...
    ],
)
def test_well_formed_bodies_lose_nothing(body: str, abc: str) -> None:
    # ... but not a line end (abcm2ps: "End of line found inside a tuplet"), even at one bar a line.
    assert tokens_to_abc(["M:4/4", "K:Cmaj", *body.split()], bars_per_line=1).splitlines()[4:] == [abc]


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


def test_round_trip_of_a_real_collection_is_exact() -> None:
    # Every tune music21's misc folk books give, written as ABC and read back: the same tokens.
    files = sorted((music21_corpus_dir() / "miscFolk").rglob("*.abc"))
    tunes = [r.tokens for f in files for r in convert_abc(read_abc_file(f)) if r.tokens is not None]
    assert len(tunes) > 100
    text = tunes_to_abc(tunes)
    assert "left out" not in text
    assert [r.tokens for r in convert_abc(text)] == tunes


# --- standard ABC tools read what is written -------------------------------------------------------
ABCM2PS, ABC2MIDI = shutil.which("abcm2ps"), shutil.which("abc2midi")
# What the tools say about the music a model wrote rather than about the ABC: abcm2ps cannot draw a
# length of 5 or 9 units as one note head and squeezes long lines; abc2midi checks repeat structure
# and wants the two notes of a broken rhythm to be of equal length.
TYPESETTING = ("Note too much dotted", "Line too much shrunk")
MUSIC = (
    "Cannot apply broken rhythm",
    "Missing :| at end of tune",
    "found [1 or like before |:",
    "to close variant ending",
    "to mark end of variant ending",
    "Expected end repeat not found",
    "found another |: after a |:",
)


def abc_tool_complaints(abc: str, folder: Path) -> list[str]:
    """What abcm2ps and abc2midi report about the ABC itself; checks that abc2midi wrote every tune."""
    if ABCM2PS is None or ABC2MIDI is None:  # real tools, like Pd and the broker: missing is a failure
        pytest.fail("abcm2ps and abc2midi must be on PATH: run scripts/test (it installs abcm2ps and abcmidi)")
    path = folder / "tunes.abc"
    path.write_text(abc, encoding="utf-8")
    ps = subprocess.run([ABCM2PS, str(path), "-O", str(folder / "out.ps")], capture_output=True, text=True)
    midi = subprocess.run([ABC2MIDI, str(path)], capture_output=True, text=True, cwd=folder)
    ps_out, midi_out = ps.stdout + ps.stderr, midi.stdout + midi.stderr
    found = [ln for ln in ps_out.splitlines() if "error:" in ln and not any(t in ln for t in TYPESETTING)]
    found += [ln for ln in midi_out.splitlines() if ln.startswith("Error") and not any(m in ln for m in MUSIC)]
    n_tunes, written = len(re.findall(r"^X:", abc, re.M)), midi_out.count("writing MIDI file")
    if written != n_tunes:
        found.append(f"abc2midi wrote {written} of {n_tunes} tunes (exit {midi.returncode})")
    return found


def test_standard_tools_read_any_token_soup(tmp_path: Path) -> None:
    rng = random.Random(1)
    tokens = list(V2.tokens)
    soup = [[rng.choice(tokens) for _ in range(rng.randint(0, 80))] for _ in range(300)]
    abc = tunes_to_abc(soup)
    assert abc_tool_complaints(abc, tmp_path) == []
    assert "left out" in abc  # the soup did need the clean-up


def test_standard_tools_read_the_hand_written_malformed_tunes(tmp_path: Path) -> None:
    abc = tunes_to_abc([["M:4/4", "K:Cmaj", *body.split()] for body, _, _ in MALFORMED])
    assert abc_tool_complaints(abc, tmp_path) == []


def test_generate_writes_abc_that_standard_tools_read_from_a_perturbed_network(tmp_path: Path) -> None:
    # Large random weights: far from the v2 grammar, as a network under heavy intervention is.
    checkpoint.save(random_model(hidden=32, seed=5, scale=1.5), tmp_path / "model")
    out = tmp_path / "tunes.abc"
    args = ["generate", "--model", str(tmp_path / "model"), "--n", "40", "--seed", "1", "--max-tokens", "150"]
    assert main([*args, "--format", "abc", "--out", str(out)]) == 0
    abc = out.read_text(encoding="utf-8")
    assert len(re.findall(r"^X:", abc, re.M)) == 40
    assert "left out" in abc
    assert abc_tool_complaints(abc, tmp_path) == []
