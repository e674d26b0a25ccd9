"""Outputs: MIDI files from absolute times, per-tune files, OSC notes, ports, and MIDI clock."""

from __future__ import annotations

import asyncio
import itertools
import socket
from pathlib import Path

import mido
import pytest
from pythonosc.osc_message import OscMessage

from folkrnn_live.player import (
    ExternalClock,
    ListSource,
    MemoryOutput,
    MidiFileOutput,
    OscOutput,
    Player,
    PortOutput,
    VoiceSettings,
)


def on(note: int, ch: int = 0) -> mido.Message:
    return mido.Message("note_on", channel=ch, note=note, velocity=100)


def off(note: int, ch: int = 0) -> mido.Message:
    return mido.Message("note_off", channel=ch, note=note)


@pytest.mark.asyncio
async def test_file_ticks_come_from_absolute_times(tmp_path: Path) -> None:
    out = MidiFileOutput(tmp_path / "t.mid", ticks_per_beat=480)
    async with out:
        # arrival order and jitter do not matter: times are the scheduled ones
        out.send(on(60), 100.0)
        out.send(on(62), 101.25)
        out.send(mido.Message("clock"), 100.1)  # realtime bytes are not written
        out.send(off(60), 100.5)
        out.send(off(62), 102.0)
    mid = mido.MidiFile(out.written[0])
    assert mid.ticks_per_beat == 480
    track = mid.tracks[0]
    timed = []
    tick = 0
    for m in track:
        tick += m.time
        if not m.is_meta:
            timed.append((m.type, tick))
    # 120 BPM file tempo: 960 ticks per second; closing adds All Notes Off on the channel used
    assert timed == [
        ("note_on", 0), ("note_off", 480), ("note_on", 1200), ("note_off", 1920), ("control_change", 1920)
    ]
    assert mid.length == pytest.approx(2.0)


@pytest.mark.asyncio
async def test_one_file_per_tune(tmp_path: Path) -> None:
    out = MidiFileOutput(tmp_path / "take.mid", per_tune=True)
    async with out:
        player = Player(ListSource("M:4/4 K:Cmaj c d </s> M:6/8 K:Cmin e f g"), [out],
                        VoiceSettings(tempo=600, tune_gap=0.0), max_late=10.0)
        async with player:
            player.start()
            await asyncio.wait_for(player.finished(), 20)
    assert [p.name for p in out.written] == ["take-001.mid", "take-002.mid"]
    counts = [sum(m.type == "note_on" for m in mido.MidiFile(p)) for p in out.written]
    assert counts == [2, 3]


@pytest.mark.asyncio
async def test_a_long_session_file_is_cut_at_tune_ends(tmp_path: Path) -> None:
    # A session file lives in memory until written: after max_events it is written at the next
    # tune end and the session goes on in a new file.
    out = MidiFileOutput(tmp_path / "session.mid", max_events=5)
    async with out:
        player = Player(ListSource("M:4/4 K:Cmaj c d e </s> M:4/4 K:Cmaj f </s> M:6/8 K:Cmin e f g"), [out],
                        VoiceSettings(tempo=600, tune_gap=0.0), max_late=10.0)
        async with player:
            player.start()
            await asyncio.wait_for(player.finished(), 20)
    assert [p.name for p in out.written] == ["session.mid", "session-002.mid"]
    counts = [sum(m.type == "note_on" for m in mido.MidiFile(p)) for p in out.written]
    assert counts == [3, 4]  # 6 messages by the first tune end; the rest never reached 5 before one


@pytest.mark.asyncio
async def test_osc_note_stream() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    port = sock.getsockname()[1]
    try:
        async with OscOutput("127.0.0.1", port) as out:
            out.send(on(67, ch=3), 0.0, duration=0.25)
            out.send(off(67, ch=3), 0.25)  # the receiver times note ends itself: nothing sent
            out.silence(0.3)
        first = OscMessage(sock.recv(4096))
        second = OscMessage(sock.recv(4096))
    finally:
        sock.close()
    assert first.address == "/note" and first.params == [67, 100, pytest.approx(250.0), 3]
    assert second.address == "/allnotesoff" and second.params == [3]


def test_output_settings_are_validated() -> None:
    with pytest.raises(ValueError, match=r"port must be in range 1\.\.65535"):
        OscOutput("127.0.0.1", 0)
    with pytest.raises(ValueError, match="name must be given for a virtual port"):
        PortOutput(None, virtual=True)


@pytest.mark.asyncio
async def test_unopenable_port_gives_a_clear_error() -> None:
    with pytest.raises(OSError, match="cannot open MIDI output port 'no such port 9731'.*available ports"):
        async with PortOutput("no such port 9731"):
            pass


@pytest.mark.asyncio
async def test_sending_to_a_closed_output_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not open"):
        MemoryOutput().send(on(60), 0.0)


def test_external_clock_derives_tempo_from_ticks() -> None:
    clock = ExternalClock()
    assert clock.bpm is None
    for i in range(30):  # 24 ppqn at 100 BPM: a tick every 0.6 / 24 s
        clock.feed(mido.Message("clock"), 10.0 + i * 0.6 / 24)
    assert clock.bpm == pytest.approx(100.0)
    clock.feed(mido.Message("clock"), 20.0)  # after a long silence the old spacing says nothing
    assert clock.bpm is None


@pytest.mark.asyncio
async def test_player_follows_external_clock_tempo_and_transport() -> None:
    loop = asyncio.get_running_loop()
    clock = ExternalClock()
    out = MemoryOutput()
    tick = 0.3 / 24  # 200 BPM in quarters: an eighth lasts 0.15 s

    async def clock_source(n: int) -> None:
        t = loop.time()
        for i in range(n):
            clock.feed(mido.Message("clock"), t + i * tick)
            await asyncio.sleep(tick)

    async with out:
        player = Player(ListSource("M:6/8 K:Cmaj c d e f g a"), [out], VoiceSettings(tempo=60),
                        clock=clock, max_late=10.0)
        async with player:
            feeder = asyncio.ensure_future(clock_source(400))
            await asyncio.sleep(0.1)
            assert player.state == "idle"
            clock.feed(mido.Message("start"), loop.time())
            assert player.state == "playing"
            while len([s for s in out.sent if s.msg.type == "note_on"]) < 3:
                await asyncio.sleep(0.01)
            clock.feed(mido.Message("stop"), loop.time())
            assert player.state == "paused" and not player.sounding
            clock.feed(mido.Message("continue"), loop.time())
            assert player.state == "playing"
            await asyncio.wait_for(player.finished(), 20)
            feeder.cancel()
    ons = [s for s in out.sent if s.msg.type == "note_on"]
    assert [s.msg.note for s in ons] == [72, 74, 76, 77, 79, 81]
    # the clock's tempo, not the voice's 60 BPM (which would make an eighth last 1/3 s)
    gap = ons[1].when - ons[0].when
    assert gap == pytest.approx(0.15)


@pytest.mark.asyncio
async def test_player_sends_midi_clock() -> None:
    out = MemoryOutput()
    async with out:
        player = Player(ListSource("M:4/4 K:Cmaj c 4 d 4"), [out], VoiceSettings(tempo=300, send_clock=True),
                        max_late=10.0)
        async with player:
            player.start()
            await asyncio.wait_for(player.finished(), 20)
    types = [s.msg.type for s in out.sent]
    assert types[0] == "start" and "stop" in types
    ticks = [s.when for s in out.sent if s.msg.type == "clock"]
    first_note = next(s.when for s in out.sent if s.msg.type == "note_on")
    assert ticks[0] == pytest.approx(first_note)
    # 300 BPM quarter: 0.2 s per 24 ticks; two half notes = 4 quarters = 96 ticks
    assert [b - a for a, b in itertools.pairwise(ticks)] == pytest.approx([0.2 / 24] * (len(ticks) - 1))
    assert 90 <= len(ticks) <= 100
