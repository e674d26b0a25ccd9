"""``folkrnn-live generate`` and ``folkrnn-live score``: offline sampling and scoring."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from folkrnn_live.cli.common import DefaultsFormatter, bounded_float, bounded_int, progress
from folkrnn_live.sampler.controls import DEFAULT_MAX_TOKENS, MAX_TOKENS_RANGE, SEED_RANGE, TEMPERATURE_RANGE


def register(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser(
        "generate", help="generate tunes offline (ABC or tokens)", formatter_class=DefaultsFormatter,
        description="Generate tunes offline with a folk-rnn v2 model, many at once (batched), and write them as "
        "ABC (each with X:, T: and the seed) or as v2 token lines.  Tune k uses seed+k, so a run is repeatable. "
        "A progress bar runs on stderr when it is a terminal; the last line (stderr) says how many tunes were "
        "written and where.",
    )
    g.add_argument("--model", default=None, metavar="DIR", help="model directory (default: the shipped model)")
    g.add_argument("--n", type=bounded_int("--n", 1, 10_000_000), default=1, help="number of tunes")
    g.add_argument("--seed", type=bounded_int("--seed", *SEED_RANGE), default=None,
                   help="seed of the first tune (tune k uses seed+k); default: random, printed at the end")
    g.add_argument("--temperature", type=bounded_float("--temperature", *TEMPERATURE_RANGE), default=1.0,
                   help=f"softmax temperature, {TEMPERATURE_RANGE[0]:g}..{TEMPERATURE_RANGE[1]:g}: lower is safer, "
                   "higher is wilder")
    g.add_argument("--prime", default="", help="prime tokens every tune starts with, e.g. 'M:6/8 K:Cmaj' "
                   "(default: none, the model chooses meter and mode)")
    g.add_argument("--max-tokens", type=bounded_int("--max-tokens", *MAX_TOKENS_RANGE), default=DEFAULT_MAX_TOKENS,
                   help="a tune that has not ended by then is cut")
    g.add_argument("--batch", type=bounded_int("--batch", 1, 4096), default=64, help="tunes generated at once")
    g.add_argument("--format", choices=("abc", "tokens"), default="abc", help="ABC, or v2 token lines")
    g.add_argument("--out", default="-", help="output file; - is stdout")
    g.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (CUDA when present)")
    g.add_argument("--precision", choices=("fp32", "int8"), default="fp32",
                   help="step weights: fp32, or int8 (CPU, faster, not token-identical; docs/benchmarks.md)")
    g.set_defaults(func=run_generate)

    s = sub.add_parser("score", help="log-probability of each token under a model (JSON)")
    s.add_argument("--model", default=None, metavar="DIR", help="model directory (default: the shipped model)")
    s.add_argument("--tokens", required=True, help="token string; <s> is fed first")
    s.add_argument("--temperature", type=bounded_float("--temperature", *TEMPERATURE_RANGE), default=1.0)
    s.set_defaults(func=run_score)


def run_generate(args: argparse.Namespace) -> int:
    import secrets

    from folkrnn_live.model.checkpoint import load_default_or
    from folkrnn_live.sampler.batch import generate_tunes

    ckpt = load_default_or(args.model, args.device)
    seed0 = args.seed if args.seed is not None else secrets.randbelow(1_000_000)
    seeds = [(seed0 + k) % (SEED_RANGE[1] + 1) for k in range(args.n)]
    # Checks the prime (every unknown token named) before anything runs or is written.
    tunes = generate_tunes(
        ckpt.model, seeds, temperature=args.temperature, prime=args.prime.split(), max_tokens=args.max_tokens,
        batch=min(args.batch, args.n), precision=args.precision,
    )
    out = sys.stdout if args.out == "-" else open(Path(args.out), "w", encoding="utf-8")  # noqa: SIM115
    try:
        done = {t.seed: t for t in progress(tunes, args.n, "generating", enabled=args.n > 1)}
        for k, seed in enumerate(seeds, 1):
            tune = done[seed]
            body = [t for t in tune.tokens if t != "</s>"]
            if args.format == "tokens":
                out.write(" ".join(body) + "\n\n")
            else:
                from folkrnn_live.abc.writer import tokens_to_abc

                title = f"folk-rnn seed {seed} T={args.temperature:g}"
                out.write(tokens_to_abc(body, number=k, title=title) + "\n\n")  # ABC: a blank line ends a tune
    finally:
        if out is not sys.stdout:
            out.close()
    where = "stdout" if args.out == "-" else args.out
    seeds_text = f"seed {seeds[0]}" if args.n == 1 else f"seeds {seeds[0]}..{seeds[-1]}"
    print(f"wrote {args.n} tune{'s' if args.n != 1 else ''} ({args.format}, {seeds_text}) to {where}",
          file=sys.stderr)
    return 0


def run_score(args: argparse.Namespace) -> int:
    import torch

    from folkrnn_live.model.checkpoint import load_default_or

    ckpt = load_default_or(args.model)
    vocab = ckpt.config.vocab
    toks = args.tokens.split()
    if toks and toks[0] == "<s>":
        toks = toks[1:]
    if not toks:
        raise ValueError("--tokens must name at least one token")
    idx = vocab.encode(toks)
    inp = torch.tensor([[vocab.start, *idx[:-1]]])
    logp = ckpt.model.log_probs(inp, args.temperature)[0]
    per = [float(logp[t, i]) for t, i in enumerate(idx)]
    doc = {
        "tokens": [{"token": tok, "logprob": lp} for tok, lp in zip(toks, per, strict=True)],
        "total_nll": -sum(per),
        "mean_nll": -sum(per) / len(per),
    }
    print(json.dumps(doc, indent=1))
    return 0
