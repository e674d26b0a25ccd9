"""What a command is: its arguments (:class:`Arg`), the command (:class:`Command`), a validated
call (:class:`Call`), the model context ranges resolve against and :class:`CommandError`.

The table of them and the validation that binds raw values into a :class:`Call` are in
:mod:`.registry`; the commands themselves in :mod:`.catalog`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from folkrnn_live.tokens.vocab import Vocabulary

ArgType = Literal["int", "float", "bool", "str", "name", "token", "selector", "choice"]
Scope = Literal["voice", "global"]
# Where a command acts: "step" commands change what the network generates and are applied between
# token steps (they are logged and replayed); "loop" commands act on players, recorders and
# clients on the event loop.
Applies = Literal["step", "loop"]
ContextChoices = Literal["voices"]  # choices known only to the running server
Bound = int | float | str  # a number, or a model dimension such as "layers-1" resolved by CommandContext

PREFIX = "/folkrnn"
DEFAULT_OSC_PORT = 7400  # UDP port of the OSC commands (config key osc.port): clear of SuperCollider, TouchOSC
ALL = "all"
NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Values of one variadic argument in one message, at most: what a message may ask of the server
# (validating, queueing, applying) must be bounded whatever the transport lets through.
MAX_VALUES = 4096


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


class CommandError(ValueError):
    """A message that cannot be applied.  ``address`` is the command's address (OSC form),
    ``argument`` the offending argument (None when the address itself is wrong) and ``allowed``
    what would have been accepted."""

    def __init__(self, address: str, message: str, *, argument: str | None = None, allowed: str = "") -> None:
        self.address = address
        self.argument = argument
        self.allowed = allowed
        self.message = message
        where = f"{address}: {argument}" if argument else address
        super().__init__(f"{where}: {self.detail}")

    @property
    def detail(self) -> str:
        """The message with what is allowed, unless the message already says it."""
        if self.allowed and self.allowed not in self.message:
            return f"{self.message}; allowed: {self.allowed}"
        return self.message


@dataclass(frozen=True)
class Arg:
    name: str
    type: ArgType
    help: str
    lo: Bound | None = None
    hi: Bound | None = None
    exclusive: bool = False  # open interval (lo, hi)
    choices: tuple[str, ...] | ContextChoices = ()  # fixed choices, or ones the running server knows
    default: Any = REQUIRED
    variadic: bool = False  # the last argument may take every remaining value
    min_count: int = 0  # for a variadic argument

    @property
    def required(self) -> bool:
        return self.default is REQUIRED and not self.variadic

    def describe(self) -> str:
        """``amount: float -100..100`` as used in docs and error messages."""
        t: str = "token|@class|pc:X" if self.type == "selector" else self.type
        if self.type == "choice":
            t = "|".join(self.choices) if isinstance(self.choices, tuple) else f"<{self.choices}>"
        rng = ""
        if self.lo is not None and self.hi is not None:
            lo, hi = fmt_bound(self.lo), fmt_bound(self.hi)
            rng = f" ({lo}, {hi}) exclusive" if self.exclusive else f" {lo}..{hi}"
        tail = "..." if self.variadic else ""
        return f"{self.name}{tail}: {t}{rng}"


@dataclass(frozen=True)
class Command:
    name: str
    scope: Scope
    applies: Applies
    group: str  # section of the docs: sampler, player, transport, recording, session
    help: str
    args: tuple[Arg, ...] = ()

    def __post_init__(self) -> None:
        seen_optional = False
        for i, a in enumerate(self.args):
            if a.variadic and i != len(self.args) - 1:
                raise ValueError(f"command {self.name}: only the last argument may be variadic")
            if a.required and seen_optional:
                raise ValueError(f"command {self.name}: required argument {a.name} after an optional one")
            seen_optional = seen_optional or not a.required

    def address(self, target: str | None = None) -> str:
        if self.scope == "global":
            return f"{PREFIX}/{self.name}"
        return f"{PREFIX}/{target or '<voice>'}/{self.name}"

    def signature(self) -> str:
        parts = []
        for a in self.args:
            s = a.name + ("..." if a.variadic else "")
            parts.append(s if a.required or (a.variadic and a.min_count) else f"[{s}]")
        return " ".join(parts)


@dataclass
class CommandContext:
    """What validation needs to know about the running server: the model's vocabulary and
    dimensions, and the voice names."""

    vocab: Vocabulary | None = None
    dims: dict[str, int] = field(default_factory=dict)  # layers, hidden, components
    voices: tuple[str, ...] = ()

    def resolve(self, bound: Bound) -> float:
        if not isinstance(bound, str):
            return bound
        m = re.fullmatch(r"([a-z_]+)(?:-(\d+))?", bound)
        if m is None or m.group(1) not in self.dims:
            raise KeyError(f"model dimension {bound!r} is unknown; known: {sorted(self.dims)}")
        return self.dims[m.group(1)] - int(m.group(2) or 0)

    def choices(self, which: ContextChoices) -> tuple[str, ...]:
        """Choices that depend on the running server (an argument's ``choices="voices"``)."""
        if which == "voices":
            return self.voices
        raise ValueError(f"choices must be a tuple or 'voices'; got {which!r}")

    @classmethod
    def for_model(
            cls, vocab: Vocabulary, num_layers: int, hidden_size: int, voices: Iterable[str] = (),
    ) -> CommandContext:
        dims = {"layers": num_layers, "hidden": hidden_size, "components": min(len(vocab), hidden_size)}
        return cls(vocab=vocab, dims=dims, voices=tuple(voices))


@dataclass(frozen=True)
class Call:
    """A validated command for one target: None (global), ``"all"`` or a voice name."""

    command: Command
    target: str | None
    args: Mapping[str, Any]

    @property
    def name(self) -> str:
        return self.command.name

    @property
    def address(self) -> str:
        return self.command.address(self.target)

    def values(self) -> list[Any]:
        """Positional values in table order (a variadic tail flattened): for OSC and text."""
        out: list[Any] = []
        for a in self.command.args:
            v = self.args.get(a.name)
            if a.variadic:
                out.extend(v or ())
            elif v is not None:
                out.append(v)
        return out

    def text(self) -> str:
        return " ".join([self.name, *(shlex.quote(str(v)) for v in self.values())])

    def to_json(self) -> dict[str, Any]:
        return {"command": self.name, "target": self.target, "args": {k: _jsonable(v) for k, v in self.args.items()}}


def _jsonable(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def fmt_bound(b: Bound) -> str:
    if isinstance(b, float):
        return f"{b:g}"
    return str(b)
