"""``folkrnn-live record``: generate tunes offline with every activation recorded.

    folkrnn-live record --model DIR --out REC --seed 42 --prime "M:4/4 K:Cmaj" [--n-tunes 3]
    folkrnn-live record ... --report REPORT_DIR      # and report the first tune in one go
    folkrnn-live record ... --suppress 32 @bar --bias '</s>' -3   # the server's interventions, offline

Ctrl-C stops recording; what was generated so far is kept (the recording is closed cleanly).

The recording format is described in docs/recording-format.md; ``folkrnn-live analyze REC ...``
reads it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from folkrnn_live.cli.common import bounded_float, bounded_int
from folkrnn_live.recording.recorder import Recorder
from folkrnn_live.recording.settings import MAX_BYTES_LIMIT
from folkrnn_live.sampler.controls import (
    BIAS_RANGE,
    DEFAULT_MAX_TOKENS,
    MAX_TOKENS_RANGE,
    SEED_RANGE,
    STEPS_RANGE,
    TEMPERATURE_RANGE,
    Controls,
    SnipMode,
)
from folkrnn_live.sampler.voice import Voice
from folkrnn_live.tokens.vocab import Vocabulary

SNIP_USAGE = '--snip must be JSON like {"layer": 2, "mode": "out", "units": [1, 2]}'


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "record", help="generate tunes offline and record every activation (see docs/recording-format.md)"
    )
    p.add_argument("--model", default=None, metavar="DIR", help="model directory (default: the shipped model)")
    p.add_argument(
        "--out",
        required=True,
        metavar="REC",
        help="recording directory to create (new or empty; anything else is refused)",
    )
    p.add_argument(
        "--seed",
        type=bounded_int("--seed", *SEED_RANGE),
        default=0,
        help="seed of the first tune (tune k uses seed+k)",
    )
    p.add_argument("--temperature", type=bounded_float("--temperature", *TEMPERATURE_RANGE), default=1.0)
    p.add_argument("--prime", default="", help="prime tokens, e.g. 'M:4/4 K:Cmaj'")
    p.add_argument("--n-tunes", type=bounded_int("--n-tunes", 1, 100_000), default=1)
    p.add_argument("--max-tokens", type=bounded_int("--max-tokens", *MAX_TOKENS_RANGE), default=DEFAULT_MAX_TOKENS)
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
    p.add_argument(
        "--suppress",
        nargs="+",
        action="append",
        metavar="STEPS SELECTOR",
        help="like the server's suppress: forbid tokens (token, @class or pc:X) for STEPS generated steps of "
        "every tune, counted from the first token after the prime (0: the whole tune); repeatable",
    )
    p.add_argument(
        "--bias",
        nargs=2,
        action="append",
        metavar=("SELECTOR", "AMOUNT"),
        help=f"like the server's bias: add AMOUNT ({BIAS_RANGE[0]:g}..{BIAS_RANGE[1]:g}) to the selected tokens' "
        "logits after the prime of every tune; repeatable",
    )
    p.add_argument(
        "--max-bytes",
        type=bounded_int("--max-bytes", 1, MAX_BYTES_LIMIT),
        default=None,
        metavar="N",
        help="size cap of the chunk files: at N bytes recording stops (what was written is kept, exit 0)",
    )
    p.add_argument("--precision", choices=("fp32", "int8"), default="fp32", help="step weights (int8: CPU only)")
    p.add_argument("--chunk-steps", type=bounded_int("--chunk-steps", 1, 1_000_000), default=256)
    p.add_argument("--compress", action="store_true", help="write compressed chunks (smaller, slower)")
    p.add_argument("--float16", action="store_true", help="store activations as float16 (half the size)")
    p.add_argument("--report", default=None, metavar="DIR", help="also write the report of the first tune here")
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
        if value is True:
            words.append(flag)
        elif isinstance(value, list):  # a repeatable option: one flag per use
            for item in value:
                words += [flag, *map(str, item)]
        else:
            words += [flag, str(value)]
    return shlex.join(words)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def parse_snip(text: str) -> tuple[int, list[int], SnipMode]:
    """``--snip``'s JSON, checked field by field; every failure is one ValueError naming the flag."""
    try:
        d = json.loads(text)
    except RecursionError as exc:  # deep nesting exhausts the parser's stack before any syntax error
        raise ValueError(f"{SNIP_USAGE}: nested too deeply") from exc
    except ValueError as exc:  # bad JSON, or an integer over Python's digit limit
        raise ValueError(f"{SNIP_USAGE}: {exc}") from exc
    if not isinstance(d, dict):
        raise ValueError(f"{SNIP_USAGE}: got a JSON {type(d).__name__}, not an object")
    extra = sorted(set(d) - {"layer", "mode", "units"})
    if extra:
        raise ValueError(f"{SNIP_USAGE}: unknown keys {', '.join(map(repr, extra[:5]))}")
    layer, units, mode = d.get("layer"), d.get("units"), d.get("mode", "out")
    if not _is_int(layer):
        raise ValueError(f'{SNIP_USAGE}: "layer" must be an integer')
    if not isinstance(units, list) or not all(_is_int(u) for u in units):
        raise ValueError(f'{SNIP_USAGE}: "units" must be a list of integers')
    if mode not in ("out", "all"):
        raise ValueError(f'{SNIP_USAGE}: "mode" must be "out" or "all"')
    assert isinstance(layer, int)
    return layer, units, mode


def parse_suppress(words: list[str]) -> tuple[int, list[str]]:
    """``--suppress STEPS SELECTOR...`` as the server's suppress command takes it (0: the whole tune)."""
    lo, hi = 0, STEPS_RANGE[1]
    if len(words) < 2:
        raise ValueError(f"--suppress takes STEPS and at least one SELECTOR (token, @class or pc:X); got {words}")
    try:
        steps = int(words[0])
    except ValueError as exc:
        raise ValueError(f"--suppress STEPS must be an integer in range {lo}..{hi}; got {words[0]!r}") from exc
    if not lo <= steps <= hi:
        raise ValueError(f"--suppress STEPS must be in range {lo}..{hi}; got {steps}")
    return steps, words[1:]


def parse_bias(words: list[str]) -> tuple[str, float]:
    lo, hi = BIAS_RANGE
    try:
        amount = float(words[1])
    except ValueError as exc:
        raise ValueError(f"--bias AMOUNT must be a number in range {lo:g}..{hi:g}; got {words[1]!r}") from exc
    if not lo <= amount <= hi:  # also refuses nan
        raise ValueError(f"--bias AMOUNT must be in range {lo:g}..{hi:g}; got {words[1]!r}")
    return words[0], amount


class Interventions:
    """``--suppress``/``--bias`` applied with the sampler's own controls (what the server's commands
    call), after each tune's prime, so every tune gets the same intervention."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.suppress = [parse_suppress(w) for w in args.suppress or ()]
        self.bias = [parse_bias(w) for w in args.bias or ()]

    def apply(self, controls: Controls, vocab: Vocabulary) -> None:
        try:
            for steps, selectors in self.suppress:
                controls.add_suppress(vocab.select_many(selectors), steps or None)
        except ValueError as exc:
            raise ValueError(f"--suppress: {exc}") from exc
        try:
            for selector, amount in self.bias:
                controls.set_bias(vocab.select(selector), amount)
        except ValueError as exc:
            raise ValueError(f"--bias: {exc}") from exc

    def as_meta(self) -> dict[str, Any]:
        return {"suppress": [[n, sel] for n, sel in self.suppress], "bias": [[s, a] for s, a in self.bias]}


def generate_tune(voice: Voice, rec: Recorder, interventions: Interventions) -> list[str] | None:
    """One tune: the prime, then the interventions, then sampling to the end.  None when the
    recording reached its size cap first (the voice stops at once instead of running on unrecorded)."""
    while voice.controls.inject and voice.step() is not None:
        pass
    interventions.apply(voice.controls, voice.vocab)
    while voice.step() is not None:
        if rec.limit_reached is not None:
            return None
    # With a cap, the tune's last rows are written now, so a tune printed is a tune kept whole.
    if rec.max_bytes is not None and rec.flush(timeout=60.0) and rec.limit_reached is not None:
        return None
    return voice.vocab.decode(voice.tokens)


def run(args: argparse.Namespace) -> int:
    from folkrnn_live.model.checkpoint import load_default_or

    # Every option is checked before the model loads and before the recording directory is made.
    snip = parse_snip(args.snip) if args.snip is not None else None
    interventions = Interventions(args)
    ckpt = load_default_or(args.model)
    model = ckpt.model
    cfg = model.config
    prime = args.prime.split()
    cfg.vocab.encode(prime)  # every unknown prime token reported before anything runs
    interventions.apply(Controls(cfg.vocab_size, cfg.hidden_size, cfg.num_layers), cfg.vocab)  # a dry run
    voice = Voice(model, seed=args.seed, temperature=args.temperature, prime=prime, max_tokens=args.max_tokens,
                  precision=args.precision)
    if args.stimulate is not None:
        pitches = cfg.vocab.select("@pitch")
        voice.controls.set_force(1.0 - args.stimulate, [(pitches, args.stimulate)], None)
    if snip is not None:
        try:
            voice.controls.set_snip(*snip)
        except ValueError as exc:
            raise ValueError(f"--snip: {exc}") from exc
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
        **interventions.as_meta(),
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
        max_bytes=args.max_bytes,
    )
    interrupted = False
    with rec:
        rec.attach(voice, name=args.voice)
        try:
            for k in range(args.n_tunes):
                if k:
                    voice.start_tune()  # the next seed, same prime
                tokens = generate_tune(voice, rec, interventions)
                if tokens is None:
                    break
                print(f"seed {voice.seed}: {' '.join(tokens)}")
        except KeyboardInterrupt:  # stop recording; leaving the with-block writes what was generated
            interrupted = True
    st = rec.stats
    print(
        f"recorded {st.steps} steps ({st.chunks} chunks, {st.bytes / 1e6:.1f} MB, {st.dropped} dropped) in {args.out}",
        file=sys.stderr,
    )
    if rec.limit_reached is not None:
        print(f"folkrnn-live record: {rec.limit_reached}; later tunes not generated", file=sys.stderr)
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
