"""Note timing at the receiving MIDI port, not at our send call (issue 13 §1).

    python3 benchmarks/bench_midi_ports.py                      # 4 voices, 240 BPM, JACK period 64 frames
    python3 benchmarks/bench_midi_ports.py --period 32 --seconds 20
    python3 benchmarks/bench_midi_ports.py --source sampler     # the live sampler instead of synthetic tokens
    python3 benchmarks/bench_midi_ports.py --feedback           # with the server's per-note feedback work

A JACK server with its dummy driver (48 kHz, ``--period`` frames) is started for the run.  Four voices
(channels 0-3, one scheduler, as in the server) play at 240 BPM into one rtmidi JACK output port; a
JACK client in another process (JACK-Client, its own interpreter, so no GIL is shared with the
player) receives them on a MIDI input port and stamps each event with JACK's time of the frame it
arrived at (``jack_frames_to_time`` of the cycle's first frame plus the event's offset: when a
synthesizer on that port plays it), on ``time.monotonic()``'s clock (the two clocks' offset is
measured at the start).  The error is that stamp minus the event's scheduled time, over note-ons
and note-offs, matched per channel in order.  (Until 2026-12-06 the stamp was ``time.monotonic()``
when the receiving client's callback ran, which counted that Python callback's own wake-up
lateness, ``receiver_callback_late_p99_ms`` in the output, as the port's.)

rtmidi's JACK output hands a message to JACK at the start of the next cycle, so a message waits up to
one period (64 frames = 1.33 ms, 32 frames = 0.67 ms) before the receiver sees it: the period bounds
what the port can give, whatever the scheduler does.  Targets: p99 <= 1 ms, max <= 3 ms.

``--feedback`` gives each voice the listener work the server does for every note it plays: a
``/folkrnn/<voice>/note`` feedback per pitch, encoded as OSC and sent over UDP to 127.0.0.1 (an OSC
subscriber), and its fields as JSON (what MQTT and the web page send).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import asyncio
import json
import platform
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_timing import ContinuousSampler, SyntheticSource

from folkrnn_live.player import (
    MemoryOutput,
    NotePlayed,
    Player,
    PlayerEvent,
    PortOutput,
    Scheduler,
    VoiceSettings,
    ports,
)
from folkrnn_live.player.scheduler import freeze_gc, realtime_priority

RATE = 48_000
RECEIVER = r"""
import ctypes, json, sys, threading, time
import jack

# JACK's own clock says when a cycle's first frame was due (jack_frames_to_time); the callback that
# reads the events may run later than that, and that lateness is the receiving client's, not the
# port's.  JACK-Client does not wrap these two calls, so they come from libjack through ctypes.
lib = ctypes.CDLL("libjack.so.0")
lib.jack_frames_to_time.restype = ctypes.c_uint64
lib.jack_frames_to_time.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
lib.jack_get_time.restype = ctypes.c_uint64

client = jack.Client("bench-receiver", no_start_server=True)
port = client.midi_inports.register("in")
ptr = int(jack._ffi.cast("uintptr_t", client._ptr))
got = []
late = []

def clock_offset():
    # time.monotonic() minus JACK's clock, from the closest of 200 paired readings
    best = None
    for _ in range(200):
        t0 = time.monotonic(); j = lib.jack_get_time() / 1e6; t1 = time.monotonic()
        if best is None or t1 - t0 < best[0]:
            best = (t1 - t0, (t0 + t1) / 2 - j)
    return best[1]

OFFSET = clock_offset()

@client.set_process_callback
def process(frames):
    first = client.last_frame_time
    for offset, data in port.incoming_midi_events():
        b = bytes(data)
        if len(b) == 3 and (b[0] & 0xE0) == 0x80:  # note-on / note-off
            got.append((lib.jack_frames_to_time(ptr, first + offset) / 1e6 + OFFSET, b.hex()))
    if len(late) < 100000:
        late.append(time.monotonic() - (lib.jack_frames_to_time(ptr, first) / 1e6 + OFFSET))

client.activate()
print("ready", flush=True)
sys.stdin.readline()  # the parent says when it is done
client.deactivate()
late.sort()
print(json.dumps({"events": got, "callback_late_p99_ms": 1e3 * late[int(0.99 * (len(late) - 1))] if late else None}),
      flush=True)
"""


def start_jack(name: str, period: int, rt: bool, priority: int | None = None) -> subprocess.Popen[bytes]:
    jackd = shutil.which("jackd")
    if jackd is None:
        sys.exit("jackd not found: apt install jackd2")
    args = [jackd, "-R" if rt else "--no-realtime", *(["-P", str(priority)] if rt and priority else []),
            "-n", name, "-d", "dummy", "-r", str(RATE), "-p", str(period)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "JACK_NO_AUDIO_RESERVATION": "1"})
    sock = f"/dev/shm/jack_{name}_{os.getuid()}_0"
    deadline = time.monotonic() + 15
    while not os.path.exists(sock):
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"jackd did not start ({' '.join(args)})")
        time.sleep(0.05)
    return proc


def feedback_listener(name: str, sock: socket.socket, dest: tuple[str, int]) -> Callable[[PlayerEvent], None]:
    """What the server does with each note a voice plays (runtime/voices.py, transports/osc.py)."""
    from folkrnn_live.server.transports.feedback import Feedback
    from folkrnn_live.server.transports.osc import encode

    def listener(ev: PlayerEvent) -> None:
        if isinstance(ev, NotePlayed):
            ms = (ev.off - ev.onset) * 1000.0
            for pitch in ev.note.pitches:
                fb = Feedback("notes", "note", name, (pitch, ev.velocity, ms, ev.channel),
                              {"pitch": pitch, "velocity": ev.velocity, "duration_ms": ms, "channel": ev.channel,
                               "bar": ev.bar, "step": ev.note.step})
                sock.sendto(encode(fb), dest)
                json.dumps({"voice": name, "type": fb.name, **fb.data}, separators=(",", ":"))

    return listener


async def play(sources: list[Any], seconds: float, tempo: float, feedback: bool = False
               ) -> tuple[list[Any], dict[str, Any]]:
    mem = MemoryOutput()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sink.bind(("127.0.0.1", 0))  # the OSC subscriber: never read (the kernel drops what overflows)
        sock.setblocking(False)
        listeners = [feedback_listener(str(i), sock, sink.getsockname()) if feedback else None
                     for i in range(len(sources))]
        return await _play(sources, seconds, tempo, mem, listeners)


async def _play(sources: list[Any], seconds: float, tempo: float, mem: MemoryOutput,
                listeners: list[Callable[[PlayerEvent], None] | None]) -> tuple[list[Any], dict[str, Any]]:
    async with PortOutput("bench-receiver:in") as port, mem, Scheduler() as sched:
        players = [Player(src, [port, mem], VoiceSettings(tempo=tempo, channel=i), scheduler=sched, name=str(i),
                          listener=listeners[i])
                   for i, src in enumerate(sources)]
        for p in players:
            await p.__aenter__()
            p.start()
        await asyncio.sleep(seconds)
        for p in players:
            await p.__aexit__(None, None, None)
        stats = {"late_actions": sched.stats.late_fires, "max_wake_late_ms": sched.stats.max_wake_late * 1e3,
                 "underruns": sum(p.stats.underruns for p in players), "tokens": sum(p.stats.tokens for p in players)}
    await asyncio.sleep(0.1)
    return [s for s in mem.sent if s.msg.type in ("note_on", "note_off")], stats


def match(sent: list[Any], got: list[tuple[float, str]]) -> list[float]:
    """Arrival minus schedule, event by event: per channel, the n-th event sent is the n-th received."""
    by_channel: dict[int, list[tuple[float, str]]] = {}
    for t, hexdata in got:
        by_channel.setdefault(bytes.fromhex(hexdata)[0] & 0x0F, []).append((t, hexdata))
    errors: list[float] = []
    seen: dict[int, int] = {}
    for s in sent:
        ch = s.msg.channel
        i = seen.get(ch, 0)
        seen[ch] = i + 1
        rx = by_channel.get(ch, [])
        if i >= len(rx):
            raise SystemExit(f"channel {ch}: only {len(rx)} events arrived of {seen[ch]}+ sent")
        t, hexdata = rx[i]
        if bytes.fromhex(hexdata) != bytes(s.msg.bytes()) and not (
                s.msg.type == "note_off" and bytes.fromhex(hexdata)[1] == s.msg.note):
            raise SystemExit(f"channel {ch} event {i}: sent {s.msg}, received {hexdata}: events were lost (the "
                             "receiving client missed JACK cycles; on a loaded machine run with --rt, and put "
                             "JACK's clients above the loop: --jack-priority 70)")
        errors.append(t - s.when)
    return errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--voices", type=int, default=4, help="voices, one channel each (default 4)")
    ap.add_argument("--tempo", type=float, default=240.0, help="BPM (default 240)")
    ap.add_argument("--seconds", type=float, default=30.0, help="playing time (default 30)")
    ap.add_argument("--period", type=int, default=64, help="JACK period in frames at 48 kHz (default 64)")
    ap.add_argument("--source", choices=("synthetic", "sampler"), default="synthetic",
                    help="tokens: synthetic (0.5 ms of CPU each, like a model step) or the live sampler")
    ap.add_argument("--rt", action="store_true", help="jackd -R and the loop under SCHED_RR 10 (root)")
    ap.add_argument("--jack-priority", type=int, default=None, metavar="N",
                    help="with --rt: jackd -P N (its clients run at N - 5); jackd's default is 10, so its "
                         "clients run at 5, below the player's loop (SCHED_RR 10)")
    ap.add_argument("--feedback", action="store_true",
                    help="each voice publishes its notes as the server does (OSC over UDP, JSON)")
    args = ap.parse_args()
    name = f"folkrnn-bench-{os.getpid()}"
    jackd = start_jack(name, args.period, args.rt, args.jack_priority)
    os.environ["JACK_DEFAULT_SERVER"] = name
    ports.select_api("jack")
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True)
    try:
        assert receiver.stdout is not None and receiver.stdin is not None
        if receiver.stdout.readline().strip() != "ready":
            sys.exit("the receiving JACK client did not start")
        priority = realtime_priority(10) if args.rt else "normal"
        sources = [SyntheticSource() if args.source == "synthetic" else ContinuousSampler() for _ in range(args.voices)]
        freeze_gc()
        load = os.getloadavg()[0]
        sent, stats = asyncio.run(play(sources, args.seconds, args.tempo, args.feedback))
        receiver.stdin.write("done\n")
        receiver.stdin.flush()
        received = json.loads(receiver.stdout.readline())
        got = received["events"]
    finally:
        receiver.kill()
        receiver.wait()
        jackd.terminate()
        jackd.wait()
    ms = np.asarray(match(sent, got)) * 1e3
    at_send = np.asarray([s.at - s.when for s in sent]) * 1e3
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "voices": args.voices, "tempo": args.tempo, "source": args.source, "feedback": args.feedback,
        "period_frames": args.period,
        "jack_priority": (args.jack_priority or 10) if args.rt else None,
        "period_ms": 1e3 * args.period / RATE, "priority": priority, "events": len(ms),
        "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()),
        "min_ms": float(ms.min()), "at_send_p99_ms": float(np.percentile(at_send, 99)),
        "at_send_max_ms": float(at_send.max()), "receiver_callback_late_p99_ms": received["callback_late_p99_ms"],
        "load_before": load, "load_after": os.getloadavg()[0], **stats,
    }
    print(json.dumps(result))
    fb = " with feedback" if args.feedback else ""
    print(f"{args.voices} voices at {args.tempo:g} BPM{fb} into a JACK port (period {args.period} frames = "
          f"{result['period_ms']:.2f} ms): {len(ms)} note events at the receiving port: p50 {result['p50_ms']:.3f} ms, "
          f"p99 {result['p99_ms']:.3f} ms, max {result['max_ms']:.3f} ms (at our send call: p99 "
          f"{result['at_send_p99_ms']:.3f} ms, max {result['at_send_max_ms']:.3f} ms); load {load:.1f}")


if __name__ == "__main__":
    main()
