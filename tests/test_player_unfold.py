"""Repeats unfolded as musicians play them, and the offline renderer built on the same pieces."""

from __future__ import annotations

import pytest

from folkrnn_live.player import Interpreter, Note, Unfolder, VoiceSettings, render

# Letters to MIDI (C major) for readable expectations.
MIDI = {"A": 69, "B": 71, "C": 60, "D": 62, "E": 64, "F": 65, "G": 67}


def toks(text: str) -> list[str]:
    return text.split()


def played(text: str, mode: str = "unfolded") -> str:
    it, unf = Interpreter(), Unfolder(mode)  # type: ignore[arg-type]
    for tok in text.split():
        unf.push(it.feed(tok))
    unf.push(it.finish())
    names = {v: k for k, v in MIDI.items()}
    out = []
    while (ev := unf.pop()) is not None:
        if isinstance(ev, Note):
            out.append(names[ev.pitches[0]])
    return "".join(out)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("|: A B :| C D", "ABABCD"),
        ("|: A B :| |: C D :|", "ABABCDCD"),  # AABB
        ("|: A |1 B :| |2 C | D", "ABACD"),  # first and second endings
        ("|: A |1 B :| |2 C |: D E :|", "ABACDEDE"),
        ("A B :| C", "ABABC"),  # no |: repeats from the start of the tune
        ("G |: A | B :| C", "GABABC"),  # a pickup before |: is not repeated
        (":| A", "A"),  # nothing to repeat
        ("|: A :| :| B", "AAB"),  # a second :| straight after has an empty section
    ],
)
def test_unfolded_order(text: str, expected: str) -> None:
    assert played(text) == expected


def test_linear_plays_as_generated() -> None:
    assert played("|: A |1 B :| |2 C |", mode="linear") == "ABC"


def test_replayed_notes_are_marked_and_a_bar_line_closes_the_replay() -> None:
    it, unf = Interpreter(), Unfolder("unfolded")
    for tok in toks("|: A B :| C"):
        unf.push(it.feed(tok))
    unf.push(it.finish())
    evs = []
    while (ev := unf.pop()) is not None:
        evs.append(ev)
    replayed = [e for e in evs if isinstance(e, Note) and e.repeat]
    assert [n.pitches for n in replayed] == [(69,), (71,)]
    # the last replayed note is followed by a bar line before C, so C is a downbeat again
    i = evs.index(replayed[-1])
    assert type(evs[i + 1]).__name__ == "Bar"


def test_the_whole_section_is_queued_when_its_repeat_sign_arrives() -> None:
    # The player asks for tokens only while no note is queued: after :| the replay is queued,
    # so the generator waits for the whole replayed section.
    it, unf = Interpreter(), Unfolder("unfolded")
    for tok in toks("|: A B C"):
        unf.push(it.feed(tok))
    while unf.pop() is not None:
        pass
    assert not unf.has_note()
    unf.push(it.feed(":|"))  # fixes C and queues the replay
    got = []
    while unf.has_note():
        ev = unf.pop()
        if isinstance(ev, Note):
            got.append(ev.pitches[0])
    assert got == [60, 69, 71, 60]


def test_render_unfolded_is_longer_and_keeps_pulse() -> None:
    tokens = toks("M:4/4 K:Cmaj |: c d e f :| g 4")
    lin = render(tokens, VoiceSettings(tempo=120))
    unf = render(tokens, VoiceSettings(tempo=120, mode="unfolded"))
    assert len(lin.notes) == 5 and len(unf.notes) == 9
    # 120 BPM quarter: an eighth is 0.25 s; onsets are on an exact grid (absolute times)
    assert [round(n.onset, 9) for n in unf.notes] == [0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
    assert unf.duration == pytest.approx(3.0)


@pytest.mark.parametrize(("meter", "beat_seconds_per_eighth"), [("M:6/8", 1 / 6), ("M:3/2", 1 / 8), ("M:2/4", 1 / 4)])
def test_tempo_is_in_the_meters_beat(meter: str, beat_seconds_per_eighth: float) -> None:
    # At 120 BPM: dotted quarter beat in 6/8 (3 eighths per 0.5 s), half in 3/2, quarter in 2/4.
    r = render(toks(f"{meter} K:Cmaj c d"), VoiceSettings(tempo=120))
    assert r.notes[1].onset == pytest.approx(beat_seconds_per_eighth)


def test_accents_make_downbeats_louder_than_beats_than_offbeats() -> None:
    r = render(toks("M:4/4 K:Cmaj c d e f g a b c"), VoiceSettings(velocity=80))
    v = [n.velocity for n in r.notes]
    assert v[0] > v[2] > v[1]  # downbeat, beat 2, the eighth between
    assert v[4] == v[2] and v[1] == v[3]


def test_swing_lengthens_the_first_eighth_of_each_pair() -> None:
    r = render(toks("M:4/4 K:Cmaj c d e f"), VoiceSettings(tempo=120, swing=2.0))
    onsets = [n.onset for n in r.notes]
    # quarter = 0.5 s split 2:1
    assert onsets == pytest.approx([0, 1 / 3, 0.5, 0.5 + 1 / 3])
    straight = render(toks("M:6/8 K:Cmaj c d e"), VoiceSettings(tempo=120, swing=2.0))
    assert [n.onset for n in straight.notes] == pytest.approx([0, 1 / 6, 2 / 6])  # compound: no swing


def test_render_midi_file_has_every_note_off_and_program(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from folkrnn_live.player import hanging_notes

    r = render(toks("M:4/4 K:Cmaj [ C E G ] 2 c d"), VoiceSettings(program=73, channel=3))
    path = r.save(tmp_path / "x.mid")
    import mido

    msgs = [m for m in mido.MidiFile(path) if not m.is_meta]
    assert msgs[0].type == "program_change" and msgs[0].program == 73 and msgs[0].channel == 3
    assert sum(m.type == "note_on" for m in msgs) == 5
    assert hanging_notes(msgs) == set()
