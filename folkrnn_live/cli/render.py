"""``folkrnn-live render TOKENS_OR_ABC --out FILE.mid [--wav FILE.wav]``: offline rendering with the live
interpreter, to a MIDI file and/or to audio through the built-in synth."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from folkrnn_live.cli.common import bounded_float, bounded_int
from folkrnn_live.player.render import render
from folkrnn_live.player.settings import CHANNEL_RANGE, PROGRAM_RANGE, SWING_RANGE, TEMPO_RANGE, VoiceSettings
from folkrnn_live.tokens.vocab import END, V2

_ABC_FIELD = re.compile(r"^\s*[A-Za-z]:", re.MULTILINE)
_SHOWN_PROBLEMS = 5


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "render",
        help="render v2 tokens or an ABC file to a MIDI file",
        description="Render v2 tokens (a token string or a file of tokens, tunes separated by blank lines "
        "or </s>) or an ABC file to a standard MIDI file, with the same interpreter as live playing. "
        "Malformed token sequences are rendered anyway; their problems are listed on stderr.",
    )
    p.add_argument("input", metavar="TOKENS_OR_ABC", help="a token string, a token file or an ABC file")
    p.add_argument("--out", type=Path, metavar="FILE.mid", help="MIDI file to write")
    p.add_argument("--wav", type=Path, metavar="FILE.wav",
                   help="also (or instead) render audio through the built-in synth (FluidSynth, a GM soundfont)")
    p.add_argument("--soundfont", metavar="FILE.sf2", default=None,
                   help="soundfont for --wav (default: $FOLKRNN_SOUNDFONT, else an installed General MIDI one)")
    p.add_argument(
        "--tempo", type=bounded_float("--tempo", *TEMPO_RANGE), default=120.0, metavar="BPM",
        help="beats per minute of the meter's beat (dotted quarter in 6/8 9/8 12/8; default 120)",
    )
    p.add_argument("--unfold", action="store_true", help="play repeats and first/second endings (AABB)")
    p.add_argument("--program", type=bounded_int("--program", *PROGRAM_RANGE), default=None, metavar="N",
                   help=f"General MIDI program {PROGRAM_RANGE[0]}..{PROGRAM_RANGE[1]} (default: none sent)")
    p.add_argument("--channel", type=bounded_int("--channel", *CHANNEL_RANGE), default=0, metavar="N",
                   help=f"MIDI channel {CHANNEL_RANGE[0]}..{CHANNEL_RANGE[1]} (default 0)")
    p.add_argument("--swing", type=bounded_float("--swing", *SWING_RANGE), default=1.0, metavar="RATIO",
                   help="long:short ratio of eighth pairs in simple meters (1 straight, 2 triplet swing)")
    p.set_defaults(func=run)


def read_tokens(arg: str) -> tuple[list[str], str]:
    """Tokens from a token string, a token file or an ABC file; returns (tokens, what it was)."""
    path = Path(arg)
    is_file = len(arg) < 4096 and "\n" not in arg and path.is_file()
    text = path.read_text(encoding="utf-8") if is_file else arg
    what = f"file {arg}" if is_file else "token string"
    words = text.split()
    if words and all(w in V2.index for w in words):
        tunes = [t.split() for t in re.split(r"\n\s*\n", text) if t.strip()]
        tokens: list[str] = []
        for tune in tunes:
            tokens.extend(tune)
            if tune[-1] != END:
                tokens.append(END)
        return tokens, what
    if _looks_like_abc(text):
        return _abc_tokens(text, arg), f"ABC {what}"
    V2.encode(words)  # raises UnknownTokenError naming every unknown token and its nearest tokens
    raise ValueError(f"{arg!r} holds no tokens")


def _looks_like_abc(text: str) -> bool:
    # An ABC header line (X:1, T:..., K:G) whose first word is not a v2 token (M:4/4 and K:Cmaj are).
    for line in text.splitlines():
        words = line.split()
        if words and _ABC_FIELD.match(line) and words[0] not in V2.index:
            return True
    return False


def _abc_tokens(text: str, source: str) -> list[str]:
    try:
        from folkrnn_live.abc.convert import ConvertOptions, convert_abc
    except ImportError as exc:  # pragma: no cover - the ABC converter ships with the package
        raise ValueError("ABC input needs folkrnn_live.abc, which is not available; give v2 tokens") from exc
    # Rendering plays what is written: a bar of the wrong length is no reason to refuse a tune.
    converted = convert_abc(text, source, ConvertOptions(check_bars=False))
    tokens: list[str] = []
    for c in converted:
        if c.tokens is None:
            msg = f"folkrnn-live render: skipped tune {c.tune.title!r}: {c.reason} ({c.detail})"
            print(msg, file=sys.stderr)
            continue
        tokens.extend(c.tokens)
        tokens.append(END)
    if not tokens:
        raise ValueError(f"no tune in {source!r} could be converted to v2 tokens")
    return tokens


def run(args: argparse.Namespace) -> int:
    if args.out is None and args.wav is None:
        raise ValueError("give --out FILE.mid, --wav FILE.wav or both")
    tokens, what = read_tokens(args.input)
    settings = VoiceSettings(
        tempo=args.tempo,
        mode="unfolded" if args.unfold else "linear",
        channel=args.channel,
        program=args.program,
        swing=args.swing,
    )
    result = render(tokens, settings)
    if not any(n.note.pitches for n in result.notes):
        raise ValueError(f"the {what} has no notes to render")
    sounding = sum(1 for n in result.notes if n.note.pitches)
    if args.out is not None:
        out = result.save(args.out)
        print(f"wrote {out}: {result.tunes} tune(s), {sounding} notes, {result.duration:.1f} s")
    if args.wav is not None:
        from folkrnn_live.player.synth import render_wav

        info = render_wav(result.midi, args.wav, soundfont=args.soundfont)
        print(f"wrote {info.path}: {info.seconds:.1f} s of audio at {info.sample_rate} Hz, "
              f"peak {info.peak:.2f}, soundfont {info.soundfont}")
    if result.problem_count:
        n = result.problem_count
        print(f"folkrnn-live render: {n} problem(s) in the tokens (skipped):", file=sys.stderr)
        for p in result.problems[:_SHOWN_PROBLEMS]:
            print(f"  {p}", file=sys.stderr)
    return 0
