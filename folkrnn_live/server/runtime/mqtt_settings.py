"""The ``[mqtt]`` config section: one table of keys, validation with errors naming the key.

:data:`CONFIG_KEYS` are rows of the server's config schema (docs/config.md and ``--set mqtt.port=...``
come with them).  :class:`MqttSettings` checks what a schema row cannot: files that must exist, a
topic prefix without wildcards, backoff bounds in order.  This module imports nothing heavy (no
aiomqtt) so the config can import it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from folkrnn_live.server.commands.catalog import DEFAULT_STREAMS, STREAMS
from folkrnn_live.server.runtime.config_keys import ConfigError, ConfigKey, check_table, section_table

SECTION = "mqtt"
DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883
# A topic level of the prefix: no MQTT wildcards, no empty levels, nothing a shell or ACL file chokes on.
_PREFIX_RE = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")


class MqttConfigError(ConfigError):
    """A bad ``[mqtt]`` value; the message names the key and what is allowed."""


CONFIG_KEYS: tuple[ConfigKey, ...] = (
    ConfigKey(SECTION, "enabled", "bool", False, "connect to an MQTT broker (commands in, state and events out)"),
    ConfigKey(SECTION, "host", "str", "127.0.0.1", "broker host name or address"),
    ConfigKey(SECTION, "port", "int", DEFAULT_PORT, "broker TCP port (usually 8883 with TLS)", 1, 65535),
    ConfigKey(SECTION, "prefix", "str", "folkrnn", "topic prefix: commands on <prefix>/<voice>/<command>"),
    ConfigKey(SECTION, "client_id", "str", "", "MQTT client id; empty: folkrnn-live-<host>-<pid>"),
    ConfigKey(SECTION, "username", "str", "", "user name; empty: connect anonymously"),
    ConfigKey(SECTION, "password", "str", "", "password (prefer password_file: config files are often readable)"),
    ConfigKey(SECTION, "password_file", "str", "", "file whose first line is the password (e.g. a systemd credential)"),
    ConfigKey(SECTION, "tls", "bool", False, "connect with TLS (on by itself when ca_file or cert_file is set)"),
    ConfigKey(SECTION, "ca_file", "str", "", "CA certificates (PEM) to verify the broker; empty: the system's"),
    ConfigKey(SECTION, "cert_file", "str", "", "client certificate (PEM) for brokers that require one"),
    ConfigKey(SECTION, "key_file", "str", "", "client private key (PEM) of cert_file"),
    ConfigKey(SECTION, "keepalive", "int", 30, "seconds between keep-alive pings (how soon a dead broker is noticed)",
        5, 3600),
    ConfigKey(SECTION, "qos", "int", 0, "QoS of commands subscribed and events published (state is published at 1)",
        0, 2),
    ConfigKey(SECTION, "streams", "list", list(DEFAULT_STREAMS), "feedback streams published: "
        + ", ".join(STREAMS) + " (state is the retained <prefix>/<voice>/state)"),
    ConfigKey(SECTION, "event_rate", "float", 1000.0,
        "events per second published at most (excess dropped); 0: unlimited",
        0, 1e6),
    ConfigKey(SECTION, "command_rate", "float", 2000.0, "commands per second accepted at most; 0: unlimited", 0, 1e6),
    ConfigKey(SECTION, "command_burst", "int", 500, "commands accepted at once above command_rate", 1, 1_000_000),
    ConfigKey(SECTION, "max_payload", "int", 65536, "largest command payload in bytes", 16, 16_777_216),
    ConfigKey(SECTION, "reconnect_min", "float", 0.5, "first wait in seconds before reconnecting (doubles each try)",
        0.01, 60),
    ConfigKey(SECTION, "reconnect_max", "float", 30.0, "longest wait in seconds between reconnection attempts", 0.01,
        3600),
    ConfigKey(SECTION, "timeout", "float", 10.0, "seconds a connect or publish may take before the link counts as lost",
        0.1, 600),
)
_BY_NAME = {k.name: k for k in CONFIG_KEYS}


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
        return cls._build(check_table(table, CONFIG_KEYS, where, MqttConfigError), where)

    @classmethod
    def from_config(cls, values: Mapping[str, Any], where: str = "config") -> MqttSettings:
        """The server config's flat values (``"mqtt.host"`` -> value); other sections are ignored."""
        return cls.from_table(section_table(values, SECTION), where)

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
           key.check(list(v) if f.name == "streams" else v, "", MqttConfigError)
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

