"""``folkrnn-live corpus build SOURCE... --out FILE``: ABC collections to a v2 token corpus."""

from __future__ import annotations

import argparse
from pathlib import Path

from folkrnn_live.abc.corpus import ALL_MUSIC21, COLLECTIONS, build_corpus, format_report, write_corpus


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
            f"or {ALL_MUSIC21} for all five."
        ),
    )
    build.add_argument("sources", nargs="+", metavar="SOURCE", help="ABC file, folder or collection name")
    build.add_argument("--out", required=True, metavar="FILE", help="corpus file to write")
    build.set_defaults(func=_build)


def _build(args: argparse.Namespace) -> int:
    folder = Path(args.out).parent
    if not folder.is_dir():  # found out before the build, not after it
        raise ValueError(f"--out {args.out}: folder {folder} does not exist")
    result = build_corpus(args.sources)
    write_corpus(result.tunes, args.out)
    print(format_report(result))
    print(f"wrote {len(result.tunes)} tunes to {args.out}")
    return 0
