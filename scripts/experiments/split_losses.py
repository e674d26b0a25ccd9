#!/usr/bin/env python3
"""The losses of docs/model-card.md "Held-out loss: why the previous figure was lower" (issue 11).

    split_losses.py MODEL_DIR... [--dance-train dance-train.txt] [--heldout dance-test.txt]

For each model, the loss in nats per token on three sets of dance tunes: the tunes a fine-tune on
DANCE_TRAIN trains on, the ones its early stop is judged on (the trainer's own seeded split) and
the held-out tunes. A model that has read only the training tunes scores the other two sets clearly
worse; one that scores the early-stop tunes no worse than the training tunes has likely read both.
The sets also differ in difficulty (the held-out tunes score higher under every model), so compare
models, not one model's sets alone.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from folkrnn_live.model.checkpoint import load
from folkrnn_live.train.data import read_corpus, split
from folkrnn_live.train.trainer import TrainConfig, evaluate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", type=Path, nargs="+")
    ap.add_argument("--dance-train", type=Path, default=Path("runs/dance-train.txt"))
    ap.add_argument("--heldout", type=Path, default=Path("runs/dance-test.txt"))
    args = ap.parse_args()
    defaults = TrainConfig(corpus="", out="")
    cpu = torch.device("cpu")
    for d in args.models:
        model = load(d).model
        train, valid = split(read_corpus(args.dance_train, model.config.vocab), defaults.valid_fraction, defaults.seed)
        heldout = read_corpus(args.heldout, model.config.vocab)
        sets = {"fine-tune training tunes": train, "early-stop tunes": valid, "held-out tunes": heldout}
        losses = ", ".join(f"{name} ({len(c.tunes)}): {evaluate(model, c, 64, cpu):.4f}" for name, c in sets.items())
        print(f"{d}: {losses}", flush=True)


if __name__ == "__main__":
    main()
