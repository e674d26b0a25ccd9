"""One live voice: sampler state, player, outputs, recording, feedback.

Commands arrive already validated (see :mod:`folkrnn_live.server.commands.registry`).  Step commands go to
the voice's :class:`~folkrnn_live.server.runtime.token_source.ControlledSource` queue and are applied before the
next token; while the voice is not playing (nothing pulls tokens) the queue is drained on the event
loop at once, so state replies stay current.  Player, transport and recording commands act on the
event loop directly: they never touch the network.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from folkrnn_live.model.network import FolkRNN
from folkrnn_live.player.clock import ExternalClock
from folkrnn_live.player.events import (
    BarPlayed,
    NotePlayed,
    OutputFailed,
    PlayerEvent,
    StateChanged,
    TunePlayed,
)
from folkrnn_live.player.link import LinkSession
from folkrnn_live.player.outputs import MidiOutput
from folkrnn_live.player.player import Player
from folkrnn_live.player.scheduler import Scheduler
from folkrnn_live.player.settings import TEMPO_RANGE, Accent, VoiceSettings
from folkrnn_live.sampler.voice import StepResult, Voice
from folkrnn_live.server.commands.handlers import VOICE_LOOP
from folkrnn_live.server.commands.registry import Call, CommandError
from folkrnn_live.server.runtime.token_source import ControlledSource, LogEntry
from folkrnn_live.server.transports.common import Origin
from folkrnn_live.server.transports.feedback import Feedback, Hub, error_feedback

log = logging.getLogger(__name__)
STATE_LIST_MAX = 64  # items of a list in a state snapshot, at most (see _cut_lists)


class LiveVoice:
    """A named voice of the server.  Create inside a running event loop."""

    def __init__(
        self,
        name: str,
        model: FolkRNN,
        *,
        scheduler: Scheduler,
        outputs: Sequence[MidiOutput] = (),
        hub: Hub | None = None,
        seed: int = 0,
        settings: VoiceSettings | None = None,
        recordings_dir: str | Path | None = None,
        stepper: Any = None,
        queue_limit: int = 10_000,
        log_limit: int = 100_000,
        log_sink: Callable[[str, LogEntry], None] | None = None,
        clock: ExternalClock | None = None,
        recording_max_bytes: int | None = None,
        link: LinkSession | None = None,
        lookahead: float = 0.05,
    ) -> None:
        self.name = name
        self.model = model
        self.hub = hub or Hub()
        self.voice = Voice(model, seed=seed, stepper=stepper)
        self.voice.listeners.append(self._on_step)
        self.source = ControlledSource(
            self.voice, queue_limit=queue_limit, log_limit=log_limit,
            schedule_drain=self._schedule_drain, on_restart=self._on_restart, on_applied=self._on_applied,
        )
        self.player = Player(
            self.source, outputs, settings, scheduler=scheduler, clock=clock, listener=self._on_player_event,
            name=name, lookahead=lookahead,
        )
        self.link = link  # Ableton Link: its tempo is the voice's, a start waits for its next bar line
        if link is not None:
            link.subscribe(self._follow_link)
        self.recordings_dir = Path(recordings_dir) if recordings_dir is not None else None
        self.recorder: Any = None
        self.recording_max_bytes = recording_max_bytes  # each recording's size cap (recording.max_bytes)
        self._record_origin: Origin | None = None  # who started the recording: told when it is full
        self._recording: AsyncExitStack | None = None
        self.log_sink = log_sink
        self._loop = asyncio.get_running_loop()
        self._drain_scheduled = False
        self._state_scheduled = False
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- dispatch ------------------------------------------------------------------------------
    def submit(self, call: Call, origin: Origin) -> None:
        """Accept a validated voice command (raises CommandError when the queue is full)."""
        if call.command.applies == "step":
            self.source.enqueue(call, origin)
            if call.name in ("reset", "next") or self.player.state != "playing":
                self._schedule_drain()
        else:
            self._loop.call_soon(self._apply_loop, call, origin)

    def _schedule_drain(self) -> None:
        if not self._drain_scheduled:
            self._drain_scheduled = True
            self._loop.call_soon(self._drain_on_loop)

    def _drain_on_loop(self) -> None:
        self._drain_scheduled = False
        self.source.drain(in_step=False)

    def _apply_loop(self, call: Call, origin: Origin) -> None:
        entry = LogEntry(self.voice.total_steps, self.voice.tunes_started, call.name, dict(call.args))
        try:
            VOICE_LOOP.run(self, call)
            if call.name == "record_start":
                self._record_origin = origin
        except (ValueError, KeyError, OSError) as exc:
            err = exc if isinstance(exc, CommandError) else CommandError(call.address, str(exc))
            origin.reply(error_feedback(err))
            return
        self.source.record(entry)

    # --- player and transport commands ------------------------------------------------------------
    @VOICE_LOOP.handles("tempo")
    def cmd_tempo(self, bpm: float) -> None:
        self.player.update(tempo=bpm)

    @VOICE_LOOP.handles("channel")
    def cmd_channel(self, channel: int) -> None:
        self.player.update(channel=channel)

    @VOICE_LOOP.handles("program")
    def cmd_program(self, program: int) -> None:
        self.player.update(program=program)

    @VOICE_LOOP.handles("velocity")
    def cmd_velocity(self, velocity: int) -> None:
        self.player.update(velocity=velocity)

    @VOICE_LOOP.handles("accent")
    def cmd_accent(self, downbeat: int, beat: int, offbeat: int) -> None:
        self.player.update(accent=Accent(downbeat, beat, offbeat))

    @VOICE_LOOP.handles("swing")
    def cmd_swing(self, ratio: float) -> None:
        self.player.update(swing=ratio)

    @VOICE_LOOP.handles("gate")
    def cmd_gate(self, fraction: float) -> None:
        self.player.update(gate=fraction)

    @VOICE_LOOP.handles("unfold")
    def cmd_unfold(self, on: bool) -> None:
        self.player.update(mode="unfolded" if on else "linear")

    @VOICE_LOOP.handles("send_clock")
    def cmd_send_clock(self, on: bool) -> None:
        self.player.update(send_clock=on)

    def _follow_link(self, bpm: float) -> None:
        self.player.update(tempo=min(max(bpm, TEMPO_RANGE[0]), TEMPO_RANGE[1]))

    @VOICE_LOOP.handles("start")
    def cmd_start(self) -> None:
        if self.voice.ended is not None and not self.source.continuous and self.player.state != "paused":
            # The tune is over: starting again means the next tune (logged: it changes the tokens).
            self.source.drain()
            self.source.apply(_restart_call("next"))
        if self.link is not None:  # the session's tempo, and its next bar line
            self._follow_link(self.link.tempo)
        self.player.start(at=self.link.next_bar() if self.link is not None else None)

    @VOICE_LOOP.handles("stop")
    def cmd_stop(self) -> None:
        self.player.stop()

    @VOICE_LOOP.handles("pause")
    def cmd_pause(self) -> None:
        self.player.pause()

    @VOICE_LOOP.handles("resume")
    def cmd_resume(self) -> None:
        self.player.resume()

    @VOICE_LOOP.handles("record_start")
    def cmd_record_start(self, label: str) -> None:
        if self.recordings_dir is None:
            raise ValueError("recording is off: set [recording] dir in the config")
        if self.recorder is not None:
            raise ValueError(f"voice {self.name} is already recording to {self.recorder.path}")
        from folkrnn_live.recording.recorder import Recorder

        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = self.recordings_dir / f"{stamp}-{self.name}-{label}"
        n = 1
        while path.exists():
            n += 1
            path = self.recordings_dir / f"{stamp}-{self.name}-{label}-{n}"
        meta = {"voice": self.name, "seed": self.voice.seed, "tune": self.voice.tunes_started,
                "step": self.voice.total_steps, "source": "folkrnn-live serve"}
        try:
            rec = Recorder(path, self.model, meta=meta, max_bytes=self.recording_max_bytes,
                           on_limit=self._on_recording_full)
        except OSError as exc:
            raise ValueError(f"cannot record to {path} (recording.dir in the config): {exc.strerror or exc}") from exc
        # The recording is an outside resource with its own async context manager; its __aenter__
        # only returns itself, so pushing its __aexit__ is entering it.  The stack lives as long as
        # the recording: record_stop or shutdown closes it (the writer is joined off the loop).
        self._recording = AsyncExitStack()
        self._recording.push_async_exit(rec)
        rec.attach(self.voice, name=self.name)
        self.recorder = rec
        log.info("voice %s: recording to %s", self.name, path)

    def _on_recording_full(self, full: Exception) -> None:
        self._loop.call_soon_threadsafe(self._recording_full, full)  # called on the writer thread

    def _recording_full(self, full: Exception) -> None:
        """The recording reached recording.max_bytes (a runaway voice filled 400 MB in 10 s): one
        log line, an /error to whoever started it, and the recording is closed (it stays readable)."""
        if self.recorder is None or self.recorder.limit_reached is not full:
            return  # already stopped, or another recording's
        log.error("voice %s: %s", self.name, full)
        err = CommandError(f"/folkrnn/{self.name}/record_start", str(full), argument="max_bytes",
                           allowed=f"recording.max_bytes = {self.recording_max_bytes} bytes per recording")
        if self._record_origin is not None:
            self._record_origin.reply(error_feedback(err))
        self.cmd_record_stop()
        self.schedule_state()

    @VOICE_LOOP.handles("record_stop")
    def cmd_record_stop(self) -> None:
        if self.recorder is None or self._recording is None:
            raise ValueError(f"voice {self.name} is not recording")
        self.recorder.detach(self.voice)  # no step reaches it from now on
        stack, self.recorder, self._recording = self._recording, None, None
        task = self._loop.create_task(stack.aclose(), name=f"record-close-{self.name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("voice %s: %s", self.name, task.exception())

    # --- shutdown ------------------------------------------------------------------------------------
    async def aclose(self, timeout: float = 1.0) -> None:
        """Stop playing (note-offs now) and flush the recording."""
        self.player.stop()
        stack, self.recorder, self._recording = self._recording, None, None
        if stack is not None:
            try:
                await asyncio.wait_for(stack.aclose(), timeout)
            except (TimeoutError, OSError) as exc:
                log.error("voice %s: recording not closed cleanly: %s", self.name, exc)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    # --- feedback --------------------------------------------------------------------------------
    def _on_step(self, r: StepResult) -> None:
        hub = self.hub
        if hub.wants("tokens"):
            total = self.voice.total_steps - 1  # counted before listeners run
            hub.publish(Feedback("tokens", "token", self.name, (self.voice.tunes_started, r.step, r.text, total),
                                 {"tune": self.voice.tunes_started, "step": r.step, "token": r.text, "total": total}))
        if hub.wants("probs"):
            p = [float(x) for x in r.probs]
            total = self.voice.total_steps - 1
            hub.publish(Feedback("probs", "probs", self.name, (total, *p), {"total": total, "probs": p}))

    def _on_restart(self, how: str, cut: bool) -> None:
        if cut:  # never inside a step: see ControlledSource.drain
            self.player.reset()
            if self.player.state == "finished":
                self.player.start()
        self._publish_tune_start()

    def _publish_tune_start(self) -> None:
        v = self.voice
        self.hub.publish(Feedback("tunes", "tune_start", self.name, (v.tunes_started, v.seed),
                                  {"tune": v.tunes_started, "seed": v.seed}))

    def _on_applied(self, e: LogEntry) -> None:
        if self.log_sink is not None:
            self.log_sink(self.name, e)
        if self.hub.wants("applied"):
            text = " ".join([e.command, *(str(x) for x in _flat(e.args))])
            self.hub.publish(Feedback("applied", "applied", self.name, (e.step, text), e.to_json()))
        self.schedule_state()

    def _on_player_event(self, ev: PlayerEvent) -> None:
        hub = self.hub
        if isinstance(ev, NotePlayed):
            if hub.wants("notes"):
                ms = (ev.off - ev.onset) * 1000.0
                for pitch in ev.note.pitches:
                    hub.publish(Feedback("notes", "note", self.name, (pitch, ev.velocity, ms, ev.channel),
                                         {"pitch": pitch, "velocity": ev.velocity, "duration_ms": ms,
                                          "channel": ev.channel, "bar": ev.bar, "step": ev.note.step}))
        elif isinstance(ev, BarPlayed):
            hub.publish(Feedback("bars", "bar", self.name, (ev.index, ev.bar.kind),
                                 {"index": ev.index, "kind": ev.bar.kind}))
        elif isinstance(ev, TunePlayed):
            hub.publish(Feedback("tunes", "tune_end", self.name, (ev.end.reason, ev.end.step),
                                 {"reason": ev.end.reason, "step": ev.end.step}))
        elif isinstance(ev, StateChanged):
            if ev.state != "playing" and self.source.queue:
                self._schedule_drain()  # nothing pulls tokens now: apply what waits
            self.schedule_state()
        elif isinstance(ev, OutputFailed):
            hub.publish(Feedback("state", "output_failed", self.name, (ev.output, ev.error),
                                 {"output": ev.output, "error": ev.error}))

    def schedule_state(self) -> None:
        """Publish a state snapshot soon (coalesced: one per burst of changes)."""
        if not self._state_scheduled and self.hub.wants("state"):
            self._state_scheduled = True
            self._loop.call_later(0.02, self._publish_state)

    def _publish_state(self) -> None:
        self._state_scheduled = False
        self.hub.publish(self.state_feedback())

    def state_feedback(self) -> Feedback:
        import json

        snap = _cut_lists(self.snapshot())
        return Feedback("state", "state", self.name, (json.dumps(snap, separators=(",", ":")),), snap)

    def snapshot(self) -> dict[str, Any]:
        v, p, s = self.voice, self.player, self.player.settings
        return {
            "voice": self.name,
            "state": p.state,
            "tune": v.tunes_started,
            "seed": v.seed,
            "next_seed": self.source.next_seed,
            "step": v.step_index,
            "total_steps": v.total_steps,
            "continuous": self.source.continuous,
            "prime": list(v.prime),
            "max_tokens": v.max_tokens,
            "player": {"tempo": s.tempo, "channel": s.channel, "program": s.program, "velocity": s.velocity,
                       "accent": [s.accent.downbeat, s.accent.beat, s.accent.offbeat], "swing": s.swing,
                       "gate": s.gate, "unfold": s.mode == "unfolded", "send_clock": s.send_clock},
            "controls": v.controls.summary(v.vocab),
            "recording": None if self.recorder is None else str(self.recorder.path),
            "queued": len(self.source.queue),
            "notes": p.stats.notes,
            "underruns": p.stats.underruns,
            "problems": p.stats.problems,
            "outputs": [o.name for o in p.outputs],
            "clock_bpm": None if p.clock is None or p.clock.bpm is None else round(p.clock.bpm, 2),
            "error": None if p.error is None else str(p.error),
        }


def _cut_lists(snap: dict[str, Any]) -> dict[str, Any]:
    """The snapshot with its two unbounded lists (a prime of up to 4,096 tokens, 1,000 injected
    tokens) cut to their first STATE_LIST_MAX items, saying so: ``prime_length`` and
    ``truncated``.  A 4,096-token prime made the state larger than an OSC datagram may be, and
    state feedback went silent."""
    prime, inject = snap["prime"], snap["controls"].get("inject", [])
    if len(prime) <= STATE_LIST_MAX and len(inject) <= STATE_LIST_MAX:
        return snap
    out = {**snap, "controls": dict(snap["controls"]), "truncated": []}  # the summary is shared: copy
    if len(prime) > STATE_LIST_MAX:
        out["prime"], out["prime_length"] = prime[:STATE_LIST_MAX], len(prime)
        out["truncated"].append("prime")
    if len(inject) > STATE_LIST_MAX:
        out["controls"]["inject"], out["controls"]["inject_length"] = inject[:STATE_LIST_MAX], len(inject)
        out["truncated"].append("controls.inject")
    return out


def _flat(args: dict[str, Any] | Any) -> list[Any]:
    out: list[Any] = []
    for v in args.values():
        if isinstance(v, tuple | list):
            out.extend(v)
        elif v is not None:
            out.append(v)
    return out


def _restart_call(name: str) -> Call:
    from folkrnn_live.server.commands.catalog import COMMANDS

    return Call(COMMANDS.get(name), None, {})

