"""One voice of live generation: its own network state, RNG and interventions.

A tune is ``<s>``, the prime tokens, then sampled tokens until ``</s>`` or the length cap.  The
forward pass for a token runs only when that token is asked for (:meth:`Voice.step`), so any
control set before the call reaches it: a change lands on the very next token.

Determinism: the same model, seed, settings and interventions applied at the same steps give the
same tune, token for token, on the CPU.  Sampling draws one uniform number per sampled token from
the voice's RNG; the random tokens of a forced mix come from a separate generator keyed by
(seed, step), so previews and injected tokens never shift the sampling stream.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from folkrnn_live.model.draw import sample_index, softmax
from folkrnn_live.model.network import FolkRNN
from folkrnn_live.model.step import Activations, Stepper, StepState
from folkrnn_live.model.steppers import make_stepper, shared_stepper
from folkrnn_live.sampler.controls import (
    DEFAULT_MAX_TOKENS,
    MAX_TOKENS_RANGE,
    SEED_RANGE,
    Controls,
    check_range,
)
from folkrnn_live.tokens.vocab import END, START, Vocabulary

EndReason = Literal["end", "length"]


@dataclass
class ForwardInputs:
    """One voice's inputs to its next forward pass, as host arrays."""

    token: int  # the token fed (the last one generated, or <s>)
    x: np.ndarray | None  # [1, V] a forced input mix instead of the token's one-hot
    snip_out: list[np.ndarray | None] | None  # per layer [1, H] 0/1 masks (see Stepper.step)
    snip_rec: list[np.ndarray | None] | None
    steer: np.ndarray | None  # [1, H]


def step_host(
    stepper: Stepper,
    state: StepState,
    tokens: np.ndarray | None,
    x: np.ndarray | None,
    snip_out: list[np.ndarray | None] | None,
    snip_rec: list[np.ndarray | None] | None,
    steer: np.ndarray | None,
    capture: bool,
) -> tuple[Any, StepState, Activations | None]:
    """:meth:`Stepper.step` from host arrays (token indices [B] or input vectors [B, V], per-layer
    [B, H] masks, steer [B, H]), each moved to the stepper's backend; one voice or a batch of them."""
    conv = stepper.from_numpy

    def masks(ms: list[np.ndarray | None] | None) -> list[Any | None] | None:
        return None if ms is None else [None if m is None else conv(m) for m in ms]

    return stepper.step(
        None if tokens is None else conv(tokens),
        state,
        x=None if x is None else conv(x),
        snip_out=masks(snip_out),
        snip_rec=masks(snip_rec),
        steer=None if steer is None else conv(steer),
        capture=capture,
    )


@dataclass
class StepResult:
    step: int  # position of this token in the tune (0 = first token after <s>)
    token: int
    text: str
    probs: np.ndarray  # [V] the distribution the token was drawn from (after all interventions)
    logits: np.ndarray  # [V] network logits (before temperature, bias, suppress)
    injected: bool  # taken from the prime/inject queue rather than sampled
    ended: EndReason | None
    time: float  # time.time() when the step finished
    activations: Activations | None = None  # with capture on: every activation of the step
    controls: dict[str, Any] | None = None  # with capture on: the interventions active


def encode_prime(vocab: Vocabulary, prime: Sequence[str]) -> list[int]:
    """Prime tokens as indices; every unknown token is reported.  ``<s>`` is fed by the sampler
    itself and ``</s>`` would end the tune at once, so neither may be primed."""
    idx = vocab.encode(list(prime))
    if vocab.end in idx or vocab.start in idx:
        raise ValueError(f"prime tokens must not contain {START} or {END}")
    return idx


def validate_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer in range {SEED_RANGE[0]}..{SEED_RANGE[1]}; got {seed!r}")
    check_range("seed", int(seed), *SEED_RANGE)
    return int(seed)


class Voice:
    """A single voice (batch row) over a shared model.  Implements the player's ``TokenSource``."""

    def __init__(
        self,
        model: FolkRNN,
        *,
        seed: int = 0,
        temperature: float = 1.0,
        prime: Sequence[str] = (),
        max_tokens: int = DEFAULT_MAX_TOKENS,
        capture: bool = False,
        backend: str = "auto",
        precision: str = "fp32",
        stepper: Stepper | None = None,
    ) -> None:
        self.model = model
        self.vocab: Vocabulary = model.config.vocab
        self.stepper: Stepper = stepper if stepper is not None else make_stepper(model, backend, precision)
        cfg = model.config
        self.controls = Controls(cfg.vocab_size, cfg.hidden_size, cfg.num_layers)
        self.controls.set_temperature(temperature)
        self.capture = capture
        self.listeners: list[Callable[[StepResult], None]] = []
        self._svd: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.set_max_tokens(max_tokens)
        self.total_steps = 0
        self.tunes_started = 0
        self.start_tune(seed=seed, prime=prime)

    # --- tune lifecycle -------------------------------------------------------------------------
    def set_max_tokens(self, n: int) -> None:
        check_range("max_tokens", n, *MAX_TOKENS_RANGE)
        self.max_tokens = int(n)

    def set_prime(self, prime: Sequence[str]) -> list[int]:
        """Validate prime tokens (see :func:`encode_prime`) and keep them for new tunes."""
        idx = encode_prime(self.vocab, prime)
        self.prime = list(prime)
        return idx

    def start_tune(self, seed: int | None = None, prime: Sequence[str] | None = None) -> None:
        """Reset the network to its initial state and begin a new tune (``<s>`` is fed first)."""
        if seed is not None:
            self.seed = validate_seed(seed)
        elif self.tunes_started:
            self.seed = (self.seed + 1) % (SEED_RANGE[1] + 1)  # continuous mode: the next seed
        prime_idx = self.set_prime(self.prime if prime is None else prime)
        self.rng = np.random.default_rng(self.seed)
        self.state: StepState = self.stepper.initial_state(1)
        self.pending = self.vocab.start
        self.step_index = 0
        self.ended: EndReason | None = None
        self.tokens: list[int] = []
        self.controls.inject.clear()
        self.controls.add_inject(prime_idx)
        self._preview: tuple[Any, ...] | None = None
        self.tunes_started += 1

    @property
    def precision(self) -> str:
        return self.stepper.precision

    def set_precision(self, precision: str) -> None:
        """Step on fp32 or int8 weights from the next token on; the tune goes on from its state
        (both CPU steppers keep the same float32 state).  int8 is a CPU path: ValueError elsewhere."""
        if precision == self.stepper.precision:
            return
        device = next(self.model.parameters()).device
        new = shared_stepper(self.model, "auto" if device.type == "cpu" else "torch", precision)
        old = self.stepper
        self.state = StepState([new.from_numpy(old.to_numpy(a)) for a in self.state.h],
                               [new.from_numpy(old.to_numpy(a)) for a in self.state.c])  # fmt: skip
        self.stepper = new
        self._preview = None

    # --- the step ---------------------------------------------------------------------------------
    def forward_key(self) -> tuple[Any, ...]:
        """What the next step's forward pass depends on besides the state: a cached forward (a
        preview, or one computed with other voices in a batch) is used only while this holds."""
        return (self.controls.version, self.step_index, self.tunes_started, id(self.stepper), self.capture)

    def forward_ready(self) -> bool:
        """True when the next step's forward pass is already computed and still valid."""
        return self._preview is not None and self._preview[0] == self.forward_key()

    def forward_inputs(self) -> ForwardInputs:
        """The next step's inputs as host arrays, for stepping several voices as one batch."""
        force = self.controls.force
        x: np.ndarray | None = None
        if force is not None:
            x = np.zeros((1, self.vocab_size), np.float32)
            x[0, self.pending] += force.weight_generated
            rng = np.random.default_rng([self.seed, self.step_index, 0xF0CE])
            for cands, w in force.mix:
                x[0, cands[int(rng.integers(len(cands)))]] += w
        snip_out, snip_rec = self.controls.snip_masks()
        return ForwardInputs(self.pending, x, snip_out, snip_rec, self._steer_vector())

    def set_forward(self, logits: np.ndarray, new_state: StepState, acts: Activations | None) -> None:
        """Hand this voice its next step's forward pass, computed elsewhere (with other voices)
        from :meth:`forward_inputs` and the current state: ``logits`` [V] on the host."""
        self._preview = (self.forward_key(), logits, new_state, acts)

    def _forward(self) -> tuple[Any, ...]:
        if self.forward_ready():
            assert self._preview is not None
            return self._preview
        inp = self.forward_inputs()
        tokens = np.array([inp.token]) if inp.x is None else None
        logits, new_state, acts = step_host(
            self.stepper, self.state, tokens, inp.x, inp.snip_out, inp.snip_rec, inp.steer, self.capture
        )
        self.set_forward(self.stepper.to_numpy(logits)[0], new_state, acts)
        assert self._preview is not None
        return self._preview

    def preview_forward(self) -> None:
        """Compute the next step's forward pass now (the token is drawn when it is asked for)."""
        self._forward()

    def preview(self) -> np.ndarray:
        """The distribution the next token will be drawn from, under the current interventions."""
        _, logits, _, _ = self._forward()
        return softmax(self.controls.adjusted_logits(logits))

    def step(self) -> StepResult | None:
        """Generate one token (None once the tune has ended)."""
        if self.ended is not None:
            return None
        _, logits, new_state, acts = self._forward()
        z = self.controls.adjusted_logits(logits)
        if not np.isfinite(z).any():  # cannot happen through Controls; guard against NaN weights
            z = np.where(np.isfinite(logits), logits, 0.0).astype(np.float64)
        probs = softmax(z)
        injected = bool(self.controls.inject)
        if injected:
            tok = self.controls.inject.popleft()
            self.controls.touch()
        else:
            tok = int(sample_index(probs, self.rng.random()))
        self.state = new_state
        self.pending = tok
        self.tokens.append(tok)
        ended: EndReason | None = None
        if tok == self.vocab.end:
            ended = "end"
        elif len(self.tokens) >= self.max_tokens:
            ended = "length"
        self.ended = ended
        result = StepResult(
            step=self.step_index,
            token=tok,
            text=self.vocab.tokens[tok],
            probs=probs,
            logits=logits,
            injected=injected,
            ended=ended,
            time=time.time(),
            activations=acts,
            controls=self.controls.summary(self.vocab) if self.capture else None,
        )
        self.step_index += 1
        self.total_steps += 1
        self.controls.tick()
        self._preview = None
        for listener in self.listeners:
            listener(result)
        return result

    def next_token(self) -> int | None:
        """The player's TokenSource interface: the next token's index in ``vocab``, or None after
        the tune ended."""
        r = self.step()
        return None if r is None else r.token

    def generate(self) -> list[str]:
        """Run the current tune to its end; returns its tokens (without ``<s>``)."""
        while self.step() is not None:
            pass
        return self.vocab.decode(self.tokens)

    # --- helpers for interventions that need the model -------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def output_svd(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._svd is None:
            self._svd = self.model.output_svd()
        return self._svd

    def _steer_vector(self) -> np.ndarray | None:
        if self.controls.steer is None:
            return None
        k, alpha = self.controls.steer
        return (alpha * self.output_svd()[2][k]).astype(np.float32)[None, :]

    def bias_to_probability(self, indices: list[int], target: float) -> float:
        """Add the bias that makes the tokens ``indices`` (together) reach probability ``target``
        at the coming step; returns the bias added (seed posts part 2, summarised in 000 item 5).

        With a = (logits + bias) / T, adding d to the bias of a set S moves its log-odds by d / T:
        d = T * (logit(target) - (logsumexp(a_S) - logsumexp(a_rest)))."""
        if not 0.0 < target < 1.0:
            raise ValueError(f"target probability must be in range (0, 1) exclusive; got {target}")
        if not indices:
            raise ValueError("bias target needs at least one token")
        sup = [i for i in indices if i in self.controls.suppress]
        if sup:
            raise ValueError(f"tokens {self.vocab.decode(sup)} are suppressed; clear suppress first")
        _, logits, _, _ = self._forward()
        a = self.controls.adjusted_logits(logits)
        in_set = np.zeros(len(a), bool)
        in_set[indices] = True
        rest = a[~in_set & np.isfinite(a)]
        if rest.size == 0:
            raise ValueError("bias target: every other token is suppressed")
        lse = lambda v: float(v.max() + np.log(np.exp(v - v.max()).sum()))  # noqa: E731
        d = self.controls.temperature * (math.log(target / (1 - target)) - (lse(a[in_set]) - lse(rest)))
        self.controls.add_bias(indices, d)
        return d

