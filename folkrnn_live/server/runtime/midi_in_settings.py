"""The ``[midi_in]`` config section (the mappings themselves:
:mod:`folkrnn_live.server.commands.midi_map`).

:data:`CONFIG_KEYS` are rows of the server's config schema.  ``map`` is the ``[[midi_in.map]]``
array of tables; its type ``raw`` is not checked by the schema, so the tables arrive as written
and :func:`~folkrnn_live.server.commands.midi_map.parse_mappings` validates them against the
registry once the model is loaded.  No MIDI library is imported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from folkrnn_live.server.commands.midi_map import MidiMapError
from folkrnn_live.server.runtime.config_keys import ConfigKey, check_table, section_table

SECTION = "midi_in"
VIRTUAL_NAME = "folkrnn-live in"


CONFIG_KEYS: tuple[ConfigKey, ...] = (
    ConfigKey(SECTION, "enabled", "bool", False, "open a MIDI input port and act on the mappings"),
    ConfigKey(SECTION, "port", "str", "", "input port name (a unique part of it is enough); empty: the first port"),
    ConfigKey(SECTION, "virtual", "bool", False,
        "create a virtual input port named 'folkrnn-live in' (not on Windows)"),
    ConfigKey(SECTION, "required", "bool", False,
        "refuse to start when the port cannot be opened (else: log and go on)"),
    ConfigKey(SECTION, "clock", "bool", False, "follow MIDI clock from this port: its 24 ppqn ticks set every voice's "
        "tempo, start/stop/continue its transport (a restart applies a change)"),
    ConfigKey(SECTION, "map_file", "str", "",
        "TOML file of [[map]] tables: loaded after [[midi_in.map]], written by midi_save"),
    ConfigKey(SECTION, "map", "raw", [], "[[midi_in.map]] tables: a CC or note mapped to a command (docs/midi.md)"),
)


@dataclass(frozen=True)
class MidiInSettings:
    enabled: bool = False
    port: str = ""
    virtual: bool = False
    required: bool = False
    clock: bool = False
    map_file: str = ""

    @classmethod
    def from_table(cls, table: Mapping[str, Any], where: str = "config") -> MidiInSettings:
        """A ``[midi_in]`` table without its ``map`` array."""
        kw = check_table(table, CONFIG_KEYS, where, MidiMapError)
        kw.pop("map", None)  # the mappings are validated against the registry (midi_map.parse_mappings)
        return cls(**kw)

    @classmethod
    def from_config(cls, values: Mapping[str, Any], where: str = "config") -> MidiInSettings:
        """The server config's flat values (``"midi_in.port"`` -> value)."""
        return cls.from_table(section_table(values, SECTION), where)
