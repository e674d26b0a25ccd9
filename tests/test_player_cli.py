"""``folkrnn-live render``: tokens or ABC to a MIDI file; bad input exits 2 with a clear message."""

from __future__ import annotations

from pathlib import Path

import mido
import pytest

from folkrnn_live.cli.main import main
from folkrnn_live.player import hanging_notes

TUNE = "M:4/4 K:Cdor |: c C C /2 C /2 C G C C /2 C /2 C | c C C /2 C /2 C B 2 A B :|"


def note_ons(path: Path) -> list[mido.Message]:
    return [m for m in mido.MidiFile(path) if m.type == "note_on"]


def test_render_token_string(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tune.mid"
    assert main(["render", TUNE, "--out", str(out), "--tempo", "90", "--program", "22", "--channel", "4"]) == 0
    ons = note_ons(out)
    assert len(ons) == 18 and {m.channel for m in ons} == {4}
    msgs = [m for m in mido.MidiFile(out) if not m.is_meta]
    assert msgs[0].type == "program_change" and msgs[0].program == 22
    assert hanging_notes(msgs) == set()
    # two bars of 8 eighths; at 90 BPM (quarter) an eighth lasts 60 / 90 / 2 s; the last eighth
    # sounds for the default gate of 0.9
    unit = 60 / 90 / 2
    assert mido.MidiFile(out).length == pytest.approx(15 * unit + 0.9 * unit, abs=0.002)
    assert "1 tune(s), 18 notes" in capsys.readouterr().out


def test_render_unfolded_token_file_with_two_tunes(tmp_path: Path) -> None:
    src = tmp_path / "tunes.txt"
    src.write_text(f"{TUNE}\n\nM:6/8 K:Cmaj G A B c 3\n", encoding="utf-8")
    out = tmp_path / "tunes.mid"
    assert main(["render", str(src), "--out", str(out), "--unfold"]) == 0
    assert len(note_ons(out)) == 2 * 18 + 4  # the first tune's two bars are repeated


def test_render_abc_file(tmp_path: Path) -> None:
    src = tmp_path / "tune.abc"
    src.write_text("X:1\nT:Test\nM:4/4\nL:1/8\nK:G\nGABc d2e2|d2B2 G4|\n", encoding="utf-8")
    out = tmp_path / "abc.mid"
    assert main(["render", str(src), "--out", str(out)]) == 0
    # transposed to C like the v2 data (G major up a fourth): G A B c d e d B G -> c d e f g a g e c
    assert [m.note for m in note_ons(out)] == [60, 62, 64, 65, 67, 69, 67, 64, 60]


def test_malformed_tokens_render_with_problems_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bad.mid"
    assert main(["render", "M:4/4 K:Cmaj (3 c d | e ] f", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "2 problem(s)" in err and "tuplet cut by the bar line" in err and "] without [" in err
    assert len(note_ons(out)) == 4


def test_unknown_token_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "M:4/4 K:Cmaj c dd e", "--out", str(tmp_path / "x.mid")]) == 2
    err = capsys.readouterr().err
    assert "unknown token 'dd'" in err and "position 3" in err
    assert not (tmp_path / "x.mid").exists()


def test_no_notes_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "M:4/4 K:Cmaj | |", "--out", str(tmp_path / "x.mid")]) == 2
    assert "no notes" in capsys.readouterr().err


def test_channel_out_of_range_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", TUNE, "--out", str(tmp_path / "x.mid"), "--channel", "16"]) == 2
    assert "--channel must be in range 0..15" in capsys.readouterr().err
