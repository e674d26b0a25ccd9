"""Training data: a corpus file of v2 token tunes (tokens separated by spaces, tunes by a blank
line), a seeded validation split, and batches of tunes of equal or neighbouring length."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from folkrnn_live.tokens.vocab import END, START, UnknownTokenError, Vocabulary


@dataclass
class Corpus:
    tunes: list[list[int]]  # each: <s> tokens... </s>, as indices of the model vocabulary

    @property
    def num_tokens(self) -> int:
        return sum(len(t) - 1 for t in self.tunes)  # predicted positions


def read_corpus(path: str | Path, vocab: Vocabulary) -> Corpus:
    """Read a corpus file; every unknown token is reported with its tune and position."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"corpus {p}: no such file")
    text = p.read_text(encoding="utf-8")
    tunes: list[list[int]] = []
    problems: list[str] = []
    for n, block in enumerate(b for b in text.split("\n\n") if b.strip()):
        toks = block.split()
        if toks and toks[0] == START:
            toks = toks[1:]
        if toks and toks[-1] == END:
            toks = toks[:-1]
        try:
            tunes.append([vocab.start, *vocab.encode(toks), vocab.end])
        except UnknownTokenError as exc:
            problems.append(f"tune {n + 1}: {exc}")
    if problems:
        shown = "; ".join(problems[:5])
        raise ValueError(f"corpus {p}: {len(problems)} tunes have tokens outside the model vocabulary: {shown}")
    if not tunes:
        raise ValueError(f"corpus {p}: no tunes (tunes are separated by blank lines)")
    return Corpus(tunes)


def split(corpus: Corpus, fraction: float, seed: int) -> tuple[Corpus, Corpus]:
    """A seeded split into (train, validation); the validation set has ``fraction`` of the tunes."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be in range (0, 1); got {fraction}")
    n = len(corpus.tunes)
    n_valid = max(1, round(n * fraction))
    if n_valid >= n:
        raise ValueError(
            f"the corpus has {n} tune{'s' if n != 1 else ''}: too few to keep {n_valid} for validation and train "
            "on the rest (use more tunes or a smaller --valid-fraction)"
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    valid = [corpus.tunes[i] for i in sorted(order[:n_valid])]
    train = [corpus.tunes[i] for i in sorted(order[n_valid:])]
    return Corpus(train), Corpus(valid)


@dataclass
class Batch:
    inputs: torch.Tensor  # [B, T] token indices (padded with 0)
    targets: torch.Tensor  # [B, T] next tokens
    mask: torch.Tensor  # [B, T] 1.0 where a target exists

    @property
    def num_tokens(self) -> int:
        return int(self.mask.sum().item())


def make_batch(tunes: list[list[int]]) -> Batch:
    T = max(len(t) for t in tunes) - 1
    inputs = torch.zeros(len(tunes), T, dtype=torch.long)
    targets = torch.zeros(len(tunes), T, dtype=torch.long)
    mask = torch.zeros(len(tunes), T)
    for b, tune in enumerate(tunes):
        n = len(tune) - 1
        inputs[b, :n] = torch.tensor(tune[:-1])
        targets[b, :n] = torch.tensor(tune[1:])
        mask[b, :n] = 1.0
    return Batch(inputs, targets, mask)


def length_batches(corpus: Corpus, batch_size: int, rng: np.random.Generator | None) -> Iterator[Batch]:
    """Batches of tunes of equal or neighbouring length (little padding).  With an rng, tunes of
    equal length are shuffled and the batch order is random; without, the order is fixed."""
    idx = np.arange(len(corpus.tunes))
    lengths = np.array([len(t) for t in corpus.tunes])
    tiebreak = rng.random(len(idx)) if rng is not None else idx
    order = np.lexsort((tiebreak, lengths))
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(chunks)
    for chunk in chunks:
        yield make_batch([corpus.tunes[i] for i in chunk])
