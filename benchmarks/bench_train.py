"""Training throughput of the v2 recipe: tokens per second on this machine.

    python3 benchmarks/bench_train.py --corpus corpus.txt [--batches 20] [--device cpu|cuda]

Builds the corpus first if it is missing (``folkrnn-live corpus build music21``), then times
``--batches`` training batches (64 tunes of neighbouring length, dropout, RMSprop, clipping) after
two warm-up batches, exactly as ``folkrnn-live train`` runs them.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from folkrnn_live.train.data import length_batches
from folkrnn_live.train.trainer import TrainConfig, Trainer, batch_loss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=None, help="corpus file (default: build music21's into a temp dir)")
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    corpus = args.corpus
    if corpus is None:
        corpus = str(Path(tempfile.mkdtemp()) / "corpus.txt")
        subprocess.run([sys.executable, "-m", "folkrnn_live", "corpus", "build", "music21", "--out", corpus],
                       check=True, stdout=subprocess.DEVNULL)
    out = tempfile.mkdtemp()
    trainer = Trainer(TrainConfig(corpus=corpus, out=out, device=args.device), log=lambda _m: None)
    model, opt = trainer.model, trainer.opt
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    rng = np.random.default_rng(0)
    tokens, seconds = 0, 0.0
    for n, batch in enumerate(length_batches(trainer.train_set, 64, rng)):
        if n >= args.batches + 2:
            break
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        s, k = batch_loss(model, batch, trainer.device)
        opt.zero_grad(set_to_none=True)
        (s / batch.inputs.shape[0]).backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        if n >= 2:  # warm-up batches are not counted
            seconds += time.perf_counter() - t0
            tokens += int(k)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}"
    dev = torch.cuda.get_device_name() if trainer.device.type == "cuda" else "CPU"
    print(f"{machine}; device {dev}")
    print(f"training: {tokens} tokens in {seconds:.1f} s over {args.batches} batches of 64 tunes: "
          f"{tokens / seconds:.0f} tokens/s")


if __name__ == "__main__":
    main()
