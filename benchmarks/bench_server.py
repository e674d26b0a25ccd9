"""Live server benchmarks (issue 5): control latency, note timing under OSC load, voices in time.

    python3 benchmarks/bench_server.py                       # all four parts (about 4 minutes)
    python3 benchmarks/bench_server.py --parts latency --seconds 10
    python3 benchmarks/bench_server.py --json out/bench_server.json

The server runs in this process exactly as ``folkrnn-live serve`` builds it, with a v2-size model
(the shipped one when it exists, else 3 x 512 random weights) and real localhost UDP sockets.
Each voice also plays into an in-process output that stamps every message with time.monotonic()
when it is handed over; the timing error is that stamp minus the message's scheduled time, over
note-ons and note-offs.

* latency: OSC commands (temperature, bias, suppress) at random moments to one voice playing at
  240 BPM.  Tokens: the first token generated under a command minus the number of tokens generated
  when its datagram arrived (0 = the very next token, the target).  Milliseconds: arrival to the
  end of that token's step; by design the player only generates when the next note needs deciding,
  so this is the wait for the next undecided note plus one step.
* load: 4 voices at 240 BPM while another process sends 1,000 OSC messages per second to
  127.0.0.1 (valid commands to random voices, 5 % malformed ones answered with /error), bounded by
  --seconds.  Target: p99 timing error <= 1 ms.
* voices: 1, 2, 4, 6, 8, ... voices at 240 BPM without load; a count is "in time" when its p99 error
  is <= 1 ms and no note waited for its tokens (underruns).  Stops after the first count that fails.
* shutdown: ``folkrnn-live serve`` as a real process (4 voices at 240 BPM writing MIDI files, one
  recording): seconds from SIGTERM to the process's exit, and notes left sounding in the files
  (target: at most 2 s, none).

The load average is printed with each part: this 2-core machine is shared (a model may be training).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: batch-1 steps on the calling thread

import argparse
import asyncio
import json
import multiprocessing as mp
import platform
import socket
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from folkrnn_live.player.outputs import MemoryOutput  # noqa: E402
from folkrnn_live.server.runtime import config  # noqa: E402
from folkrnn_live.server.runtime.service import Server  # noqa: E402
from folkrnn_live.server.transports.feedback import Feedback  # noqa: E402

TEMPO = 240.0
GC_PAUSES: list[tuple[float, int, float]] = []  # (loop-clock time, generation, ms) with --gc-report


def _gc_timer(phase: str, info: dict[str, int], started: list[float] = [0.0]) -> None:  # noqa: B006
    if phase == "start":
        started[0] = time.monotonic()
    elif (d := time.monotonic() - started[0]) > 0.002:
        GC_PAUSES.append((started[0], info["generation"], round(d * 1000, 1)))


def gc_report(t0: float, t1: float) -> dict[str, Any]:
    import collections
    import gc

    pauses = [(g, ms) for t, g, ms in GC_PAUSES if t0 <= t <= t1]
    kinds = collections.Counter(type(o).__name__ for o in gc.get_objects())
    return {"gc_pauses_over_2ms": pauses, "tracked_objects": sum(kinds.values()), "most": kinds.most_common(8)}
RT_PRIORITY = 0  # --rt: the server's event loop under SCHED_RR (server.realtime_priority)
GC_REPORT = False


def load_model() -> tuple[Any, str]:
    import torch

    from folkrnn_live.model import checkpoint
    from folkrnn_live.model.config import ModelConfig
    from folkrnn_live.model.network import FolkRNN

    try:
        return checkpoint.load_default_or(None).model, "shipped model"
    except checkpoint.CheckpointError:
        torch.manual_seed(0)
        return FolkRNN(ModelConfig()).eval(), "random 3 x 512 weights (no shipped model yet)"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stats_ms(errors: list[float]) -> dict[str, float]:
    if not errors:
        return {"n": 0}
    a = np.asarray(errors) * 1000.0
    return {"n": len(a), "p50_ms": round(float(np.percentile(a, 50)), 3),
            "p99_ms": round(float(np.percentile(a, 99)), 3), "max_ms": round(float(a.max()), 3)}


async def start(model: Any, voices: int, port: int) -> tuple[Server, asyncio.Task[None], list[MemoryOutput]]:
    overrides = {"osc.port": port, "server.voices": voices, "midi.output": "none", "server.state_interval": 0.0,
                 "voice_defaults.tempo": TEMPO, "osc.rate_limit": 5000.0, "osc.burst": 1000,
                 "server.log_level": "warning", "server.realtime_priority": RT_PRIORITY}
    srv = Server(config.load(None, overrides), model=model)
    task = asyncio.create_task(srv.serve(install_signals=False))
    await srv.started.wait()
    outs = []
    for lv in srv.voices.values():
        out = MemoryOutput(f"bench-{lv.name}")
        out.open()
        lv.player.outputs.append(out)
        outs.append(out)
    return srv, task, outs


async def stop(srv: Server, task: asyncio.Task[None]) -> None:
    srv.request_exit()
    await task


def timing_errors(outs: list[MemoryOutput], after: float) -> list[float]:
    return [s.at - s.when for o in outs for s in o.sent
            if s.when >= after and s.msg.type in ("note_on", "note_off")]


# --- part 1: control latency ---------------------------------------------------------------------
async def part_latency(model: Any, seconds: float) -> dict[str, Any]:
    port = free_port()
    srv, task, _ = await start(model, 1, port)
    lv = srv.voices["1"]
    loop = asyncio.get_running_loop()
    arrivals: list[tuple[float, int]] = []  # (loop time, tokens generated) per command, in order
    applied: list[int] = []
    step_end: dict[int, float] = {}
    inner = srv.dispatch

    def dispatch(call: Any, origin: Any) -> None:
        if call.command.applies == "step":
            arrivals.append((loop.time(), lv.voice.total_steps))
        inner(call, origin)

    srv.dispatch = dispatch  # type: ignore[method-assign]
    lv.voice.listeners.append(lambda r: step_end.__setitem__(lv.voice.total_steps - 1, loop.time()))

    def on_applied(fb: Feedback) -> None:
        if fb.data["command"] in ("temperature", "bias", "suppress"):
            applied.append(int(fb.data["step"]))

    srv.hub.subscribe(on_applied, ["applied"])
    rng = np.random.default_rng(1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    from pythonosc.osc_message_builder import OscMessageBuilder

    end = loop.time() + seconds
    await asyncio.sleep(0.5)
    while loop.time() < end:
        kind = int(rng.integers(3))
        b = OscMessageBuilder(["/folkrnn/1/temperature", "/folkrnn/1/bias", "/folkrnn/1/suppress"][kind])
        for a in ([float(rng.uniform(0.5, 1.5))], ["pc:G", float(rng.uniform(-2, 2))], [2, "@bar"])[kind]:
            b.add_arg(a)
        sock.sendto(b.build().dgram, ("127.0.0.1", port))
        await asyncio.sleep(float(rng.uniform(0.03, 0.2)))
    await asyncio.sleep(1.0)
    sock.close()
    await stop(srv, task)
    tokens, ms = [], []
    for (t_arr, n_arr), step in zip(arrivals, applied, strict=False):
        tokens.append(step - n_arr)
        if step in step_end:
            ms.append(step_end[step] - t_arr)
    return {"commands": len(applied), "tokens_after_arrival": {str(k): tokens.count(k) for k in sorted(set(tokens))},
            "arrival_to_token": stats_ms(ms)}


# --- part 2: timing under OSC load ------------------------------------------------------------------
def _sender(port: int, rate: int, seconds: float, voices: int, sent: Any, stop: Any) -> None:
    from pythonosc.osc_message_builder import OscMessageBuilder

    rng = np.random.default_rng(2)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    menu = [("temperature", lambda: [float(rng.uniform(0.7, 1.3))]),
            ("bias", lambda: ["pc:D", float(rng.uniform(-1, 1))]),
            ("suppress", lambda: [1, "|"]), ("velocity", lambda: [int(rng.integers(60, 100))]),
            ("bias", lambda: ["not-a-token", 1.0])]  # the last one: 1 in 5 of these get /error (5 % overall)
    t0 = time.monotonic()
    n = 0
    batch = max(1, rate // 100)
    if rate <= 0:
        stop.wait(seconds)
        return
    while (elapsed := time.monotonic() - t0) < seconds and not stop.is_set():
        for _ in range(batch):
            i = int(rng.integers(len(menu))) if rng.random() < 0.25 else int(rng.integers(len(menu) - 1))
            name, args = menu[i]
            b = OscMessageBuilder(f"/folkrnn/{int(rng.integers(voices)) + 1}/{name}")
            for a in args():
                b.add_arg(a)
            try:
                sock.sendto(b.build().dgram, ("127.0.0.1", port))
                n += 1
            except BlockingIOError:
                pass
        time.sleep(max(0.0, (n / rate) - (time.monotonic() - t0)))
        del elapsed
    sent.value = n
    sock.close()


async def part_load(model: Any, seconds: float, voices: int = 4, rate: int = 1000, min_events: int = 2000,
                    max_seconds: float = 120.0) -> dict[str, Any]:
    """At least ``seconds`` and ``min_events`` note events, at most ``max_seconds`` (and so at most
    ``rate * max_seconds`` messages)."""
    port = free_port()
    srv, task, outs = await start(model, voices, port)
    loop = asyncio.get_running_loop()
    await asyncio.sleep(1.0)  # past the start-up
    t0 = loop.time()
    ctx = mp.get_context("spawn")  # a fresh process: the sender shares neither the GIL nor the loop
    sent, stop_sending = ctx.Value("q", 0), ctx.Event()
    proc = ctx.Process(target=_sender, args=(port, rate, max_seconds, voices, sent, stop_sending))
    proc.start()
    while proc.is_alive() and (loop.time() - t0 < seconds or len(timing_errors(outs, t0)) < min_events):
        await asyncio.sleep(0.5)
    stop_sending.set()
    t1 = loop.time()
    await asyncio.to_thread(proc.join, 30)
    elapsed = t1 - t0
    osc = srv.osc.stats
    result = {"voices": voices, "seconds": round(elapsed, 1), "messages_sent": int(sent.value),
              "messages_per_s": round(sent.value / elapsed),
              "osc_received": osc.received, "osc_errors": osc.errors, "osc_rate_limited": osc.limited,
              "timing_error": stats_ms(timing_errors(outs, t0)),
              "underruns": sum(lv.player.stats.underruns for lv in srv.voices.values()),
              "steps": sum(lv.voice.total_steps for lv in srv.voices.values())}
    if GC_REPORT:
        result["gc"] = gc_report(t0, t1)
    await stop(srv, task)
    return result


# --- part 3: voices in time -------------------------------------------------------------------------
async def part_voices(model: Any, seconds: float, counts: list[int]) -> dict[str, Any]:
    rows = []
    best = 0
    for n in counts:
        srv, task, outs = await start(model, n, free_port())
        loop = asyncio.get_running_loop()
        await asyncio.sleep(1.0)
        t0 = loop.time()
        await asyncio.sleep(seconds)
        st = stats_ms(timing_errors(outs, t0))
        under = sum(lv.player.stats.underruns for lv in srv.voices.values())
        await stop(srv, task)
        ok = st.get("n", 0) > 0 and st["p99_ms"] <= 1.0 and under == 0
        rows.append({"voices": n, **st, "underruns": under, "in_time": ok, "load": os.getloadavg()[0]})
        print(f"  {n:3d} voices: {st} underruns={under} {'in time' if ok else 'late'}", flush=True)
        if not ok:
            break
        best = n
    return {"most_voices_in_time": best, "runs": rows}



# --- part 4: SIGTERM to exit ------------------------------------------------------------------------
def part_shutdown(model: Any, runs: int, voices: int = 4) -> dict[str, Any]:
    import signal
    import subprocess
    import tempfile

    import mido
    from pythonosc.osc_message_builder import OscMessageBuilder

    from folkrnn_live.model import checkpoint
    from folkrnn_live.player.outputs import hanging_notes

    def osc(address: str, *args: Any) -> bytes:
        b = OscMessageBuilder(address)
        for a in args:
            b.add_arg(a)
        return b.build().dgram

    times, hanging, files = [], 0, 0
    with tempfile.TemporaryDirectory() as tmp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        model_dir = checkpoint.save(model, Path(tmp) / "model")
        sock.settimeout(0.5)
        for i in range(runs):
            run, port = Path(tmp) / f"run{i}", free_port()
            run.mkdir()
            proc = subprocess.Popen(
                [sys.executable, "-m", "folkrnn_live", "serve", "--model", str(model_dir), "--osc-port", str(port),
                 "--voices", str(voices), "--midi-output", "file", "--midi-dir", str(run / "midi"),
                 "--recordings", str(run / "rec"), "--set", f"voice_defaults.tempo={TEMPO}"],
                cwd=run, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                deadline = time.monotonic() + 120
                while True:  # ready when it answers a ping
                    sock.sendto(osc("/folkrnn/ping", i), ("127.0.0.1", port))
                    try:
                        sock.recv(1024)
                        break
                    except TimeoutError:
                        if proc.poll() is not None or time.monotonic() > deadline:
                            raise RuntimeError("the server did not start") from None
                sock.sendto(osc("/folkrnn/1/record_start", "bench"), ("127.0.0.1", port))
                time.sleep(3.0)  # notes sounding, recording going on
                t0 = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
                times.append(time.monotonic() - t0)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            for f in (run / "midi").glob("*.mid"):
                files += 1
                hanging += len(hanging_notes([m for m in mido.MidiFile(f) if not m.is_meta]))
    return {"runs": runs, "voices": voices, "sigterm_to_exit": stats_ms(times),
            "midi_files": files, "hanging_notes": hanging, "within_2_s": max(times) <= 2.0}

async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    model, which = load_model()
    out: dict[str, Any] = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
                           "model": which, "tempo_bpm": TEMPO, "realtime_priority": RT_PRIORITY}
    if "latency" in args.parts:
        print(f"latency ({args.seconds:.0f} s, load {os.getloadavg()[0]:.2f})...", flush=True)
        out["latency"] = await part_latency(model, args.seconds)
        print(json.dumps(out["latency"]), flush=True)
    if "load" in args.parts:
        print(f"load ({args.seconds:.0f} s, load {os.getloadavg()[0]:.2f})...", flush=True)
        out["load"] = await part_load(model, args.seconds, rate=args.rate)
        print(json.dumps(out["load"]), flush=True)
    if "voices" in args.parts:
        print(f"voices ({args.voice_seconds:.0f} s each, load {os.getloadavg()[0]:.2f})...", flush=True)
        out["voices"] = await part_voices(model, args.voice_seconds, args.counts)
    if "shutdown" in args.parts:
        print(f"shutdown ({args.shutdown_runs} runs, load {os.getloadavg()[0]:.2f})...", flush=True)
        out["shutdown"] = await asyncio.to_thread(part_shutdown, model, args.shutdown_runs)
        print(json.dumps(out["shutdown"]), flush=True)
    out["loadavg_end"] = os.getloadavg()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parts = ["latency", "load", "voices", "shutdown"]
    p.add_argument("--parts", nargs="+", default=parts, choices=parts)
    p.add_argument("--seconds", type=float, default=30.0, help="length of the latency and load parts")
    p.add_argument("--voice-seconds", type=float, default=10.0, help="length of each voice-count run")
    p.add_argument("--counts", type=int, nargs="+", default=[1, 2, 4, 6, 8, 12, 16, 24, 32])
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--rt", type=int, nargs="?", const=10, default=0, metavar="PRIORITY",
                   help="run the loop under SCHED_RR (root or CAP_SYS_NICE), as server.realtime_priority does")
    p.add_argument("--rate", type=int, default=1000, help="OSC messages per second in the load part")
    p.add_argument("--gc-report", action="store_true", help="garbage-collector pauses and live objects (load part)")
    p.add_argument("--shutdown-runs", type=int, default=3, help="SIGTERM runs of the shutdown part")
    args = p.parse_args()
    global RT_PRIORITY, GC_REPORT
    RT_PRIORITY, GC_REPORT = args.rt, args.gc_report
    if GC_REPORT:
        import gc

        gc.callbacks.append(_gc_timer)
    out = asyncio.run(main_async(args))
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
