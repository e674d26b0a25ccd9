"""The ``[mqtt]`` config section: one table of keys, validation with errors naming the key.

:data:`CONFIG_KEYS` rows have the field order of :class:`folkrnn_live.server.config.Key` after the
section, so the server's config schema can take them over with ``Key("mqtt", *row)`` (docs and
``--set mqtt.port=...`` for free).  :class:`MqttSettings` checks what a schema row cannot: files
that must exist, a topic prefix without wildcards, backoff bounds in order.  This module imports
nothing heavy (no aiomqtt) so the config can import it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

from folkrnn_live.server.catalog import DEFAULT_STREAMS, STREAMS

SECTION = "mqtt"
DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883
# A topic level of the prefix: no MQTT wildcards, no empty levels, nothing a shell or ACL file chokes on.
_PREFIX_RE = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")


class MqttConfigError(ValueError):
    """A bad ``[mqtt]`` value; the message names the key and what is allowed."""


class Setting(NamedTuple):
    """One key; fields in the order of ``config.Key`` after its section."""

    name: str
    type: str  # str, int, float, bool, list
    default: Any
    help: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()

    def allowed(self) -> str:
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.lo is not None and self.hi is not None:
            return f"{'an integer' if self.type == 'int' else 'a number'} in range {self.lo:g}..{self.hi:g}"
        return {"str": "a string", "bool": "true or false", "list": "a list of strings"}.get(self.type, self.type)


CONFIG_KEYS: tuple[Setting, ...] = (
    Setting("enabled", "bool", False, "connect to an MQTT broker (commands in, state and events out)"),
    Setting("host", "str", "127.0.0.1", "broker host name or address"),
    Setting("port", "int", DEFAULT_PORT, "broker TCP port (usually 8883 with TLS)", 1, 65535),
    Setting("prefix", "str", "folkrnn", "topic prefix: commands on <prefix>/<voice>/<command>"),
    Setting("client_id", "str", "", "MQTT client id; empty: folkrnn-live-<host>-<pid>"),
    Setting("username", "str", "", "user name; empty: connect anonymously"),
    Setting("password", "str", "", "password (prefer password_file: config files are often readable)"),
    Setting("password_file", "str", "", "file whose first line is the password (e.g. a systemd credential)"),
    Setting("tls", "bool", False, "connect with TLS (on by itself when ca_file or cert_file is set)"),
    Setting("ca_file", "str", "", "CA certificates (PEM) to verify the broker; empty: the system's"),
    Setting("cert_file", "str", "", "client certificate (PEM) for brokers that require one"),
    Setting("key_file", "str", "", "client private key (PEM) of cert_file"),
    Setting("keepalive", "int", 30, "seconds between keep-alive pings (how soon a dead broker is noticed)",
            5, 3600),
    Setting("qos", "int", 0, "QoS of commands subscribed and events published (state is published at 1)",
            0, 2),
    Setting("streams", "list", list(DEFAULT_STREAMS), "feedback streams published: "
            + ", ".join(STREAMS) + " (state is the retained <prefix>/<voice>/state)"),
    Setting("event_rate", "float", 1000.0, "events per second published at most (excess dropped); 0: unlimited",
            0, 1e6),
    Setting("command_rate", "float", 2000.0, "commands per second accepted at most; 0: unlimited", 0, 1e6),
    Setting("command_burst", "int", 500, "commands accepted at once above command_rate", 1, 1_000_000),
    Setting("max_payload", "int", 65536, "largest command payload in bytes", 16, 16_777_216),
    Setting("reconnect_min", "float", 0.5, "first wait in seconds before reconnecting (doubles each try)",
            0.01, 60),
    Setting("reconnect_max", "float", 30.0, "longest wait in seconds between reconnection attempts", 0.01, 3600),
    Setting("timeout", "float", 10.0, "seconds a connect or publish may take before the link counts as lost",
            0.1, 600),
)
_BY_NAME = {k.name: k for k in CONFIG_KEYS}


def check(key: Setting, v: Any, where: str = "config") -> Any:
    """One value against its row (the same rules as the server's config schema)."""

    def bad() -> MqttConfigError:
        head = f"{where}: " if where else ""
        return MqttConfigError(f"{head}{SECTION}.{key.name} must be {key.allowed()}; got {v!r}")

    t = key.type
    if t == "bool":
        if not isinstance(v, bool):
            raise bad()
    elif t in ("int", "float"):
        if isinstance(v, bool) or not isinstance(v, int | float) or (t == "int" and not isinstance(v, int)):
            raise bad()
        if key.lo is not None and key.hi is not None and not key.lo <= v <= key.hi:
            raise bad()
        v = float(v) if t == "float" else v
    elif t == "str":
        if not isinstance(v, str) or (key.choices and v not in key.choices):
            raise bad()
    elif t == "list":
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise bad()
        v = list(v)
    return v


@dataclass(frozen=True)
class MqttSettings:
    """Everything the bridge needs; build with :meth:`from_table` (a TOML ``[mqtt]`` table) or
    :meth:`from_config` (the server config's ``"mqtt.<key>"`` values), which validate."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    prefix: str = "folkrnn"
    client_id: str = ""
    username: str = ""
    password: str = ""
    password_file: str = ""
    tls: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    keepalive: int = 30
    qos: int = 0
    streams: tuple[str, ...] = DEFAULT_STREAMS
    event_rate: float = 1000.0
    command_rate: float = 2000.0
    command_burst: int = 500
    max_payload: int = 65536
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    timeout: float = 10.0

    def __post_init__(self) -> None:
        self.validate()

    # --- construction ------------------------------------------------------------------------------
    @classmethod
    def from_table(cls, table: Mapping[str, Any], where: str = "config") -> MqttSettings:
        """A ``[mqtt]`` table: unknown keys and bad values raise :class:`MqttConfigError`."""
        if not isinstance(table, Mapping):
            raise MqttConfigError(f"{where}: [{SECTION}] must be a table")
        values: dict[str, Any] = {}
        for name, v in table.items():
            key = _BY_NAME.get(name)
            if key is None:
                raise MqttConfigError(f"{where}: unknown key {SECTION}.{name}; allowed in [{SECTION}]: "
                                      + ", ".join(_BY_NAME))
            values[name] = check(key, v, where)
        return cls._build(values, where)

    @classmethod
    def from_config(cls, values: Mapping[str, Any], where: str = "config") -> MqttSettings:
        """The server config's flat values (``"mqtt.host"`` -> value); other sections are ignored."""
        table = {k[len(SECTION) + 1:]: v for k, v in values.items() if k.startswith(SECTION + ".")}
        return cls.from_table(table, where)

    @classmethod
    def _build(cls, values: Mapping[str, Any], where: str) -> MqttSettings:
        kw = dict(values)
        if "streams" in kw:
            kw["streams"] = tuple(kw["streams"])
        try:
            return cls(**kw)
        except MqttConfigError as exc:
            raise MqttConfigError(f"{where}: {exc}") from None

    # --- checks ------------------------------------------------------------------------------------
    def validate(self) -> None:
        for f in fields(self):
            key = _BY_NAME[f.name]
            v = getattr(self, f.name)
            check(key, list(v) if f.name == "streams" else v, "")
        if not _PREFIX_RE.fullmatch(self.prefix):
            raise MqttConfigError(f"{SECTION}.prefix must be topic levels of letters, digits, _ . - separated "
                                  f"by / (no wildcards + #, no leading or trailing /); got {self.prefix!r}")
        bad = [s for s in self.streams if s not in STREAMS]
        if bad:
            raise MqttConfigError(f"{SECTION}.streams: unknown stream {bad[0]!r}; allowed: {', '.join(STREAMS)}")
        if self.reconnect_min > self.reconnect_max:
            raise MqttConfigError(f"{SECTION}.reconnect_min ({self.reconnect_min:g}) must be at most "
                                  f"{SECTION}.reconnect_max ({self.reconnect_max:g})")
        if self.password and self.password_file:
            raise MqttConfigError(f"{SECTION}.password and {SECTION}.password_file are both set; allowed: one of them")
        if (self.password or self.password_file) and not self.username:
            raise MqttConfigError(f"{SECTION}.username must be set when a password is given")
        if self.key_file and not self.cert_file:
            raise MqttConfigError(f"{SECTION}.key_file needs {SECTION}.cert_file (the client certificate)")
        for name in ("password_file", "ca_file", "cert_file", "key_file"):
            p = getattr(self, name)
            if p and not os.path.isfile(p):
                raise MqttConfigError(f"{SECTION}.{name}: no such file {p!r}; allowed: a readable file path")

    # --- derived -----------------------------------------------------------------------------------
    @property
    def use_tls(self) -> bool:
        return self.tls or bool(self.ca_file or self.cert_file)

    def read_password(self) -> str | None:
        """The password (from password_file when set), or None for anonymous connections."""
        if self.password_file:
            try:
                text = Path(self.password_file).read_text(encoding="utf-8")
            except OSError as exc:
                raise MqttConfigError(f"{SECTION}.password_file: cannot read {self.password_file!r}: "
                                      f"{exc.strerror or exc}") from exc
            return text.splitlines()[0] if text else ""
        return self.password or None

    def identifier(self) -> str:
        if self.client_id:
            return self.client_id
        import socket

        # Unique per process: two servers with one id would kick each other off the broker forever.
        return f"folkrnn-live-{socket.gethostname()}-{os.getpid()}"[:64]

    def describe(self) -> str:
        """``mqtts://user@host:port/prefix`` for logs (never the password)."""
        scheme = "mqtts" if self.use_tls else "mqtt"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}/{self.prefix}"


def markdown_rows() -> list[str]:
    """Rows of the ``[mqtt]`` table for docs (the same layout as docs/config.md)."""
    out = ["| key | default | allowed | meaning |", "|---|---|---|---|"]
    for k in CONFIG_KEYS:
        d = k.default
        shown = ("true" if d else "false") if isinstance(d, bool) else (
            f'"{d}"' if isinstance(d, str) else ("[" + ", ".join(f'"{x}"' for x in d) + "]" if isinstance(d, list)
                                                 else f"{d:g}" if isinstance(d, float) else str(d)))
        out.append(f"| `{k.name}` | `{shown}` | {k.allowed()} | {k.help} |")
    return out
