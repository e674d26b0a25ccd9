"""Batch-1 step CPU time (``time.process_time``) of the baseline, fp32 and int8 paths, one thread each.

    OPENBLAS_NUM_THREADS=1 python3 benchmarks/bench_step_cpu_time.py

On a machine shared with other work, wall-clock step times mostly measure the scheduler; the CPU
time a step consumes on one thread depends much less on the load (the shared cache still does).
Rounds interleave the paths; the last line is the CPU time of a 512-row step of each path.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from bench_step import _stepping, lasagne_params, load_model

from folkrnn_live.model.reference import ReferenceLSTM
from folkrnn_live.model.step import NumpyStepper
from folkrnn_live.model.step_int8 import Int8Stepper


def cpu_us(fn: Callable[[], object], n: int) -> float:
    for _ in range(20):
        fn()
    t0 = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - t0) / n * 1e6


def main() -> None:
    model, which = load_model()
    ref = ReferenceLSTM(lasagne_params(model), model.config.num_layers)
    fp32, int8 = NumpyStepper(model), Int8Stepper(model)
    torch.set_num_threads(1)
    fns = {"baseline": lambda: ref.step(5), "fp32": _stepping(fp32), "int8": _stepping(int8)}
    print(f"model: {which}; CPU time per batch-1 step, one thread")
    for r in range(1, 6):
        res = {k: cpu_us(fn, 500) for k, fn in fns.items()}
        base = res["baseline"]
        print(f"round {r}: " + ", ".join(f"{k} {v:.0f} us ({base / v:.2f}x)" for k, v in res.items()))
    big = {k: cpu_us(_stepping(st, 512), 10) / 1000 for k, st in (("fp32", fp32), ("int8", int8))}
    print("512-row step: " + ", ".join(f"{k} {v:.1f} ms" for k, v in big.items()))


if __name__ == "__main__":
    main()
