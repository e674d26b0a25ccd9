"""Offline rendering: tokens to a MIDI file with the same interpreter, unfolder and timeline as live."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import mido

from folkrnn_live.player.events import Note, Problem, TuneEnd
from folkrnn_live.player.interpret import Interpreter
from folkrnn_live.player.outputs import MidiFileOutput, note_off
from folkrnn_live.player.settings import VoiceSettings
from folkrnn_live.player.timeline import TimedNote, Timeline
from folkrnn_live.player.unfold import Unfolder


@dataclass
class Rendering:
    notes: list[TimedNote]  # rests included (no pitches)
    problems: list[Problem]
    problem_count: int
    tunes: int
    duration: float  # seconds, to the end of the last note
    midi: mido.MidiFile

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        self.midi.save(p)
        return p


def render(tokens: Iterable[str], settings: VoiceSettings | None = None) -> Rendering:
    """Render a token sequence (one or more tunes, ``</s>`` between them) from time 0."""
    settings = settings or VoiceSettings()
    interp, unfolder, timeline = Interpreter(), Unfolder(settings.mode), Timeline(settings)
    for tok in tokens:
        unfolder.push(interp.feed(tok))
    unfolder.push(interp.finish())
    # The file writer is the live output class, used synchronously: same file format either way.
    out = MidiFileOutput("<rendering>")
    out.open()
    notes: list[TimedNote] = []
    t, end, tunes, program_due = 0.0, 0.0, 0, True
    while (ev := unfolder.pop()) is not None:
        timed, nxt = timeline.advance(ev, t)
        if isinstance(ev, TuneEnd):
            tunes += 1
            program_due = True
        elif isinstance(ev, Note) and timed is not None:
            if program_due and settings.program is not None and not ev.is_rest:
                out.send(mido.Message("program_change", channel=timed.channel, program=settings.program), t)
                program_due = False
            for pitch in ev.pitches:
                if 0 <= pitch <= 127:
                    on = mido.Message("note_on", channel=timed.channel, note=pitch, velocity=timed.velocity)
                    out.send(on, timed.onset, timed.off - timed.onset)
            for pitch in ev.pitches:
                if 0 <= pitch <= 127:
                    out.send(note_off(timed.channel, pitch), timed.off)
            notes.append(timed)
            end = max(end, timed.end)
        t = nxt
    midi = out.to_midifile()  # not closed: that would write to disk; every note-on got its note-off
    return Rendering(notes, list(interp.problems), interp.problem_count, tunes, end, midi)
