"""The ``[web]`` config section: the live score and control page's keys, checked once.

:data:`CONFIG_KEYS` are rows of the server's config schema (docs/config.md and ``--set web.port=...``
come with them).  :meth:`WebSettings.from_config` checks what one row cannot: a host beyond the
loopback needs ``web.expose = true``, and the extra host names must be host names.  This module
imports nothing heavy (no aiohttp), so the config can import it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from folkrnn_live.server.runtime.config_keys import ConfigError, ConfigKey

SECTION = "web"
DEFAULT_PORT = 7480  # beside OSC's 7400; clear of the usual development servers (3000, 5000, 8000, 8080)
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_HOSTNAME_RE = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}"
                          r"[A-Za-z0-9])?)*")

CONFIG_KEYS: tuple[ConfigKey, ...] = (
    ConfigKey(SECTION, "enabled", "bool", True, "serve the live score and control page (docs/web.md)"),
    ConfigKey(SECTION, "host", "str", "127.0.0.1",
              "address to listen on; anything beyond the loopback also needs web.expose = true"),
    ConfigKey(SECTION, "port", "int", DEFAULT_PORT, "TCP port of the page (0: any free port)", 0, 65535),
    ConfigKey(SECTION, "expose", "bool", False,
              "allow web.host beyond the loopback (the page drives the server: set allow and hosts too)"),
    ConfigKey(SECTION, "hosts", "list", [],
              "extra names the page may be reached by (Host and Origin checks), e.g. the machine's name"),
    ConfigKey(SECTION, "allow", "list", [], "client networks allowed (CIDR, e.g. 192.168.1.0/24); empty: any"),
    ConfigKey(SECTION, "rate_limit", "float", 200.0, "commands per second per client host; 0: unlimited", 0, 1e6),
    ConfigKey(SECTION, "burst", "int", 100, "commands a client may send at once above the rate", 1, 1_000_000),
    ConfigKey(SECTION, "max_clients", "int", 16, "pages open at once at most (a new one is refused)", 1, 1024),
    ConfigKey(SECTION, "queue_limit", "int", 20_000,
              "messages waiting for one page at most; a page that falls further behind is disconnected "
              "(it reconnects and redraws)", 100, 10_000_000),
    ConfigKey(SECTION, "tunes_kept", "int", 10, "finished tunes kept per voice for the page and its downloads",
              1, 1000),
)
_BY_NAME = {k.name: k for k in CONFIG_KEYS}


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is only reachable from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class WebSettings:
    """Everything the page's server needs; build with :meth:`from_config` (validates)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    expose: bool = False
    hosts: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    rate_limit: float = 200.0
    burst: int = 100
    max_clients: int = 16
    queue_limit: int = 20_000
    tunes_kept: int = 10

    @classmethod
    def from_config(cls, values: Mapping[str, Any], where: str = "config") -> WebSettings:
        """From the server config's ``"web.<key>"`` values (defaults for missing keys)."""
        raw = {k.name: values.get(k.path, k.default) for k in CONFIG_KEYS}
        checked = {name: _BY_NAME[name].check(v, where) for name, v in raw.items()}
        s = cls(**{**checked, "hosts": tuple(checked["hosts"]), "allow": tuple(checked["allow"])})
        s.check(where)
        return s

    def check(self, where: str = "config") -> None:
        """What a single key cannot say; raises ConfigError naming the key."""
        if not self.host:
            raise ConfigError(f"{where}: web.host must be an address to listen on (e.g. 127.0.0.1); got ''")
        if not is_loopback(self.host) and not self.expose:
            raise ConfigError(
                f"{where}: web.host {self.host!r} is beyond the loopback, where any machine could drive the "
                "server; set web.expose = true to allow it (and web.allow, web.hosts), or use 127.0.0.1"
            )
        for name in self.hosts:
            if not (_HOSTNAME_RE.fullmatch(name) or _is_address(name)):
                raise ConfigError(f"{where}: web.hosts entry {name!r} must be a host name or an address "
                                  "(no scheme, no port), e.g. studio.local")
        for net in self.allow:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ConfigError(f"{where}: web.allow entry {net!r} is not a network (e.g. 10.0.0.0/8)") from exc

    @property
    def exposed(self) -> bool:
        """Whether the page is reachable beyond this machine (start-up logs a warning)."""
        return not is_loopback(self.host)

    def host_names(self) -> frozenset[str]:
        """Names a request's Host (and a WebSocket's Origin) may carry, lower case, without port."""
        names = {*LOOPBACK_NAMES, *(h.lower() for h in self.hosts)}
        if self.host not in ("0.0.0.0", "::"):
            names.add(self.host.lower())
        return frozenset(names)


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
