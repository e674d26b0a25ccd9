"""A voice's MIDI on its way to the outputs, and the notes it has sounding.

Every note-on is paired with a note-off scheduled at once; :meth:`SoundingNotes.silence` sends the
note-offs early (pause, stop, reset, failure) plus All Notes Off on the channels used.  An output that
raises is dropped (no more note-ons reach it) and silenced as far as it still can be, so a transient
error (a USB hiccup) never leaves a note hanging.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence

import mido

from folkrnn_live.player.outputs import MidiOutput, all_notes_off, note_off, note_on
from folkrnn_live.player.scheduler import PRIO_OFF, Scheduler, Timer

#: Told of each output that failed (after it was dropped and silenced): output, error, time.
FailureSink = Callable[[MidiOutput, Exception, float], None]


class SoundingNotes:
    """The outputs of one voice and its sounding (channel, pitch) pairs, each with its note-off."""

    def __init__(
        self, outputs: Sequence[MidiOutput], scheduler: Scheduler, channel: Callable[[], int], on_failed: FailureSink
    ) -> None:
        self.outputs: list[MidiOutput] = list(outputs)
        self.failed: list[tuple[MidiOutput, BaseException]] = []
        self.scheduler = scheduler
        self._channel = channel  # the voice's channel now (silenced on a failed output even if unused)
        self._on_failed = on_failed
        self._offs: dict[tuple[int, int], Timer] = {}  # (channel, pitch) -> its note-off
        self._used_channels: set[int] = set()

    @property
    def keys(self) -> frozenset[tuple[int, int]]:
        """The (channel, pitch) pairs sounding now."""
        return frozenset(self._offs)

    def last_off(self, default: float) -> float:
        """When the last sounding note ends (``default`` when none sounds)."""
        return max((tm.when for tm in self._offs.values()), default=default)

    def strike(self, channel: int, pitches: Sequence[int], velocity: int, onset: float, off: float) -> None:
        """Note-ons at ``onset`` and their note-offs at ``off`` (pitches outside MIDI are skipped; a
        pitch still sounding is released first)."""
        for pitch in pitches:
            if not 0 <= pitch <= 127:
                continue
            key = (channel, pitch)
            old = self._offs.pop(key, None)
            if old is not None:  # still sounding (a late note): release before striking again
                old.cancel()
                self.send(note_off(channel, pitch), onset)
            self.send(note_on(channel, pitch, velocity), onset, off - onset)
            self._offs[key] = self.scheduler.at(off, functools.partial(self._note_off, key), PRIO_OFF)
            self._used_channels.add(channel)

    def silence(self) -> None:
        """Note-offs for the sounding notes now, then All Notes Off on the channels used."""
        now = self.scheduler.now()
        for (ch, pitch), timer in sorted(self._offs.items()):
            timer.cancel()
            self.send(note_off(ch, pitch), now)
        self._offs.clear()
        for ch in sorted(self._used_channels):
            self.send(all_notes_off(ch), now)

    def send(self, msg: mido.Message, when: float, duration: float | None = None) -> None:
        for out in tuple(self.outputs):
            try:
                out.send(msg, when, duration)
            except Exception as exc:
                self._output_failed(out, exc, when)

    def checkpoint(self, when: float) -> None:
        """A bar line: outputs that write files put what came before it on disk (a kill -9 then
        loses at most the bar in progress)."""
        for out in tuple(self.outputs):
            try:
                out.checkpoint(when)
            except Exception as exc:
                self._output_failed(out, exc, when)

    def tune_boundary(self, when: float) -> None:
        for out in self.outputs:
            out.tune_boundary(when)

    def _note_off(self, key: tuple[int, int]) -> None:
        timer = self._offs.pop(key, None)
        if timer is not None:
            self.send(note_off(*key), timer.when)

    def _output_failed(self, out: MidiOutput, exc: Exception, when: float) -> None:
        # Drop the output (no more note-ons to it), then try to silence it.
        self.outputs.remove(out)
        self.failed.append((out, exc))
        for ch, pitch in sorted(self._offs):
            with contextlib.suppress(Exception):
                out.send(note_off(ch, pitch), when)
        for ch in sorted(self._used_channels | {self._channel()}):
            with contextlib.suppress(Exception):
                out.send(all_notes_off(ch), when)
        self._on_failed(out, exc, when)
