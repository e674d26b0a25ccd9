"""What every transport shares, written once: where a command came from (:class:`Origin`), what a
transport needs from the server (:class:`Dispatcher`), a per-client rate limiter and an address
allowlist.  Transports import this module and :mod:`.feedback`, never each other."""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from folkrnn_live.server.commands.registry import Call, CommandContext, Registry
from folkrnn_live.server.transports.feedback import Feedback, Hub

if TYPE_CHECKING:
    from folkrnn_live.player.clock import ExternalClock
    from folkrnn_live.server.runtime.config import Config

log = logging.getLogger(__name__)


class Subscriptions(Protocol):
    """Feedback streams sent where the sender asks (``/folkrnn/subscribe``): OSC to a port of the
    sender's host, the web page to its own socket."""

    def subscribe(self, port: int, streams: Iterable[str]) -> None: ...

    def unsubscribe(self, port: int) -> None: ...


class Origin(Protocol):
    """Where a command came from; replies (errors, pong, status) go back through it."""

    @property
    def name(self) -> str: ...  # e.g. "osc:127.0.0.1:51234", "mqtt", "midi", "config"

    @property
    def subscriptions(self) -> Subscriptions | None: ...  # None: subscribe is refused (own channel)

    def reply(self, fb: Feedback) -> None: ...


@dataclass(frozen=True)
class TransportOrigin:
    """A sender whose replies need only a function: MQTT publishes them under the command's topic,
    MIDI in logs and keeps errors (a controller cannot read them)."""

    name: str
    send: Callable[[Feedback], None] = field(repr=False, compare=False)

    @property
    def subscriptions(self) -> None:
        return None

    def reply(self, fb: Feedback) -> None:
        self.send(fb)


class Dispatcher(Protocol):
    """What a transport (OSC, MQTT, MIDI in) needs from the server, which implements it: the
    command table, the context to validate against, and ``dispatch`` for a validated call (it may
    raise CommandError, e.g. when a voice's queue is full)."""

    registry: Registry

    @property
    def context(self) -> CommandContext: ...

    def dispatch(self, call: Call, origin: Origin) -> None: ...


class Host(Dispatcher, Protocol):
    """What a transport's ``open_transport(server)`` may read from the server beside dispatch:
    the config it starts from, the feedback hub, the external MIDI clock (when ``midi_in.clock``)
    and the voices' current states (retained by MQTT)."""

    config: Config
    hub: Hub
    clock: ExternalClock | None

    def state_feedbacks(self) -> list[Feedback]: ...


class Transport(Protocol):
    """What the server keeps of a transport it opened: a SIGHUP reload hands it the new config
    (it takes what it can at once and raises ValueError or OSError, logged, for what it cannot)."""

    def reconfigure(self, config: Config) -> None: ...


@dataclass(frozen=True)
class NullOrigin:
    """Commands with nobody to answer (the config file at start-up, tests): replies are logged."""

    name: str = "internal"

    @property
    def subscriptions(self) -> None:
        return None

    def reply(self, fb: Feedback) -> None:
        if fb.name == "error":
            log.warning("%s: %s", self.name, fb.data.get("message", fb.values))


@dataclass
class ListOrigin:
    """Collects replies (tests, the CLI)."""

    name: str = "list"
    replies: list[Feedback] = field(default_factory=list)

    @property
    def subscriptions(self) -> None:
        return None

    def reply(self, fb: Feedback) -> None:
        self.replies.append(fb)


class RateLimiter:
    """A token bucket per client: ``rate`` messages per second, ``burst`` at once.

    Memory is bounded whatever the senders do (UDP source addresses are easy to forge): past
    ``max_clients`` the least recently seen half is forgotten, and a forgotten client simply
    starts again with a full bucket."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic,
                 max_clients: int = 4096) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.max_clients = max_clients
        self._buckets: dict[str, list[float]] = {}  # client -> [tokens, last time, last notice]

    def take(self, client: str, n: int = 1) -> bool:
        """Whether ``client`` may send ``n`` messages now (they are counted when it may)."""
        if self.rate <= 0:
            return True
        now = self.clock()
        b = self._buckets.get(client)
        if b is None:
            if len(self._buckets) >= self.max_clients:
                self._forget_oldest()
            b = self._buckets[client] = [float(self.burst), now, -math.inf]
        b[0] = min(float(self.burst), b[0] + (now - b[1]) * self.rate)
        b[1] = now
        if b[0] >= n:
            b[0] -= n
            return True
        return False

    def notice_due(self, client: str) -> bool:
        """After a refused :meth:`take`: True at most once a second per client, so a flood gets
        one notice a second rather than one per message."""
        b = self._buckets.get(client)
        now = self.clock()
        if b is None or now - b[2] < 1.0:
            return False
        b[2] = now
        return True

    def _forget_oldest(self) -> None:
        keep = sorted(self._buckets.items(), key=lambda kv: kv[1][1])[len(self._buckets) // 2:]
        self._buckets = dict(keep)


class Allowlist:
    def __init__(self, networks: Iterable[str] = ()) -> None:
        self.networks = [ipaddress.ip_network(n, strict=False) for n in networks]

    def allows(self, host: str) -> bool:
        if not self.networks:
            return True
        try:
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        return any(ip in n for n in self.networks)


# --- JSON from a sender (MQTT payloads, page messages) --------------------------------------------

MAX_JSON_DEPTH = 32  # nesting of a sender's JSON, at most: json.loads recurses per level (RecursionError ~1,000)
MAX_JSON_INT_DIGITS = 64  # longer integers stay text, which validation refuses naming the argument
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


def json_depth(s: str) -> int:
    """How deep brackets nest in ``s``, outside JSON strings (a cheap pass before json.loads)."""
    depth = deepest = 0
    for ch in _BRACKETS.findall(_JSON_STRING.sub("", s)):
        depth += 1 if ch in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def loads_bounded(s: str) -> Any:
    """``json.loads`` for text a sender chose: ValueError (one line) past :data:`MAX_JSON_DEPTH` levels;
    integers of more than :data:`MAX_JSON_INT_DIGITS` digits stay text (int() of 4,300+ digits raises,
    a 400-digit one overflows float())."""
    depth = json_depth(s)
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"nested {depth} levels deep; allowed: at most {MAX_JSON_DEPTH}")
    return json.loads(s, parse_int=lambda t: int(t) if len(t) <= MAX_JSON_INT_DIGITS else t)

