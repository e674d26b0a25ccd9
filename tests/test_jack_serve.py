"""The server on real JACK MIDI ports: voices into their own ports, a controller on a port, the synth
when there is no port, and a headless start that says in one line what it does instead."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import mido
import pytest
from _models import tiny_model
from jack_server import Capture, JackServer, Receiver, jack  # noqa: F401
from live_server import serving, until

from folkrnn_live.player import ports
from folkrnn_live.player.synth import SynthOutput
from folkrnn_live.server.runtime import config as config_mod
from folkrnn_live.server.transports.midi_in import MidiIn

BASE = {"osc": {"enabled": False}, "recording": {"dir": ""}}


@pytest.fixture
def synths(jack: JackServer) -> Iterator[tuple[Receiver, Receiver]]:  # noqa: F811
    lead, bass = Receiver("Lead Synth"), Receiver("Bass Synth")
    yield lead, bass
    lead.close()
    bass.close()


def sounding_after(msgs: list[mido.Message]) -> set[tuple[int, int]]:
    on: set[tuple[int, int]] = set()
    for m in msgs:
        if m.type == "note_on" and m.velocity > 0:
            on.add((m.channel, m.note))
        elif m.type in ("note_on", "note_off"):
            on.discard((m.channel, m.note))
        elif m.type == "control_change" and m.control == 123:
            on = {s for s in on if s[0] != m.channel}
    return on


@pytest.mark.asyncio
async def test_each_voice_plays_into_the_port_its_config_names(synths: tuple[Receiver, Receiver]) -> None:
    lead, bass = synths
    cfg = config_mod.parse({**BASE, "voice": [
        {"name": "lead", "output": "lead synth", "channel": 0, "program": 73, "tempo": 400.0},
        {"name": "bass", "output": "Bass Synth:in", "channel": 1, "program": 32, "tempo": 400.0},
    ]})
    async with serving(cfg, model=tiny_model()):
        await until(lambda: len(lead.messages("note_on")) >= 8 and len(bass.messages("note_on")) >= 8,
                    "notes at both ports")
    await asyncio.sleep(0.2)  # the last messages on their way through JACK
    for rx, channel, program in ((lead, 0, 73), (bass, 1, 32)):
        got = rx.messages()
        assert got[0].type == "program_change" and (got[0].channel, got[0].program) == (channel, program)
        assert {m.channel for m in got if hasattr(m, "channel")} == {channel}  # nothing of the other voice
        assert sounding_after(got) == set()  # stopping the server left no note hanging


@pytest.mark.asyncio
async def test_a_port_name_that_matches_nothing_stops_the_start_with_the_ports_named(
        synths: tuple[Receiver, Receiver]) -> None:
    cfg = config_mod.parse({**BASE, "voice": [{"name": "1", "output": "Moog"}]})
    with pytest.raises(OSError, match=r"no MIDI output port matches 'Moog'; output ports: .*'Lead Synth:in'"):
        async with serving(cfg, model=tiny_model()):
            pass


@pytest.mark.asyncio
async def test_a_controller_on_a_jack_port_drives_a_mapping_and_learn_mode(jack: JackServer) -> None:  # noqa: F811
    knob = ports.open_output("virtual:out", client_name="Knobs")  # a controller: a port we read from
    try:
        cfg = config_mod.parse({**BASE, "midi": {"output": "none"}, "voice": [{"name": "1", "tempo": 300.0}],
                                "midi_in": {"enabled": True, "required": True, "port": "knobs",
                                            "map": [{"cc": 21, "command": "temperature", "voice": "1",
                                                     "min": 0.5, "max": 1.5}]}})
        async with serving(cfg, model=tiny_model()) as srv:
            m = next(t for t in srv.transports if isinstance(t, MidiIn))
            assert m.port is not None and "Knobs:out" in m.port.name
            controls = srv.voices["1"].voice.controls
            knob.send(mido.Message("control_change", control=21, value=127))
            await until(lambda: controls.temperature == 1.5, "the mapped knob")
            m.learn("tempo", "1")  # as /folkrnn/midi_learn tempo 1 does
            knob.send(mido.Message("control_change", channel=3, control=74, value=0))
            await until(lambda: not m.learning, "learning the next knob")
            knob.send(mido.Message("control_change", channel=3, control=74, value=127))
            player = srv.voices["1"].player
            await until(lambda: player.settings.tempo > 300.0, "the learned knob")
            assert m.stats.errors == 0
    finally:
        ports.close_output(knob)


@pytest.mark.asyncio
async def test_with_no_port_the_server_plays_the_synth(jack: JackServer, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    capture = Capture("folkrnn-live synth:")
    try:
        cfg = config_mod.parse({**BASE, "voice": [{"name": "1", "tempo": 300.0, "program": 0}]})
        caplog.set_level(logging.INFO, "folkrnn_live.server")
        async with serving(cfg, model=tiny_model()) as srv:
            out = srv.voices["1"].player.outputs
            assert [type(o) for o in out] == [SynthOutput]
            assert await asyncio.to_thread(capture.connected.wait, 30), "the synth's JACK ports did not appear"
            t0 = time.monotonic()
            await until(lambda: capture.loudest(since=t0) > 0.01, "sound from the synth")
        assert "playing to the built-in synth" in caplog.text
    finally:
        capture.close()


@pytest.mark.skipif(os.path.exists(ports.ALSA_SEQ), reason="this machine has an ALSA sequencer")
def test_a_headless_server_says_once_where_its_voices_go_and_no_alsa_noise(tmp_path: Path,
                                                                           tiny_model_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JACK_", "FOLKRNN_MIDI", "XDG_RUNTIME"))}
    env["JACK_DEFAULT_SERVER"] = "no-such-jack-server"
    proc = subprocess.Popen(
        [sys.executable, "-m", "folkrnn_live.cli.main", "serve", "--model", str(tiny_model_dir), "--no-osc",
         "--voices", "2", "--midi-dir", str(tmp_path / "midi"), "--set", 'recording.dir=""',
         "--set", "midi_in.enabled=true", "--set", "web.enabled=false"],
        env=env, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if "voice(s) playing" in line or "listening" in line or "voice 2: writing MIDI files" in line:
                break
    finally:
        proc.terminate()
        rest = proc.communicate(timeout=60)[1]
        lines += rest.splitlines()
    text = "\n".join(lines)
    assert "cannot open /dev/snd/seq" not in text and "ALSA lib" not in text
    assert "jack server is not running" not in text and "Cannot connect to server" not in text  # libjack's lines
    said = [ln for ln in lines if "no MIDI port and no audio device" in ln]
    assert len(said) == 1, text
    assert "writing MIDI files to" in said[0] and "no ALSA sequencer" in said[0]
    assert sum("voice 1: writing MIDI files" in ln or "voice 2: writing MIDI files" in ln for ln in lines) == 2
