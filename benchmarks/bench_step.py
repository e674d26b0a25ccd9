"""Step latency and throughput of the v2 network, against the plain numpy baseline.

    python3 benchmarks/bench_step.py            # everything, incl. 30,000 tunes (several minutes)
    python3 benchmarks/bench_step.py --quick    # a couple of minutes; the 30,000-tune time is projected

Baseline, side by side in the same run: ``folkrnn_live.model.reference.ReferenceLSTM``, a plain
numpy implementation of the v2 equations with one matrix per gate, as the original fast sampler
did.  Targets (issue 2): batch-1 step >= 2.5x faster than the baseline on CPU; <= 50 us per step on
a GPU; 30,000 tunes in <= 10 min on this CPU (<= 1 min on a GPU); capture on <= 10 % slower.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from folkrnn_live.model import checkpoint
from folkrnn_live.model.config import ModelConfig
from folkrnn_live.model.network import FolkRNN
from folkrnn_live.model.reference import ReferenceLSTM
from folkrnn_live.model.step import NumpyStepper, TorchStepper
from folkrnn_live.sampler.batch import generate_tunes
from folkrnn_live.sampler.voice import Voice


def load_model() -> tuple[FolkRNN, str]:
    try:
        ck = checkpoint.load_default_or(None)
        return ck.model, "shipped model"
    except checkpoint.CheckpointError:
        torch.manual_seed(0)
        return FolkRNN(ModelConfig()).eval(), "random v2-size weights (no shipped model yet)"


def lasagne_params(model: FolkRNN) -> list[np.ndarray]:
    """The model's weights in the original per-gate layout, for the baseline."""
    H = model.config.hidden_size
    p: list[np.ndarray] = [np.eye(model.config.vocab_size, dtype=np.float32)]
    for k in range(model.config.num_layers):
        wi = model.weight_ih(k).detach().numpy()
        wh = model.weight_hh(k).detach().numpy()
        b = model.bias(k).detach().numpy()
        for g in range(4):
            sl = slice(g * H, (g + 1) * H)
            p += [wi[sl].T.copy(), wh[sl].T.copy(), b[sl].copy()]
        p += [model.cell_init[k].numpy()[None].copy(), model.hid_init[k].numpy()[None].copy()]
    p += [model.out.weight.detach().numpy().T.copy(), model.out.bias.detach().numpy().copy()]
    return p


ROUNDS = 5


def interleaved(fns: dict[str, Callable[[], object]], n: int, warmup: int = 50) -> dict[str, dict[str, float]]:
    """Time every path in ROUNDS rounds of n/ROUNDS steps, one path after the other in each round,
    so that the VM's drift (this machine's speed changed by half within an hour) lands on all of
    them alike.  Median and p99 over all samples of a path."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    for _ in range(ROUNDS):
        for name, fn in fns.items():
            for _ in range(max(1, n // ROUNDS)):
                t0 = time.perf_counter()
                fn()
                samples[name].append((time.perf_counter() - t0) * 1e6)
    out = {}
    for name, xs in samples.items():
        xs.sort()
        out[name] = {"median_us": statistics.median(xs), "p99_us": xs[int(0.99 * (len(xs) - 1))],
                     "mean_us": statistics.fmean(xs)}  # fmt: skip
    return out


def timed(fn: Callable[[], object], n: int, warmup: int = 50) -> dict[str, float]:
    """One path, n steps."""
    return interleaved({"path": fn}, n, warmup)["path"]


def bench_batch1(model: FolkRNN, n: int) -> dict[str, dict[str, float]]:
    fns: dict[str, Callable[[], object]] = {}
    ref = ReferenceLSTM(lasagne_params(model), model.config.num_layers)
    tok = 5
    fns["baseline numpy per-gate"] = lambda: ref.step(tok)
    st = NumpyStepper(model)
    state = [st.initial_state(1)]
    toks = np.array([tok])

    def np_step() -> None:
        _, state[0], _ = st.step(toks, state[0])

    fns["numpy stepper (ours)"] = np_step
    tst = TorchStepper(model)
    tstate = [tst.initial_state(1)]
    ttoks = torch.tensor([tok])

    def torch_step() -> None:
        _, tstate[0], _ = tst.step(ttoks, tstate[0])

    fns["torch stepper, CPU"] = torch_step
    if torch.cuda.is_available():
        gm = FolkRNN(model.config)
        checkpoint.load_state_tensors(gm, checkpoint.state_tensors(model))
        gm = gm.cuda().eval()
        gst = TorchStepper(gm)
        gstate = [gst.initial_state(1)]
        gtoks = torch.tensor([tok], device="cuda")

        def gpu_step() -> None:
            _, gstate[0], _ = gst.step(gtoks, gstate[0])
            torch.cuda.synchronize()

        fns["torch stepper, GPU"] = gpu_step
    return interleaved(fns, n)


def bench_voice_capture(model: FolkRNN, n: int) -> dict[str, dict[str, float]]:
    """A whole voice step (forward, interventions, sampling) with capture off and on."""
    res: dict[str, dict[str, float]] = {}
    for capture in (False, True, False, True):  # interleaved, the better of two runs each
        v = Voice(model, seed=1, capture=capture, max_tokens=100_000)
        r = timed(lambda v=v: v.step() or v.start_tune(), n)  # type: ignore[misc]
        key = f"voice step, capture {'on' if capture else 'off'}"
        if key not in res or r["median_us"] < res[key]["median_us"]:
            res[key] = r
    return res


def bench_throughput(model: FolkRNN, batch: int, steps: int) -> float:
    """Tokens per second of batched generation (the batch kept full)."""
    seeds = iter(range(10**9))
    t0 = time.perf_counter()
    count = 0
    for tune in generate_tunes(model, seeds, batch=batch, max_tokens=1000):
        count += len(tune.tokens)
        if count >= steps:
            break
    return count / (time.perf_counter() - t0)


def bench_tunes(model: FolkRNN, n: int, batch: int) -> dict[str, float]:
    t0 = time.perf_counter()
    tokens = 0
    ended = 0
    for tune in generate_tunes(model, range(1, n + 1), batch=batch):
        tokens += len(tune.tokens)
        ended += tune.ended == "end"
    dt = time.perf_counter() - t0
    return {"tunes": n, "seconds": dt, "tokens": tokens, "mean_tokens_per_tune": tokens / n,
            "ended_with_end_token": ended / n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="shorter runs; project the 30,000-tune time")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    model, which = load_model()
    n = 1000 if args.quick else 3000
    results: dict[str, object] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
        "model": which,
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
    b1 = bench_batch1(model, n)
    results["batch1"] = b1
    base = b1["baseline numpy per-gate"]["median_us"]
    print(f"model: {which}\n\nbatch-1 step latency (median / p99 over {n} steps):")
    for name, r in b1.items():
        print(f"  {name:28s} {r['median_us']:8.1f} us  {r['p99_us']:8.1f} us   {base / r['median_us']:.2f}x baseline")
    cap = bench_voice_capture(model, n)
    results["capture"] = cap
    off, on = cap["voice step, capture off"]["median_us"], cap["voice step, capture on"]["median_us"]
    print(f"\nvoice step (forward + sampling): capture off {off:.1f} us, on {on:.1f} us "
          f"({(on / off - 1) * 100:+.1f} %)")
    tput = {}
    print("\ntokens/s (batched generation, batch kept full):")
    for batch, steps in ((1, 2000), (64, 20_000), (512, 100_000)):
        if args.quick:
            steps //= 2
        tput[batch] = bench_throughput(model, batch, steps)
        print(f"  batch {batch:4d}: {tput[batch]:10.0f} tokens/s")
    results["tokens_per_s"] = tput
    n_tunes = 2000 if args.quick else 30_000
    tunes = bench_tunes(model, n_tunes, 512)
    if args.quick:
        tunes["projected_seconds_for_30000"] = tunes["seconds"] * 30_000 / n_tunes
    results["tunes"] = tunes
    print(f"\n{n_tunes} tunes at batch 512: {tunes['seconds']:.1f} s ({tunes['mean_tokens_per_tune']:.0f} "
          f"tokens/tune, {tunes['ended_with_end_token'] * 100:.1f} % ended with </s>)")
    if args.quick:
        # An upper bound: in a short run the last batch's slow tail (a few tunes running to the
        # 1000-token cap while the batch empties) is a large share of the time; the full run measures.
        print(f"  projected for 30,000 tunes: at most {tunes['projected_seconds_for_30000'] / 60:.1f} min "
              "(a short run's tail inflates it; run without --quick to measure)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
