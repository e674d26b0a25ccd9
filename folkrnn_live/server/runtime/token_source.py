"""A voice's token source with its command queue and replayable command log.

:class:`ControlledSource` is what a player pulls tokens from.  Commands that change what the
network generates are queued and drained *before every step*, so the token generated next is the
first one under them.  Each applied command is logged with the voice's step counter; feeding the
same log to a fresh voice with the same seed (:func:`replay`) gives the same tokens, which makes a
live session reproducible.

Restarts (``reset``, ``next``) need the player (its interpreter must forget the old tune), so they
are never applied inside a step: the drain stops in front of them and hands the rest of the queue
to ``schedule_drain`` (the event loop), where the player is free to be reset.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from folkrnn_live.model.network import FolkRNN
from folkrnn_live.sampler.controls import SEED_RANGE
from folkrnn_live.sampler.together import forward_together
from folkrnn_live.sampler.voice import Voice
from folkrnn_live.server.commands.catalog import COMMANDS, INJECT_LIMIT
from folkrnn_live.server.commands.handlers import VOICE_STEP
from folkrnn_live.server.commands.registry import Call, CommandContext, CommandError
from folkrnn_live.server.transports.common import NullOrigin, Origin
from folkrnn_live.server.transports.feedback import error_feedback
from folkrnn_live.tokens.vocab import Vocabulary

log = logging.getLogger(__name__)

RESTARTS = frozenset({"reset", "next"})
DEFAULT_QUEUE_LIMIT = 10_000
DEFAULT_LOG_LIMIT = 100_000


@dataclass(frozen=True)
class LogEntry:
    """One applied command: ``step`` is the voice's total step count when it was applied (the
    token with that number was the first generated under it)."""

    step: int
    tune: int
    command: str
    args: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "tune": self.tune, "command": self.command,
                "args": {k: list(v) if isinstance(v, tuple) else v for k, v in self.args.items()}}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> LogEntry:
        args = {k: tuple(v) if isinstance(v, list) else v for k, v in d["args"].items()}
        return cls(int(d["step"]), int(d["tune"]), str(d["command"]), args)


class ControlledSource:
    """The player's ``TokenSource`` for one voice, with the step-command queue and log."""

    def __init__(
        self,
        voice: Voice,
        *,
        continuous: bool = False,
        queue_limit: int = DEFAULT_QUEUE_LIMIT,
        log_limit: int = DEFAULT_LOG_LIMIT,
        schedule_drain: Callable[[], None] | None = None,
        on_restart: Callable[[str, bool], None] | None = None,
        on_applied: Callable[[LogEntry], None] | None = None,
    ) -> None:
        self.voice = voice
        self.continuous = continuous
        self.next_seed: int | None = None  # set by the seed command; used by the next restart
        self.queue: deque[tuple[Call, Origin]] = deque()
        self.queue_limit = queue_limit
        # Kept as JSON text: strings are invisible to the garbage collector, and at 1,000 commands a
        # second a log of objects made full collections take 40-100 ms, long enough to delay notes.
        self._log: deque[str] = deque(maxlen=log_limit)
        self.initial_seed = voice.seed
        self.schedule_drain = schedule_drain
        self.on_restart = on_restart
        self.on_applied = on_applied
        self._boundary_due = False  # a length-capped tune ended: send </s> so the player sees it

    # --- queue ---------------------------------------------------------------------------------
    def enqueue(self, call: Call, origin: Origin) -> None:
        if len(self.queue) >= self.queue_limit:
            raise CommandError(call.address, f"voice queue is full ({self.queue_limit} commands waiting)",
                               allowed="fewer messages per second")
        self.queue.append((call, origin))

    def drain(self, in_step: bool = False) -> int:
        """Apply queued commands in order; returns how many.  ``in_step``: called right before a
        model step (restarts are left for the event loop)."""
        n = 0
        while self.queue:
            call, origin = self.queue[0]
            if in_step and call.name in RESTARTS:
                if self.schedule_drain is not None:
                    self.schedule_drain()
                break
            self.queue.popleft()
            self.apply(call, origin)
            n += 1
        return n

    def apply(self, call: Call, origin: Origin | None = None) -> bool:
        """Carry out one step command now; errors go back to the origin, never up."""
        entry = LogEntry(self.voice.total_steps, self.voice.tunes_started, call.name, dict(call.args))
        try:
            VOICE_STEP.run(self, call)
        except (ValueError, KeyError) as exc:
            (origin or NullOrigin()).reply(error_feedback(_as_command_error(call, exc)))
            return False
        self.record(entry)
        return True

    def record(self, entry: LogEntry) -> None:
        """Log an applied command (step and player commands alike) and announce it."""
        self._log.append(json.dumps(entry.to_json(), separators=(",", ":")))
        if self.on_applied is not None:
            self.on_applied(entry)

    @property
    def log(self) -> list[LogEntry]:
        """The applied commands, oldest first (the last ``log_limit`` of them)."""
        return [LogEntry.from_json(json.loads(s)) for s in self._log]

    # --- TokenSource ---------------------------------------------------------------------------
    @property
    def vocab(self) -> Vocabulary:
        return self.voice.vocab

    def next_token(self) -> int | None:
        if self.queue:
            self.drain(in_step=True)
        v = self.voice
        if v.ended is not None:
            if self._boundary_due:
                self._boundary_due = False
                return v.vocab.end  # the interpreter closes the capped tune like any other
            if not self.continuous:
                return None
            self.restart("next", cut=False)
        r = v.step()
        if r is None:  # pragma: no cover - ended is checked above
            return None
        if r.ended == "length" and self.continuous:
            self._boundary_due = True
        return r.token

    # --- restarts ------------------------------------------------------------------------------
    def restart(self, how: str, cut: bool = True) -> None:
        """``reset``: the current tune again from its seed; ``next``: the next tune.  ``cut``: the
        old tune is cut off (the player must forget it); False when it ended by itself."""
        v = self.voice
        if self.next_seed is not None:
            seed: int | None = self.next_seed
            self.next_seed = None
        else:
            seed = v.seed if how == "reset" else (v.seed + 1) % (SEED_RANGE[1] + 1)
        self._boundary_due = False
        v.start_tune(seed=seed)
        if self.on_restart is not None:
            self.on_restart(how, cut)

    # --- step commands (names and arguments from the catalog) -----------------------------------
    @VOICE_STEP.handles("temperature")
    def cmd_temperature(self, value: float) -> None:
        self.voice.controls.set_temperature(value)

    @VOICE_STEP.handles("precision")
    def cmd_precision(self, precision: str) -> None:
        self.voice.set_precision(precision)

    @VOICE_STEP.handles("seed")
    def cmd_seed(self, seed: int) -> None:
        self.next_seed = seed

    @VOICE_STEP.handles("prime")
    def cmd_prime(self, tokens: tuple[str, ...]) -> None:
        self.voice.set_prime(tokens)

    @VOICE_STEP.handles("max_tokens")
    def cmd_max_tokens(self, n: int) -> None:
        self.voice.set_max_tokens(n)

    @VOICE_STEP.handles("bias")
    def cmd_bias(self, selector: str, amount: float) -> None:
        self.voice.controls.set_bias(self.voice.vocab.select(selector), amount)

    @VOICE_STEP.handles("bias_target")
    def cmd_bias_target(self, selector: str, probability: float) -> None:
        self.voice.bias_to_probability(self.voice.vocab.select(selector), probability)

    @VOICE_STEP.handles("bias_clear")
    def cmd_bias_clear(self) -> None:
        self.voice.controls.clear_bias()

    @VOICE_STEP.handles("suppress")
    def cmd_suppress(self, steps: int, selectors: tuple[str, ...]) -> None:
        self.voice.controls.add_suppress(self.voice.vocab.select_many(selectors), steps or None)

    @VOICE_STEP.handles("suppress_clear")
    def cmd_suppress_clear(self) -> None:
        self.voice.controls.clear_suppress()

    @VOICE_STEP.handles("snip")
    def cmd_snip(self, layer: int, mode: str, units: tuple[int, ...]) -> None:
        self.voice.controls.set_snip(layer, list(units), mode)  # type: ignore[arg-type]

    @VOICE_STEP.handles("snip_random")
    def cmd_snip_random(self, layer: int, fraction: float, seed: int, mode: str) -> None:
        hidden = self.voice.controls.hidden_size
        units = np.random.default_rng(seed).choice(hidden, round(fraction * hidden), replace=False)
        self.voice.controls.set_snip(layer, sorted(int(u) for u in units), mode)  # type: ignore[arg-type]

    @VOICE_STEP.handles("restore")
    def cmd_restore(self, layer: int | None) -> None:
        self.voice.controls.restore(layer)

    @VOICE_STEP.handles("force")
    def cmd_force(self, weight_generated: float, selector: str, weight: float, steps: int) -> None:
        mix = [(self.voice.vocab.select(selector), weight)]
        self.voice.controls.set_force(weight_generated, mix, steps or None)

    @VOICE_STEP.handles("force_clear")
    def cmd_force_clear(self) -> None:
        self.voice.controls.clear_force()

    @VOICE_STEP.handles("inject")
    def cmd_inject(self, tokens: tuple[str, ...]) -> None:
        waiting = len(self.voice.controls.inject)
        if waiting + len(tokens) > INJECT_LIMIT:
            raise ValueError(f"{waiting} injected tokens are still waiting; at most {INJECT_LIMIT} may wait "
                             f"(got {len(tokens)} more)")
        self.voice.controls.add_inject(self.voice.vocab.encode(tokens))

    @VOICE_STEP.handles("steer")
    def cmd_steer(self, component: int, alpha: float) -> None:
        self.voice.controls.set_steer(component, alpha)

    @VOICE_STEP.handles("steer_clear")
    def cmd_steer_clear(self) -> None:
        self.voice.controls.clear_steer()

    @VOICE_STEP.handles("clear")
    def cmd_clear(self) -> None:
        self.voice.controls.clear_all()

    @VOICE_STEP.handles("continuous")
    def cmd_continuous(self, on: bool) -> None:
        self.continuous = on

    @VOICE_STEP.handles("reset")
    def cmd_reset(self) -> None:
        self.restart("reset")

    @VOICE_STEP.handles("next")
    def cmd_next(self) -> None:
        self.restart("next")


class VoiceBatcher:
    """The scheduler's batcher: before a voice steps, one batched forward pass for it and every other
    voice that will want a token (:mod:`folkrnn_live.sampler.together`).  A voice is ready when its
    forward is computed and valid, when commands wait in its queue (they are applied first, and its
    step then computes its own row under them), when its tune has ended, or when its step path gains
    nothing from batches (``Stepper.batches_well``: numpy fp32 on the CPU)."""

    def ready(self, worker: Any) -> bool:
        src = getattr(worker, "source", None)
        if not isinstance(src, ControlledSource) or src.queue:
            return True
        voice = src.voice
        return not voice.stepper.batches_well or voice.ended is not None or voice.forward_ready()

    def prepare(self, worker: Any, workers: list[Any]) -> None:
        # Every playing voice, also one whose next note is already decided: its next token's row is
        # computed now with the others instead of alone later (a command before then recomputes it).
        voices = [s.voice for w in (worker, *workers)
                  if isinstance(s := getattr(w, "source", None), ControlledSource) and not s.queue
                  and getattr(w, "state", "playing") == "playing"]
        forward_together(list(dict.fromkeys(voices)))


def _as_command_error(call: Call, exc: Exception) -> CommandError:
    if isinstance(exc, CommandError):
        return exc
    msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    return CommandError(call.address, str(msg), allowed=call.command.signature())


def replay(
    model: FolkRNN,
    seed: int,
    entries: Iterable[LogEntry | Mapping[str, Any]],
    steps: int,
    *,
    ctx: CommandContext | None = None,
    continuous: bool = False,
    voice_kwargs: Mapping[str, Any] | None = None,
) -> list[tuple[int, str]]:
    """Re-generate a session offline: a fresh voice with ``seed``, each logged command applied at
    its step.  Returns ``(total_step, token)`` for ``steps`` network steps (fewer when the tune
    ends and continuous mode is off).  The server logs its config settings (continuous mode
    included) as commands at step 0, so a server log needs only its seed."""
    voice = Voice(model, seed=seed, **dict(voice_kwargs or {}))
    cfg = model.config
    ctx = ctx or CommandContext.for_model(voice.vocab, cfg.num_layers, cfg.hidden_size)
    src = ControlledSource(voice, continuous=continuous, log_limit=1)
    todo = deque(e if isinstance(e, LogEntry) else LogEntry.from_json(e) for e in entries)
    out: list[tuple[int, str]] = []
    voice.listeners.append(lambda r: out.append((voice.total_steps, r.text)))
    while len(out) < steps:
        while todo and todo[0].step <= voice.total_steps:
            e = todo.popleft()
            if COMMANDS.get(e.command).applies != "step":
                continue  # player, transport and recording commands do not change the tokens
            call = COMMANDS.bind_named(e.command, e.args, ctx, target="replay")
            if not src.apply(call):
                log.warning("replay: command %s at step %d failed", e.command, e.step)
        if src.next_token() is None:
            break
    # total_steps is counted after the listener ran: shift to "number of the token".
    return [(s - 1, t) for s, t in out]
