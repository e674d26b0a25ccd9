"""A real JACK server with its dummy driver (no sound card needed), for the MIDI port and synth tests.

Import the fixture from a test module: ``from jack_server import jack  # noqa: F401``.  One server per
test session (a module-level singleton: the fixture may be imported by several modules), named for
this process so that it never meets a user's own JACK; ``JACK_DEFAULT_SERVER`` and
``FOLKRNN_MIDI_API=jack`` are set for the session, so rtmidi, JACK-Client and child processes all
reach it.  The binary comes from Debian's ``jackd2``, which scripts/test installs.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

RATE = 48_000
PERIOD = 256  # frames: 5.3 ms, the dummy driver's wake-up interval


@dataclass
class JackServer:
    name: str
    process: subprocess.Popen[bytes]
    log: str

    def env(self) -> dict[str, str]:
        return {"JACK_DEFAULT_SERVER": self.name, "FOLKRNN_MIDI_API": "jack", "JACK_NO_START_SERVER": "1"}


_server: JackServer | None = None


def _socket(name: str) -> str:
    return f"/dev/shm/jack_{name}_{os.getuid()}_0"


def start() -> JackServer:
    global _server
    if _server is not None and _server.process.poll() is None:
        return _server
    jackd = shutil.which("jackd")
    if jackd is None:
        pytest.fail("jackd is not installed: run scripts/test (it installs the Debian package jackd2)")
    name = f"folkrnn-test-{os.getpid()}"
    log = f"/tmp/{name}.log"
    env = {**os.environ, "JACK_NO_AUDIO_RESERVATION": "1"}
    with open(log, "wb") as fh:
        # Synchronous mode (-S): the server waits for every client to finish its cycle (up to -t ms)
        # instead of dropping a late client's MIDI events; on a loaded 2-core CI machine a client's
        # thread (not real-time here) misses a 5 ms cycle now and then.
        proc = subprocess.Popen([jackd, "--no-realtime", "-S", "-t", "2000", "-n", name, "-d", "dummy",
                                 "-r", str(RATE), "-p", str(PERIOD)], stdout=fh, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 15
    while not os.path.exists(_socket(name)):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            with open(log) as fh:
                text = fh.read()
            if "Too many servers already active" in text and _clear_stale_registry():
                return start()
            pytest.fail(f"jackd did not start: {text[-2000:]}")
        time.sleep(0.05)
    _server = JackServer(name, proc, log)
    atexit.register(stop)
    return _server


def _clear_stale_registry() -> bool:
    """JACK keeps at most 8 servers in /dev/shm/jack-shm-registry and frees a slot only when a
    server of the same name starts again or stops cleanly: servers killed outright (a test run
    interrupted, each with its own name) fill it for good.  When no jackd runs on the machine the
    registry and the segments are stale; remove them (jackd makes new ones).  True if removed."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as fh:
                if fh.read().strip() in ("jackd", "jackdmp"):
                    return False
        except OSError:
            continue
    removed = False
    for entry in os.listdir("/dev/shm"):
        if entry.startswith(("jack-", "jack_")):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join("/dev/shm", entry))
                removed = True
    return removed


def stop() -> None:
    global _server
    if _server is not None and _server.process.poll() is None:
        _server.process.terminate()
        try:
            _server.process.wait(5)
        except subprocess.TimeoutExpired:
            _server.process.kill()
            _server.process.wait()
    _server = None


@pytest.fixture
def jack(monkeypatch: pytest.MonkeyPatch) -> Iterator[JackServer]:
    """The session's JACK server, with this process's MIDI system switched to it for the test."""
    from folkrnn_live.player import ports

    server = start()
    for k, v in server.env().items():
        monkeypatch.setenv(k, v)
    ports.select_api("jack")
    yield server
    ports._selected = None


@dataclass(frozen=True)
class Got:
    at: float  # seconds since the first message, by rtmidi's JACK timestamps (the cycle it came in)
    msg: Any  # mido.Message


class Receiver:
    """Another program's MIDI input: a virtual JACK port of a client named ``client``.

    rtmidi queues what JACK delivers in C, on JACK's thread, and a Python thread polls the queue: a
    callback into Python would need the GIL inside JACK's cycle, and a test process whose event loop
    spins for exact timing would make that client miss cycles (JACK then drops its events)."""

    def __init__(self, client: str, port: str = "in") -> None:
        import rtmidi

        self._rt = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, client, queue_size_limit=65536)
        self._rt.ignore_types(sysex=False, timing=False, active_sense=True)
        self._rt.open_virtual_port(port)
        self.got: list[Got] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name=f"receiver {client}", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        import mido

        t = 0.0
        while not self._stop.is_set():
            item = self._rt.get_message()
            if item is None:
                time.sleep(0.001)
                continue
            data, delta = item
            t += delta
            with self._lock:
                self.got.append(Got(t, mido.Message.from_bytes(data)))

    def messages(self, *types: str) -> list[Any]:
        with self._lock:
            return [g.msg for g in self.got if not types or g.msg.type in types]

    def timed(self) -> list[Got]:
        with self._lock:
            return list(self.got)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._rt.close_port()
        self._rt.delete()


CAPTURE_SCRIPT = r"""
import sys, threading, time
import jack
import numpy as np

prefix = sys.argv[1]
client = jack.Client("capture-under-test", no_start_server=True)
inports = [client.inports.register(f"in_{i}") for i in range(2)]
peak = [0.0]
lock = threading.Lock()

@client.set_process_callback
def process(frames):
    p = max(float(np.abs(port.get_array()).max()) for port in inports)
    with lock:
        peak[0] = max(peak[0], p)

client.activate()
print("ready", flush=True)
connected = False
while True:
    if not connected:
        srcs = [p.name for p in client.get_ports(prefix, is_audio=True, is_output=True)]
        if len(srcs) >= 2:
            try:
                for src, dst in zip(srcs, inports):
                    if not inports[0].is_connected_to(src) and not dst.is_connected_to(src):
                        client.connect(src, dst)
                connected = True
                print("connected", flush=True)
            except jack.JackError:  # listed before its client is active: try again on the next round
                pass
    time.sleep(0.05)
    with lock:
        p, peak[0] = peak[0], 0.0
    print(f"peak {time.monotonic():.6f} {p:.6f}", flush=True)
"""


class Capture:
    """A JACK client in its own process, connected to the audio outputs whose names start with
    ``prefix`` as soon as they appear, reporting the peak of every 50 ms.  Its own process: a JACK
    process callback in Python needs the GIL, which a test's event loop holds while it spins."""

    def __init__(self, prefix: str) -> None:
        import sys

        self.proc = subprocess.Popen([sys.executable, "-c", CAPTURE_SCRIPT, prefix], stdout=subprocess.PIPE,
                                     text=True)
        self.peaks: list[tuple[float, float]] = []
        self.connected = threading.Event()
        self._lock = threading.Lock()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(ready,), name="capture reader", daemon=True)
        self._thread.start()
        if not ready.wait(60):
            self.close()
            raise AssertionError("the capture client did not start within 60 s")

    def _read(self, ready: threading.Event) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            word = line.split()
            if word[:1] == ["ready"]:
                ready.set()
            elif word[:1] == ["connected"]:
                self.connected.set()
            elif word[:1] == ["peak"]:
                with self._lock:
                    self.peaks.append((float(word[1]), float(word[2])))

    def loudest(self, since: float = 0.0) -> float:
        with self._lock:
            return max((p for t, p in self.peaks if t >= since), default=0.0)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self._thread.join(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
