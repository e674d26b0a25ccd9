"""The built-in synth: offline rendering to WAV, and live audio into JACK captured by a JACK client.

The soundfont is the General MIDI one scripts/test installs (Debian's timgm6mb-soundfont, 6 MB;
fluid-soundfont-gm, 140 MB, is used instead where it is installed).
"""

from __future__ import annotations

import asyncio
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from jack_server import Capture, JackServer, jack  # noqa: F401

from folkrnn_live.cli.main import main
from folkrnn_live.player import ListSource, Player, VoiceSettings
from folkrnn_live.player.render import render
from folkrnn_live.player.synth import SynthError, SynthOutput, find_soundfont, render_wav

TUNE_TEXT = "M:4/4 K:Cmaj | G A B c | d 2 B G | c 4 z 4 |"
TUNE = TUNE_TEXT.split()
WINDOW = 0.02  # seconds of audio compared before and after each onset


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (2, 2)
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
        return data.astype(np.float64) / 32768.0, w.getframerate()


def rms(audio: np.ndarray, rate: int, start: float, end: float) -> float:
    seg = audio[max(0, round(start * rate)):round(end * rate)]
    return float(np.sqrt(np.mean(seg**2))) if seg.size else 0.0


def test_render_wav_has_the_tunes_length_and_loudness_rises_at_every_onset(tmp_path: Path) -> None:
    # A piano (GM program 0) with notes held half their length: each note has struck and its
    # predecessor's release has faded when the next is struck (a flute's slow attack would not show).
    settings = VoiceSettings(tempo=120, program=0, gate=0.5)
    result = render(TUNE, settings)
    info = render_wav(result.midi, tmp_path / "tune.wav", tail=0.5)
    audio, rate = read_wav(info.path)
    # The length: the last note-off (the file's end) plus the release tail, to a millisecond.
    last_off = max(n.off for n in result.notes if n.note.pitches)
    first_on = min(n.onset for n in result.notes if n.note.pitches)
    assert len(audio) / rate == pytest.approx(last_off - first_on + 0.5, abs=0.002)
    onsets = [n.onset - first_on for n in result.notes if n.note.pitches]
    assert len(onsets) == 8
    for t in onsets:
        before = rms(audio, rate, t - WINDOW, t)
        after = rms(audio, rate, t, t + 1.5 * WINDOW)
        assert after > 2 * before + 1e-4, f"no attack at {t:.3f} s: rms {before:.4f} -> {after:.4f}"
    # The rest at the end is silent once the last note has died away; the music is not.
    assert rms(audio, rate, 0, last_off - first_on) > 0.01
    assert info.peak < 1.0  # not clipped


def test_render_command_writes_a_wav(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tune.wav"
    assert main(["render", TUNE_TEXT, "--wav", str(out), "--program", "73"]) == 0
    audio, rate = read_wav(out)
    assert rate == 44_100 and np.abs(audio).max() > 0.01
    assert f"wrote {out}" in capsys.readouterr().out


def test_a_soundfont_that_is_not_there_is_named(tmp_path: Path) -> None:
    with pytest.raises(SynthError, match=r"soundfont '.*nope.sf2' is not a file"):
        find_soundfont(tmp_path / "nope.sf2")


@pytest.fixture
def capture(jack: JackServer) -> Iterator[Capture]:  # noqa: F811
    c = Capture("folkrnn-live synth:")
    yield c
    c.close()


@pytest.mark.asyncio
async def test_the_live_synth_sounds_in_jack(capture: Capture) -> None:
    async with SynthOutput(driver="jack") as synth:
        assert "via jack" in synth.name
        assert await asyncio.to_thread(capture.connected.wait, 30), "the synth's JACK ports did not appear"
        await asyncio.sleep(0.3)
        silent = capture.loudest()  # connected, nothing played yet
        started = time.monotonic()
        player = Player(ListSource("M:4/4 K:Cmaj c d e f | [ c e g ] 4 |"), [synth],
                        VoiceSettings(tempo=240, channel=2, program=73), max_late=10.0)
        async with player:
            player.start()
            await asyncio.wait_for(player.finished(), 30)
        await asyncio.sleep(0.2)
        assert silent < 1e-4
        assert capture.loudest(since=started) > 0.01
        assert synth.sounding == frozenset()
