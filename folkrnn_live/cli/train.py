"""``folkrnn-live train``: the v2 recipe by default."""

from __future__ import annotations

import argparse
from dataclasses import fields

from folkrnn_live.cli.common import DefaultsFormatter, bounded_float, bounded_int


def register(sub: argparse._SubParsersAction) -> None:
    from folkrnn_live.train.trainer import TrainConfig

    d = {f.name: f.default for f in fields(TrainConfig)}
    p = sub.add_parser(
        "train",
        help="train a model with the v2 recipe",
        formatter_class=DefaultsFormatter,
        description="Train with the v2 recipe by default (3 x 512 LSTM, dropout 0.5, RMSprop lr 0.003, batch 64, "
        "gradient norm clipped at 5, seeded 5 %% validation split, early stop on a plateau).  OUT gets the best "
        "model, last/ (the latest epoch; --resume continues from it with the same settings), history.json "
        "and loss.png.  Each epoch's line gives the losses, the speed, the time elapsed and an ETA.",
    )
    p.add_argument("--corpus", required=True, help="corpus file from 'corpus build' (required)")
    p.add_argument("--out", required=True, help="output directory: best model, last/, history.json, loss.png "
                   "(required)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last with the run's own settings")
    p.add_argument("--init", default=None, metavar="MODEL_DIR",
                   help="fine-tune from this model (e.g. an imported v2 pickle) instead of fresh weights; its "
                   "provenance is kept in the new model as provenance.pretrained")
    p.add_argument("--epochs", type=bounded_int("--epochs", 1, 10000), default=d["epochs"],
                   help="epochs at most (early stop and --max-minutes may end sooner)")
    p.add_argument("--batch-size", type=bounded_int("--batch-size", 1, 4096), default=d["batch_size"],
                   help="tunes per batch (similar lengths together)")
    p.add_argument("--lr", type=bounded_float("--lr", 1e-8, 10.0), default=d["lr"], help="RMSprop learning rate")
    p.add_argument("--clip", type=bounded_float("--clip", 0.0, 1e6), default=d["clip"], help="max gradient norm")
    p.add_argument("--dropout", type=bounded_float("--dropout", 0.0, 0.99), default=d["dropout"],
                   help="dropout after each LSTM layer")
    p.add_argument("--num-layers", type=bounded_int("--num-layers", 1, 8), default=d["num_layers"],
                   help="LSTM layers")
    p.add_argument("--hidden-size", type=bounded_int("--hidden-size", 1, 8192), default=d["hidden_size"],
                   help="units per LSTM layer")
    p.add_argument("--valid-fraction", type=bounded_float("--valid-fraction", 1e-4, 0.9), default=d["valid_fraction"],
                   help="share of the tunes held out for validation (a seeded split)")
    p.add_argument("--seed", type=bounded_int("--seed", 0, 2**31 - 1), default=d["seed"],
                   help="seed of the weights, the split, the batch order and dropout")
    p.add_argument("--patience", type=bounded_int("--patience", 1, 10000), default=d["patience"],
                   help="early stop after this many epochs without a better validation loss")
    p.add_argument("--device", default=d["device"], help="auto (CUDA when present), cpu, cuda, cuda:N")
    p.add_argument("--max-minutes", type=bounded_float("--max-minutes", 0.0, 1e7), default=None,
                   help="stop once this many minutes have passed: within an epoch, after the batch running then "
                   "(not after a whole epoch); the model so far is validated and saved, --resume goes on "
                   "(default: no limit)")
    p.add_argument("--max-batches", type=bounded_int("--max-batches", 1, 10**9), default=None,
                   help="at most this many batches per epoch (quick trials and smoke tests; default: all)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from folkrnn_live.train.trainer import TrainConfig, Trainer

    cfg = TrainConfig(
        corpus=args.corpus, out=args.out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        clip=args.clip, dropout=args.dropout, num_layers=args.num_layers, hidden_size=args.hidden_size,
        valid_fraction=args.valid_fraction, seed=args.seed, patience=args.patience, device=args.device,
        init=args.init, max_minutes=args.max_minutes, max_batches=args.max_batches,
    )
    history = Trainer(cfg, resume=args.resume).run()
    if history.epochs:
        print(f"best validation loss {history.best_valid:.4f} nats/token; model in {args.out}")
    return 0
