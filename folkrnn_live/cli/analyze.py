"""``folkrnn-live analyze``: the seed posts' analyses as commands (see docs/analysis.md).

On a recording (from ``folkrnn-live record`` or the server's recorder), one tune at a time:

    folkrnn-live analyze REC posterior heatmaps distributions spectra select gramians --out DIR
    folkrnn-live analyze REC windows params ablation --out DIR   # the tune's length, the recording's model
    folkrnn-live analyze REC --report DIR                         # every analysis, with index.html

One page per seed post, on the loaded model (records its own tunes; see docs/reproduce/):

    folkrnn-live analyze --reproduce part7 --out DIR             # part1, part7, part8, part9 or all

Without a recording:

    folkrnn-live analyze windows --length 147 --out DIR
    folkrnn-live analyze params --model MODEL --out DIR
    folkrnn-live analyze ablation --model MODEL --layer 2 --fractions 0,0.2,0.27,0.33 --seeds 1..8 --out DIR

Layers are 0-based: layer 0 is the first LSTM layer.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from folkrnn_live.cli.common import bounded_float, bounded_int
from folkrnn_live.sampler.controls import MAX_TOKENS_RANGE, TEMPERATURE_RANGE

NAMES = ("posterior", "heatmaps", "distributions", "spectra", "windows", "select", "gramians", "params", "ablation",
         "traces", "softmax", "projections")  # fmt: skip
BAND_USERS = ("spectra", "select", "ablation")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze",
        help="analyses of recordings and models (spectra, Gramians, ablation, report)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("items", nargs="*", metavar="[RECORDING] ANALYSIS",
                   help="a recording directory (optional for windows, params, ablation), then analyses: "
                   + ", ".join(NAMES))
    p.add_argument("--out", default=None, metavar="DIR", help="folder for the numbers and figures")
    p.add_argument("--report", default=None, metavar="DIR", help="every analysis of one tune, with index.html, here")
    p.add_argument("--skip", default="", metavar="NAMES", help="report: analyses to leave out, e.g. ablation")
    p.add_argument("--model", default=None, metavar="DIR",
                   help="model for params and ablation (default: the recording's, else the shipped one)")
    p.add_argument("--voice", default=None, help="voice of a recording with several")
    p.add_argument("--tune", type=bounded_int("--tune", 0, 10**9), default=0,
                   help="which tune of the voice, 0-based in recording order (default 0)")
    p.add_argument("--layer", type=bounded_int("--layer", 0, 7), default=None,
                   help="layer, 0-based (select, ablation: default the last; heatmaps, gramians: default all)")
    p.add_argument("--gate", default="h", help="activation for heatmaps, distributions, spectra: i f o g_pre g c h")
    p.add_argument("--window", default="hann", help="spectral window: hann or rect (default hann)")
    p.add_argument("--pad", type=bounded_int("--pad", 2, 1 << 22), default=None,
                   help="zero pad the DFT to this length (band shares: default max(1024, steps))")
    p.add_argument("--keep-mean", action="store_true", help="keep each sequence's mean (seed 003's layer means did)")
    p.add_argument("--band", default="auto",
                   help="band of periods in steps, LOW,HIGH (default auto: the tune's measured bar period ± 0.3)")
    p.add_argument("--units", default=None, metavar="L:U,...",
                   help="traces: units to plot, LAYER:UNIT pairs (default: each layer's most bar-correlated)")
    p.add_argument("--reproduce", default=None, metavar="PART",
                   help="write one page per seed post (part1, part7, part8, part9 or all) into --out")
    p.add_argument("--quick", action="store_true", help="reproduce: fewer seeds and shorter tunes (a smoke run)")
    p.add_argument("--min-fraction", type=bounded_float("--min-fraction", 0.0, 1.0), default=0.05,
                   help="select: least share of a unit's power in the band (default 0.05)")
    p.add_argument("--random-sets", type=bounded_int("--random-sets", 1, 1000), default=None,
                   help="random unit sets of the same size (select: default 3, ablation: default 1)")
    p.add_argument("--osc-voice", default=None,
                   help="voice name in the printed snip commands (default: the recording's)")
    p.add_argument("--length", type=bounded_int("--length", 8, 1_000_000), default=None,
                   help="windows: sequence length (default: the tune's, else 147)")
    p.add_argument("--periods", default="2.25,4.5,8.8,18,36,inf", help="windows: periods in steps (inf for DC)")
    p.add_argument("--fractions", default="0,0.2,0.27,0.33", help="ablation: fractions of the layer to snip")
    p.add_argument("--seeds", default="1..8", help="ablation: seeds, e.g. 1..8 or 1,2,5")
    p.add_argument("--mode", default="out", help="ablation: snip mode, out or all")
    p.add_argument("--prime", default="", help="ablation: prime tokens, e.g. 'M:4/4 K:Cmaj'")
    p.add_argument("--temperature", type=bounded_float("--temperature", *TEMPERATURE_RANGE), default=1.0)
    p.add_argument("--max-tokens", type=bounded_int("--max-tokens", *MAX_TOKENS_RANGE), default=1000,
                   help="ablation: length cap of each generated tune")
    # The defaults let command_line() leave out what the user did not set.
    p.set_defaults(func=run, _defaults={a.dest: a.default for a in p._actions})  # fmt: skip


def parse_band(text: str) -> tuple[float, float] | None:
    if text == "auto":
        return None
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError as exc:
        raise ValueError(f"--band must be auto or two periods LOW,HIGH in steps (e.g. 8.7,9.3); got {text!r}") from exc
    if not (math.isfinite(lo) and math.isfinite(hi) and 2.0 <= lo < hi):
        raise ValueError(f"--band must be two periods LOW,HIGH in steps with 2 <= LOW < HIGH; got {text!r}")
    return lo, hi


def parse_floats(name: str, text: str, allow_inf: bool = False) -> list[float]:
    try:
        v = [float(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise ValueError(f"{name} must be comma-separated numbers; got {text!r}") from exc
    if not v or any(math.isnan(x) or (math.isinf(x) and not allow_inf) for x in v):
        raise ValueError(f"{name} must be comma-separated numbers; got {text!r}")
    return v


def options_from(args: argparse.Namespace) -> Any:
    from folkrnn_live.analysis.ablation import parse_seeds
    from folkrnn_live.analysis.tasks import Options

    periods = parse_floats("--periods", args.periods, allow_inf=True)
    if any(p < 2 for p in periods):
        raise ValueError(f"--periods must be at least 2 steps each (or inf); got {args.periods!r}")
    opts = Options(
        gate=args.gate, layer=args.layer, window=args.window, pad_to=args.pad, remove_mean=not args.keep_mean,
        band=parse_band(args.band), min_fraction=args.min_fraction, random_sets=args.random_sets,
        osc_voice=args.osc_voice, length=args.length, periods=tuple(periods),
        fractions=tuple(parse_floats("--fractions", args.fractions)), seeds=tuple(parse_seeds(args.seeds)),
        mode=args.mode, prime=tuple(args.prime.split()), temperature=args.temperature, max_tokens=args.max_tokens,
        units=tuple(_units(args.units)),
    )  # fmt: skip
    opts.check()
    return opts


def _units(text: str | None) -> list[tuple[int, int]]:
    from folkrnn_live.analysis.units import parse_units

    # Checked against the model's shape when the traces run; here only the form.
    return [] if text is None else parse_units(text, 1 << 16, 1 << 16)


def reproduce(args: argparse.Namespace) -> int:
    from folkrnn_live.analysis.reproduce import PARTS, run_reproduce
    from folkrnn_live.model.checkpoint import load_default_or

    parts = list(PARTS) if args.reproduce == "all" else [args.reproduce]
    if any(p not in PARTS for p in parts):
        raise ValueError(f"--reproduce must be one of {', '.join(PARTS)} or all; got {args.reproduce!r}")
    if args.out is None or args.items:
        raise ValueError("--reproduce takes no recording or analyses, and needs --out DIR")
    from folkrnn_live.server.runtime.blas_threads import limit_blas_threads

    limit_blas_threads(1)  # batch-1 steps: a BLAS thread pool only waits for the scheduler (docs/benchmarks.md)
    ckpt = load_default_or(args.model)
    name = args.model or "the shipped model"
    for part in parts:
        say = lambda m: print(f"reproduce: {m}", file=sys.stderr)  # noqa: E731
        page = run_reproduce(part, ckpt.model, Path(args.out), model_name=name, model_meta=ckpt.meta,
                             quick=args.quick, progress=say)  # fmt: skip
        print(f"reproduce {part}: {page}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.reproduce is not None:
        return reproduce(args)
    from folkrnn_live.analysis.tasks import ANALYSES, Context, find_model, run_analysis
    from folkrnn_live.cli.record import command_line
    from folkrnn_live.recording.recording import load_recording

    opts = options_from(args)
    items = list(args.items)
    if not items:
        raise ValueError(f"name a recording and analyses, or an analysis: {', '.join(NAMES)}")
    # A first word that names an analysis is one, unless a directory of that name is there.
    has_rec = not (items[0] in ANALYSES and not Path(items[0]).is_dir())
    rec_path, names = (Path(items[0]), items[1:]) if has_rec else (None, items)
    unknown = [n for n in names if n not in ANALYSES]
    if unknown:
        raise ValueError(f"analysis must be one of {', '.join(NAMES)}; got {', '.join(unknown)}")
    need_rec = [n for n in names if ANALYSES[n].needs in ("recording", "recording+model")]
    if rec_path is None and need_rec:
        raise ValueError(f"{', '.join(need_rec)} need a recording: folkrnn-live analyze RECORDING {' '.join(names)}")
    skip = [s for s in args.skip.split(",") if s.strip()]
    if args.report and rec_path is None:
        raise ValueError("--report needs a recording: folkrnn-live analyze RECORDING --report DIR")
    if not names and not args.report:
        raise ValueError(f"name analyses ({', '.join(NAMES)}) or pass --report DIR")
    if names and args.out is None:
        raise ValueError("--out DIR is required for the analyses named")
    rec = load_recording(rec_path, args.voice, tune=args.tune) if rec_path is not None else None
    meta = rec.meta if rec is not None else None
    command = command_line("analyze", args, tuple(args.items))
    if args.report and rec is not None:
        from folkrnn_live.analysis.report import make_report

        try:
            model = find_model(args.model, meta)
        except ValueError as exc:  # a --model given is used or refused; without one the report goes on
            if args.model:
                raise
            print(f"report: parameters and ablation left out: {exc}", file=sys.stderr)
            model = None
        index = make_report(
            rec, args.report, tune=args.tune, options=opts, model=model, commands=[command], skip=skip,
            progress=lambda m: print(f"report: {m}", file=sys.stderr),
        )  # fmt: skip
        print(f"report: {index}")
    if not names:
        return 0
    ctx = Context(Path(args.out), opts, rec, lambda: find_model(args.model, meta))
    band_said = rec is None and opts.band is None  # without a recording the ablation measures its own tunes
    for name in names:
        sec = run_analysis(name, ctx)
        if name in BAND_USERS and not band_said:  # said once, after the analysis accepted the options
            print(ctx.band()[1], file=sys.stderr)
            band_said = True
        for w in sec.warnings:
            print(f"{name}: warning: {w}", file=sys.stderr)
        if name in ("select", "windows"):
            for c in sec.code:
                print(c.rstrip("\n"))
        elif name == "ablation":
            for header, rows in sec.tables:
                print("\t".join(header))
                for r in rows:
                    print("\t".join(r))
        print(f"{name}: wrote {len(sec.files)} number files and {len(sec.images)} figures in {args.out}",
              file=sys.stderr)  # fmt: skip
    return 0
