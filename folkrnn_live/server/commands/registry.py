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
from typing import Any

from folkrnn_live.server.commands.spec import (
    ALL,
    DEFAULT_OSC_PORT,
    MAX_VALUES,
    NAME_RE,
    PREFIX,
    REQUIRED,
    Applies,
    Arg,
    ArgType,
    Bound,
    Call,
    Command,
    CommandContext,
    CommandError,
    Scope,
    fmt_bound,
)
from folkrnn_live.tokens.vocab import UnknownTokenError

# The command API is imported from here; its types live in spec.py (split for size).
__all__ = [
    "ALL", "DEFAULT_OSC_PORT", "MAX_NUMBER_TEXT", "MAX_VALUES", "NAME_RE", "PREFIX", "REQUIRED", "Applies", "Arg",
    "ArgType", "Bound", "Call", "Command", "CommandContext", "CommandError", "Registry", "Scope", "coerce",
]

MAX_NUMBER_TEXT = 64  # characters of a number given as text (MQTT plain payloads, OSC strings)
_BOOL_WORDS = {"1": True, "on": True, "true": True, "yes": True, "0": False, "off": False, "false": False, "no": False}
_SELECTOR_HELP = "a token, @class (e.g. @bar) or pc:X (e.g. pc:G)"

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
                lo_s, hi_s = fmt_bound(lo), fmt_bound(hi)
                rng = f"({lo_s}, {hi_s}) exclusive" if a.exclusive else f"{lo_s}..{hi_s}"
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
        choices = a.choices if isinstance(a.choices, tuple) else ctx.choices(a.choices)
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
