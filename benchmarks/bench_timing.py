"""Timing error of emitted MIDI events against their scheduled times (issue 4, section 7).

    python3 benchmarks/bench_timing.py                  # every variant, >= 2,000 note events each
    python3 benchmarks/bench_timing.py --variants synthetic --events 500   # a quick look
    python3 benchmarks/bench_timing.py --rt             # loop thread under SCHED_RR (root/CAP_SYS_NICE)

Each variant plays live at 240 BPM through the real scheduler and player into an in-process output
that stamps every message with time.monotonic() as it is handed over; the error is that stamp minus
the message's scheduled time, over note-ons and note-offs.  Variants:

* ``synthetic``: a token source that burns ~0.5 ms of CPU per token (a model step's cost) on the loop;
* ``synthetic+numpy``: the same while another thread does numpy work (SVDs and matrix products);
* ``sampler``: the live sampler (``folkrnn_live.sampler.voice.Voice``) with activation capture on,
  generating tune after tune on the CPU (the shipped model when there is one, else random v2 weights).

Target: p99 <= 1 ms, max <= 5 ms on the project's 2-core machine.  The load average before and after
each variant is printed: other processes competing for the two cores delay the loop's wake-ups
unless it runs under a real-time policy (``--rt``; the server's ``server.realtime_priority``).
"""

from __future__ import annotations

import os

# Before numpy loads: BLAS runs in the calling thread.  OpenBLAS's own worker threads run at normal
# priority, so on a busy machine a batch-1 model step that hands work to them waits for the OS
# (steps of 100+ ms were measured here with the default pool).  Set the variable to compare.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import asyncio
import json
import platform
import threading
import time
from typing import Any

import numpy as np

from folkrnn_live.player import MemoryOutput, Player, Scheduler, VoiceSettings
from folkrnn_live.player.scheduler import freeze_gc, realtime_priority
from folkrnn_live.tokens import V2

TUNES = [
    "M:4/4 K:Cdor |: c C C /2 C /2 C G C C /2 C /2 C | c C C /2 C /2 C B 2 A B | c C C /2 C /2 C G C C "
    "/2 C /2 C | B c d e f 2 e d :| |: c 2 g c a c g c | c 2 g e f d B d | c 2 g c a c g f | e c d B c 4 :|",
    "M:6/8 K:Cmaj |: G | c 2 G E F G | A 2 B c 2 d | e d c d 2 G | (3 A B A G E 2 D | C 2 E G c e | d 2 c B "
    "A G | A B c d e f |1 e c c c 2 :| |2 e c c c 2 |: [ E G ] 2 > d e d c :|",
    "M:3/4 K:Cmix G 2> A B 2 | c /2 d /2 e f 2 | g 3/2 f /2 e 2 | d 4 z 2 | _B 2 A G F E | D 6 |",
]


class SyntheticSource:
    """Realistic v2 tokens, tune after tune, each costing ``burn`` seconds of CPU (busy work)."""

    def __init__(self, burn: float = 0.0005) -> None:
        self.burn = burn
        self.vocab = V2
        self.tokens = [t for tune in TUNES for t in (*tune.split(), "</s>")]
        self.i = 0

    def next_token(self) -> int:
        end = time.perf_counter() + self.burn
        x = 0
        while time.perf_counter() < end:
            x += 1
        tok = self.tokens[self.i % len(self.tokens)]
        self.i += 1
        return self.vocab.index[tok]


class ContinuousSampler:
    """The live sampler, starting a new tune whenever one ends (the server's continuous mode)."""

    def __init__(self) -> None:
        import torch

        from folkrnn_live.model import checkpoint
        from folkrnn_live.model.config import ModelConfig
        from folkrnn_live.model.network import FolkRNN
        from folkrnn_live.sampler.voice import Voice

        try:
            model = checkpoint.load_default_or(None).model
            self.model_name = "shipped model"
        except checkpoint.CheckpointError:
            torch.manual_seed(0)
            model = FolkRNN(ModelConfig()).eval()
            self.model_name = "random v2-size weights"
        self.voice = Voice(model, seed=1, capture=True, prime=["M:4/4", "K:Cmaj"])
        self.vocab = self.voice.vocab
        self.step_times: list[float] = []

    def next_token(self) -> int:
        t0 = time.perf_counter()
        tok = self.voice.next_token()
        if tok is None:
            self.voice.start_tune()
            tok = self.voice.next_token()
        self.step_times.append(time.perf_counter() - t0)
        assert tok is not None
        return tok


def numpy_load(stop: threading.Event, rt: bool) -> None:
    if rt:  # below the loop: preempted by it, but never by ordinary processes while holding the GIL
        realtime_priority(5)
    rng = np.random.default_rng(0)
    while not stop.is_set():
        a = rng.standard_normal((160, 160))
        np.linalg.svd(a)
        (a @ a.T).sum()


def percentile(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


async def play(source: Any, events: int, tempo: float) -> dict[str, Any]:
    out = MemoryOutput()
    async with out, Scheduler() as sched:
        player = Player(source, [out], VoiceSettings(tempo=tempo), scheduler=sched)
        async with player:
            player.start()
            while sum(1 for s in out.sent if s.msg.type in ("note_on", "note_off")) < events:
                await asyncio.sleep(0.25)
                if player.state not in ("playing",):
                    raise RuntimeError(f"player stopped early: {player.state} {player.error!r}")
            errs = [s.at - s.when for s in out.sent if s.msg.type in ("note_on", "note_off")]
            ms = [e * 1e3 for e in errs]
            elapsed = max(s.at for s in out.sent) - min(s.at for s in out.sent)
            st = sched.stats
            return {
                "events": len(ms),
                "p50_ms": percentile(ms, 50),
                "p99_ms": percentile(ms, 99),
                "max_ms": max(ms),
                "min_ms": min(ms),
                "seconds": elapsed,
                "tokens": player.stats.tokens,
                "underruns": player.stats.underruns,
                "spin_cpu_pct": 100.0 * st.spin_time / elapsed,
                "late_actions": st.late_fires,
                "late_after": dict(st.late_causes),
                "max_wake_late_ms": st.max_wake_late * 1e3,
                "step_estimate_ms": sched.step_estimate * 1e3,
            }


def run_variant(name: str, events: int, tempo: float, rt: bool = False) -> dict[str, Any]:
    stop = threading.Event()
    thread = None
    extra: dict[str, Any] = {}
    if name.startswith("synthetic"):
        source: Any = SyntheticSource()
    else:
        source = ContinuousSampler()
        extra["model"] = source.model_name
    if name.endswith("+numpy"):
        thread = threading.Thread(target=numpy_load, args=(stop, rt), daemon=True)
        thread.start()
    freeze_gc()
    load = os.getloadavg()[0]
    try:
        result = asyncio.run(play(source, events, tempo))
    finally:
        stop.set()
        if thread is not None:
            thread.join()
    if isinstance(source, ContinuousSampler):
        extra["model_step_p50_ms"] = percentile(source.step_times, 50) * 1e3
        extra["model_step_max_ms"] = max(source.step_times) * 1e3
    extra["load_before"] = load
    extra["load_after"] = os.getloadavg()[0]
    return {"variant": name, **result, **extra}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=2000, help="note events per variant (default 2000)")
    ap.add_argument("--tempo", type=float, default=240.0, help="BPM (default 240)")
    ap.add_argument("--variants", default="synthetic,synthetic+numpy,sampler",
                    help="comma-separated: synthetic, synthetic+numpy, sampler, sampler+numpy")
    ap.add_argument("--rt", action="store_true",
                    help="run the loop thread under SCHED_RR 10 (the load thread under SCHED_RR 5)")
    ap.add_argument("--json", action="store_true", help="print one JSON object per variant")
    args = ap.parse_args()
    priority = realtime_priority(10) if args.rt else "normal"
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
          f", {args.tempo:g} BPM, >= {args.events} note events per variant, priority {priority}, "
          f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}")
    for name in args.variants.split(","):
        r = run_variant(name.strip(), args.events, args.tempo, args.rt)
        if args.json:
            print(json.dumps(r))
            continue
        print(
            f"{r['variant']:<16} events {r['events']:5d}  p50 {r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms  "
            f"max {r['max_ms']:.3f} ms  | spin {r['spin_cpu_pct']:.1f}% CPU, max wake late "
            f"{r['max_wake_late_ms']:.2f} ms, underruns {r['underruns']}, tokens {r['tokens']}, "
            f"load avg {r['load_before']:.1f}->{r['load_after']:.1f}, late actions {r['late_actions']} "
            f"(after {', '.join(f'{k} {v}' for k, v in r['late_after'].items() if v) or '-'})"
            + (f", model step p50 {r['model_step_p50_ms']:.2f} ms max {r['model_step_max_ms']:.2f} ms"
               f" ({r['model']})" if "model" in r else "")
        )


if __name__ == "__main__":
    main()
