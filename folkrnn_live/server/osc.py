"""OSC over UDP: commands in, feedback out.

Our own :class:`asyncio.DatagramProtocol` (python-osc only parses and builds): python-osc's asyncio
server never awaits async handlers and its ``strict_timing`` sleeps on the loop, and we need the
client's address anyway, for the allowlist, the per-client rate limit and replies.  A handler only
parses, validates and enqueues; bundles with a future time tag are scheduled with ``call_later``.

Address space: ``/folkrnn/<voice>/<command>``, ``/folkrnn/all/<command>`` and global
``/folkrnn/<command>`` (see docs/commands.md).  Every bad message gets ``/error address argument
message`` back; nothing a client sends can stop the music.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

from pythonosc.osc_message_builder import BuildError, OscMessageBuilder
from pythonosc.osc_packet import OscPacket, ParseError

from folkrnn_live.server.catalog import DEFAULT_STREAMS, STREAMS
from folkrnn_live.server.feedback import Feedback, Hub, error_feedback
from folkrnn_live.server.registry import Call, CommandError, Context, Registry

log = logging.getLogger(__name__)
Addr = tuple[str, int]
MAX_SCHEDULED = 10_000  # bundle messages waiting for their time tag, at most


class Dispatcher(Protocol):
    """What a transport needs from the server (implemented by ``Server``)."""

    registry: Registry

    @property
    def context(self) -> Context: ...

    def dispatch(self, call: Call, origin: Any) -> None: ...


class RateLimiter:
    """A token bucket per client host: ``rate`` messages per second, ``burst`` at once."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # host -> (tokens, last time)

    def take(self, host: str, n: int = 1) -> bool:
        if self.rate <= 0:
            return True
        now = self.clock()
        tokens, last = self._buckets.get(host, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        ok = tokens >= n
        self._buckets[host] = (tokens - n if ok else tokens, now)
        if len(self._buckets) > 4096:  # forget idle hosts (spoofed sources must not grow memory)
            self._buckets = {h: b for h, b in self._buckets.items() if now - b[1] < 60.0}
        return ok


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


@dataclass
class Subscription:
    dest: Addr
    source: Addr
    streams: frozenset[str]


@dataclass
class OscStats:
    received: int = 0
    errors: int = 0
    denied: int = 0
    limited: int = 0
    sent: int = 0
    scheduled: int = 0


@dataclass(frozen=True)
class OscOrigin:
    """A command's sender; replies go to its subscription port when it has one."""

    endpoint: OscEndpoint = field(repr=False)
    addr: Addr

    @property
    def name(self) -> str:
        return f"osc:{self.addr[0]}:{self.addr[1]}"

    def reply(self, fb: Feedback) -> None:
        self.endpoint.send(fb, self.endpoint.reply_address(self.addr))

    def subscribe(self, port: int, streams: Iterable[str]) -> None:
        self.endpoint.subscribe(self.addr, port, streams)

    def unsubscribe(self, port: int) -> None:
        self.endpoint.unsubscribe(self.addr, port)


def encode(fb: Feedback) -> bytes:
    b = OscMessageBuilder(fb.address)
    for v in fb.values:
        b.add_arg(v)
    return b.build().dgram


class OscEndpoint(asyncio.DatagramProtocol):
    """The OSC server socket (an async context manager: one per outside resource)."""

    def __init__(
        self,
        server: Dispatcher,
        hub: Hub,
        *,
        host: str = "127.0.0.1",
        port: int = 7400,
        allow: Iterable[str] = (),
        rate_limit: float = 2000.0,
        burst: int = 500,
        max_delay: float = 60.0,
        max_subscribers: int = 32,
    ) -> None:
        self.server, self.hub = server, hub
        self.host, self.port = host, port
        self.max_delay = max_delay
        self.max_subscribers = max_subscribers
        self.allowlist = Allowlist(allow)
        self.limiter = RateLimiter(rate_limit, burst)
        self.stats = OscStats()
        self.subscriptions: dict[Addr, Subscription] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._unsubscribe_hub: Callable[[], None] | None = None
        self._limited_reply: dict[str, float] = {}
        self._pending = 0

    def configure(self, *, allow: Iterable[str], rate_limit: float, burst: int, max_delay: float,
                  max_subscribers: int) -> None:
        """Settings a config reload may change without reopening the socket."""
        self.allowlist = Allowlist(allow)
        self.limiter = RateLimiter(rate_limit, burst)
        self.max_delay, self.max_subscribers = max_delay, max_subscribers

    # --- lifecycle -------------------------------------------------------------------------------
    async def __aenter__(self) -> OscEndpoint:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_datagram_endpoint(lambda: self, local_addr=(self.host, self.port))
        except OSError as exc:
            raise OSError(f"cannot listen for OSC on {self.host}:{self.port}: {exc.strerror or exc}") from exc
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._unsubscribe_hub is not None:
            self._unsubscribe_hub()
            self._unsubscribe_hub = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    @property
    def address(self) -> Addr:
        """The bound (host, port): the real port when 0 was asked for."""
        assert self._transport is not None
        host, port = self._transport.get_extra_info("sockname")[:2]
        return host, port

    def is_self(self, addr: Addr) -> bool:
        """Whether ``addr`` is this very socket.  Feedback sent there would come back as a
        message, be answered with an /error, and loop forever, so it is refused both ways."""
        if self._transport is None:
            return False
        host, port = self.address
        if addr[1] != port:
            return False
        if addr[0] == host or host in ("0.0.0.0", "::"):
            return True
        try:
            return ipaddress.ip_address(addr[0]).is_loopback and ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a vanished subscriber and the like: nothing to do.
        log.debug("OSC socket error: %s", exc)

    # --- receiving -------------------------------------------------------------------------------
    def datagram_received(self, data: bytes, addr: Any) -> None:
        addr = (addr[0], addr[1])
        host = addr[0]
        if self.is_self(addr):
            self.stats.denied += 1  # our own feedback: answering it would loop
            return
        if not self.allowlist.allows(host):
            self.stats.denied += 1  # no reply: a reply could be aimed at a third party
            return
        try:
            messages = OscPacket(data).messages
        except (ParseError, ValueError, IndexError) as exc:
            err = CommandError("", f"malformed OSC packet ({exc})", allowed="OSC 1.0 message or bundle")
            self._reply_error(addr, err)
            return
        if not self.limiter.take(host, len(messages)):
            self.stats.limited += len(messages)
            now = time.monotonic()
            if now - self._limited_reply.get(host, 0.0) >= 1.0:  # one notice per second, not per message
                self._limited_reply[host] = now
                self._reply_error(addr, CommandError(messages[0].message.address if messages else "",
                                                     "rate limit exceeded; messages dropped",
                                                     allowed=f"{self.limiter.rate:g} messages/s per client"))
            return
        wall = time.time()
        loop = asyncio.get_running_loop()
        for tm in messages:
            delay = tm.time - wall
            if delay <= 0.0005:
                self._handle(tm.message, addr)
            elif delay > self.max_delay:
                self._reply_error(addr, CommandError(tm.message.address, f"time tag {delay:.1f} s ahead",
                                                     argument="timetag", allowed=f"at most {self.max_delay:g} s ahead"))
            elif self._pending >= MAX_SCHEDULED:
                self._reply_error(addr, CommandError(tm.message.address, "too many scheduled messages",
                                                     allowed=f"{MAX_SCHEDULED} waiting at most"))
            else:
                self._pending += 1
                self.stats.scheduled += 1
                loop.call_later(delay, self._handle_scheduled, tm.message, addr)

    def _handle_scheduled(self, message: Any, addr: Addr) -> None:
        self._pending -= 1
        self._handle(message, addr)

    def _handle(self, message: Any, addr: Addr) -> None:
        self.stats.received += 1
        reg, ctx = self.server.registry, self.server.context
        try:
            cmd, target = reg.parse_address(message.address, ctx)
            call = reg.bind(cmd, message.params, ctx, target)
            self.server.dispatch(call, OscOrigin(self, addr))
        except CommandError as exc:
            self._reply_error(addr, exc)

    def _reply_error(self, addr: Addr, exc: CommandError) -> None:
        self.stats.errors += 1
        log.debug("OSC error to %s: %s", addr, exc)
        self.send(error_feedback(exc), self.reply_address(addr))

    # --- sending ---------------------------------------------------------------------------------
    def send(self, fb: Feedback, dest: Addr) -> None:
        if self._transport is None:
            return
        try:
            self._transport.sendto(encode(fb), dest)
            self.stats.sent += 1
        except (OSError, ValueError, BuildError) as exc:  # an unencodable value or a dead route: go on
            log.warning("OSC: cannot send %s to %s: %s", fb.address, dest, exc)

    def reply_address(self, source: Addr) -> Addr:
        for sub in self.subscriptions.values():
            if sub.source == source:
                return sub.dest
        return source

    def subscribe(self, source: Addr, port: int, streams: Iterable[str]) -> None:
        dest = (source[0], port or source[1])
        if self.is_self(dest):
            raise CommandError("/folkrnn/subscribe", "feedback cannot go to the server's own OSC port",
                               argument="port", allowed=f"any port but {self.address[1]}")
        chosen = frozenset(streams) or frozenset(DEFAULT_STREAMS)
        if dest not in self.subscriptions and len(self.subscriptions) >= self.max_subscribers:
            raise CommandError("/folkrnn/subscribe", "too many subscribers", argument="port",
                               allowed=f"{self.max_subscribers} receivers at most")
        self.subscriptions[dest] = Subscription(dest, source, chosen)
        self._resubscribe()

    def unsubscribe(self, source: Addr, port: int) -> None:
        if port:
            self.subscriptions.pop((source[0], port), None)
        else:
            for dest in [d for d, s in self.subscriptions.items() if s.source == source or d == source]:
                del self.subscriptions[dest]
        self._resubscribe()

    def _resubscribe(self) -> None:
        # Listen to the hub for exactly the streams somebody wants, so costly feedback (probs) is
        # only built while a client asked for it.
        if self._unsubscribe_hub is not None:
            self._unsubscribe_hub()
            self._unsubscribe_hub = None
        wanted = set().union(*(s.streams for s in self.subscriptions.values())) if self.subscriptions else set()
        if wanted:
            self._unsubscribe_hub = self.hub.subscribe(self._on_feedback, [s for s in STREAMS if s in wanted])

    def _on_feedback(self, fb: Feedback) -> None:
        if self._transport is None:
            return
        dgram = None
        for sub in tuple(self.subscriptions.values()):
            if fb.stream in sub.streams:
                if dgram is None:
                    try:
                        dgram = encode(fb)
                    except (ValueError, TypeError, BuildError) as exc:
                        log.warning("OSC: cannot encode %s: %s", fb.address, exc)
                        return
                try:
                    self._transport.sendto(dgram, sub.dest)
                    self.stats.sent += 1
                except OSError as exc:
                    log.debug("OSC: send to %s failed: %s", sub.dest, exc)
