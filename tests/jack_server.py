"""A real JACK server with its dummy driver (no sound card needed), for the MIDI port and synth tests.

Import the fixture from a test module: ``from jack_server import jack  # noqa: F401``.  One server per
test session (a module-level singleton: the fixture may be imported by several modules), named for
this process so that it never meets a user's own JACK; ``JACK_DEFAULT_SERVER`` and
``FOLKRNN_MIDI_API=jack`` are set for the session, so rtmidi, JACK-Client and child processes all
reach it.  The binary comes from Debian's ``jackd2``, which scripts/test installs.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

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
        proc = subprocess.Popen([jackd, "--no-realtime", "-n", name, "-d", "dummy", "-r", str(RATE),
                                 "-p", str(PERIOD)], stdout=fh, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 15
    while not os.path.exists(_socket(name)):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            with open(log) as fh:
                pytest.fail(f"jackd did not start: {fh.read()[-2000:]}")
        time.sleep(0.05)
    _server = JackServer(name, proc, log)
    atexit.register(stop)
    return _server


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
