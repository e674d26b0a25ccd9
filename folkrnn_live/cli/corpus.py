"""``folkrnn-live corpus build SOURCE... --out FILE``: ABC collections to a v2 token corpus."""

from __future__ import annotations

import argparse
from pathlib import Path

from folkrnn_live.abc.corpus import (
    ALL_MUSIC21,
    COLLECTIONS,
    DANCE_NAME,
    build_corpus,
    format_report,
    read_corpus,
    split_corpus,
    write_corpus,
)
from folkrnn_live.cli.common import bounded_float, bounded_int


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("corpus", help="build a v2 training corpus from ABC collections")
    sub = parser.add_subparsers(dest="corpus_command", metavar="ACTION")
    sub.required = True
    build = sub.add_parser(
        "build",
        help="convert ABC files, folders or music21 collections to v2 token tunes",
        description=(
            "Convert ABC tunes to v2 token tunes (tonic C, L:1/8, one tune per line, blank line between) "
            "and print how many were read, kept and dropped (by reason) per source.  SOURCE is an ABC "
            f"file, a folder (searched for *.abc), or a music21 collection: {', '.join(COLLECTIONS)}, "
            f"{DANCE_NAME} for all but essenFolksong, or {ALL_MUSIC21} for all five."
        ),
    )
    build.add_argument("sources", nargs="+", metavar="SOURCE", help="ABC file, folder or collection name")
    build.add_argument("--out", required=True, metavar="FILE", help="corpus file to write")
    build.set_defaults(func=_build)
    split = sub.add_parser(
        "split",
        help="split a corpus by tune into training and held-out tunes (seeded)",
        description=(
            "Split a corpus file by tune, seeded, into a training file and a held-out file.  The held-out "
            "tunes are for `evaluate --heldout`: neither training nor its early stop sees them (train "
            "itself keeps another --valid-fraction of the training file for early stopping)."
        ),
    )
    split.add_argument("corpus", metavar="CORPUS", help="corpus file from 'corpus build'")
    split.add_argument("--train", required=True, metavar="FILE", help="training tunes to write")
    split.add_argument("--heldout", required=True, metavar="FILE", help="held-out tunes to write")
    split.add_argument("--fraction", type=bounded_float("--fraction", 0.001, 0.5), default=0.05,
                       help="share of tunes held out (default 0.05)")
    split.add_argument("--seed", type=bounded_int("--seed", 0, 2**31 - 1), default=7, help="default 7")
    split.set_defaults(func=_split)


def _build(args: argparse.Namespace) -> int:
    folder = Path(args.out).parent
    if not folder.is_dir():  # found out before the build, not after it
        raise ValueError(f"--out {args.out}: folder {folder} does not exist")
    result = build_corpus(args.sources)
    write_corpus(result.tunes, args.out)
    print(format_report(result))
    print(f"wrote {len(result.tunes)} tunes to {args.out}")
    return 0


def _split(args: argparse.Namespace) -> int:
    try:
        tunes = read_corpus(args.corpus)
    except OSError as exc:
        raise ValueError(f"CORPUS {args.corpus}: {exc.strerror or exc}") from exc
    if len(tunes) < 2:
        raise ValueError(f"CORPUS {args.corpus}: {len(tunes)} tunes; a split needs at least 2")
    train, held = split_corpus(tunes, args.fraction, args.seed)
    write_corpus(train, args.train)
    write_corpus(held, args.heldout)
    print(f"wrote {len(train)} training tunes to {args.train} and {len(held)} held-out tunes to {args.heldout}")
    return 0
