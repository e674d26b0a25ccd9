"""Soak benchmark (issue 12 §3): hours of hostile-ish life compressed into one command.

    python3 benchmarks/bench_soak.py --minutes 30                 # the full soak
    python3 benchmarks/bench_soak.py --minutes 2 --json out.json  # a short one

The server runs in this process as ``folkrnn-live serve`` builds it (the shipped model, 4 voices,
MIDI files written bar by bar, every voice recording, MQTT on), with real localhost sockets:

* another process sends --rate OSC messages per second to random voices (temperature, bias,
  suppress, velocity, tempo, steer), of which --malformed (5 %) are hostile: the 20-byte
  negative-size bundle, bundles nested past the limit, random bytes, 400-digit numbers;
* a real Mosquitto broker is killed (SIGKILL) every --broker-every seconds and started again
  2 s later, so the MQTT bridge loses and regains its link all along.

Each minute it prints: notes played, timing error p50/p99/max of note-ons and note-offs (the
moment a message was handed to the output minus its scheduled time), RSS of this process, the
server log's size, OSC messages handled and answered with /error, MQTT reconnects and the bytes
recorded.  At the end: notes left sounding after shutdown (must be none), in the outputs and in
the MIDI files.  The machine is whatever runs it: say so with the figures (docs/benchmarks.md).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: batch-1 steps on the calling thread

import argparse
import asyncio
import json
import logging
import multiprocessing as mp
import platform
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_server import load_model, stats_ms  # noqa: E402

from folkrnn_live.player.outputs import MemoryOutput, hanging_notes  # noqa: E402
from folkrnn_live.server.runtime import config  # noqa: E402
from folkrnn_live.server.runtime.service import Server  # noqa: E402


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(ln.split()[1]) / 1024 for ln in f if ln.startswith("VmRSS:"))


def udp_drops() -> int:
    """Datagrams the kernel dropped because a socket's receive buffer was full (whole machine)."""
    with open("/proc/net/snmp", encoding="ascii") as f:
        rows = [ln.split() for ln in f if ln.startswith("Udp:")]
    return int(dict(zip(rows[0], rows[1], strict=True)).get("RcvbufErrors", 0))


# --- the sender (its own process: it shares neither the GIL nor the loop) ------------------------------
def _osc(address: str, *args: Any) -> bytes:
    from pythonosc.osc_message_builder import OscMessageBuilder

    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(a)
    return b.build().dgram


def _hostile(rng: np.random.Generator) -> bytes:
    kind = int(rng.integers(4))
    if kind == 0:
        return b"#bundle\x00" + b"\x00" * 8 + struct.pack(">i", -4)
    if kind == 1:
        inner = _osc("/folkrnn/ping", 1)
        for _ in range(40):
            inner = b"#bundle\x00" + struct.pack(">Q", 1) + struct.pack(">i", len(inner)) + inner
        return inner
    if kind == 2:
        return rng.bytes(int(rng.integers(1, 200)))
    return _osc(f"/folkrnn/{int(rng.integers(1, 5))}/seed", "9" * 400)


def sender(port: int, rate: int, malformed: float, voices: int, sent: Any, stop: Any) -> None:
    rng = np.random.default_rng(12)
    menu = [("temperature", lambda: [float(rng.uniform(0.8, 1.2))]),
            ("bias", lambda: ["pc:D", float(rng.uniform(-1, 1))]),
            ("suppress", lambda: [2, "|"]), ("velocity", lambda: [int(rng.integers(60, 100))]),
            ("tempo", lambda: [float(rng.uniform(100, 140))]), ("steer", lambda: [1, float(rng.uniform(-2, 2))]),
            ("steer_clear", lambda: [])]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    t0, n = time.monotonic(), 0
    while not stop.is_set():
        for _ in range(max(1, rate // 100)):
            if rng.random() < malformed:
                data = _hostile(rng)
            else:
                name, args = menu[int(rng.integers(len(menu)))]
                data = _osc(f"/folkrnn/{int(rng.integers(voices)) + 1}/{name}", *args())
            try:
                sock.sendto(data, ("127.0.0.1", port))
                n += 1
            except BlockingIOError:
                pass
        time.sleep(max(0.0, n / rate - (time.monotonic() - t0)))
    sent.value = n
    sock.close()


# --- the broker, killed and restarted -----------------------------------------------------------------
class Broker:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port(socket.SOCK_STREAM)
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.kills += 1

    async def churn(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            self.kill()
            await asyncio.sleep(2.0)
            await asyncio.to_thread(self.start)


# --- the soak -------------------------------------------------------------------------------------------
async def soak(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    model, model_name = load_model()
    broker = Broker(work)
    broker.start()
    port = free_port()
    log_path = work / "server.log"
    handler = logging.FileHandler(log_path)
    handler.setFormatter(logging.Formatter("folkrnn-live: %(levelname)s: %(message)s"))
    logging.getLogger("folkrnn_live").addHandler(handler)
    overrides = {"osc.port": port, "server.voices": args.voices, "midi.output": "file",
                 "midi.dir": str(work / "midi"), "recording.dir": str(work / "rec"), "web.enabled": False,
                 "voice_defaults.tempo": args.tempo, "server.log_level": "info", "mqtt.enabled": True,
                 "mqtt.host": "127.0.0.1", "mqtt.port": broker.port, "mqtt.reconnect_max": 2.0}
    srv = Server(config.load(None, overrides), model=model)
    task = asyncio.create_task(srv.serve(install_signals=False), name="soak server")
    await srv.started.wait()
    outs = []
    for lv in srv.voices.values():
        out = MemoryOutput(f"soak-{lv.name}")
        out.open()
        lv.player.outputs.append(out)
        outs.append(out)
        lv.cmd_record_start("soak")
    ctx = mp.get_context("spawn")
    sent, stop = ctx.Value("q", 0), ctx.Event()
    proc = ctx.Process(target=sender, args=(port, args.rate, args.malformed, args.voices, sent, stop))
    proc.start()
    churn = asyncio.create_task(broker.churn(args.broker_every), name="broker churn")
    loop = asyncio.get_running_loop()
    drops0 = udp_drops()
    minutes: list[dict[str, Any]] = []
    all_errors: list[float] = []
    notes_total = 0
    t0 = loop.time()
    for m in range(int(args.minutes)):
        start = loop.time()
        await asyncio.sleep(max(0.0, t0 + 60.0 * (m + 1) - loop.time()))
        errors = [s.at - s.when for o in outs for s in o.sent if s.msg.type in ("note_on", "note_off")]
        notes = sum(1 for o in outs for s in o.sent if s.msg.type == "note_on" and s.msg.velocity > 0)
        for o in outs:
            o.sent.clear()  # what sounds is tracked by the output itself; the log of sends is per minute
        all_errors += errors
        notes_total += notes
        mq = next((t for t in srv.transports if type(t).__name__ == "MqttBridge"), None)
        row = {"minute": m + 1, "notes": notes, "timing": stats_ms(errors), "rss_mb": round(rss_mb(), 1),
               "log_bytes": log_path.stat().st_size, "osc_received": srv.osc.stats.received if srv.osc else 0,
               "osc_errors": srv.osc.stats.errors if srv.osc else 0,
               "osc_rate_limited": srv.osc.stats.limited if srv.osc else 0, "udp_rcvbuf_drops": udp_drops() - drops0,
               "mqtt_connects": mq.stats.connects if mq else 0, "broker_kills": broker.kills,
               "recorded_mb": round(sum(f.stat().st_size for f in (work / "rec").rglob("*") if f.is_file()) / 1e6),
               "seconds": round(loop.time() - start, 1)}
        minutes.append(row)
        print(json.dumps(row), flush=True)
    stop.set()
    churn.cancel()
    await asyncio.to_thread(proc.join, 30)
    srv.request_exit()
    await task
    broker.kill()
    logging.getLogger("folkrnn_live").removeHandler(handler)
    handler.close()
    sounding = sorted({(o.name, *n) for o in outs for n in o.sounding})
    files = sorted((work / "midi").glob("*.mid"))
    hanging_in_files = sum(len(hanging_notes(_file_messages(f))) for f in files)
    lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    return {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()}",
            "model": model_name, "voices": args.voices, "tempo": args.tempo, "minutes": args.minutes,
            "osc_rate": args.rate, "malformed": args.malformed, "messages_sent": int(sent.value),
            "broker_kills": broker.kills, "notes": notes_total, "notes_per_minute": round(notes_total / len(minutes)),
            "timing": stats_ms(all_errors), "rss_mb_first_last": [minutes[0]["rss_mb"], minutes[-1]["rss_mb"]],
            "log_bytes": log_path.stat().st_size, "log_lines": len(lines),
            "log_tracebacks": sum("Traceback" in ln for ln in lines),
            "hanging_notes_after_shutdown": len(sounding), "hanging_notes_in_midi_files": hanging_in_files,
            "midi_files": len(files), "per_minute": minutes}


def _file_messages(path: Path) -> list[Any]:
    import mido

    return [m for m in mido.MidiFile(path) if not m.is_meta]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=30.0, help="how long (whole minutes; default 30)")
    p.add_argument("--voices", type=int, default=4)
    p.add_argument("--tempo", type=float, default=120.0)
    p.add_argument("--rate", type=int, default=1000, help="OSC messages per second")
    p.add_argument("--malformed", type=float, default=0.05, help="fraction of hostile packets")
    p.add_argument("--broker-every", type=float, default=120.0, help="seconds between broker kills")
    p.add_argument("--json", type=Path, help="write the summary here")
    p.add_argument("--keep", action="store_true", help="keep the work folder (MIDI files, recordings, log)")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="folkrnn-soak-"))
    try:
        result = asyncio.run(soak(args, work))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    summary = {k: v for k, v in result.items() if k != "per_minute"}
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
