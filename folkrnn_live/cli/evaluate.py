"""``folkrnn-live evaluate``: the model card's quality figures for any model.

Generates tunes with fixed seeds and reports the share of bars with the right length for their
meter (the bar checker in :mod:`folkrnn_live.abc.bars`) and the share of tunes that end with
``</s>`` within the length cap.
"""

from __future__ import annotations

import argparse
import json
import time

from folkrnn_live.cli.common import bounded_float, bounded_int, progress
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from folkrnn_live.abc.bars import check_bars
    from folkrnn_live.model.checkpoint import load_default_or
    from folkrnn_live.sampler.batch import generate_tunes

    ckpt = load_default_or(args.model)
    t0 = time.perf_counter()
    tunes = generate_tunes(ckpt.model, args.seeds, temperature=args.temperature, prime=args.prime.split(),
                           max_tokens=args.max_tokens, batch=min(args.batch, len(args.seeds)))
    bars = ok = ended = tokens = 0
    tunes_all_ok = 0
    for tune in progress(tunes, len(args.seeds), "evaluating"):
        report = check_bars(tune.tokens)
        bars += report.n_bars
        ok += report.n_ok
        tunes_all_ok += report.all_ok
        ended += tune.ended == "end"
        tokens += len(tune.tokens)
    n = len(args.seeds)
    doc = {
        "model": str(ckpt.path),
        "seeds": f"{args.seeds.start}..{args.seeds.stop - 1}",
        "temperature": args.temperature,
        "tunes": n,
        "bars": bars,
        "bar_accuracy": ok / bars if bars else 0.0,
        "tunes_with_every_bar_right": tunes_all_ok / n,
        "ended_with_end_token": ended / n,
        "mean_tokens_per_tune": tokens / n,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(doc, indent=1))
    return 0
