"""Many tunes at once: B rows over one stepper, the batch kept full as tunes finish.

Each tune has its own seed and RNG, consuming one uniform number per sampled token exactly as a
:class:`~folkrnn_live.sampler.voice.Voice` does, so a tune depends on its seed, not on which row
or batch it ran in (up to the last-bit differences BLAS may make between batch sizes).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from folkrnn_live.model.network import FolkRNN
from folkrnn_live.model.step import NumpyStepper, make_stepper
from folkrnn_live.sampler.controls import DEFAULT_MAX_TOKENS, TEMPERATURE_RANGE, check_range
from folkrnn_live.sampler.voice import EndReason, softmax, validate_seed


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
    """Yield one :class:`Tune` per seed, in the order they finish."""
    check_range("temperature", temperature, *TEMPERATURE_RANGE)
    if batch < 1:
        raise ValueError(f"batch must be at least 1; got {batch}")
    vocab = model.config.vocab
    prime_idx = vocab.encode(list(prime))
    stepper = make_stepper(model, backend)
    seed_iter = iter(seeds)
    state = stepper.initial_state(batch)
    # Per row: seed, rng, tokens so far, prime position; None for an idle row.
    rows: list[dict[str, Any] | None] = [None] * batch
    pending = np.full(batch, vocab.start, dtype=np.int64)

    def fill(r: int) -> bool:
        try:
            seed = validate_seed(next(seed_iter))
        except StopIteration:
            rows[r] = None
            return False
        rows[r] = {"seed": seed, "rng": np.random.default_rng(seed), "tokens": []}
        stepper.reset_rows(state, r)
        pending[r] = vocab.start
        return True

    for r in range(batch):
        fill(r)
    while True:
        active = [r for r in range(batch) if rows[r] is not None]
        if not active:
            return
        if isinstance(stepper, NumpyStepper):
            logits, state, _ = stepper.step(pending, state)
        else:
            logits_t, state, _ = stepper.step(torch.from_numpy(pending).to(stepper.device), state)
            logits = logits_t.cpu().numpy()
        probs = softmax(logits.astype(np.float64) / temperature)
        cdf = np.cumsum(probs, axis=1)
        # One uniform per sampled token from each tune's own RNG (prime tokens draw none), then
        # inverse-CDF sampling for all rows at once; the same rule as voice.sample_index.
        u = np.zeros(batch)
        for r in active:
            row = rows[r]
            if len(row["tokens"]) >= len(prime_idx):  # type: ignore[index]
                u[r] = row["rng"].random()  # type: ignore[index]
        drawn = np.minimum((cdf <= (u * cdf[:, -1])[:, None]).sum(axis=1), len(vocab) - 1)
        for r in active:
            row = rows[r]
            assert row is not None
            n = len(row["tokens"])
            tok = prime_idx[n] if n < len(prime_idx) else int(drawn[r])
            row["tokens"].append(tok)
            pending[r] = tok
            ended: EndReason | None = "end" if tok == vocab.end else (
                "length" if len(row["tokens"]) >= max_tokens else None
            )
            if ended is not None:
                yield Tune(row["seed"], vocab.decode(row["tokens"]), ended)
                fill(r)
