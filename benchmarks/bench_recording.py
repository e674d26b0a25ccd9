"""Step time of a voice with the activation recorder attached, against capture off and capture on
without a recorder, side by side in one run; and the recording's size per 1,000 steps.

    python3 benchmarks/bench_recording.py [--steps 2000] [--rounds 5] [--hidden 512] [--layers 3]

The model is v2-sized (3 x 512, 137 tokens) with random weights: step time does not depend on the
weights.  The three settings run in interleaved rounds so drift on a shared machine (a training
job in the background) hits them alike; the figure reported is the median over rounds of each
round's mean step time, i.e. what the voice (and so the note schedule) sees.  After a recording
round the writer is flushed outside the timing, so its leftover work does not land in the next
setting's round; "sustained" adds that flush to the recording's time (the whole cost per step,
writer included).  Target: recording at most 10 % slower than capture off.

On a machine whose cores are busy (a training job), run with ``OPENBLAS_NUM_THREADS=1``: OpenBLAS's
worker threads otherwise spin against the other job and step times swing by 2-3x between rounds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from folkrnn_live.model.config import ModelConfig
from folkrnn_live.model.network import FolkRNN
from folkrnn_live.recording.recorder import Recorder
from folkrnn_live.sampler.voice import Voice


def run_steps(voice: Voice, n: int, each: list[float] | None = None) -> float:
    """Mean seconds per step over n steps (a new tune starts whenever one ends); each step's own
    time is appended to ``each`` when given."""
    t0 = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        if voice.step() is None:
            voice.start_tune()
        if each is not None:
            each.append(time.perf_counter() - t)
    return (time.perf_counter() - t0) / n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000, help="steps per setting per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--backend", default="auto", choices=("auto", "numpy", "torch"))
    ap.add_argument("--compress", action="store_true", help="write compressed chunks")
    ap.add_argument("--float16", action="store_true", help="store activations as float16")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    model = FolkRNN(ModelConfig(hidden_size=args.hidden, num_layers=args.layers)).eval()
    times: dict[str, list[float]] = {"off": [], "capture": [], "recording": []}
    sustained: list[float] = []
    single: dict[str, list[float]] = {k: [] for k in times}  # every step's time, for the tail
    with tempfile.TemporaryDirectory() as tmp:
        rec = Recorder(Path(tmp) / "rec", model, meta={"benchmark": True}, compress=args.compress,
                       dtype="float16" if args.float16 else "float32")
        voices = {
            name: Voice(model, seed=1, max_tokens=100_000, capture=(name != "off"), backend=args.backend)
            for name in times
        }
        rec.attach(voices["recording"], name="bench")
        for v in voices.values():  # warm up caches and BLAS threads
            run_steps(v, 200)
        rec.flush()
        base = rec.stats
        for _ in range(args.rounds):
            for name, v in voices.items():
                times[name].append(run_steps(v, args.steps, single[name]))
                if name == "recording":
                    t0 = time.perf_counter()
                    rec.flush(timeout=120)
                    sustained.append(times[name][-1] + (time.perf_counter() - t0) / args.steps)
        rec.close(timeout=60.0)
        st = rec.stats
    med = {k: statistics.median(v) for k, v in times.items()}
    steps = st.steps - base.steps
    size_per_1000 = (st.bytes - base.bytes) / steps * 1000 if steps else float("nan")
    backend = type(voices["off"].stepper).__name__
    print(f"model: {args.layers} x {args.hidden}, vocab {model.config.vocab_size}; backend {backend}")
    print(f"{args.rounds} rounds x {args.steps} steps per setting (median of round means)")
    print(f"{'setting':<28}{'ms/step':>10}{'vs off':>10}{'p99 ms':>10}{'max ms':>10}")
    labels = {"off": "capture off", "capture": "capture on, no recorder", "recording": "recorder attached"}
    for k, label in labels.items():
        q = statistics.quantiles(single[k], n=100)[98] * 1e3
        print(f"{label:<28}{med[k] * 1e3:>10.4f}{(med[k] / med['off'] - 1) * 100:>+9.1f}%{q:>10.3f}"
              f"{max(single[k]) * 1e3:>10.3f}")
    sus = statistics.median(sustained)
    print(f"{'recording, sustained':<28}{sus * 1e3:>10.4f}{(sus / med['off'] - 1) * 100:>+9.1f}%")
    print(f"recorded {st.steps} steps in {st.chunks} chunks, {st.dropped} dropped")
    kind = ("compressed " if args.compress else "uncompressed ") + ("float16" if args.float16 else "float32")
    print(f"recording size: {size_per_1000 / 1e6:.2f} MB per 1,000 steps ({kind})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
