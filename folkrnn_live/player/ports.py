"""MIDI ports through python-rtmidi: which MIDI system to use, the ports it has, a port by name.

rtmidi speaks ALSA and JACK on Linux, CoreMIDI on macOS and Windows MM on Windows.  The MIDI system
is chosen once per process, *before* anything opens a port, because probing one that is not there is
noisy: ALSA's C library prints ``cannot open /dev/snd/seq`` on a machine without a sound card, and
libjack prints five lines when no JACK server runs.  So on Linux ``auto`` looks for the ALSA
sequencer device and for a JACK server's socket first, and opens neither when neither is there.

The choice is also made mido's default backend, so that every ``mido.open_input``/``open_output`` of
the process (MIDI in, clock in) goes to the same system.  ``FOLKRNN_MIDI_API`` (``alsa``, ``jack``,
``coremidi``, ``winmm`` or ``auto``) overrides the choice, e.g. to use JACK on a machine with ALSA.

Port names: an exact name, else a part of one (case-insensitive) that matches exactly one port, so
``"fluid"`` finds ``"FLUID Synth (1234):Synth input port (1234:0) 128:0"`` whatever numbers ALSA gave
it today.  ``virtual`` makes a port other programs connect to (ALSA, JACK, CoreMIDI; not Windows).
"""

from __future__ import annotations

import glob
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

ApiName = Literal["alsa", "jack", "coremidi", "winmm"]
API_CHOICES = ("auto", "alsa", "jack", "coremidi", "winmm")
RTMIDI_API: dict[ApiName, str] = {"alsa": "LINUX_ALSA", "jack": "UNIX_JACK", "coremidi": "MACOSX_CORE",
                                  "winmm": "WINDOWS_MM"}
API_TITLE: dict[ApiName, str] = {"alsa": "ALSA", "jack": "JACK", "coremidi": "CoreMIDI", "winmm": "Windows MM"}
ENV_API = "FOLKRNN_MIDI_API"
VIRTUAL = "virtual"  # the port spec that makes a virtual port
CLIENT_NAME = "folkrnn-live"  # the client name other programs see (JACK, ALSA, CoreMIDI)
ALSA_SEQ = "/dev/snd/seq"
# Ports that lead nowhere audible: never picked as the default output.
THROUGH_PORT_PARTS = ("midi through",)


@dataclass(frozen=True)
class ApiChoice:
    """The MIDI system of this process, or None with the reason there is none."""

    api: ApiName | None
    reason: str

    @property
    def title(self) -> str:
        return API_TITLE[self.api] if self.api else "none"


def compiled_apis() -> list[ApiName]:
    """The MIDI systems this python-rtmidi build can use."""
    import rtmidi

    names = {getattr(rtmidi, f"API_{v}", None): k for k, v in RTMIDI_API.items()}
    return [names[a] for a in rtmidi.get_compiled_api() if a in names]


def jack_server_running(env: Mapping[str, str] = os.environ) -> bool:
    """A JACK server (jackd2, jack1 or PipeWire's JACK) can be reached, judged by its socket alone."""
    server = env.get("JACK_DEFAULT_SERVER", "default")
    uid = os.getuid() if hasattr(os, "getuid") else 0
    if glob.glob(f"/dev/shm/jack_{glob.escape(server)}_{uid}_0"):  # jackd2
        return True
    if any(os.path.exists(os.path.join(d, f"jack-{uid}", server)) for d in ("/dev/shm", "/tmp")):  # jack1
        return True
    runtime = env.get("XDG_RUNTIME_DIR")
    # PipeWire's libjack talks to the PipeWire daemon, whose socket is pipewire-0.
    return bool(runtime) and os.path.exists(os.path.join(str(runtime), "pipewire-0"))


def choose_api(requested: str = "auto", *, env: Mapping[str, str] = os.environ,
               platform: str = sys.platform) -> ApiChoice:
    """Which MIDI system ``requested`` means here; ``auto`` reads :data:`ENV_API` first."""
    if requested == "auto":
        requested = env.get(ENV_API, "").strip().lower() or "auto"
    if requested not in API_CHOICES:
        raise ValueError(f"MIDI API must be one of {', '.join(API_CHOICES)}; got {requested!r}")
    compiled = compiled_apis()
    if requested != "auto":
        if requested not in compiled:
            have = ", ".join(compiled) or "none"
            raise ValueError(f"MIDI API {requested!r} is not in this python-rtmidi build (it has: {have})")
        return ApiChoice(requested, "asked for")
    if platform == "darwin" and "coremidi" in compiled:
        return ApiChoice("coremidi", "macOS")
    if platform == "win32" and "winmm" in compiled:
        return ApiChoice("winmm", "Windows")
    if "alsa" in compiled and os.access(ALSA_SEQ, os.R_OK | os.W_OK):
        return ApiChoice("alsa", f"{ALSA_SEQ} is there")
    if "jack" in compiled and jack_server_running(env):
        return ApiChoice("jack", "a JACK server is running")
    return ApiChoice(None, f"no ALSA sequencer ({ALSA_SEQ}) and no JACK server running")


_selected: ApiChoice | None = None


def select_api(requested: str = "auto") -> ApiChoice:
    """Choose the process's MIDI system (once; later calls with ``auto`` return the first choice)."""
    global _selected
    if _selected is not None and requested == "auto":
        return _selected
    choice = choose_api(requested)
    if choice.api is not None:
        import mido

        mido.set_backend(f"mido.backends.rtmidi/{RTMIDI_API[choice.api]}", load=True)
    _selected = choice
    return choice


def _backend() -> Any:
    choice = select_api()
    if choice.api is None:
        raise OSError(f"no MIDI system: {choice.reason}")
    import mido

    return mido.backend


def output_names() -> list[str]:
    """Output ports of the chosen system ([] when there is none)."""
    return list(_backend().get_output_names()) if select_api().api else []


def input_names() -> list[str]:
    """Input ports of the chosen system ([] when there is none)."""
    return list(_backend().get_input_names()) if select_api().api else []


def is_through(name: str) -> bool:
    return any(part in name.lower() for part in THROUGH_PORT_PARTS)


def default_output(names: list[str]) -> str | None:
    """The port ``serve`` plays to when none is named: the first that is not a MIDI Through port
    (which sounds nowhere) nor one of ours; None when there is no such port."""
    return next((n for n in names if not is_through(n) and not n.lower().startswith(CLIENT_NAME)), None)


def resolve(spec: str, names: list[str], what: str = "output") -> str:
    """The port ``spec`` names: exact, else the one port whose name contains it (any case)."""
    if spec in names:
        return spec
    found = [n for n in names if spec.lower() in n.lower()]
    if len(found) == 1:
        return found[0]
    listed = ", ".join(repr(n) for n in names) if names else "none"
    if found:
        raise OSError(f"MIDI {what} port {spec!r} matches {len(found)} ports ({', '.join(map(repr, found))}); "
                      "name more of it")
    raise OSError(f"no MIDI {what} port matches {spec!r}; {what} ports: {listed}")


def is_virtual(spec: str | None) -> bool:
    return bool(spec) and (spec == VIRTUAL or str(spec).startswith(VIRTUAL + ":"))


def open_output(spec: str | None, *, virtual: bool = False, virtual_name: str = CLIENT_NAME,
                client_name: str = CLIENT_NAME) -> Any:
    """A mido output port: ``spec`` by name or part of one, the default port (None or ""), or a
    virtual one (``virtual=True``, or ``spec`` ``virtual``/``virtual:NAME``)."""
    backend = _backend()
    if virtual or is_virtual(spec):
        name = _virtual(spec, virtual_name)
        return backend.open_output(name, virtual=True, client_name=client_name)
    names = list(backend.get_output_names())
    if spec:
        return backend.open_output(resolve(spec, names, "output"))
    chosen = default_output(names)
    if chosen is None:
        listed = ", ".join(repr(n) for n in names) if names else "none"
        raise OSError(f"no MIDI output port to play to ({select_api().title}; ports: {listed})")
    return backend.open_output(chosen)


def open_input(spec: str | None, *, callback: Callable[[Any], None], virtual: bool = False,
               virtual_name: str = CLIENT_NAME + " in", client_name: str = CLIENT_NAME) -> Any:
    """An input port calling ``callback`` with each mido message on a thread other than the event
    loop's (same naming as :func:`open_output`); it has ``name`` and ``close()``."""
    backend = _backend()
    virt = virtual or is_virtual(spec)
    if virt:
        name = _virtual(spec, virtual_name)
    else:
        names = list(backend.get_input_names())
        if not names:
            raise OSError(f"no MIDI input port ({select_api().title})")
        name = resolve(spec, names, "input") if spec else names[0]
    if select_api().api == "jack":
        return PolledInput(name, virtual=virt, callback=callback, client_name=client_name)
    if virt:
        return backend.open_input(name, virtual=True, callback=callback, client_name=client_name)
    return backend.open_input(name, callback=callback)


class PolledInput:
    """A JACK MIDI input read by a thread of ours.  rtmidi queues what JACK delivers in C, on JACK's
    thread; a Python callback there would need the GIL inside JACK's cycle: cycles run late and JACK
    drops the client's events, and closing the port can deadlock (JACK waits for a callback that
    waits for the GIL the closing thread holds).  Polling every millisecond adds at most that."""

    def __init__(self, name: str, *, virtual: bool, callback: Callable[[Any], None], client_name: str) -> None:
        import threading

        import rtmidi

        self._rt = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, client_name, queue_size_limit=4096)
        self._rt.ignore_types(sysex=False, timing=False, active_sense=True)
        try:
            if virtual:
                self._rt.open_virtual_port(name)
                self.name = f"{client_name}:{name}"
            else:
                self._rt.open_port(self._rt.get_ports().index(name))
                self.name = name
        except (ValueError, RuntimeError) as exc:
            self._rt.delete()
            raise OSError(f"cannot open MIDI input port {name!r}: {exc}") from exc
        self._callback = callback
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name=f"midi in {self.name}", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        import mido

        get = self._rt.get_message
        while not self._stop.is_set():
            item = get()
            if item is None:
                time.sleep(0.001)
                continue
            try:
                self._callback(mido.Message.from_bytes(item[0]))
            except ValueError:  # a malformed message from the other end: skip it
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._rt.close_port()
        self._rt.delete()


def _virtual(spec: str | None, fallback: str) -> str:
    """The virtual port's name: ``virtual:NAME`` gives NAME, ``virtual`` the fallback, any other spec itself."""
    if spec and spec.startswith(VIRTUAL + ":"):
        return spec.split(":", 1)[1] or fallback
    return fallback if not spec or spec == VIRTUAL else spec


JACK_DRAIN = 0.05  # seconds: several JACK periods (a period is 1-20 ms)


def close_output(port: Any) -> None:
    """Close a mido output port so that what was just sent still arrives.

    JACK hands a port's messages over in its next process cycle; a port closed before then loses them
    (the All Notes Off sent on close among them), so wait a few periods first."""
    if "JACK" in str(getattr(port, "_device_type", "")):
        time.sleep(JACK_DRAIN)
    port.close()
