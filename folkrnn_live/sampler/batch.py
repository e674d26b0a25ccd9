"""Many tunes at once: B rows over one stepper, the batch kept full as tunes finish.

Each tune has its own seed and RNG, consuming one uniform number per sampled token exactly as a
:class:`~folkrnn_live.sampler.voice.Voice` does, so a tune depends on its seed, not on which row
or batch it ran in (up to the last-bit differences BLAS may make between batch sizes).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from folkrnn_live.model.network import FolkRNN
from folkrnn_live.model.step import NumpyStepper, make_stepper
from folkrnn_live.sampler.controls import DEFAULT_MAX_TOKENS, MAX_TOKENS_RANGE, TEMPERATURE_RANGE, check_range
from folkrnn_live.sampler.voice import EndReason, encode_prime, sample_index, softmax, validate_seed
from folkrnn_live.tokens.vocab import Vocabulary


@dataclass
class Tune:
    seed: int
    tokens: list[str]  # without <s>; ends with </s> unless the length cap was reached
    ended: EndReason


def generate_tunes(
    model: FolkRNN,
    seeds: Iterable[int],
    *,
    temperature: float = 1.0,
    prime: Sequence[str] = (),
    max_tokens: int = DEFAULT_MAX_TOKENS,
    batch: int = 64,
    backend: str = "auto",
) -> Iterator[Tune]:
    """One :class:`Tune` per seed, yielded in the order they finish.  The arguments are checked
    at the call, before any tune is generated."""
    check_range("temperature", temperature, *TEMPERATURE_RANGE)
    check_range("max_tokens", max_tokens, *MAX_TOKENS_RANGE)
    if batch < 1:
        raise ValueError(f"batch must be at least 1; got {batch}")
    vocab = model.config.vocab
    prime_idx = encode_prime(vocab, prime)
    stepper = make_stepper(model, backend)
    return _generate(stepper, vocab, iter(seeds), temperature, prime_idx, max_tokens, batch)


@dataclass
class _Row:
    """The tune a batch row is generating."""

    seed: int
    rng: np.random.Generator
    tokens: list[int] = field(default_factory=list)


def _generate(
    stepper: Any, vocab: Vocabulary, seed_iter: Iterator[int], temperature: float, prime_idx: list[int],
    max_tokens: int, batch: int,
) -> Iterator[Tune]:
    state = stepper.initial_state(batch)
    rows: list[_Row | None] = [None] * batch  # None: idle (no seeds left)
    pending = np.full(batch, vocab.start, dtype=np.int64)

    def fill(r: int) -> None:
        seed = next(seed_iter, None)
        if seed is None:
            rows[r] = None
            return
        seed = validate_seed(seed)
        rows[r] = _Row(seed, np.random.default_rng(seed))
        stepper.reset_rows(state, r)
        pending[r] = vocab.start

    for r in range(batch):
        fill(r)
    while True:
        active = [(r, row) for r, row in enumerate(rows) if row is not None]
        if not active:
            return
        if isinstance(stepper, NumpyStepper):
            logits, state, _ = stepper.step(pending, state)
        else:
            logits_t, state, _ = stepper.step(torch.from_numpy(pending).to(stepper.device), state)
            logits = logits_t.cpu().numpy()
        probs = softmax(logits.astype(np.float64) / temperature)
        # One uniform per sampled token from each tune's own RNG (prime tokens draw none), then
        # inverse-CDF sampling for all rows at once.
        u = np.zeros(batch)
        for r, row in active:
            if len(row.tokens) >= len(prime_idx):
                u[r] = row.rng.random()
        drawn = sample_index(probs, u)
        for r, row in active:
            n = len(row.tokens)
            tok = prime_idx[n] if n < len(prime_idx) else int(drawn[r])
            row.tokens.append(tok)
            pending[r] = tok
            ended: EndReason | None = "end" if tok == vocab.end else "length" if n + 1 >= max_tokens else None
            if ended is not None:
                yield Tune(row.seed, vocab.decode(row.tokens), ended)
                fill(r)
