"""Sound with no setup: a General MIDI synthesizer (FluidSynth) as an output, live or offline.

:class:`SynthOutput` is an output like a MIDI port: every voice that names it plays on its own
channel with its own program, into one FluidSynth whose audio goes to the default audio system
(JACK when a server runs, else PulseAudio/PipeWire, else ALSA; CoreAudio on macOS, WASAPI on
Windows).  :func:`render_wav` plays a MIDI file through the same synth, offline, into a WAV file.

The soundfont is the one named (``synth.soundfont`` or ``FOLKRNN_SOUNDFONT``), else the first
General MIDI soundfont found where Debian, Homebrew and Fedora install them.  pyfluidsynth opens a
MIDI driver as well when it starts audio; we open the audio driver alone (a MIDI driver would probe
ALSA's sequencer and print ``cannot open /dev/snd/seq`` on a headless machine).
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
import wave
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import mido
import numpy as np

from folkrnn_live.player.outputs import MidiOutput
from folkrnn_live.player.ports import jack_server_running

log = logging.getLogger(__name__)
AudioDriver = Literal["auto", "jack", "pulseaudio", "pipewire", "alsa", "coreaudio", "wasapi", "dsound"]
AUDIO_DRIVERS: tuple[str, ...] = ("auto", "jack", "pulseaudio", "pipewire", "alsa", "coreaudio", "wasapi", "dsound")
ENV_SOUNDFONT = "FOLKRNN_SOUNDFONT"
CLIENT_NAME = "folkrnn-live synth"  # the JACK client / PulseAudio stream name
SAMPLE_RATE = 48_000
GAIN = 0.5  # FluidSynth's own default (0.2) is quiet next to other programs
# Where packages put General MIDI soundfonts: Debian/Ubuntu (fluid-soundfont-gm, timgm6mb-soundfont,
# musescore-general-soundfont), Fedora, Arch, Homebrew.  The first that exists is used.
SOUNDFONT_PATHS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/sounds/sf3/default-GM.sf3",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM2-2.sf2",
    "/opt/homebrew/share/soundfonts/default.sf2",
    "/usr/local/share/soundfonts/default.sf2",
)


class SynthError(OSError):
    """The synth cannot play: no FluidSynth library, no soundfont, or no audio device."""


def find_soundfont(path: str | Path | None = None, env: Mapping[str, str] = os.environ) -> Path:
    """The soundfont to load: ``path`` if given, else ``FOLKRNN_SOUNDFONT``, else a known GM one."""
    named = str(path) if path else env.get(ENV_SOUNDFONT, "")
    if named:
        p = Path(named).expanduser()
        if not p.is_file():
            raise SynthError(f"soundfont {named!r} is not a file; name a .sf2 or .sf3 file")
        return p
    for cand in SOUNDFONT_PATHS:
        if os.path.isfile(cand):
            return Path(cand)
    raise SynthError("no General MIDI soundfont found (looked in " + ", ".join(SOUNDFONT_PATHS[:3]) + ", ...); "
                     "install one (Debian: apt install fluid-soundfont-gm) or set synth.soundfont / "
                     f"{ENV_SOUNDFONT} to a .sf2 file")


def _fluidsynth() -> Any:
    try:
        import fluidsynth
    except ImportError as exc:  # the pip package is there; the C library may not be
        raise SynthError(f"FluidSynth is not available ({exc}); install it (Debian: apt install libfluidsynth3, "
                         "macOS: brew install fluid-synth)") from exc
    _quiet_logs(fluidsynth)
    return fluidsynth


_LOG_FN = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_log_callbacks: list[Any] = []  # kept alive: the C library holds the pointer


def _quiet_logs(fluidsynth: Any) -> None:
    """FluidSynth prints its messages to stderr; route them to our log (debug) instead, once."""
    if _log_callbacks:
        return

    @_LOG_FN
    def to_log(level: int, message: bytes | None, data: Any) -> None:
        log.debug("fluidsynth[%d]: %s", level, (message or b"").decode(errors="replace"))

    _log_callbacks.append(to_log)
    set_fn = getattr(fluidsynth._fl, "fluid_set_log_function", None)
    if set_fn is not None:
        set_fn.argtypes = [ctypes.c_int, _LOG_FN, ctypes.c_void_p]
        for level in range(5):  # PANIC, ERR, WARN, INFO, DBG
            set_fn(level, to_log, None)


def audio_driver_candidates(requested: str = "auto", env: Mapping[str, str] = os.environ,
                            platform: str = sys.platform) -> list[str]:
    """The audio drivers to try, in order; on Linux only those whose server or device is there."""
    if requested not in AUDIO_DRIVERS:
        raise ValueError(f"audio driver must be one of {', '.join(AUDIO_DRIVERS)}; got {requested!r}")
    if requested != "auto":
        return [requested]
    if platform == "darwin":
        return ["coreaudio"]
    if platform == "win32":
        return ["wasapi", "dsound"]
    out = []
    if jack_server_running(env):
        out.append("jack")
    runtime = env.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.exists(os.path.join(runtime, "pulse", "native")):
        out.append("pulseaudio")
    if os.path.isdir("/dev/snd") and any(n.startswith("pcm") for n in os.listdir("/dev/snd")):
        out.append("alsa")
    return out


class FluidSynth:
    """One FluidSynth instance with a GM soundfont: MIDI messages in, stereo audio out."""

    def __init__(self, soundfont: str | Path | None = None, *, sample_rate: int = SAMPLE_RATE,
                 gain: float = GAIN) -> None:
        if not 8000 <= sample_rate <= 192_000:
            raise ValueError(f"sample_rate must be in range 8000..192000 Hz; got {sample_rate!r}")
        if not 0.0 < gain <= 10.0:
            raise ValueError(f"gain must be in range 0..10 (exclusive of 0); got {gain!r}")
        self.soundfont = find_soundfont(soundfont)
        fs = _fluidsynth()
        self.sample_rate = sample_rate
        self._fs = fs.Synth(gain=gain, samplerate=sample_rate)
        self._lib = fs
        self._audio: Any = None
        self.driver: str | None = None
        self._lock = threading.Lock()  # FluidSynth is thread-safe, but rendering and events must not interleave
        self._sfid = self._fs.sfload(str(self.soundfont))
        if self._sfid < 0:
            self._fs.delete()
            raise SynthError(f"FluidSynth cannot load the soundfont {str(self.soundfont)!r}")
        for ch in range(16):  # GM: channel 10 (9 from 0) is drums, bank 128
            self._fs.program_select(ch, self._sfid, 128 if ch == 9 else 0, 0)

    def start_audio(self, requested: str = "auto") -> str:
        """Play to an audio device; returns the driver that opened.  Raises SynthError when none can."""
        tried = []
        for driver in audio_driver_candidates(requested):
            self._fs.setting("audio.driver", driver)
            if driver == "jack":
                self._fs.setting("audio.jack.id", CLIENT_NAME)
                self._fs.setting("audio.jack.autoconnect", 1)
            elif driver == "pulseaudio":
                self._fs.setting("audio.pulseaudio.media-role", "music")
            audio = self._lib.new_fluid_audio_driver(self._fs.settings, self._fs.synth)
            if audio:
                self._audio, self.driver = audio, driver
                return driver
            tried.append(driver)
        why = f"tried {', '.join(tried)}" if tried else "no JACK server, no PulseAudio/PipeWire socket, no /dev/snd"
        raise SynthError(f"no audio device for the synth ({why})")

    def handle(self, msg: mido.Message) -> None:
        """Play one MIDI message now."""
        fs, t = self._fs, msg.type
        with self._lock:
            if t == "note_on":
                if msg.velocity > 0:
                    fs.noteon(msg.channel, msg.note, msg.velocity)
                else:
                    fs.noteoff(msg.channel, msg.note)
            elif t == "note_off":
                fs.noteoff(msg.channel, msg.note)
            elif t == "program_change":
                fs.program_select(msg.channel, self._sfid, 128 if msg.channel == 9 else 0, msg.program)
            elif t == "control_change":
                fs.cc(msg.channel, msg.control, msg.value)
            elif t == "pitchwheel":
                fs.pitch_bend(msg.channel, msg.pitch)

    def samples(self, frames: int) -> np.ndarray:
        """The next ``frames`` frames (offline use: no audio driver), as int16 of shape (frames, 2)."""
        with self._lock:
            return np.asarray(self._fs.get_samples(frames), dtype=np.int16).reshape(-1, 2)

    def close(self) -> None:
        if self._fs is None:
            return
        if self._audio:
            self._lib.delete_fluid_audio_driver(self._audio)
            self._audio = None
        self._fs.delete()
        self._fs = None


class SynthOutput(MidiOutput):
    """The built-in synth as a voice output: shared by voices, each on its channel and program."""

    kind: ClassVar[str] = "synth"

    def __init__(self, soundfont: str | Path | None = None, *, driver: str = "auto",
                 sample_rate: int = SAMPLE_RATE, gain: float = GAIN) -> None:
        if driver not in AUDIO_DRIVERS:
            raise ValueError(f"driver must be one of {', '.join(AUDIO_DRIVERS)}; got {driver!r}")
        super().__init__("synth")
        self.soundfont, self.driver, self.sample_rate, self.gain = soundfont, driver, sample_rate, gain
        self.synth: FluidSynth | None = None

    def _open(self) -> None:
        synth = FluidSynth(self.soundfont, sample_rate=self.sample_rate, gain=self.gain)
        try:
            used = synth.start_audio(self.driver)
        except BaseException:
            synth.close()
            raise
        self.synth = synth
        self.name = f"synth ({synth.soundfont.name} via {used})"

    def _send(self, msg: mido.Message, when: float, duration: float | None) -> None:
        assert self.synth is not None
        self.synth.handle(msg)

    def _close(self) -> None:
        if self.synth is not None:
            self.synth.close()
            self.synth = None


@dataclass(frozen=True)
class WavInfo:
    path: Path
    seconds: float
    sample_rate: int
    peak: float  # 0..1 of full scale
    soundfont: Path


def timed_messages(midi: mido.MidiFile) -> Iterable[tuple[float, mido.Message]]:
    """(seconds from the start, message) for every channel message of a MIDI file."""
    t = 0.0
    for msg in midi:  # mido converts ticks to seconds with the file's tempo map
        t += msg.time
        if not msg.is_meta and hasattr(msg, "channel"):
            yield t, msg


def render_wav(midi: mido.MidiFile, path: str | Path, *, soundfont: str | Path | None = None,
               sample_rate: int = 44_100, tail: float = 1.0, gain: float = GAIN) -> WavInfo:
    """Play ``midi`` through FluidSynth offline and write a 16-bit stereo WAV file: the music plus
    ``tail`` seconds for the last notes' release."""
    if not 0.0 <= tail <= 30.0:
        raise ValueError(f"tail must be in range 0..30 s; got {tail!r}")
    synth = FluidSynth(soundfont, sample_rate=sample_rate, gain=gain)
    blocks: list[np.ndarray] = []
    done = 0
    try:
        for when, msg in timed_messages(midi):
            frame = round(when * sample_rate)
            if frame > done:
                blocks.append(synth.samples(frame - done))
                done = frame
            synth.handle(msg)
        blocks.append(synth.samples(max(1, round(tail * sample_rate))))
    finally:
        synth.close()
    audio = np.concatenate(blocks)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(out), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(audio.astype("<i2").tobytes())
    peak = float(np.abs(audio.astype(np.int32)).max()) / 32768.0 if audio.size else 0.0
    return WavInfo(out, len(audio) / sample_rate, sample_rate, peak, synth.soundfont)
