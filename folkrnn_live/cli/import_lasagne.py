"""``folkrnn-live import-lasagne PKL OUTDIR``: the original folk-rnn model files."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import-lasagne",
        help="import an original folk-rnn model pickle (folkrnn_v2.pkl, ...) safely",
        description="Reads the Python 2 pickle through a restricted unpickler that admits only dicts, lists, "
        "strings, numbers and numpy arrays, and writes a safetensors + JSON model directory.",
    )
    p.add_argument("pkl", help="original model file (.pkl)")
    p.add_argument("outdir", help="output model directory")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from folkrnn_live.model.checkpoint import load
    from folkrnn_live.model.lasagne import import_pickle

    out = import_pickle(args.pkl, args.outdir)
    ckpt = load(out)
    print(
        f"imported {args.pkl}: {ckpt.config.num_layers} x {ckpt.config.hidden_size} LSTM, "
        f"{ckpt.config.vocab_size} tokens, {ckpt.model.num_trainable()} parameters -> {out}"
    )
    return 0
