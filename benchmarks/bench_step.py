"""Step latency and throughput of the v2 network, against the plain numpy baseline.

    python3 benchmarks/bench_step.py                     # everything, incl. 30,000 tunes per precision
    python3 benchmarks/bench_step.py --quick             # a few minutes; the 30,000-tune time is projected
    python3 benchmarks/bench_step.py --runs 5 --parts batch1      # the batch-1 comparison, 5 times
    python3 benchmarks/bench_step.py --device cuda --parts batch1 throughput tunes   # on a GPU

Baseline, side by side in the same run: ``folkrnn_live.model.reference.ReferenceLSTM``, a plain
numpy implementation of the v2 equations with one matrix per gate, as the original fast sampler
did.  Targets: batch-1 step >= 2.5x faster than the baseline on CPU (issue 2, and in every run of
5, issue 17) and >= 4x with int8 weights (issue 17); <= 30 us per step on a GPU; 30,000 tunes in
<= 2.5 min on this CPU with the fastest path (issue 17), <= 20 s on a GPU; capture on <= 10 %
slower.
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
from folkrnn_live.model.step import NumpyStepper, Stepper, TorchStepper
from folkrnn_live.model.step_int8 import Int8Stepper
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


def _stepping(st: Stepper, batch: int = 1, tok: int = 5) -> Callable[[], object]:
    """A closure running one step of ``st`` at ``batch`` rows, carrying the state."""
    state = [st.initial_state(batch)]
    toks = st.from_numpy(np.full(batch, tok, dtype=np.int64))
    sync = torch.cuda.synchronize if isinstance(st, TorchStepper) and st.device.type == "cuda" else None

    def run() -> None:
        _, state[0], _ = st.step(toks, state[0])
        if sync is not None:
            sync()

    return run


def cuda_model(model: FolkRNN) -> FolkRNN:
    gm = FolkRNN(model.config)
    checkpoint.load_state_tensors(gm, checkpoint.state_tensors(model))
    return gm.cuda().eval()


def bench_batch1(model: FolkRNN, n: int, torch_cpu: bool = False) -> dict[str, dict[str, float]]:
    ref = ReferenceLSTM(lasagne_params(model), model.config.num_layers)
    fns: dict[str, Callable[[], object]] = {"baseline numpy per-gate": lambda: ref.step(5)}
    fns["numpy stepper fp32 (ours)"] = _stepping(NumpyStepper(model))
    fns["int8 stepper (ours)"] = _stepping(Int8Stepper(model))
    if torch_cpu:
        fns["torch stepper, CPU"] = _stepping(TorchStepper(model))
    if torch.cuda.is_available():
        from folkrnn_live.model.step_cuda import CudaGraphStepper

        gm = cuda_model(model)
        fns["torch stepper, GPU eager"] = _stepping(TorchStepper(gm))
        fns["CUDA graph stepper, GPU"] = _stepping(CudaGraphStepper(gm))
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


def bench_throughput(model: FolkRNN, batch: int, steps: int, precision: str = "fp32") -> float:
    """Tokens per second of batched generation (the batch kept full)."""
    seeds = iter(range(10**9))
    t0 = time.perf_counter()
    count = 0
    for tune in generate_tunes(model, seeds, batch=batch, max_tokens=1000, precision=precision):
        count += len(tune.tokens)
        if count >= steps:
            break
    return count / (time.perf_counter() - t0)


def bench_tunes(model: FolkRNN, n: int, batch: int, precision: str = "fp32") -> dict[str, float]:
    t0 = time.perf_counter()
    tokens = 0
    ended = 0
    for tune in generate_tunes(model, range(1, n + 1), batch=batch, precision=precision):
        tokens += len(tune.tokens)
        ended += tune.ended == "end"
    dt = time.perf_counter() - t0
    return {"tunes": n, "seconds": dt, "tokens": tokens, "mean_tokens_per_tune": tokens / n,
            "ended_with_end_token": ended / n}


PARTS = ("batch1", "capture", "throughput", "tunes")


def part_batch1(model: FolkRNN, n: int, runs: int, torch_cpu: bool) -> list[dict[str, dict[str, float]]]:
    out = []
    for run in range(1, runs + 1):
        b1 = bench_batch1(model, n, torch_cpu)
        out.append(b1)
        base = b1["baseline numpy per-gate"]["median_us"]
        print(f"batch-1 step, run {run} of {runs} (median / p99 over {n} steps, load {os.getloadavg()[0]:.2f}):")
        for name, r in b1.items():
            print(f"  {name:28s} {r['median_us']:8.1f} us  {r['p99_us']:8.1f} us  "
                  f" {base / r['median_us']:.2f}x baseline")
    for name, target in (("numpy stepper fp32 (ours)", 2.5), ("int8 stepper (ours)", 4.0)):
        ratios = [b["baseline numpy per-gate"]["median_us"] / b[name]["median_us"] for b in out]
        met = sum(x >= target for x in ratios)
        print(f"{name}: {', '.join(f'{x:.2f}x' for x in ratios)} -> >= {target}x in {met} of {runs} runs")
    return out


def part_tunes(model: FolkRNN, n_tunes: int, precisions: list[str], quick: bool) -> dict[str, dict[str, float]]:
    out = {}
    for precision in precisions:
        tunes = bench_tunes(model, n_tunes, 512, precision)
        if quick:
            tunes["projected_seconds_for_30000"] = tunes["seconds"] * 30_000 / n_tunes
        out[precision] = tunes
        print(f"{n_tunes} tunes at batch 512, {precision}: {tunes['seconds']:.1f} s "
              f"({tunes['mean_tokens_per_tune']:.0f} tokens/tune, {tunes['ended_with_end_token'] * 100:.1f} % "
              f"ended with </s>, load {os.getloadavg()[0]:.2f})", flush=True)
        if quick:
            # An upper bound: in a short run the last batch's slow tail (a few tunes running to the
            # 1000-token cap while the batch empties) is a large share of the time; the full run measures.
            print(f"  projected for 30,000 tunes: at most {tunes['projected_seconds_for_30000'] / 60:.1f} min "
                  "(a short run's tail inflates it; run without --quick to measure)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="shorter runs; project the 30,000-tune time")
    ap.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    ap.add_argument("--runs", type=int, default=1, help="repeat the batch-1 comparison (each interleaved)")
    ap.add_argument("--tunes", type=int, default=None, help="tunes to generate (default 30,000; --quick 2,000)")
    ap.add_argument("--precisions", nargs="+", choices=("fp32", "int8"), default=["fp32", "int8"],
                    help="paths for throughput and tunes (CPU)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="throughput and tunes on this device")
    ap.add_argument("--torch-cpu", action="store_true", help="also time the torch stepper on the CPU")
    ap.add_argument("--int8-threads", type=int, default=1, help="torch threads of a batched int8 step")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    model, which = load_model()
    Int8Stepper.default_batch_threads = args.int8_threads
    n = 1000 if args.quick else 3000
    results: dict[str, object] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
        "model": which,
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "load_before": os.getloadavg()[0],
    }
    print(f"model: {which}; load average {os.getloadavg()[0]:.2f}")
    if "batch1" in args.parts:
        results["batch1"] = part_batch1(model, n, args.runs, args.torch_cpu)
    if "capture" in args.parts:
        cap = bench_voice_capture(model, n)
        results["capture"] = cap
        off, on = cap["voice step, capture off"]["median_us"], cap["voice step, capture on"]["median_us"]
        print(f"\nvoice step (forward + sampling): capture off {off:.1f} us, on {on:.1f} us "
              f"({(on / off - 1) * 100:+.1f} %)")
    gen_model = cuda_model(model) if args.device == "cuda" else model
    precisions = ["fp32"] if args.device == "cuda" else args.precisions
    if "throughput" in args.parts:
        tput: dict[str, dict[int, float]] = {}
        print("\ntokens/s (batched generation, batch kept full):")
        for precision in precisions:
            tput[precision] = {}
            for batch, steps in ((1, 2000), (64, 20_000), (512, 100_000)):
                tput[precision][batch] = bench_throughput(gen_model, batch, steps // 2 if args.quick else steps,
                                                          precision)
                print(f"  {precision} batch {batch:4d}: {tput[precision][batch]:10.0f} tokens/s", flush=True)
        results["tokens_per_s"] = tput
    if "tunes" in args.parts:
        n_tunes = args.tunes or (2000 if args.quick else 30_000)
        results["tunes"] = part_tunes(gen_model, n_tunes, precisions, args.quick)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
