"""Many tunes at once: B rows over one stepper, the batch kept full as tunes finish.

Each tune has its own seed and RNG, consuming one uniform number per sampled token exactly as a
:class:`~folkrnn_live.sampler.voice.Voice` does, so a tune depends on its seed, not on which row
or batch it ran in (up to the last-bit differences BLAS may make between batch sizes).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from folkrnn_live.model.network import FolkRNN
from folkrnn_live.model.step import Stepper, StepState
from folkrnn_live.model.steppers import make_stepper
from folkrnn_live.sampler.controls import DEFAULT_MAX_TOKENS, MAX_TOKENS_RANGE, TEMPERATURE_RANGE, check_range
from folkrnn_live.sampler.voice import EndReason, encode_prime, validate_seed
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
    precision: str = "fp32",
) -> Iterator[Tune]:
    """One :class:`Tune` per seed, yielded in the order they finish.  The arguments are checked
    at the call, before any tune is generated."""
    check_range("temperature", temperature, *TEMPERATURE_RANGE)
    check_range("max_tokens", max_tokens, *MAX_TOKENS_RANGE)
    if batch < 1:
        raise ValueError(f"batch must be at least 1; got {batch}")
    vocab = model.config.vocab
    prime_idx = encode_prime(vocab, prime)
    stepper = make_stepper(model, backend, precision)
    return _generate(stepper, vocab, iter(seeds), temperature, prime_idx, max_tokens, batch)


class _Rows:
    """The tunes the batch rows are generating, as arrays so a step's bookkeeping is a few numpy
    operations rather than a Python loop over 512 rows.

    Each row draws its uniform numbers ahead, ``max_tokens`` at a time, from the tune's own
    ``np.random.default_rng(seed)``: the same numbers, in the same order, as a Voice calling
    ``rng.random()`` once per sampled token."""

    def __init__(self, batch: int, max_tokens: int, n_prime: int) -> None:
        self.seed = np.zeros(batch, np.int64)
        self.active = np.zeros(batch, bool)
        self.count = np.zeros(batch, np.int64)  # tokens generated so far (prime included)
        self.tokens = np.zeros((batch, max_tokens), np.int64)
        self.uniforms = np.zeros((batch, max(1, max_tokens - n_prime)))

    def start(self, r: int, seed: int) -> None:
        self.seed[r] = seed
        self.active[r] = True
        self.count[r] = 0
        self.uniforms[r] = np.random.default_rng(seed).random(self.uniforms.shape[1])

    def keep(self, idx: np.ndarray) -> None:
        """Only the rows ``idx`` go on (in that order)."""
        for name in ("seed", "active", "count", "tokens", "uniforms"):
            setattr(self, name, getattr(self, name)[idx])


def _compact(stepper: Stepper, state: StepState, rows: _Rows) -> tuple[StepState, np.ndarray]:
    """Once no seeds are left, the batch drains: a step costs the same for 512 rows as for the few
    long tunes still running, so the rows still running are moved together (halving the batch at
    most every few steps; the last tunes of 30,000 used to run hundreds of full-size steps)."""
    idx = np.flatnonzero(rows.active)
    rows.keep(idx)
    sel = stepper.from_numpy(idx)
    return StepState([h[sel] for h in state.h], [c[sel] for c in state.c]), idx


def _generate(
    stepper: Stepper, vocab: Vocabulary, seed_iter: Iterator[int], temperature: float, prime_idx: list[int],
    max_tokens: int, batch: int,
) -> Iterator[Tune]:
    state = stepper.initial_state(batch)
    rows = _Rows(batch, max_tokens, len(prime_idx))
    prime = np.array([*prime_idx, 0], np.int64)  # [0]: a valid index for rows past the prime
    pending = np.full(batch, vocab.start, dtype=np.int64)
    every = np.arange(batch)
    exhausted = False

    def fill(r: int) -> None:
        nonlocal exhausted
        seed = next(seed_iter, None)
        rows.active[r] = False
        if seed is None:
            exhausted = True
            return
        rows.start(r, validate_seed(seed))
        stepper.reset_rows(state, r)
        pending[r] = vocab.start

    for r in range(batch):
        fill(r)
    while rows.active.any():
        if exhausted and 2 * rows.active.sum() <= len(rows.active) > 1:
            state, idx = _compact(stepper, state, rows)
            pending, every = pending[idx], np.arange(len(idx))
        logits, state, _ = stepper.step(stepper.from_numpy(pending), state)
        n = rows.count
        in_prime = n < len(prime_idx)
        # Prime tokens draw no uniform number; a row's k-th sampled token takes its k-th.
        u = rows.uniforms[every, np.clip(n - len(prime_idx), 0, rows.uniforms.shape[1] - 1)]
        drawn = stepper.draw(logits, temperature, np.where(in_prime, 0.0, u))
        tok = np.where(in_prime, prime[np.minimum(n, len(prime_idx))], drawn)
        act = rows.active
        rows.tokens[every[act], n[act]] = tok[act]
        pending[act] = tok[act]
        rows.count[act] += 1
        done = act & ((tok == vocab.end) | (rows.count >= max_tokens))
        for row in np.flatnonzero(done).tolist():
            ended: EndReason = "end" if tok[row] == vocab.end else "length"
            yield Tune(int(rows.seed[row]), vocab.decode(rows.tokens[row, : rows.count[row]].tolist()), ended)
            fill(row)
