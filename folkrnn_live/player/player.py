"""One voice playing live: token source -> interpreter -> (unfolder) -> timeline -> MIDI outputs.

The player pulls a token only while its queue holds no fixed note, and only inside the scheduler's
gaps (see :mod:`folkrnn_live.player.scheduler`), so a control change reaches the very next undecided
note and a model step never delays a note.  Every note-on is paired with a scheduled note-off; pause,
stop, reset, output errors, exceptions and shutdown send note-offs for sounding notes and All Notes
Off on the channels used.  Feedback never holds up a note (:mod:`folkrnn_live.player.feedback`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import mido

from folkrnn_live.player.clock import ClockOut, ExternalClock, Transport
from folkrnn_live.player.events import (
    Bar,
    BarPlayed,
    Note,
    NotePlayed,
    OutputFailed,
    PlayerEvent,
    PlayerState,
    PlayerStats,
    Problem,
    ProblemFound,
    StateChanged,
    TokenPulled,
    TuneEnd,
    TunePlayed,
)
from folkrnn_live.player.feedback import Feedback
from folkrnn_live.player.interpret import Interpreter
from folkrnn_live.player.outputs import MidiOutput
from folkrnn_live.player.pace import PullPace
from folkrnn_live.player.prepare import Rehearsal, rehearse
from folkrnn_live.player.scheduler import PRIO_LAST, PRIO_ON, Scheduler, Timer
from folkrnn_live.player.settings import VoiceSettings
from folkrnn_live.player.sounding import SoundingNotes
from folkrnn_live.player.source import TokenSource
from folkrnn_live.player.timeline import TimedNote, Timeline
from folkrnn_live.player.unfold import Unfolder

log = logging.getLogger(__name__)
SETTING_NAMES = tuple(f.name for f in dataclasses.fields(VoiceSettings))


class Player:
    """A voice.  ``async with Player(source, [output], settings) as p: p.start(); await p.finished()``.

    Pass a shared :class:`Scheduler` to run several voices on one loop; without one the player runs
    its own (started by ``async with`` or the first :meth:`start`)."""

    def __init__(
        self,
        source: TokenSource,
        outputs: Sequence[MidiOutput],
        settings: VoiceSettings | None = None,
        *,
        scheduler: Scheduler | None = None,
        clock: ExternalClock | None = None,
        listener: Callable[[PlayerEvent], None] | None = None,
        lookahead: float = 0.05,
        start_delay: float = 0.1,
        max_late: float = 0.05,
        name: str = "voice",
    ) -> None:
        for field_name, value in (("lookahead", lookahead), ("start_delay", start_delay), ("max_late", max_late)):
            if not 0.0 <= value <= 10.0:
                raise ValueError(f"{field_name} must be in range 0..10 s; got {value!r}")
        self.name = name
        self.source = source
        self.settings = settings or VoiceSettings()
        self.scheduler = scheduler or Scheduler()
        self._notes = SoundingNotes(outputs, self.scheduler, lambda: self.settings.channel, self._output_failed)
        self._own_scheduler = scheduler is None
        self.clock = clock
        self.listener = listener
        self._feedback = Feedback(lambda: self.listener, name)
        self.start_delay, self.max_late = start_delay, max_late
        self._pace = PullPace(lookahead)
        self.stats = PlayerStats()
        self.state: PlayerState = "idle"
        self.error: BaseException | None = None
        self.interpreter = Interpreter(report=self._on_problem, vocab=source.vocab)
        self.unfolder = Unfolder(self.settings.mode)
        self.timeline = Timeline(self.settings)
        self._next_onset: float | None = None
        self._onset_timer: Timer | None = None
        self._rehearsal = Rehearsal(self.scheduler, self._rehearse)
        self._exhausted = False
        self._program_due = True
        self._done = asyncio.Event()
        self._clock_out: ClockOut | None = None
        self._overdue = False  # a note is due but not fixed yet: the onset waits for the next pull
        if clock is not None:
            clock.subscribe(self._on_transport)

    # --- lifecycle ---

    async def __aenter__(self) -> Player:
        if self._own_scheduler:
            self.scheduler.ensure_running()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if self.clock is not None:
            self.clock.unsubscribe(self._on_transport)
        if self._own_scheduler:
            await self.scheduler.close()

    async def finished(self) -> PlayerState:
        """Wait until the tune(s) ended and the last note is off, or the player stopped or failed."""
        await self._done.wait()
        return self.state

    @property
    def problems(self) -> list[Problem]:
        return self.interpreter.problems

    @property
    def sounding(self) -> frozenset[tuple[int, int]]:
        """(channel, pitch) pairs this voice has sounding now."""
        return self._notes.keys

    @property
    def outputs(self) -> list[MidiOutput]:
        """The outputs still in use (a failed one is dropped: see :attr:`failed_outputs`)."""
        return self._notes.outputs

    @property
    def failed_outputs(self) -> list[tuple[MidiOutput, BaseException]]:
        return self._notes.failed

    # --- transport ---

    def start(self, at: float | None = None) -> None:
        """Start playing (or resume when paused); the first note at ``at`` (loop clock) or shortly."""
        if self.state == "playing":
            return
        if self.state == "paused":
            self.resume(at)
            return
        self.scheduler.ensure_running()
        self._exhausted = False
        self._program_due = True
        self._begin(at if at is not None else self.scheduler.now() + self.start_delay, "start")

    def pause(self) -> None:
        if self.state == "playing":
            self._halt("paused")

    def resume(self, at: float | None = None) -> None:
        if self.state == "paused":
            self._begin(at if at is not None else self.scheduler.now() + 0.02, "continue")

    def stop(self) -> None:
        """Stop: silence, stop pulling tokens.  :meth:`start` carries on from the same place."""
        if self.state in ("playing", "paused"):
            self._halt("stopped")
            return
        self._notes.silence()  # a finished voice may still have its last notes sounding
        if self.state == "finished":
            self._done.set()

    def reset(self) -> None:
        """Silence and forget the tune in progress (queued notes included); the next tokens start a
        new tune.  A playing voice goes on playing."""
        self._notes.silence()
        self.interpreter.reset()
        self.unfolder.clear()
        self.timeline.reset()
        self._program_due = True
        self._exhausted = False
        self._overdue = False
        if self.state == "playing":
            self._schedule_onset(self.scheduler.now() + self.start_delay)
        self.scheduler.wake()

    def set_tempo(self, bpm: float) -> None:
        """Tempo in BPM of the meter's beat; takes effect from the next note."""
        self.update(tempo=bpm)

    def update(self, **changes: Any) -> VoiceSettings:
        """Change settings (validated; errors name the field and the allowed values)."""
        unknown = sorted(set(changes) - set(SETTING_NAMES))
        if unknown:
            raise ValueError(f"unknown setting {unknown[0]!r}; allowed: {', '.join(SETTING_NAMES)}")
        old, new = self.settings, dataclasses.replace(self.settings, **changes)
        self.settings = self.timeline.settings = new
        self.unfolder.mode = new.mode
        now = self.scheduler.now()
        if new.program is not None and (new.program != old.program or new.channel != old.channel):
            if self.state in ("playing", "paused"):
                self._program_due = False
                self._notes.send(mido.Message("program_change", channel=new.channel, program=new.program), now)
            else:  # outputs may not be open yet: send it with the first note
                self._program_due = True
        if new.send_clock != old.send_clock and self.state == "playing":
            if new.send_clock:
                self._clock().start(now, "start")
            elif self._clock_out is not None:
                self._clock_out.stop(now)
        return new

    def _begin(self, at: float, kind: Transport) -> None:
        self._set_state("playing")
        self._done.clear()
        self._schedule_onset(at)
        self.scheduler.add_worker(self)
        if self.settings.send_clock:
            self._clock().start(at, "continue" if kind == "continue" else "start")

    def _halt(self, state: PlayerState) -> None:
        self._cancel_onset()
        self._overdue = False
        self.scheduler.remove_worker(self)
        self._notes.silence()
        if self._clock_out is not None:
            self._clock_out.stop(self.scheduler.now())
        self._set_state(state)
        if state != "paused":
            self._done.set()

    def _on_transport(self, kind: Transport, at: float) -> None:
        # External clock: start/continue play from the next tick or so, stop pauses.
        if kind == "stop":
            self.pause()
            return
        iv = self.clock.tick_interval if self.clock is not None else None
        when = max(at + (iv or 0.01), self.scheduler.now())
        if self.state == "paused":
            self.resume(when)
        elif self.state != "playing":
            self.start(when)

    # --- worker interface (called by the scheduler) ---

    def work_window(self) -> tuple[float, float] | None:
        if self.state != "playing" or self._exhausted or self._next_onset is None or self.unfolder.has_note():
            return None
        return self._pace.window(self._next_onset, self.scheduler.step_estimate, self._seconds_per_beat)

    def work(self) -> None:
        self._feedback.deliver()  # the last onset's, first: the listener sees the voice before this pull
        self._pace.step_taken(self.scheduler.now(), self._seconds_per_beat())
        try:
            self._pull()
            if self._overdue and (self.unfolder.has_note() or self._exhausted):
                self._overdue = False
                self._onset_timer = self.scheduler.at(self.scheduler.now(), self._on_onset, PRIO_ON)
        except Exception as exc:
            self._fail(exc)

    # --- internals ---

    def _pull(self) -> None:
        index = self.source.next_token()
        step = self.interpreter.step
        if index is None:
            self._exhausted = True
            self.unfolder.push(self.interpreter.finish())
            text = None
        else:
            self.stats.tokens += 1
            self.unfolder.push(self.interpreter.feed_index(index))
            text = self.interpreter.vocab.tokens[index] if 0 <= index < len(self.interpreter.vocab) else str(index)
        self._emit(TokenPulled(step, text, self.scheduler.now()))

    def _schedule_onset(self, when: float) -> None:
        self._cancel_onset()
        self._overdue = False
        self._next_onset = when
        self._onset_timer = self.scheduler.at(when, self._on_onset, PRIO_ON)
        self._rehearsal.before(when)

    def _cancel_onset(self) -> None:
        self._rehearsal.cancel()
        if self._onset_timer is not None:
            self._onset_timer.cancel()
            self._onset_timer = None

    def _rehearse(self) -> None:  # see folkrnn_live.player.prepare
        if self.state == "playing" and self._next_onset is not None:
            rehearse(self.timeline, self.unfolder, self._next_onset, self._external_spq())

    def _on_onset(self) -> None:
        with self._feedback.held():  # the other voices' notes due now go out before the feedback
            try:
                self._onset()
            except Exception as exc:
                self._fail(exc)

    def _onset(self) -> None:
        self._onset_timer = None
        if self.state != "playing" or self._next_onset is None:
            return
        t = self._next_onset
        if not self.unfolder.has_note() and not self._exhausted:
            # The note is due and its tokens are not all here (a long run of non-note tokens, a slow
            # step).  Pulling goes on as scheduler work, which keeps other voices' notes on time and
            # lets the loop breathe; the onset fires as soon as the note is fixed.
            self.stats.underruns += 1
            self._overdue = True
            return
        now = self.scheduler.now()
        if now - t > self.max_late:
            # Far too late (tokens came late, or the loop was held up): move the timeline rather
            # than rushing the following notes to catch up.
            self.stats.resyncs += 1
            t = now
        spq = self._external_spq()
        while (ev := self.unfolder.pop()) is not None:
            timed, nxt = self.timeline.advance(ev, t, spq)
            if isinstance(ev, Bar):
                t = self.clock.bar_line(t, self.timeline.meter) if self.clock is not None else t
                self._notes.checkpoint(t)
                self._emit(BarPlayed(ev, self.timeline.bar_index, t))
                if t > now:  # phase lock: the clock's bar line is still ahead; the bar starts there
                    self._schedule_onset(t)
                    return
            elif isinstance(ev, TuneEnd):
                self._notes.tune_boundary(t)
                self._program_due = True
                last = ev.reason == "exhausted" and not self.unfolder.has_note()
                if not last:
                    self._schedule_onset(nxt)
                self._emit(TunePlayed(ev, t))
                if last:
                    break
                return
            elif isinstance(ev, Note):
                assert timed is not None
                self._pace.note_played()
                # The note first: the other voices' notes due now wait for what comes before it.
                self._play(timed)
                self._schedule_onset(nxt)
                return
        if self.state == "playing":
            self._finish(t)

    def _play(self, timed: TimedNote) -> None:
        ch = timed.channel
        if self._program_due and self.settings.program is not None:
            self._notes.send(mido.Message("program_change", channel=ch, program=self.settings.program), timed.onset)
        self._program_due = False
        self._notes.strike(ch, timed.note.pitches, timed.velocity, timed.onset, timed.off)
        self.stats.notes += 1
        self._emit(NotePlayed(timed.note, timed.onset, timed.off, timed.velocity, ch, timed.bar, timed.position))

    def _finish(self, t: float) -> None:
        self._next_onset = None
        self.scheduler.remove_worker(self)
        if self._clock_out is not None:
            self._clock_out.stop(t)
        self._set_state("finished")
        last_off = self._notes.last_off(default=t)
        self.scheduler.at(max(t, last_off), self._done.set, PRIO_LAST)

    def _output_failed(self, out: MidiOutput, exc: Exception, when: float) -> None:
        log.warning("voice %s: output %s failed: %s", self.name, out.name, exc)
        self._emit(OutputFailed(out.name, str(exc), when))

    def _fail(self, exc: BaseException) -> None:
        log.error("voice %s failed: %r", self.name, exc)
        self.error = exc
        self._halt("failed")

    def _clock(self) -> ClockOut:
        if self._clock_out is None:
            self._clock_out = ClockOut(self.scheduler, self._notes.send,
                                       lambda: self.timeline.seconds_per_unit(self._external_spq()) * 2.0)
        return self._clock_out

    def _seconds_per_beat(self) -> float:
        spq = self._external_spq()
        return spq if spq is not None else 60.0 / self.settings.tempo

    def _external_spq(self) -> float | None:
        return self.clock.seconds_per_quarter if self.clock is not None else None

    def _set_state(self, state: PlayerState) -> None:
        self.state = state
        self._emit(StateChanged(state, self.scheduler.now()))

    def _on_problem(self, problem: Problem) -> None:
        self.stats.problems += 1
        self._emit(ProblemFound(problem))

    def _emit(self, event: PlayerEvent) -> None:
        self._feedback.emit(event)
