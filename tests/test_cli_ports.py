"""``folkrnn-live ports``: what a user runs to learn the port names.

Run in-process with ``capfd`` (file-descriptor capture), so what C libraries print (ALSA, libjack)
is caught as well as our own output.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from jack_server import JackServer, Receiver, jack  # noqa: F401

from folkrnn_live.cli.main import main
from folkrnn_live.player import ports


def run_ports(capfd: pytest.CaptureFixture[str], *args: str) -> tuple[str, str]:
    ports._selected = None  # as in a fresh process
    assert main(["ports", *args]) == 0
    out, err = capfd.readouterr()
    return out, err


@pytest.fixture
def synth_port(jack: JackServer) -> Iterator[str]:  # noqa: F811
    """Another program's MIDI input (a soft synth, say), as a virtual JACK port."""
    port = Receiver("Soft Synth")
    yield "Soft Synth:in"
    port.close()


def test_ports_lists_jack_ports_and_says_which_serve_would_pick(synth_port: str,
                                                                 capfd: pytest.CaptureFixture[str]) -> None:
    out, err = run_ports(capfd)
    assert "MIDI system: JACK" in out
    outputs = out.split("MIDI outputs:")[1].split("MIDI inputs")[0]
    assert "'Soft Synth:in'" in outputs
    assert "'Soft Synth:in'" in out.split("serve would play to:")[1]
    assert err == ""


def test_ports_names_the_port_a_config_picks_by_part_of_its_name(synth_port: str, tmp_path: Path,
                                                                  capfd: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[midi]\nport = "soft synth"\n')
    out, _ = run_ports(capfd, "--config", str(cfg))
    picked = out.split("serve would play to:")[1]
    assert "'Soft Synth:in'" in picked and "midi.port = 'soft synth'" in picked
    # A port that is not there: auto goes on to the built-in synth (it sounds through JACK here).
    cfg.write_text('[midi]\nport = "no such synth"\n[[voice]]\nname = "lead"\noutput = "SOFT"\n'
                   '[[voice]]\nname = "bass"\noutput = "Moog"\n')
    out, _ = run_ports(capfd, "--config", str(cfg))
    assert "serve would play to: the built-in synth (soundfont " in out and "audio: jack" in out
    assert "  voice lead: 'Soft Synth:in'" in out
    assert "  voice bass: nothing: no MIDI output port matches 'Moog' (serve would not start)" in out


@pytest.mark.skipif(os.path.exists(ports.ALSA_SEQ), reason="this machine has an ALSA sequencer")
def test_ports_on_a_headless_machine_says_so_without_alsa_noise(monkeypatch: pytest.MonkeyPatch,
                                                                capfd: pytest.CaptureFixture[str]) -> None:
    for k in list(os.environ):
        if k.startswith(("JACK_", "FOLKRNN_MIDI")):
            monkeypatch.delenv(k)
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "no-such-jack-server")
    out, err = run_ports(capfd)
    assert "MIDI system: none (no ALSA sequencer (/dev/snd/seq) and no JACK server running)" in out
    assert "serve would play to: MIDI files in midi/: no MIDI port and no audio device for the synth" in out
    assert err == ""  # no "cannot open /dev/snd/seq", no libjack lines
    # What opening ALSA anyway prints here: the noise that choosing the system first avoids.
    import rtmidi

    with pytest.raises(rtmidi.SystemError):
        rtmidi.MidiOut(rtmidi.API_LINUX_ALSA)
    assert "/dev/snd/seq" in capfd.readouterr().err
    ports._selected = None
