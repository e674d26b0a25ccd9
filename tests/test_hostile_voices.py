"""Issue 12, the voices: frozen voices, a runaway voice, a full recording, kill -9.

Real server, real UDP on 127.0.0.1, a real subprocess killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import mido
import pytest
from live_server import serving, until
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from folkrnn_live.player.pace import MAX_STEPS_PER_BEAT
from folkrnn_live.player.scheduler import PRIO_CLOCK, Scheduler
from folkrnn_live.server.runtime import config
from folkrnn_live.server.runtime.service import Server


def build(address: str, *args: Any) -> bytes:
    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(a)
    return b.build().dgram


class Peer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[OscMessage] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.server = ("127.0.0.1", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.got.append(OscMessage(data))

    def send(self, address: str, *args: Any) -> None:
        assert self.transport is not None
        self.transport.sendto(build(address, *args), self.server)

    def of(self, address: str) -> list[list[Any]]:
        return [m.params for m in self.got if m.address == address]


async def peer_for(port: int) -> Peer:
    _, peer = await asyncio.get_running_loop().create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
    peer.server = ("127.0.0.1", port)
    return peer


def overrides_for(model_dir: Path, port: int, **more: Any) -> dict[str, Any]:
    return {"model.path": str(model_dir), "osc.port": port, "midi.output": "none", "recording.dir": "",
            "web.enabled": False, **more}


def steps(srv: Server) -> list[int]:
    return [lv.voice.total_steps for lv in srv.voices.values()]


# --- frozen voices -----------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_a_step_is_run_when_its_note_is_due_however_dense_the_timed_actions() -> None:
    # The cause of "all voices froze": a step ran only when its estimated cost fitted before the
    # next timed action.  One slow step raised the estimate above every gap between MIDI clock
    # ticks; no step ran again to bring it down.
    class Worker:
        def __init__(self, sched: Scheduler) -> None:
            self.sched, self.steps, self.due = sched, 0, sched.now() + 0.02

        def work_window(self) -> tuple[float, float] | None:
            return self.due - 0.01, self.due

        def work(self) -> None:
            if self.steps == 0:
                time.sleep(0.08)  # one slow step: a GC pause, a busy machine
            self.steps += 1
            self.due = self.sched.now() + 0.02

    async with Scheduler() as sched:
        def tick() -> None:  # a clock tick every 4 ms, as 4 voices sending MIDI clock
            sched.at(sched.now() + 0.004, tick, PRIO_CLOCK)

        sched.at(sched.now(), tick, PRIO_CLOCK)
        w = Worker(sched)
        sched.add_worker(w)
        await asyncio.sleep(1.0)
        assert w.steps > 10, f"only {w.steps} step(s) in a second after one slow step"


@pytest.mark.asyncio
async def test_voices_under_midi_clock_survive_one_slow_step(tiny_model_dir: Path, free_udp_port: int) -> None:
    async with serving(config.load(None, o := overrides_for(tiny_model_dir, free_udp_port, **{"server.voices": 4})),
                       overrides=o) as srv:
        peer = await peer_for(free_udp_port)
        peer.send("/folkrnn/all/send_clock", 1)
        await until(lambda: all(lv.player.settings.send_clock for lv in srv.voices.values()), "clock on")
        lv = srv.voices["1"]
        real = lv.voice.step

        def slow_once(*a: Any, **k: Any) -> Any:
            lv.voice.step = real  # type: ignore[method-assign]
            time.sleep(0.08)
            return real(*a, **k)

        lv.voice.step = slow_once  # type: ignore[method-assign]
        await until(lambda: lv.voice.step is real, "the slow step")
        before = steps(srv)
        await until(lambda: all(a >= b + 10 for a, b in zip(steps(srv), before, strict=True)),
                    "every voice steps on after the slow step")
        assert peer.transport is not None
        peer.transport.close()


@pytest.mark.asyncio
async def test_the_watchdog_restarts_a_voice_that_stopped_moving(
        tiny_model_dir: Path, free_udp_port: int, caplog: pytest.LogCaptureFixture) -> None:
    # A voice can also go quiet for good when the scheduler drops its worker after an exception:
    # "playing", nothing sounding, nothing stepping.  The watchdog logs it, restarts it, says so.
    o = overrides_for(tiny_model_dir, free_udp_port, **{"voice_defaults.tempo": 600})
    async with serving(config.load(None, o), overrides=o) as srv:
        peer = await peer_for(free_udp_port)
        peer.send("/folkrnn/subscribe", 0, "state")
        await until(lambda: peer.of("/folkrnn/1/state"), "subscribed")
        p = srv.voices["1"].player
        real = p.work_window

        def broken() -> Any:
            p.work_window = real  # type: ignore[method-assign]
            raise RuntimeError("simulated bug in work_window")

        p.work_window = broken  # type: ignore[method-assign]
        await until(lambda: not p.scheduler.has_worker(p), "the worker dropped by the scheduler")
        frozen_at = p.stats.tokens
        event = await until(lambda: peer.of("/folkrnn/1/watchdog"), "the watchdog event", 30)
        idle, _step = event[0]
        assert idle >= 3.0
        assert p.state == "playing" and p.scheduler.has_worker(p)
        await until(lambda: p.stats.tokens > frozen_at + 10, "the voice steps again")
        lines = [r.getMessage() for r in caplog.records if "restarting it" in r.getMessage()]
        assert len(lines) == 1 and "scheduler at" in lines[0] and "\n" not in lines[0]
        assert peer.transport is not None
        peer.transport.close()


# --- a runaway voice ---------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_a_voice_that_plays_no_note_steps_no_faster_than_its_budget(
        tiny_model_dir: Path, free_udp_port: int) -> None:
    # Everything but "|" suppressed: no note ever; the voice spun at ~1,000 steps/s.
    o = overrides_for(tiny_model_dir, free_udp_port, **{"voice_defaults.tempo": 120})
    async with serving(config.load(None, o), overrides=o) as srv:
        peer = await peer_for(free_udp_port)
        all_but_bar = [t for t in srv.context.vocab.tokens if t not in ("|", "<s>")]  # </s> too: no tune end
        peer.send("/folkrnn/1/suppress", 0, *all_but_bar)
        peer.send("/folkrnn/ping", 1)
        await until(lambda: peer.of("/pong"), "pong")
        assert not peer.of("/error")
        lv = srv.voices["1"]
        await asyncio.sleep(0.5)
        n0, notes0, t0 = lv.voice.total_steps, lv.player.stats.notes, time.monotonic()
        await asyncio.sleep(3.0)
        n1, t1 = lv.voice.total_steps, time.monotonic()
        beats = (t1 - t0) / 0.5  # 120 BPM
        assert lv.player.stats.notes == notes0  # it really plays nothing
        assert n1 - n0 > MAX_STEPS_PER_BEAT  # it is not stuck either
        assert n1 - n0 <= MAX_STEPS_PER_BEAT * (beats + 2), f"{n1 - n0} steps in {beats:.1f} beats"
        peer.send("/folkrnn/1/suppress_clear")
        await until(lambda: lv.player.stats.notes > notes0, "notes once the suppression is cleared")
        assert peer.transport is not None
        peer.transport.close()


@pytest.mark.asyncio
async def test_a_recording_that_reaches_its_size_cap_stops_with_an_error(
        tiny_model_dir: Path, free_udp_port: int, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    o = overrides_for(tiny_model_dir, free_udp_port, **{"voice_defaults.tempo": 600,
                                                        "recording.dir": str(tmp_path / "rec"),
                                                        "recording.max_bytes": 20_000})
    caplog.set_level(logging.INFO)
    async with serving(config.load(None, o), overrides=o) as srv:
        peer = await peer_for(free_udp_port)
        peer.send("/folkrnn/1/record_start", "take")
        await until(lambda: srv.voices["1"].recorder is not None, "recording")
        err = await until(lambda: peer.of("/error"), "the /error for the full recording", 30)
        address, argument, message = err[0]
        assert (address, argument) == ("/folkrnn/1/record_start", "max_bytes")
        assert "size cap" in message and "20000" in message
        await until(lambda: srv.voices["1"].recorder is None, "the recording closed")
        notes = srv.voices["1"].player.stats.notes
        await until(lambda: srv.voices["1"].player.stats.notes > notes + 3, "the music goes on")
        assert peer.transport is not None
        peer.transport.close()
    lines = [r for r in caplog.records if "size cap" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.ERROR
    (rec,) = (tmp_path / "rec").iterdir()
    chunks = sum(f.stat().st_size for f in rec.glob("chunk_*.npz"))
    assert chunks <= 20_000


# --- kill -9 -----------------------------------------------------------------------------------------
def test_kill_9_keeps_the_midi_of_every_tune_in_progress(tiny_model_dir: Path, free_udp_port: int,
                                                         tmp_path: Path) -> None:
    # Only finished tunes' files survived a SIGKILL.  Session files (per_tune off) were written
    # only at shutdown: none survived at all.
    midi_dir = tmp_path / "midi"
    cmd = [sys.executable, "-m", "folkrnn_live", "serve", "--model", str(tiny_model_dir), "--voices", "2",
           "--midi-output", "file", "--midi-dir", str(midi_dir), "--osc-port", str(free_udp_port),
           "--no-web", "--set", "midi.per_tune=false", "--set", "voice_defaults.tempo=600",
           "--set", "recording.dir=''"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            files = sorted(midi_dir.glob("*.mid")) if midi_dir.exists() else []
            if len(files) == 2 and all(len(_note_ons(f)) >= 8 for f in files):
                break
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            time.sleep(0.2)
        else:
            pytest.fail("two MIDI files with notes did not appear within 60 s")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()
    for f in sorted(midi_dir.glob("*.mid")):
        ons = _note_ons(f)  # a whole, readable file after the kill
        assert len(ons) >= 8, f.name


def _note_ons(path: Path) -> list[mido.Message]:
    try:
        return [m for m in mido.MidiFile(path) if m.type == "note_on" and m.velocity > 0]
    except (OSError, EOFError, ValueError):
        return []
