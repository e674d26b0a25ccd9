"""MIDI-in mappings: which controller CC or note carries out which registry command.

A mapping is a ``[[midi_in.map]]`` table (or one learned live)::

    [[midi_in.map]]            # a knob: CC 21 on channel 1 (0-based 0) sets voice 1's temperature
    cc = 21
    channel = 0                # optional: any channel when left out
    command = "temperature"
    voice = "1"                # a voice name or "all"; left out for global commands
    min = 0.1                  # optional: the argument's range from the registry by default
    max = 2.0
    curve = "log"              # optional: linear (default) or log (even steps of ratio)

    [[midi_in.map]]            # a pad: note 36 snips 33% of layer 2 while held
    note = 36
    command = "snip_random"
    voice = "1"
    args = [2, 0.33, 1, "out"]
    # release = "restore"      # the default for snip, snip_random; release_args default: the layer

``args`` are the command's fixed values: a list (positional, skipping the argument the control
drives) or a table (named).  A CC drives one argument (``arg``; by default the first number or
on/off argument not given in ``args``), scaling 0..127 onto ``min..max``; a CC mapping whose
command has nothing to drive is a button (press at >= 64, release below).  A note presses on
note-on and releases on note-off; with ``arg`` its velocity is scaled like a CC value.

Every check goes through the command registry against the running model's context, so a table
that loads is a table whose calls validate; errors name ``midi_in.map[i].key`` and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from folkrnn_live.server.commands.registry import ALL, Arg, Call, Command, CommandContext, CommandError, Registry
from folkrnn_live.server.runtime.config_keys import toml_value

ControlKind = Literal["cc", "note"]
CURVES = ("linear", "log")
TABLE_KEYS = ("cc", "note", "channel", "command", "voice", "args", "arg", "min", "max", "curve", "release",
              "release_args")
# What a held pad or button undoes on release, unless the table says otherwise (release = "").
DEFAULT_RELEASE = {"snip": "restore", "snip_random": "restore", "suppress": "suppress_clear",
                   "force": "force_clear", "steer": "steer_clear", "pause": "resume"}
DRIVABLE = ("int", "float", "bool")


class MidiMapError(ValueError):
    """A bad mapping; the message names ``midi_in.map[i].key`` and what is allowed."""


@dataclass(frozen=True)
class MidiMapping:
    """One validated mapping.  ``fixed``/``release_fixed`` are named argument values."""

    kind: ControlKind
    number: int
    channel: int | None  # None: any channel
    command: Command
    target: str | None  # voice name, "all", or None for a global command
    fixed: Mapping[str, Any] = field(default_factory=dict)
    arg: Arg | None = None  # the argument the CC value (or note velocity) drives
    lo: float = 0.0
    hi: float = 1.0
    curve: str = "linear"
    release: Command | None = None
    release_fixed: Mapping[str, Any] = field(default_factory=dict)
    table: Mapping[str, Any] = field(default_factory=dict)  # as written (to show and save)

    @property
    def key(self) -> tuple[ControlKind, int, int | None]:
        return (self.kind, self.number, self.channel)

    @property
    def is_button(self) -> bool:
        """A CC without an argument to drive: press at >= 64, release below."""
        return self.kind == "cc" and self.arg is None

    def describe(self) -> str:
        ch = "any channel" if self.channel is None else f"channel {self.channel}"
        where = f" {self.target}" if self.target else ""
        drives = ""
        if self.arg is not None:
            drives = f" {self.arg.name}" if self.arg.type == "bool" else f" {self.arg.name}={self.lo:g}..{self.hi:g}"
        return f"{self.kind} {self.number} ({ch}) -> {self.command.name}{where}{drives}"

    # --- values to calls ---------------------------------------------------------------------------
    def value_for(self, raw: int, ctx: CommandContext) -> Any:
        """A CC value 0..127 (or a velocity 1..127) scaled onto the driven argument."""
        a = self.arg
        assert a is not None
        if a.type == "bool":
            return raw >= 64
        t = (raw - 1) / 126.0 if self.kind == "note" else raw / 127.0
        t = min(1.0, max(0.0, t))
        x = self.lo * (self.hi / self.lo) ** t if self.curve == "log" else self.lo + (self.hi - self.lo) * t
        lo, hi = _arg_bounds(a, ctx)
        x = min(hi, max(lo, x))  # float error at the ends must not step outside the range
        return round(x) if a.type == "int" else x

    def press(self, raw: int | None, reg: Registry, ctx: CommandContext) -> Call:
        named = dict(self.fixed)
        if self.arg is not None and raw is not None:
            named[self.arg.name] = self.value_for(raw, ctx)
        return reg.bind_named(self.command, named, ctx, self.target)

    def release_call(self, reg: Registry, ctx: CommandContext) -> Call | None:
        if self.release is None:
            return None
        target = self.target if self.release.scope == "voice" else None
        return reg.bind_named(self.release, dict(self.release_fixed), ctx, target)


def _arg_bounds(a: Arg, ctx: CommandContext) -> tuple[float, float]:
    """The argument's closed range; an open one (e.g. a probability) is pulled in by 1/1000."""
    if a.lo is None or a.hi is None:
        raise ValueError(f"argument {a.name} has no range")
    lo, hi = float(ctx.resolve(a.lo)), float(ctx.resolve(a.hi))
    if a.exclusive:
        eps = (hi - lo) / 1000.0
        lo, hi = lo + eps, hi - eps
    return lo, hi


def _int_in(v: Any, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _named(cmd: Command, values: Any, skip: str | None, where: str) -> dict[str, Any]:
    """``args`` (a list: positional, skipping the driven argument; a table: named) as named values."""
    if values is None:
        return {}
    if isinstance(values, Mapping):
        return dict(values)
    if isinstance(values, str):  # one value, or text like an MQTT plain payload
        import shlex

        values = shlex.split(values)
    if not isinstance(values, Sequence):
        raise MidiMapError(f"{where} must be a list (positional values) or a table (named values); got {values!r}")
    names = [a for a in cmd.args if a.name != skip]
    out: dict[str, Any] = {}
    vals = list(values)
    for i, a in enumerate(names):
        if i >= len(vals):
            break
        if a.variadic:
            out[a.name] = vals[i:]
            vals = vals[: i + 1]
            break
        out[a.name] = vals[i]
    if len(vals) > len(names):
        sig = " ".join(a.name for a in names)
        raise MidiMapError(f"{where}: {len(vals)} values for {cmd.name}, which takes {len(names)} here; allowed: {sig}")
    return out


def parse_mapping(
        table: Mapping[str, Any], reg: Registry, ctx: CommandContext, where: str = "midi_in.map[0]",
) -> MidiMapping:
    """Validate one table against the registry and the model context."""
    if not isinstance(table, Mapping):
        raise MidiMapError(f"{where} must be a table ([[midi_in.map]]); got {table!r}")
    unknown = sorted(set(table) - set(TABLE_KEYS))
    if unknown:
        raise MidiMapError(f"{where}.{unknown[0]}: unknown key; allowed: {', '.join(TABLE_KEYS)}")
    kinds = [k for k in ("cc", "note") if k in table]
    if len(kinds) != 1:
        raise MidiMapError(f"{where}: needs exactly one of cc or note (the control's number 0..127); "
                           f"got {', '.join(kinds) or 'neither'}")
    kind: ControlKind = kinds[0]  # type: ignore[assignment]
    number = table[kind]
    if not _int_in(number, 0, 127):
        raise MidiMapError(f"{where}.{kind} must be an integer 0..127; got {number!r}")
    channel = table.get("channel")
    if channel is not None and not _int_in(channel, 0, 15):
        raise MidiMapError(f"{where}.channel must be an integer 0..15 (0-based MIDI channel; leave it out for any); "
                           f"got {channel!r}")
    name = table.get("command")
    if not isinstance(name, str):
        raise MidiMapError(f"{where}.command must be a command name (see docs/commands.md); got {name!r}")
    try:
        cmd = reg.get(name)
    except CommandError as exc:
        raise MidiMapError(f"{where}.command: {exc.detail}") from None
    target = _target(cmd, table.get("voice"), ctx, where)

    # The driven argument.
    arg: Arg | None = None
    arg_name = table.get("arg")
    fixed_raw = table.get("args")
    if arg_name is not None:
        drivable = [a.name for a in cmd.args if a.type in DRIVABLE and not a.variadic]
        arg = next((a for a in cmd.args if a.name == arg_name), None)
        if arg is None or arg.name not in drivable:
            raise MidiMapError(f"{where}.arg: {cmd.name} has no number or on/off argument {arg_name!r}; "
                               f"allowed: {', '.join(drivable) or 'none'}")
    fixed = _named(cmd, fixed_raw, arg_name if isinstance(arg_name, str) else None, f"{where}.args")
    if arg is None and kind == "cc":
        # The first required number left: a knob.  None left: a button (a CC never turns an
        # optional argument, e.g. restore's layer, into a knob unless arg says so).
        arg = next((a for a in cmd.args if a.required and a.type in DRIVABLE and a.name not in fixed), None)
    if arg is not None and arg.name in fixed:
        raise MidiMapError(f"{where}.args: {arg.name} is driven by the {kind}; allowed: leave it out of args")

    lo = hi = 0.0
    curve = table.get("curve", "linear")
    if curve not in CURVES:
        raise MidiMapError(f"{where}.curve must be one of {', '.join(CURVES)}; got {curve!r}")
    if arg is not None and arg.type != "bool":
        lo, hi = _range(cmd, arg, table, ctx, target, where)
        if curve == "log" and (lo <= 0 or hi <= 0):
            raise MidiMapError(f"{where}.curve: log needs min and max above 0; got {lo:g}..{hi:g}")
    elif "min" in table or "max" in table:
        raise MidiMapError(f"{where}.min/max: nothing to scale ({kind} {number} presses {cmd.name}); "
                           "allowed: min and max with an argument to drive (arg)")

    # Check the fixed values now: every call this mapping makes must validate.
    m = MidiMapping(kind, number, channel, cmd, target, fixed, arg, lo, hi, curve)
    try:
        m.press(64 if arg is not None else None, reg, ctx)
    except CommandError as exc:
        arg_part = f".{exc.argument}" if exc.argument else ""
        raise MidiMapError(f"{where}.args{arg_part}: {exc.detail}") from None

    release, release_fixed = _release(cmd, table, fixed, reg, where)
    m = MidiMapping(kind, number, channel, cmd, target, fixed, arg, lo, hi, curve, release, release_fixed,
                    dict(table))
    try:
        m.release_call(reg, ctx)
    except CommandError as exc:
        arg_part = f".{exc.argument}" if exc.argument else ""
        raise MidiMapError(f"{where}.release_args{arg_part}: {exc.detail}") from None
    return m


def _target(cmd: Command, voice: Any, ctx: CommandContext, where: str) -> str | None:
    if cmd.scope == "global":
        if voice is not None:
            raise MidiMapError(f"{where}.voice: {cmd.name} is a global command; allowed: leave voice out")
        return None
    allowed = ", ".join((ALL, *ctx.voices))
    if voice is None:
        raise MidiMapError(f"{where}.voice: {cmd.name} is a voice command; allowed: {allowed}")
    if not isinstance(voice, str) or (voice != ALL and voice not in ctx.voices):
        raise MidiMapError(f"{where}.voice: unknown voice {voice!r}; allowed: {allowed}")
    return voice


def _range(cmd: Command, arg: Arg, table: Mapping[str, Any], ctx: CommandContext, target: str | None,
           where: str) -> tuple[float, float]:
    try:
        lo, hi = _arg_bounds(arg, ctx)
    except ValueError:
        raise MidiMapError(f"{where}.arg: {arg.name} of {cmd.name} has no range to scale onto; "
                           "allowed: a number argument with a range") from None
    out = []
    for key, default in (("min", lo), ("max", hi)):
        v = table.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise MidiMapError(f"{where}.{key} must be a number; got {v!r}")
        if arg.exclusive and v == default:
            out.append(float(v))
            continue
        from folkrnn_live.server.commands.registry import coerce

        try:
            coerce(arg, v, ctx, cmd.address(target))
        except CommandError as exc:
            raise MidiMapError(f"{where}.{key}: {exc.detail}") from None
        out.append(float(v))
    return out[0], out[1]


def _release(cmd: Command, table: Mapping[str, Any], fixed: Mapping[str, Any], reg: Registry,
             where: str) -> tuple[Command | None, dict[str, Any]]:
    name = table.get("release", DEFAULT_RELEASE.get(cmd.name, ""))
    if not isinstance(name, str):
        raise MidiMapError(f"{where}.release must be a command name or \"\" (nothing); got {name!r}")
    if not name:
        if "release_args" in table:
            raise MidiMapError(f"{where}.release_args: no release command; allowed: set release too")
        return None, {}
    try:
        rel = reg.get(name)
    except CommandError as exc:
        raise MidiMapError(f"{where}.release: {exc.detail}") from None
    if rel.scope != cmd.scope:
        raise MidiMapError(f"{where}.release: {rel.name} is a {rel.scope} command and {cmd.name} a {cmd.scope} "
                           f"one; allowed: a {cmd.scope} command")
    if "release_args" in table:
        return rel, _named(rel, table["release_args"], None, f"{where}.release_args")
    # Undo on the same layer that was snipped, not on every layer.
    shared = {a.name: fixed[a.name] for a in rel.args if a.name in fixed}
    return rel, shared


def parse_mappings(tables: Any, reg: Registry, ctx: CommandContext, where: str = "midi_in.map") -> list[MidiMapping]:
    if tables is None:
        return []
    if not isinstance(tables, list):
        raise MidiMapError(f"{where} must be an array of tables ([[midi_in.map]]); got {type(tables).__name__}")
    return [parse_mapping(t, reg, ctx, f"{where}[{i}]") for i, t in enumerate(tables)]


def to_toml(mappings: Sequence[MidiMapping], header: str = "map") -> str:
    """``[[map]]`` tables (the map file's format); ``header="midi_in.map"`` for a config file."""
    out: list[str] = []
    for m in mappings:
        out.append(f"[[{header}]]")
        order = [k for k in TABLE_KEYS if k in m.table]
        out += [f"{k} = {toml_value(m.table[k])}" for k in order]
        out.append("")
    return "\n".join(out)


# --- the midi_* commands, for the catalog (this module imports no MIDI library) ---------------------
MIDI_GROUP = ("midi", "MIDI input: learn mode and mappings (global)")
MIDI_COMMANDS: tuple[Command, ...] = (
    Command("midi_learn", "global", "loop", "midi",
            "Bind the next CC or note-on received to this command (a CC drives its first number argument).",
            (Arg("command", "name", "command to bind"),
             Arg("voice", "str", "voice name or all; empty for a global command", default=""),
             Arg("args", "str", "fixed arguments, space-separated as in an MQTT plain payload", default=""))),
    Command("midi_learn_cancel", "global", "loop", "midi", "Leave learn mode without binding anything."),
    Command("midi_forget", "global", "loop", "midi", "Remove the mappings of one control.",
            (Arg("kind", "choice", "control kind", choices=("cc", "note")),
             Arg("number", "int", "CC or note number", 0, 127),
             Arg("channel", "int", "0-based channel; -1: every channel", -1, 15, default=-1))),
    Command("midi_map", "global", "loop", "midi", "Reply midi_map with every mapping as [[midi_in.map]] TOML."),
    Command("midi_save", "global", "loop", "midi",
            "Write every mapping to midi_in.map_file (the path comes from the config, never the network)."),
)
