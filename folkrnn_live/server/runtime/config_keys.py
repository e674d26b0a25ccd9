"""One config key, written once: its default, its row in docs/config.md and the check of a value.

The server's own sections (:mod:`.config`) and the transports' sections (:mod:`.mqtt_settings`,
:mod:`.midi_in_settings`) are all lists of :class:`ConfigKey`, so every value is checked by
:meth:`ConfigKey.check` and every error reads the same: ``where: section.key must be <allowed>; got <value>``.
This module imports nothing from the server, so any settings module can use it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

KeyType = Literal["str", "int", "float", "bool", "list", "raw"]


class ConfigError(ValueError):
    """A bad config value; the message names the key and what is allowed."""


@dataclass(frozen=True)
class ConfigKey:
    section: str
    name: str
    type: KeyType  # list: a list of strings; raw: left to the section's own module to check
    default: Any
    help: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        return f"{self.section}.{self.name}"

    def allowed(self) -> str:
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.lo is not None and self.hi is not None:
            kind = "an integer" if self.type == "int" else "a number"
            return f"{kind} in range {_number(self.lo)}..{_number(self.hi)}"
        return {"str": "a string", "bool": "true or false", "list": "a list of strings",
                "raw": "see its section"}.get(self.type, self.type)

    def check(self, v: Any, where: str = "config", error: Callable[[str], ValueError] = ConfigError) -> Any:
        """``v`` if it is allowed (an int made a float for float keys, a list copied), else
        ``error`` naming the key, what is allowed and what was given."""

        def bad() -> ValueError:
            head = f"{where}: " if where else ""
            return error(f"{head}{self.path} must be {self.allowed()}; got {v!r}")

        t = self.type
        if t == "bool":
            if not isinstance(v, bool):
                raise bad()
        elif t in ("int", "float"):
            if isinstance(v, bool) or not isinstance(v, int | float) or (t == "int" and not isinstance(v, int)):
                raise bad()
            # NaN fails this comparison too, so it is refused like any value out of range.
            if self.lo is not None and self.hi is not None and not self.lo <= v <= self.hi:
                raise bad()
            v = float(v) if t == "float" else v
        elif t == "str":
            if not isinstance(v, str) or (self.choices and v not in self.choices):
                raise bad()
        elif t == "list":
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise bad()
            v = list(v)
        return v


def check_table(
    table: Any, keys: Sequence[ConfigKey], where: str = "config", error: Callable[[str], ValueError] = ConfigError,
) -> dict[str, Any]:
    """One section's table (``[mqtt]``, ``[midi_in]``) checked against its keys: the checked
    values by key name (``raw`` ones as given).  A table that is not one, an unknown key or a bad
    value raises ``error`` naming the section and what is allowed."""
    section = keys[0].section
    if not isinstance(table, Mapping):
        raise error(f"{where}: [{section}] must be a table")
    by_name = {k.name: k for k in keys}
    checked: dict[str, Any] = {}
    for name, v in table.items():
        key = by_name.get(name)
        if key is None:
            raise error(f"{where}: unknown key {section}.{name}; allowed in [{section}]: " + ", ".join(by_name))
        checked[name] = v if key.type == "raw" else key.check(v, where, error)
    return checked


def section_table(values: Mapping[str, Any], section: str) -> dict[str, Any]:
    """The server config's flat values (``"mqtt.host"`` -> value) of one section, by key name."""
    head = section + "."
    return {k[len(head):]: v for k, v in values.items() if k.startswith(head)}


def _number(x: float) -> str:
    """1000000, not 1e+06: a range in an error or the docs must be exact."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


# --- TOML out (the standard library reads TOML but does not write it) ---------------------------------
def toml_value(v: Any) -> str:
    """``v`` as a TOML value (the docs' defaults, the MIDI map file)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, Sequence):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else toml_value(k)
