"""``folkrnn-live evaluate``: the model card's quality figures for any model.

Generates tunes with fixed seeds and reports the share of bars with the right length for their
meter (the bar checker in :mod:`folkrnn_live.abc.bars`), the share of tunes that end with ``</s>``
within the length cap, and the form figures of :mod:`folkrnn_live.abc.form` (two repeated parts,
``|:`` where there is a ``:|``, repeats balanced, rests per note, tokens per tune).  ``--corpus FILE`` puts the same
figures of that corpus's tunes (of the prime's meter, when the prime names one) beside them;
``--heldout FILE`` adds the model's loss in nats per token on that file's tunes.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from folkrnn_live.cli.common import bounded_float, bounded_int, progress

if TYPE_CHECKING:
    from folkrnn_live.model.network import FolkRNN
from folkrnn_live.sampler.controls import DEFAULT_MAX_TOKENS, MAX_TOKENS_RANGE, SEED_RANGE, TEMPERATURE_RANGE


def parse_seed_range(text: str) -> range:
    """``1..200`` (inclusive) or a single seed."""
    try:
        lo_s, sep, hi_s = text.partition("..")
        lo, hi = int(lo_s), int(hi_s) if sep else int(lo_s)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--seeds must look like 1..200 or 7; got {text!r}") from exc
    if not SEED_RANGE[0] <= lo <= hi <= SEED_RANGE[1]:
        raise argparse.ArgumentTypeError(f"--seeds must satisfy {SEED_RANGE[0]} <= first <= last <= {SEED_RANGE[1]}")
    return range(lo, hi + 1)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="bar accuracy and </s> rate of generated tunes (the model card figures)")
    p.add_argument("--model", default=None, metavar="DIR", help="model directory (default: the shipped model)")
    p.add_argument("--seeds", type=parse_seed_range, default=range(1, 201), help="seed range, default 1..200")
    p.add_argument("--temperature", type=bounded_float("--temperature", *TEMPERATURE_RANGE), default=1.0)
    p.add_argument("--prime", default="", help="prime tokens, e.g. 'M:6/8 K:Cmaj'")
    p.add_argument("--max-tokens", type=bounded_int("--max-tokens", *MAX_TOKENS_RANGE), default=DEFAULT_MAX_TOKENS)
    p.add_argument("--batch", type=bounded_int("--batch", 1, 4096), default=64)
    p.add_argument("--precision", choices=("fp32", "int8"), default="fp32", help="step weights (int8: CPU only)")
    p.add_argument("--corpus", default=None, metavar="FILE",
                   help="a corpus file whose figures (tunes of the prime's meter) are printed beside the model's")
    p.add_argument("--heldout", default=None, metavar="FILE",
                   help="a corpus file of held-out tunes: report the model's loss on them in nats per token")
    p.set_defaults(func=run)


def _figures(tunes: Sequence[Sequence[str]]) -> dict[str, float | int]:
    """Bars right and the form figures of token tunes (the same for generated and corpus tunes)."""
    from folkrnn_live.abc.bars import check_bars
    from folkrnn_live.abc.form import form_figures

    bars = ok = all_ok = 0
    for tune in tunes:
        report = check_bars(tune)
        bars += report.n_bars
        ok += report.n_ok
        all_ok += report.all_ok
    n = len(tunes)
    return {
        "bars": bars,
        "bar_accuracy": ok / bars if bars else 0.0,
        "tunes_with_every_bar_right": all_ok / n if n else 0.0,
        **form_figures(tunes).as_dict(),
    }


def _corpus_figures(path: str, prime: list[str]) -> dict[str, object]:
    from folkrnn_live.abc.corpus import read_corpus
    from folkrnn_live.abc.form import tunes_of_meter

    try:
        tunes = read_corpus(path)
    except OSError as exc:
        raise ValueError(f"--corpus {path}: {exc.strerror or exc}") from exc
    meter = next((t for t in prime if t.startswith("M:")), None)
    chosen = tunes_of_meter(tunes, meter) if meter else tunes
    if not chosen:
        raise ValueError(f"--corpus {path}: no tunes{f' in {meter}' if meter else ''}")
    return {"file": path, "meter": meter or "all", **_figures(chosen)}


def _heldout_loss(model: FolkRNN, path: str) -> dict[str, object]:
    import torch

    from folkrnn_live.train.data import read_corpus as read_token_corpus
    from folkrnn_live.train.trainer import evaluate as corpus_loss

    corpus = read_token_corpus(path, model.config.vocab)
    loss = corpus_loss(model, corpus, 64, torch.device("cpu"))
    return {"file": path, "tunes": len(corpus.tunes), "tokens": corpus.num_tokens, "nats_per_token": round(loss, 4)}


def run(args: argparse.Namespace) -> int:
    from folkrnn_live.model.checkpoint import load_default_or
    from folkrnn_live.sampler.batch import generate_tunes

    ckpt = load_default_or(args.model)
    t0 = time.perf_counter()
    tunes = generate_tunes(ckpt.model, args.seeds, temperature=args.temperature, prime=args.prime.split(),
                           max_tokens=args.max_tokens, batch=min(args.batch, len(args.seeds)),
                           precision=args.precision)
    done = list(progress(tunes, len(args.seeds), "evaluating"))
    n = len(args.seeds)
    doc: dict[str, object] = {
        "model": str(ckpt.path),
        "seeds": f"{args.seeds.start}..{args.seeds.stop - 1}",
        "temperature": args.temperature,
        "prime": args.prime,
        **_figures([t.tokens for t in done]),
        "ended_with_end_token": sum(t.ended == "end" for t in done) / n,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if args.corpus:
        doc["corpus"] = _corpus_figures(args.corpus, args.prime.split())
    if args.heldout:
        doc["heldout"] = _heldout_loss(ckpt.model, args.heldout)
    print(json.dumps(doc, indent=1))
    return 0
