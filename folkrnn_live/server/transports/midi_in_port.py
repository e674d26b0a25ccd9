"""What MIDI in reads and writes outside the process: the input port of ``[midi_in]`` (by name or a
unique part of it, or a virtual port, through :mod:`folkrnn_live.player.ports`) and the map file
(``midi_in.map_file``: loaded after ``[[midi_in.map]]``, written by ``midi_save``)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mido

from folkrnn_live.player import ports
from folkrnn_live.server.commands.midi_map import MidiMapError, MidiMapping, parse_mappings, to_toml
from folkrnn_live.server.commands.registry import CommandContext, Registry
from folkrnn_live.server.runtime.midi_in_settings import SECTION, VIRTUAL_NAME


class MidiInError(OSError):
    """The input port cannot be opened (the message says which ports exist)."""


def open_input_port(name: str, *, virtual: bool, callback: Callable[[mido.Message], None]) -> Any:
    """An rtmidi input port calling ``callback`` on rtmidi's thread; :class:`MidiInError` names the
    ports that exist when it cannot be opened."""
    try:
        # Through player.ports: the process's one MIDI system, and no probe of one that is not there.
        if virtual:
            return ports.open_input(None, virtual=True, virtual_name=name or VIRTUAL_NAME, callback=callback)
        names = ports.input_names()
        chosen = None
        if name:
            chosen = next((n for n in names if n == name), None) or next(
                (n for n in names if name.lower() in n.lower()), None)
            if chosen is None:
                raise MidiInError(f"no MIDI input port matches {name!r} ({SECTION}.port); allowed: "
                                  + (", ".join(repr(n) for n in names) or "none found (is a controller connected?)"))
        elif not names:
            raise MidiInError(f"no MIDI input ports found for {SECTION}; connect a controller, or set "
                              f"{SECTION}.virtual = true")
        return ports.open_input(chosen or names[0], callback=callback)
    except MidiInError:
        raise
    except (OSError, ValueError, RuntimeError) as exc:  # rtmidi's errors (no ALSA, no JACK) are OSErrors
        what = "virtual input port" if virtual else f"input port {name or '(first)'!r}"
        raise MidiInError(f"cannot open MIDI {what}: {str(exc).strip().splitlines()[0]}") from exc


def read_map_file(path: str, reg: Registry, ctx: CommandContext) -> list[MidiMapping]:
    """The ``[[map]]`` tables of ``midi_in.map_file`` (none when unset or not written yet)."""
    if not path or not os.path.exists(path):
        return []
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise MidiMapError(f"{path}: cannot read the MIDI map file ({SECTION}.map_file): {exc}") from exc
    extra = set(doc) - {"map"}
    if extra:
        raise MidiMapError(f"{path}: unknown key {sorted(extra)[0]!r}; allowed: [[map]] tables")
    return parse_mappings(doc.get("map", []), reg, ctx, f"{path}: map")


def write_map_file(map_file: str, mappings: list[MidiMapping]) -> Path:
    """Every mapping to ``midi_in.map_file``, replaced at once (never a half-written file)."""
    path = Path(map_file)
    tmp = path.with_name(path.name + ".tmp")
    header = "# MIDI mappings written by folkrnn-live (midi_save); loaded after [[midi_in.map]].\n\n"
    try:
        tmp.write_text(header + to_toml(mappings), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise MidiMapError(f"{SECTION}.map_file: cannot write {str(path)!r}: {exc.strerror or exc}") from exc
    return path
