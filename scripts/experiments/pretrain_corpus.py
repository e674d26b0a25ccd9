#!/usr/bin/env python3
"""The pre-training corpus of docs/model-card.md "The cause: the pre-training's old converter (stop 13)" (issue 11).

    pretrain_corpus.py DANCE_TRAIN OTHER... --out FILE

Writes the tunes that `folkrnn-live train --corpus DANCE_TRAIN` trains on (its own seeded validation
split left out, so the fine-tune's early stop is judged on tunes pre-training never saw) followed by
every tune of each OTHER corpus file (e.g. essenFolksong). Held-out tunes are never in DANCE_TRAIN.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from folkrnn_live.abc.corpus import read_corpus
from folkrnn_live.train.data import Corpus, split
from folkrnn_live.train.trainer import TrainConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dance_train", type=Path)
    ap.add_argument("other", type=Path, nargs="+")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    dance = read_corpus(args.dance_train)
    defaults = TrainConfig(corpus="", out="")
    # split() keeps tune order, so splitting the indices picks the same tunes as the trainer's split.
    kept, valid = split(Corpus([[i] for i in range(len(dance))]), defaults.valid_fraction, defaults.seed)
    out = [dance[t[0]] for t in kept.tunes]
    for path in args.other:
        out += read_corpus(path)
    # Not abc.corpus.write_corpus: its file ends with a blank line, and this one ends with a single
    # newline. That keeps the SHA-256 of the file the card's run trained on, which --resume checks.
    args.out.write_text("\n\n".join(" ".join(t) for t in out) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(kept.tunes)} dance tunes ({len(valid.tunes)} validation tunes left out) + "
          f"{len(out) - len(kept.tunes)} others")


if __name__ == "__main__":
    main()
