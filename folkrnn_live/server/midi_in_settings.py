"""The ``[midi_in]`` config section (the mappings themselves: :mod:`.midi_in_map`).

:data:`CONFIG_KEYS` rows have the field order of :class:`folkrnn_live.server.config.Key` after the
section, so the server's config schema takes them over (``config.EXTENSION_MODULES``).  ``map`` is
the ``[[midi_in.map]]`` array of tables; its type ``raw`` is not checked by the schema, so the
tables arrive as written and :func:`.midi_in_map.parse_mappings` validates them against the
registry once the model is loaded.  No MIDI library is imported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from folkrnn_live.server.midi_in_map import MidiMapError

SECTION = "midi_in"
VIRTUAL_NAME = "folkrnn-live in"


class Setting(NamedTuple):
    """One ``[midi_in]`` key; fields in the order of ``config.Key`` after its section."""

    name: str
    type: str
    default: Any
    help: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()


CONFIG_KEYS: tuple[Setting, ...] = (
    Setting("enabled", "bool", False, "open a MIDI input port and act on the mappings"),
    Setting("port", "str", "", "input port name (a unique part of it is enough); empty: the first port"),
    Setting("virtual", "bool", False, "create a virtual input port named 'folkrnn-live in' (not on Windows)"),
    Setting("required", "bool", False, "refuse to start when the port cannot be opened (else: log and go on)"),
    Setting("map_file", "str", "", "TOML file of [[map]] tables: loaded after [[midi_in.map]], written by midi_save"),
    Setting("map", "raw", [], "[[midi_in.map]] tables: a CC or note mapped to a command (docs/midi.md)"),
)


@dataclass(frozen=True)
class MidiInSettings:
    enabled: bool = False
    port: str = ""
    virtual: bool = False
    required: bool = False
    map_file: str = ""

    @classmethod
    def from_table(cls, table: Mapping[str, Any], where: str = "config") -> MidiInSettings:
        """A ``[midi_in]`` table without its ``map`` array."""
        by_name = {k.name: k for k in CONFIG_KEYS}
        kw: dict[str, Any] = {}
        for name, v in table.items():
            key = by_name.get(name)
            if key is None:
                raise MidiMapError(f"{where}: unknown key {SECTION}.{name}; allowed in [{SECTION}]: "
                                   + ", ".join(by_name))
            if key.type == "raw":
                continue
            ok = isinstance(v, bool) if key.type == "bool" else isinstance(v, str)
            if not ok:
                allowed = "true or false" if key.type == "bool" else "a string"
                raise MidiMapError(f"{where}: {SECTION}.{name} must be {allowed}; got {v!r}")
            kw[name] = v
        return cls(**kw)

    @classmethod
    def from_config(cls, values: Mapping[str, Any], where: str = "config") -> MidiInSettings:
        """The server config's flat values (``"midi_in.port"`` -> value)."""
        return cls.from_table({k[len(SECTION) + 1:]: v for k, v in values.items() if k.startswith(SECTION + ".")},
                              where)
