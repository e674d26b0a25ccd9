"""``folkrnn-live record``: generate tunes offline with every activation recorded.

    folkrnn-live record --model DIR --out REC --seed 42 --prime "M:4/4 K:Cmaj" [--n-tunes 3]
    folkrnn-live record ... --report REPORT_DIR      # and report the first tune in one go

Ctrl-C stops recording; what was generated so far is kept (the recording is closed cleanly).

The recording format is described in docs/recording-format.md; ``folkrnn-live analyze REC ...``
reads it.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from folkrnn_live.cli.common import bounded_float, bounded_int
from folkrnn_live.sampler.controls import DEFAULT_MAX_TOKENS, MAX_TOKENS_RANGE, SEED_RANGE, TEMPERATURE_RANGE


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "record", help="generate tunes offline and record every activation (see docs/recording-format.md)"
    )
    p.add_argument(
        "--model", default=None, metavar="DIR", help="model directory (default: the shipped model)"
    )
    p.add_argument("--out", required=True, metavar="REC", help="recording directory to create (new or empty)")
    p.add_argument(
        "--seed",
        type=bounded_int("--seed", *SEED_RANGE),
        default=0,
        help="seed of the first tune (tune k uses seed+k)",
    )
    p.add_argument("--temperature", type=bounded_float("--temperature", *TEMPERATURE_RANGE), default=1.0)
    p.add_argument("--prime", default="", help="prime tokens, e.g. 'M:4/4 K:Cmaj'")
    p.add_argument("--n-tunes", type=bounded_int("--n-tunes", 1, 100_000), default=1)
    p.add_argument(
        "--max-tokens", type=bounded_int("--max-tokens", *MAX_TOKENS_RANGE), default=DEFAULT_MAX_TOKENS
    )
    p.add_argument("--voice", default="a", help="voice name stored in the recording (default: a)")
    p.add_argument(
        "--stimulate",
        type=bounded_float("--stimulate", 0.0, 1.0),
        default=None,
        metavar="W",
        help="seed 003's two-hot input: (1-W) x the generated token + W x a random pitch token",
    )
    p.add_argument(
        "--snip",
        default=None,
        metavar="JSON",
        help='snip units while recording: {"layer": L, "mode": "out", "units": [...]} (layers 0-based)',
    )
    p.add_argument("--chunk-steps", type=bounded_int("--chunk-steps", 1, 1_000_000), default=256)
    p.add_argument("--compress", action="store_true", help="write compressed chunks (smaller, slower)")
    p.add_argument("--float16", action="store_true", help="store activations as float16 (half the size)")
    p.add_argument(
        "--report", default=None, metavar="DIR", help="also write the report of the first tune here"
    )
    # The defaults let command_line() leave out what the user did not set.
    p.set_defaults(func=run, _defaults={a.dest: a.default for a in p._actions})


def command_line(name: str, args: argparse.Namespace, positional: tuple[str, ...] = ()) -> str:
    """The command as a shell line rebuilt from the parsed options (not from sys.argv, which is the
    caller's own when main() is called as a function): what a reader pastes to run it again."""
    words = ["folkrnn-live", name, *positional]
    defaults = getattr(args, "_defaults", {})
    for key, value in vars(args).items():
        if key in ("func", "command", "items") or key.startswith("_") or value is None or value is False:
            continue
        if key in defaults and defaults[key] == value and key not in ("model", "out"):
            continue
        flag = "--" + key.replace("_", "-")
        words += [flag] if value is True else [flag, str(value)]
    return shlex.join(words)


def parse_snip(text: str) -> tuple[int, list[int], str]:
    import json

    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f'--snip must be JSON like {{"layer": 2, "mode": "out", "units": [1, 2]}}: {exc}'
        ) from exc
    if not isinstance(d, dict) or not isinstance(d.get("layer"), int) or not isinstance(d.get("units"), list):
        raise ValueError(
            '--snip must be an object with integer "layer", list "units" and optional "mode" (out or all)'
        )
    return d["layer"], [int(u) for u in d["units"]], str(d.get("mode", "out"))


def run(args: argparse.Namespace) -> int:
    from folkrnn_live.model.checkpoint import load_default_or
    from folkrnn_live.recording.recorder import Recorder
    from folkrnn_live.sampler.voice import Voice

    ckpt = load_default_or(args.model)
    model = ckpt.model
    prime = args.prime.split()
    model.config.vocab.encode(prime)  # every unknown prime token reported before anything runs
    voice = Voice(
        model, seed=args.seed, temperature=args.temperature, prime=prime, max_tokens=args.max_tokens
    )
    if args.stimulate is not None:
        pitches = model.config.vocab.select("@pitch")
        voice.controls.set_force(1.0 - args.stimulate, [(pitches, args.stimulate)], None)
    if args.snip is not None:
        layer, units, mode = parse_snip(args.snip)
        voice.controls.set_snip(layer, units, mode)  # type: ignore[arg-type]
    command = command_line("record", args)
    meta = {
        "command": command,
        "model_dir": str(Path(ckpt.path).resolve()) if ckpt.path is not None else None,
        "seed": args.seed,
        "temperature": args.temperature,
        "prime": prime,
        "n_tunes": args.n_tunes,
        "stimulate": args.stimulate,
        "snip": args.snip,
    }
    # Offline there is no note to delay: 'block' waits for the writer instead of dropping steps.
    rec = Recorder(
        args.out,
        model,
        meta=meta,
        chunk_steps=args.chunk_steps,
        on_full="block",
        compress=args.compress,
        dtype="float16" if args.float16 else "float32",
    )
    interrupted = False
    with rec:
        rec.attach(voice, name=args.voice)
        try:
            for k in range(args.n_tunes):
                if k:
                    voice.start_tune()  # the next seed, same prime
                tokens = voice.generate()
                print(f"seed {voice.seed}: {' '.join(tokens)}")
        except KeyboardInterrupt:  # stop recording; leaving the with-block writes what was generated
            interrupted = True
    st = rec.stats
    print(
        f"recorded {st.steps} steps ({st.chunks} chunks, {st.bytes / 1e6:.1f} MB, {st.dropped} dropped) in {args.out}",
        file=sys.stderr,
    )
    if interrupted:
        print("interrupted: the recording holds the steps generated so far", file=sys.stderr)
        return 130
    if args.report:
        from folkrnn_live.analysis.report import make_report

        # The ablation generates its own tunes and does not depend on this recording: run it with
        # folkrnn-live analyze REC --report DIR (or analyze ablation) when wanted.
        index = make_report(Path(args.out), args.report, model=model, commands=[command], skip=("ablation",))
        print(f"report: {index}", file=sys.stderr)
    return 0
