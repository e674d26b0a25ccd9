"""``folkrnn-live serve`` as a real process: sd_notify over a real unix socket, SIGHUP reload,
SIGTERM leaving no sounding note in its MIDI files."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import mido
import pytest
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from folkrnn_live.player.outputs import hanging_notes
from folkrnn_live.server.runtime.sdnotify import Notifier

ROOT = Path(__file__).resolve().parents[1]
WAIT = 60.0  # upper bounds only (torch import and model load on a busy 2-core machine)


def unix_dgram(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    return s


def recv_until(sock: socket.socket, seen: list[bytes], cond: Callable[[], bool], timeout: float = WAIT) -> None:
    end = time.monotonic() + timeout
    while not cond():
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out; received {seen[-5:]!r}")
        sock.settimeout(min(left, 1.0))
        try:
            seen.append(sock.recv(65536))
        except TimeoutError:
            continue


def test_notifier_speaks_the_sd_notify_protocol(tmp_path: Path) -> None:
    with unix_dgram(tmp_path / "notify") as sock:
        n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "4000000"})
        assert n.enabled and n.watchdog_interval == 2.0
        assert n.ready("2 voices") and n.watchdog() and n.reloading() and n.stopping()
        got = [sock.recv(1024).decode() for _ in range(4)]
        n.close()
    assert got[0] == "READY=1\nSTATUS=2 voices"
    assert got[1] == "WATCHDOG=1"
    assert got[2].startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert got[3] == "STOPPING=1"
    off = Notifier({})
    assert not off.enabled and not off.ready() and off.watchdog_interval is None
    other = Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": str(os.getpid() + 1)})
    assert other.watchdog_interval is None  # systemd watches another process


def test_abstract_notify_socket() -> None:
    name = f"folkrnn-live-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        n = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert n.ready()
        n.close()
        assert sock.recv(64) == b"READY=1"


def osc(address: str, *args: object) -> bytes:
    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(a)
    return b.build().dgram


def recording_state(client: socket.socket, port: int) -> dict[str, object]:
    """Ask for voice 1's state and wait for it (notes may arrive in between)."""
    client.sendto(osc("/folkrnn/status", "1"), ("127.0.0.1", port))
    got: list[bytes] = []
    recv_until(client, got, lambda: any(OscMessage(m).address == "/folkrnn/1/state" for m in got))
    (state,) = [json.loads(OscMessage(m).params[0]) for m in got if OscMessage(m).address == "/folkrnn/1/state"]
    return state  # type: ignore[no-any-return]


CONFIG = """
[model]
path = "{model}"
[osc]
port = {port}
[midi]
output = "file"
dir = "{midi}"
osc_notes = "127.0.0.1:{notes_port}"
[recording]
dir = "{rec}"
[server]
shutdown_timeout = 1.5
[[voice]]
name = "1"
tempo = {tempo}
gate = 1.0
"""


@pytest.mark.slow
def test_serve_process_reload_and_sigterm(tiny_model_dir: Path, free_udp_port: int, tmp_path: Path) -> None:
    midi_dir = tmp_path / "midi"
    notes = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    notes.bind(("127.0.0.1", 0))
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    fields = {"model": tiny_model_dir.as_posix(), "port": free_udp_port, "midi": midi_dir.as_posix(),
              "notes_port": notes.getsockname()[1], "rec": (tmp_path / "rec").as_posix()}
    cfg = tmp_path / "live.toml"
    cfg.write_text(CONFIG.format(tempo=600, **fields), encoding="utf-8")
    notify = unix_dgram(tmp_path / "notify")
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "500000"}
    proc = subprocess.Popen([sys.executable, "-m", "folkrnn_live", "serve", "--config", str(cfg)], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen: list[bytes] = []
    try:
        recv_until(notify, seen, lambda: any(m.startswith(b"READY=1") for m in seen))
        recv_until(notify, seen, lambda: b"WATCHDOG=1" in seen)
        # Notes arrive on the OSC note stream and, subscribed, as feedback.
        client.sendto(osc("/folkrnn/subscribe", 0, "notes"), ("127.0.0.1", free_udp_port))
        got: list[bytes] = []
        recv_until(client, got, lambda: sum(OscMessage(m).address == "/folkrnn/1/note" for m in got) >= 10)
        streamed: list[bytes] = []
        recv_until(notes, streamed, lambda: len(streamed) >= 5)
        assert OscMessage(streamed[0]).address == "/note"

        # SIGHUP: a new tempo for voice 1 and a new voice 2; voice 1 keeps playing.
        cfg.write_text(CONFIG.format(tempo=500, **fields) + '[[voice]]\nname = "2"\ntempo = 550\n', encoding="utf-8")
        n_ready = sum(m.startswith(b"READY=1") for m in seen)
        proc.send_signal(signal.SIGHUP)
        recv_until(notify, seen, lambda: sum(m.startswith(b"READY=1") for m in seen) > n_ready)
        assert any(m.startswith(b"RELOADING=1") for m in seen)
        got.clear()
        client.sendto(osc("/folkrnn/status"), ("127.0.0.1", free_udp_port))
        recv_until(client, got, lambda: {OscMessage(m).address for m in got} >= {"/folkrnn/1/state",
                                                                              "/folkrnn/2/state"})
        states = {OscMessage(m).address: json.loads(OscMessage(m).params[0]) for m in got
                  if OscMessage(m).address.endswith("/state")}
        assert states["/folkrnn/1/state"]["player"]["tempo"] == 500.0
        assert states["/folkrnn/1/state"]["state"] == "playing" and states["/folkrnn/1/state"]["tune"] >= 1
        assert states["/folkrnn/2/state"]["player"]["tempo"] == 550.0
        got.clear()
        recv_until(client, got, lambda: sum(OscMessage(m).address == "/folkrnn/2/note" for m in got) >= 3)

        # A recording in progress is flushed and closed by SIGTERM.
        client.sendto(osc("/folkrnn/1/record_start", "live"), ("127.0.0.1", free_udp_port))
        end = time.monotonic() + WAIT
        while not (st := recording_state(client, free_udp_port)).get("recording"):
            assert time.monotonic() < end, "the recording did not start"
        while recording_state(client, free_udp_port)["total_steps"] < st["total_steps"] + 3:  # type: ignore[operator]
            assert time.monotonic() < end, "no steps recorded"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=WAIT)
        recv_until(notify, seen, lambda: b"STOPPING=1" in seen)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        notify.close()
        notes.close()
        client.close()
    log = out.decode(errors="replace")
    assert proc.returncode == 0, log
    assert "MIDI file written" in log
    files = sorted(midi_dir.glob("*.mid"))
    assert {f.name.split("-")[2] for f in files} >= {"1", "2"}  # <date>-<time>-<voice>-NNN.mid
    for f in files:
        msgs = [m for m in mido.MidiFile(f) if not m.is_meta]
        assert hanging_notes(msgs) == set(), f.name
    last = [m for m in mido.MidiFile(files[-1]) if not m.is_meta]
    assert any(m.type == "note_on" for m in last)
    (rec,) = (tmp_path / "rec").iterdir()
    meta = json.loads((rec / "meta.json").read_text(encoding="utf-8"))
    assert meta["closed"] is True and meta["stats"]["steps"] > 0
    assert list(rec.glob("chunk_*.npz"))


@pytest.mark.asyncio
async def test_signals_reload_and_stop_the_server_and_the_old_handlers_come_back(
    tiny_model_dir: Path, free_udp_port: int, tmp_path: Path
) -> None:
    """Embedded in a program of its own (as ``serve`` does), the server takes SIGHUP, SIGTERM and
    SIGINT while it runs and gives the program its own handlers back when it stops."""
    import asyncio

    from live_server import until

    from folkrnn_live.server.runtime import config
    from folkrnn_live.server.runtime.service import Server

    theirs: list[int] = []

    def handler(signum: int, frame: object) -> None:
        theirs.append(signum)

    sigs = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
    before = {s: signal.signal(s, handler) for s in sigs}
    body = (f'[model]\npath = "{tiny_model_dir.as_posix()}"\n[osc]\nport = {free_udp_port}\n'
            '[midi]\noutput = "none"\n[[voice]]\nname = "1"\ntempo = 600\n')
    cfg = tmp_path / "live.toml"
    cfg.write_text(body, encoding="utf-8")

    try:
        srv = Server(config.load(cfg))
        task = asyncio.create_task(srv.serve())
        await asyncio.wait_for(srv.started.wait(), WAIT)
        lv = srv.voices["1"]
        await until(lambda: lv.player.stats.notes >= 2)
        cfg.write_text(body + "temperature = 0.5\n", encoding="utf-8")
        os.kill(os.getpid(), signal.SIGHUP)
        await until(lambda: lv.voice.controls.temperature == 0.5, "the reload")
        assert srv.voices["1"] is lv and lv.player.state == "playing"
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(task, WAIT)
        assert lv.player.state == "stopped" and not lv.player.sounding
        assert theirs == []  # the server had the signals while it ran
        assert all(signal.getsignal(s) is handler for s in sigs)
    finally:
        for s, h in before.items():
            signal.signal(s, h)


def test_a_port_in_use_ends_serve_with_one_clear_line(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from folkrnn_live.cli.main import main

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        rc = main(["serve", "--model", str(tiny_model_dir), "--osc-port", str(port), "--midi-output", "none",
                   "--log-level", "error"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"folkrnn-live serve: error: cannot listen for OSC on 127.0.0.1:{port}")
