"""The command registry: one table of commands drives validation, encoding, dispatch and the docs.

Every control of the server is a :class:`Command` (name, scope, arguments with types, ranges,
choices and help) defined once in :mod:`folkrnn_live.server.commands.catalog`.  Transports (OSC, MQTT, MIDI
mappings, the config file) only turn their input into a command name plus raw values and call
:meth:`Registry.bind` (positional values: OSC arguments, JSON lists, split text) or
:meth:`Registry.bind_named` (JSON objects, TOML tables).  Both return a validated :class:`Call`
or raise :class:`CommandError`, whose fields name the address, the argument and what is allowed.

Values are coerced leniently so every transport can use the same table: numbers may arrive as
strings (MQTT plain payloads), integers as integral floats, booleans as on/off/true/false/1/0.
Ranges that depend on the loaded model (layers, hidden units) are written as names of model
dimensions (``"layers-1"``) and resolved against a :class:`CommandContext`.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from folkrnn_live.tokens.vocab import UnknownTokenError, Vocabulary

ArgType = Literal["int", "float", "bool", "str", "name", "token", "selector", "choice"]
Scope = Literal["voice", "global"]
# Where a command acts: "step" commands change what the network generates and are applied between
# token steps (they are logged and replayed); "loop" commands act on players, recorders and
# clients on the event loop.
Applies = Literal["step", "loop"]
Bound = int | float | str  # a number, or a model dimension such as "layers-1" resolved by CommandContext

PREFIX = "/folkrnn"
DEFAULT_OSC_PORT = 7400  # UDP port of the OSC commands (config key osc.port): clear of SuperCollider, TouchOSC
ALL = "all"
NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Values of one variadic argument in one message, at most: what a message may ask of the server
# (validating, queueing, applying) must be bounded whatever the transport lets through.
MAX_VALUES = 4096
MAX_NUMBER_TEXT = 64  # characters of a number given as text (MQTT plain payloads, OSC strings)
_BOOL_WORDS = {"1": True, "on": True, "true": True, "yes": True, "0": False, "off": False, "false": False, "no": False}


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
_SELECTOR_HELP = "a token, @class (e.g. @bar) or pc:X (e.g. pc:G)"


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
    choices: tuple[str, ...] | str = ()  # fixed choices, or a CommandContext attribute name ("voices")
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
            lo, hi = _fmt(self.lo), _fmt(self.hi)
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


def _fmt(b: Bound) -> str:
    if isinstance(b, float):
        return f"{b:g}"
    return str(b)


class Registry:
    """The table of commands, looked up by name."""

    def __init__(self, commands: Iterable[Command]) -> None:
        self.commands: dict[str, Command] = {}
        for c in commands:
            if c.name in self.commands:
                raise ValueError(f"command {c.name!r} is defined twice")
            if not NAME_RE.fullmatch(c.name):
                raise ValueError(f"command name {c.name!r} must match {NAME_RE.pattern}")
            self.commands[c.name] = c

    def __iter__(self) -> Iterator[Command]:
        return iter(self.commands.values())

    def __len__(self) -> int:
        return len(self.commands)

    def names(self, scope: Scope | None = None) -> list[str]:
        return [c.name for c in self if scope is None or c.scope == scope]

    def get(self, name: str, address: str | None = None) -> Command:
        cmd = self.commands.get(name)
        if cmd is None:
            import difflib

            near = difflib.get_close_matches(name, list(self.commands), n=3, cutoff=0.5)
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            raise CommandError(
                address or name, f"unknown command {name!r}{hint}", allowed=", ".join(sorted(self.commands))
            )
        return cmd

    # --- addresses -------------------------------------------------------------------------------
    def resolve(
            self, parts: Sequence[str], ctx: CommandContext, address: str | None = None,
    ) -> tuple[Command, str | None]:
        """A path split into parts, after the prefix: ``[command]`` (global) or ``[voice, command]``
        (``voice`` may be ``all``).  Returns the command and its target."""
        addr = address or "/".join([PREFIX, *parts])
        if len(parts) == 1:
            cmd = self.get(parts[0], addr)
            if cmd.scope != "global":
                raise CommandError(
                    addr,
                    f"{cmd.name} is a voice command; send it to {PREFIX}/<voice>/{cmd.name} "
                    f"or {PREFIX}/{ALL}/{cmd.name}",
                    allowed=f"voices: {', '.join((ALL, *ctx.voices))}",
                )
            return cmd, None
        if len(parts) == 2:
            target, name = parts
            if target != ALL and target not in ctx.voices:
                raise CommandError(
                    addr, f"unknown voice {target!r}", argument="voice", allowed=", ".join((ALL, *ctx.voices))
                )
            cmd = self.get(name, addr)
            if cmd.scope != "voice":
                raise CommandError(addr, f"{cmd.name} is a global command; send it to {PREFIX}/{cmd.name}")
            return cmd, target
        raise CommandError(
            addr, f"address must be {PREFIX}/<command> or {PREFIX}/<voice>/<command>", allowed="see docs/commands.md"
        )

    def parse_address(self, address: str, ctx: CommandContext) -> tuple[Command, str | None]:
        if not address.startswith(PREFIX + "/"):
            raise CommandError(address, f"address must start with {PREFIX}/", allowed="see docs/commands.md")
        return self.resolve(address[len(PREFIX) + 1 :].split("/"), ctx, address)

    # --- binding values ------------------------------------------------------------------------
    def bind(self, cmd: Command | str, values: Sequence[Any], ctx: CommandContext, target: str | None = None) -> Call:
        """Validate positional values (OSC arguments, a JSON list, split text)."""
        cmd = self.get(cmd) if isinstance(cmd, str) else cmd
        addr = cmd.address(target)
        out: dict[str, Any] = {}
        vals = list(values)
        for i, a in enumerate(cmd.args):
            if a.variadic:
                rest = vals[i:]
                if len(rest) < a.min_count:
                    raise CommandError(
                        addr, f"needs at least {a.min_count} value(s); got {len(rest)}", argument=a.name,
                        allowed=f"{cmd.name} {cmd.signature()}",
                    )
                if len(rest) > MAX_VALUES:
                    raise CommandError(addr, f"takes at most {MAX_VALUES} values in one message; got {len(rest)}",
                                       argument=a.name, allowed=f"{a.min_count}..{MAX_VALUES} values")
                out[a.name] = tuple(coerce(a, v, ctx, addr) for v in rest)
                vals = []
                break
            if i < len(vals):
                out[a.name] = coerce(a, vals[i], ctx, addr)
            elif a.required:
                raise CommandError(addr, "missing", argument=a.name, allowed=f"{cmd.name} {cmd.signature()}")
            else:
                out[a.name] = a.default
        else:
            if len(vals) > len(cmd.args):
                raise CommandError(
                    addr, f"takes {len(cmd.args)} argument(s); got {len(vals)}",
                    argument=f"argument {len(cmd.args) + 1}", allowed=f"{cmd.name} {cmd.signature()}".strip(),
                )
        return Call(cmd, target, out)

    def bind_named(
        self, cmd: Command | str, values: Mapping[str, Any], ctx: CommandContext, target: str | None = None
    ) -> Call:
        """Validate named values (a JSON object, a TOML table); a variadic argument takes a list."""
        cmd = self.get(cmd) if isinstance(cmd, str) else cmd
        known = {a.name for a in cmd.args}
        unknown = sorted(set(values) - known)
        if unknown:
            names = ", ".join(a.name for a in cmd.args) or "none"
            raise CommandError(cmd.address(target), "unknown argument", argument=unknown[0], allowed=names)
        positional: list[Any] = []
        for a in cmd.args:
            if a.name in values:
                v = values[a.name]
                if a.variadic:
                    positional.extend(v if isinstance(v, list | tuple) else [v])
                else:
                    positional.append(v)
            elif a.variadic:
                break
            elif a.required:
                raise CommandError(cmd.address(target), "missing", argument=a.name, allowed=cmd.signature())
            else:
                positional.append(a.default)
        return self.bind(cmd, positional, ctx, target)

    def bind_text(self, cmd: Command | str, text: str, ctx: CommandContext, target: str | None = None) -> Call:
        """Validate a plain-text payload: values separated by spaces (shell quoting allowed)."""
        cmd = self.get(cmd) if isinstance(cmd, str) else cmd
        try:
            parts = shlex.split(text)
        except ValueError as exc:
            raise CommandError(
                cmd.address(target), f"cannot split payload: {exc}", allowed="space-separated values"
            ) from exc
        return self.bind(cmd, parts, ctx, target)

    def bind_json(self, cmd: Command | str, payload: Any, ctx: CommandContext, target: str | None = None) -> Call:
        """Validate a decoded JSON payload: an object (named), a list (positional), a scalar (one
        value) or null (no values)."""
        if isinstance(payload, dict):
            return self.bind_named(cmd, payload, ctx, target)
        if isinstance(payload, list):
            return self.bind(cmd, payload, ctx, target)
        return self.bind(cmd, [] if payload is None else [payload], ctx, target)


def _show(v: Any) -> str:
    """A value for an error message: its repr, cut (a reply must not echo a 60 KB argument)."""
    text = repr(v) if not isinstance(v, list | tuple | dict) else f"{type(v).__name__} of {len(v)}"
    return text if len(text) <= 40 else text[:37] + "..."


def coerce(a: Arg, v: Any, ctx: CommandContext, address: str) -> Any:
    """One value to the argument's type, checked against its range or choices."""

    def fail(msg: str, allowed: str = "") -> CommandError:
        return CommandError(address, msg, argument=a.name, allowed=allowed or a.describe())

    if v is None and not a.required and not a.variadic:
        return a.default
    t = a.type
    if t in ("int", "float"):
        noun = "an integer" if t == "int" else "a number"
        if isinstance(v, bool):
            raise fail(f"must be a number, not a boolean; got {v!r}")
        if isinstance(v, str):
            if len(v) > MAX_NUMBER_TEXT:  # int() of 4,300+ digits raises, of fewer costs quadratic time
                raise fail(f"must be {noun} written in at most {MAX_NUMBER_TEXT} characters; got {len(v)}")
            try:
                v = int(v) if t == "int" and re.fullmatch(r"[+-]?\d+", v.strip()) else float(v)
            except ValueError as exc:
                raise fail(f"must be {noun}; got {_show(v)}") from exc
        if not isinstance(v, int | float):
            raise fail(f"must be {noun}; got {type(v).__name__} {_show(v)}")
        if isinstance(v, int) and v.bit_length() > 63:  # float(v) would overflow, str(v) may raise
            raise fail(f"is out of range; got an integer of {v.bit_length()} bits")
        if not math.isfinite(v):
            raise fail(f"must be finite; got {v!r}")
        if t == "int":
            if isinstance(v, float):
                if not v.is_integer():
                    raise fail(f"must be an integer; got {v!r}")
                v = int(v)
        else:
            v = float(v)
        if a.lo is not None and a.hi is not None:
            lo, hi = ctx.resolve(a.lo), ctx.resolve(a.hi)
            ok = lo < v < hi if a.exclusive else lo <= v <= hi
            if not ok:
                rng = f"({_fmt(lo)}, {_fmt(hi)}) exclusive" if a.exclusive else f"{_fmt(lo)}..{_fmt(hi)}"
                raise fail(f"must be in range {rng}; got {v!r}", allowed=rng)
        return v
    if t == "bool":
        if isinstance(v, bool):
            return v
        if isinstance(v, int | float) and v in (0, 1):
            return bool(v)
        if isinstance(v, str) and v.strip().lower() in _BOOL_WORDS:
            return _BOOL_WORDS[v.strip().lower()]
        raise fail(f"must be on/off (true/false, 1/0); got {_show(v)}", allowed="on, off, true, false, 1, 0")
    if not isinstance(v, str):
        raise fail(f"must be a string; got {type(v).__name__} {_show(v)}")
    if t == "name":
        if not NAME_RE.fullmatch(v):
            raise fail(f"must match {NAME_RE.pattern}; got {_show(v)}", allowed="letters, digits, _ . - (1-64)")
        return v
    if t == "choice":
        choices = a.choices if isinstance(a.choices, tuple) else tuple(getattr(ctx, a.choices))
        if v not in choices:
            raise fail(f"must be one of {', '.join(choices)}; got {_show(v)}", allowed=", ".join(choices))
        return v
    if t == "token":
        if ctx.vocab is not None and v not in ctx.vocab:
            near = ctx.vocab.nearest(v)
            hint = f" (nearest: {', '.join(near)})" if near else ""
            raise fail(f"unknown token {_show(v)}{hint}", allowed="a token of the model's vocabulary")
        return v
    if t == "selector":
        if ctx.vocab is not None:
            try:
                ctx.vocab.select(v)
            except UnknownTokenError as exc:
                near = exc.unknown[0].nearest if exc.unknown else ()
                hint = f" (nearest: {', '.join(near)})" if near else ""
                raise fail(f"unknown token {_show(v)}{hint}", allowed=_SELECTOR_HELP) from exc
            except ValueError as exc:
                raise fail(str(exc), allowed=_SELECTOR_HELP) from exc
        return v
    return v
