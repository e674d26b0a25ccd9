"""Where notes go: an rtmidi port, a MIDI file, an OSC note stream, or memory (for tests).

Every output is an async context manager for one outside resource (the aiomqtt habit) with one small
interface: ``send(msg, when, duration)``, where ``when`` is the message's scheduled time and
``duration`` (note-ons only) how long the note will sound.  Each output remembers the notes it has
sounding, so closing it (or :meth:`MidiOutput.silence`) never leaves a note hanging.
"""

from __future__ import annotations

import bisect
import functools
import math
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import ClassVar

import mido

from folkrnn_live.player import ports
from folkrnn_live.player.settings import check_int
from folkrnn_live.player.smf_stream import SmfStream

ALL_NOTES_OFF = 123
FILE_TEMPO = 500_000  # microseconds per beat in written files (120 BPM): ticks come from absolute times
SESSION_FILE_EVENTS = 100_000  # messages after which a session file is cut at the next tune end


# The messages a voice sends at its note times are built once each and shared: mido checks every
# field of a new message, and after the loop slept (caches cold) that cost tens of microseconds per
# note, paid again by each voice whose note is due at the same instant.  Never modify one: copy it.
@functools.lru_cache(maxsize=4096)
def note_on(channel: int, note: int, velocity: int) -> mido.Message:
    return mido.Message("note_on", channel=channel, note=note, velocity=velocity)


@functools.lru_cache(maxsize=2048)
def note_off(channel: int, note: int) -> mido.Message:
    return mido.Message("note_off", channel=channel, note=note, velocity=0)


@functools.lru_cache(maxsize=16)
def all_notes_off(channel: int) -> mido.Message:
    return mido.Message("control_change", channel=channel, control=ALL_NOTES_OFF, value=0)


class MidiOutput:
    """Base of every output.  Subclasses implement ``_open``, ``_send`` and ``_close``."""

    kind: ClassVar[str] = "output"

    def __init__(self, name: str) -> None:
        self.name = name
        self.is_open = False
        self._sounding: set[tuple[int, int]] = set()
        self.used_channels: set[int] = set()
        self._last_when: float | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}{' open' if self.is_open else ''}>"

    @property
    def sounding(self) -> frozenset[tuple[int, int]]:
        """(channel, note) pairs that got a note-on and no note-off yet."""
        return frozenset(self._sounding)

    def open(self) -> None:
        if not self.is_open:
            self._open()
            self.is_open = True

    def close(self, when: float | None = None) -> None:
        """Silence every sounding note (and All Notes Off on used channels), then release the resource."""
        if not self.is_open:
            return
        if when is None:  # the last message's time (a file ends there), or now if nothing was sent
            when = self._last_when if self._last_when is not None else time.monotonic()
        try:
            self.silence(when)
        finally:
            self.is_open = False
            self._close()

    async def __aenter__(self) -> MidiOutput:
        self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def send(self, msg: mido.Message, when: float, duration: float | None = None) -> None:
        if not self.is_open:
            raise RuntimeError(f"output {self.name!r} is not open (use it as an async context manager)")
        self._send(msg, when, duration)
        self._last_when = when if self._last_when is None else max(self._last_when, when)
        self._track(msg)

    def _track(self, msg: mido.Message) -> None:
        track_sounding(self._sounding, msg)
        if hasattr(msg, "channel"):
            self.used_channels.add(msg.channel)

    def silence(self, when: float, channels: set[int] | None = None) -> None:
        """Note-offs for sounding notes, then All Notes Off (CC 123), on ``channels`` (default: all used)."""
        chans = set(self.used_channels) if channels is None else channels
        for ch, note in sorted(self._sounding):
            if ch in chans:
                self.send(note_off(ch, note), when)
        for ch in sorted(chans):
            self.send(all_notes_off(ch), when)

    def tune_boundary(self, when: float) -> None:
        """A tune ended at ``when`` (a file writer may start a new file)."""

    def checkpoint(self, when: float) -> None:
        """A bar line at ``when``: everything before it is final (a file writer puts it on disk)."""

    def _open(self) -> None:
        pass

    def _send(self, msg: mido.Message, when: float, duration: float | None) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        pass


@dataclass(frozen=True)
class Sent:
    when: float  # scheduled time
    at: float  # time.monotonic() when it was handed over (the event loop's clock)
    msg: mido.Message
    duration: float | None = None


class MemoryOutput(MidiOutput):
    """Records every message with its scheduled and actual time: for tests and benchmarks.

    ``fail_sends`` lists send numbers (0-based) that raise ``OSError`` to simulate a broken device."""

    kind = "memory"

    def __init__(self, name: str = "memory", *, fail_sends: set[int] | frozenset[int] = frozenset()) -> None:
        super().__init__(name)
        self.sent: list[Sent] = []
        self._fail_sends = frozenset(fail_sends)
        self._attempts = 0

    def _send(self, msg: mido.Message, when: float, duration: float | None) -> None:
        n = self._attempts
        self._attempts += 1
        if n in self._fail_sends:
            raise OSError(f"output {self.name!r}: simulated failure on send {n}")
        self.sent.append(Sent(when, time.monotonic(), msg, duration))

    def messages(self, *types: str) -> list[mido.Message]:
        return [s.msg for s in self.sent if not types or s.msg.type in types]


def track_sounding(sounding: set[tuple[int, int]], msg: mido.Message) -> None:
    """Update the (channel, note) pairs sounding with one message (All Notes Off counts as note-offs)."""
    if msg.type == "note_on" and msg.velocity > 0:
        sounding.add((msg.channel, msg.note))
    elif msg.type in ("note_on", "note_off"):
        sounding.discard((msg.channel, msg.note))
    elif msg.type == "control_change" and msg.control == ALL_NOTES_OFF:
        sounding.difference_update([s for s in sounding if s[0] == msg.channel])


def hanging_notes(messages: list[mido.Message]) -> set[tuple[int, int]]:
    """(channel, note) pairs left sounding by a message sequence."""
    on: set[tuple[int, int]] = set()
    for m in messages:
        track_sounding(on, m)
    return on


def _port_names() -> list[str]:
    try:
        return ports.output_names()
    except Exception:  # no MIDI system at all (no ALSA sequencer, no CoreMIDI)
        return []


class PortOutput(MidiOutput):
    """A named rtmidi output port, or a virtual one other programs can connect to (not on Windows)."""

    kind = "port"

    def __init__(self, name: str | None = None, *, virtual: bool = False) -> None:
        if virtual and not name:
            raise ValueError("name must be given for a virtual port")
        super().__init__(name or "default MIDI port")
        self.port_name = name
        self.virtual = virtual
        self._port: mido.ports.BaseOutput | None = None

    def _open(self) -> None:
        try:
            self._port = ports.open_output(self.port_name, virtual=self.virtual)
            self.name = str(getattr(self._port, "name", self.name))  # the port's full name, as opened
        except (OSError, ValueError) as exc:  # rtmidi's errors derive from OSError
            names = _port_names()
            available = ", ".join(repr(n) for n in names) if names else "none (no MIDI system found)"
            raise OSError(
                f"cannot open MIDI output port {self.name!r}"
                f"{' (virtual)' if self.virtual else ''}: {exc}; available ports: {available}; "
                "write a MIDI file or use an OSC output instead"
            ) from exc

    def _send(self, msg: mido.Message, when: float, duration: float | None) -> None:
        assert self._port is not None
        self._port.send(msg)

    def _close(self) -> None:
        if self._port is not None:
            ports.close_output(self._port)
            self._port = None


class MidiFileOutput(MidiOutput):
    """Writes a standard MIDI file (type 0) per session, or one per tune (``name-001.mid``, ...).

    Ticks come from the scheduled (absolute) times, so a file does not carry the live jitter.  A
    file is written as it grows: at every :meth:`checkpoint` (the player calls it at each bar line)
    the messages before it are appended on disk (:class:`~folkrnn_live.player.smf_stream.SmfStream`),
    so a server killed with SIGKILL leaves every tune in progress up to its last bar.  A session
    file is cut at the first tune end after ``max_events`` messages (``name.mid``, ``name-002.mid``,
    ...).  Used without checkpoints (the offline renderer), everything stays in memory for
    :meth:`to_midifile` until a tune end or :meth:`close` writes it."""

    kind = "file"

    def __init__(self, path: str | Path, *, per_tune: bool = False, ticks_per_beat: int = 480,
                 max_events: int = SESSION_FILE_EVENTS) -> None:
        super().__init__(str(path))
        check_int("ticks_per_beat", ticks_per_beat, 24, 32767)
        check_int("max_events", max_events, 1, 10_000_000)
        self.path = Path(path)
        self.per_tune = per_tune
        self.max_events = max_events
        self.ticks_per_beat = ticks_per_beat
        self.written: list[Path] = []
        self._events: list[tuple[float, int, mido.Message]] = []  # not on disk yet
        self._seq = 0
        self._stream: SmfStream | None = None  # the file being written, once it has a note

    def _open(self) -> None:
        # A directory that cannot be made (a file in its place, no permission) fails at start-up
        # with its reason, not at the first tune end with the music already playing.
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def _send(self, msg: mido.Message, when: float, duration: float | None) -> None:
        if not msg.is_realtime:  # clock and transport bytes have no place in a file
            self._events.append((when, self._seq, msg))
            self._seq += 1

    def tune_boundary(self, when: float) -> None:
        written = len(self._events) + (self._stream.events if self._stream is not None else 0)
        if self.is_open and (self.per_tune or written >= self.max_events):
            self.silence(when, channels=set())  # note-offs only: the file ends cleanly
            self._write()

    def checkpoint(self, when: float) -> None:
        if self.is_open:
            self._flush(when)

    def _flush(self, when: float) -> None:
        if self._stream is None:
            if not any(m.type == "note_on" for _, _, m in self._events):
                return  # a file starts with its first note
            self._stream = SmfStream(self.next_path(), ticks_per_beat=self.ticks_per_beat, tempo=FILE_TEMPO)
        self._events.sort()
        n = bisect.bisect_right(self._events, (when, math.inf))
        done, self._events = self._events[:n], self._events[n:]
        self._stream.write([(t, m) for t, _, m in done])

    def _close(self) -> None:
        self._write()

    def next_path(self) -> Path:
        if not self.per_tune and not self.written:
            return self.path
        suffix = self.path.suffix or ".mid"
        return self.path.with_name(f"{self.path.stem}-{len(self.written) + 1:03d}{suffix}")

    def to_midifile(self) -> mido.MidiFile:
        mid = mido.MidiFile(type=0, ticks_per_beat=self.ticks_per_beat)
        track = mido.MidiTrack()
        mid.tracks.append(track)
        track.append(mido.MetaMessage("set_tempo", tempo=FILE_TEMPO, time=0))
        events = sorted(self._events)  # by time, then arrival order
        ticks_per_second = self.ticks_per_beat * 1_000_000 / FILE_TEMPO
        origin = events[0][0] if events else 0.0
        last = 0
        for when, _, msg in events:
            tick = max(last, round((when - origin) * ticks_per_second))
            track.append(msg.copy(time=tick - last))
            last = tick
        return mid

    def _write(self) -> None:
        """Everything still in memory to the file, which is then complete."""
        if self._stream is None and not any(m.type == "note_on" for _, _, m in self._events):
            self._events.clear()
            return
        self._flush(math.inf)
        stream, self._stream = self._stream, None
        assert stream is not None
        stream.close()
        self.written.append(stream.path)


class OscOutput(MidiOutput):
    """An OSC note stream for Max/Pd: ``/note pitch velocity duration_ms channel`` on every note-on,
    ``/allnotesoff channel`` on All Notes Off (a receiver times note ends itself, like makenote)."""

    kind = "osc"

    def __init__(self, host: str = "127.0.0.1", port: int = 9000, *, address: str = "/note") -> None:
        check_int("port", port, 1, 65535)
        if not address.startswith("/"):
            raise ValueError(f"address must start with '/'; got {address!r}")
        super().__init__(f"osc://{host}:{port}{address}")
        self.host, self.port, self.address = host, port, address
        self._client: object | None = None

    def _open(self) -> None:
        from pythonosc.udp_client import SimpleUDPClient

        try:
            self._client = client = SimpleUDPClient(self.host, self.port)
            _bind_towards(client._sock, client._address, self.port)
        except OSError as exc:
            raise OSError(f"cannot open OSC output to {self.host}:{self.port}: {exc}") from exc

    def _send(self, msg: mido.Message, when: float, duration: float | None) -> None:
        client = self._client
        assert client is not None
        if msg.type == "note_on" and msg.velocity > 0:
            ms = 0.0 if duration is None else duration * 1000.0
            args = [msg.note, msg.velocity, ms, msg.channel]
            client.send_message(self.address, args)  # type: ignore[attr-defined]
        elif msg.type == "control_change" and msg.control == ALL_NOTES_OFF:
            client.send_message("/allnotesoff", [msg.channel])  # type: ignore[attr-defined]

    def _close(self) -> None:
        sock = getattr(self._client, "_sock", None)
        if sock is not None:
            sock.close()
        self._client = None


def _bind_towards(sock: socket.socket, host: str, port: int) -> None:
    """Bind a send-only UDP socket to the local address that reaches ``host`` (loopback for a
    receiver on this machine) instead of letting the first send bind it to every interface: an
    unread socket open to the network on an ephemeral port is attack surface for nothing.  Not
    connected, so an ICMP "port unreachable" (the patch not open yet) never fails a later send."""
    with socket.socket(sock.family, socket.SOCK_DGRAM) as probe:
        probe.connect((host, port))  # picks the route; sends nothing
        local = probe.getsockname()[0]
    sock.bind((local, 0))
