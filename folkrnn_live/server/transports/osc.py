"""OSC over UDP: commands in, feedback out.

Our own :class:`asyncio.DatagramProtocol` (python-osc only builds; :mod:`.osc_wire` parses, with
every size checked, after the rate limit's cheap check): python-osc's asyncio
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
import itertools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from pythonosc.osc_message_builder import BuildError, OscMessageBuilder

from folkrnn_live.server.commands.catalog import DEFAULT_STREAMS, STREAMS
from folkrnn_live.server.commands.registry import CommandError
from folkrnn_live.server.transports.common import Allowlist, Dispatcher, RateLimiter
from folkrnn_live.server.transports.feedback import Feedback, Hub, error_feedback
from folkrnn_live.server.transports.osc_wire import OscWireError, fit_strings, parse_packet

log = logging.getLogger(__name__)
Addr = tuple[str, int]
MAX_SCHEDULED = 10_000  # bundle messages waiting for their time tag, at most
# /error replies are cut to the request's size or this many bytes, whichever is larger, and sent
# at most ERROR_RATE a second per client host (ERROR_BURST at once): a 16-byte packet to an unknown
# address used to get 500 bytes back, an amplifier for traffic aimed at a forged source address.
ERROR_REPLY_FLOOR = 192  # room for an error that names the argument and its range (a bad temperature: ~120 bytes)
ERROR_RATE, ERROR_BURST = 50.0, 50
# Feedback datagrams larger than this are not sent (a state snapshot keeps under it by cutting its
# long lists): IPv4 UDP carries 65,507 bytes at most, and a datagram of tens of fragments is lost
# on a real network as soon as one fragment is.
MAX_FEEDBACK_DATAGRAM = 16_384
NOTICE_INTERVAL = 10.0  # seconds between two log lines of one kind caused by what clients send


@dataclass
class Subscription:
    dest: Addr
    source: Addr
    streams: frozenset[str]
    pinned: bool = False  # from osc.pinned: never replaced by a new subscriber, nor unsubscribed


@dataclass
class OscStats:
    received: int = 0
    errors: int = 0
    denied: int = 0
    limited: int = 0
    sent: int = 0
    scheduled: int = 0
    dropped: int = 0  # feedback not sent: the socket's send buffer was full (a receiver too slow)
    evicted: int = 0  # subscriptions dropped to make room for a new one
    errors_unsent: int = 0  # /error replies not sent: over ERROR_RATE, or too large to cut down
    oversized: int = 0  # feedback datagrams over MAX_FEEDBACK_DATAGRAM, not sent


@dataclass(frozen=True)
class OscOrigin:
    """A command's sender; replies go to its subscription port when it has one."""

    endpoint: OscEndpoint = field(repr=False)
    addr: Addr

    @property
    def name(self) -> str:
        return f"osc:{self.addr[0]}:{self.addr[1]}"

    @property
    def subscriptions(self) -> OscOrigin:
        return self  # feedback to a port of this sender's host

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
        pinned: Iterable[str] = (),
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
        self._scheduled: dict[int, asyncio.TimerHandle] = {}  # bundle messages waiting for their time tag
        self._keys = itertools.count()
        self._paused = False  # asyncio's flow control: the send buffer is full, feedback is dropped
        self._errors = RateLimiter(ERROR_RATE, ERROR_BURST)
        for entry in pinned:  # "host:port", checked by the config
            host, _, port_text = entry.rpartition(":")
            dest = (host, int(port_text))
            self.subscriptions[dest] = Subscription(dest, dest, frozenset(DEFAULT_STREAMS), pinned=True)
        self._noticed: dict[str, float] = {}  # log line kind -> when last logged

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
        if self.subscriptions:  # osc.pinned receivers get feedback from the start
            self._resubscribe()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._unsubscribe_hub is not None:
            self._unsubscribe_hub()
            self._unsubscribe_hub = None
        for handle in self._scheduled.values():  # a timed message must not act on a server shutting down
            handle.cancel()
        self._scheduled.clear()
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

    def pause_writing(self) -> None:
        # The transport buffers what the socket cannot take, without limit; feedback is live, so
        # while the buffer is over its high-water mark new feedback is dropped instead.
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False

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
        # The rate limit first, before any parsing: a flood of anything costs one bucket lookup a
        # packet.  Parsing is bounded (osc_wire: sizes checked, nesting capped, never loops).
        if not self._admit(addr, 1, ""):
            return
        try:
            messages = parse_packet(data)
        except OscWireError as exc:
            self._reply_error(addr, CommandError("", f"malformed OSC packet: {exc}",
                                                 allowed="an OSC 1.0 message or bundle"), len(data))
            return
        if len(messages) > 1 and not self._admit(addr, len(messages) - 1, messages[0].message.address):
            return
        wall = time.time()
        loop = asyncio.get_running_loop()
        for tm in messages:
            delay = tm.time - wall
            if delay <= 0.0005:
                self._handle(tm.message, addr, len(data))
            elif delay > self.max_delay:
                self._reply_error(addr, CommandError(tm.message.address, f"time tag {delay:.1f} s ahead",
                                                     argument="timetag", allowed=f"at most {self.max_delay:g} s ahead"),
                                  len(data))
            elif len(self._scheduled) >= MAX_SCHEDULED:
                self._reply_error(addr, CommandError(tm.message.address, "too many scheduled messages",
                                                     allowed=f"{MAX_SCHEDULED} waiting at most"), len(data))
            else:
                self.stats.scheduled += 1
                key = next(self._keys)
                self._scheduled[key] = loop.call_later(delay, self._handle_scheduled, key, tm.message, addr,
                                                       len(data))

    def _admit(self, addr: Addr, n: int, address: str) -> bool:
        """Whether the per-client rate limit lets ``n`` messages from ``addr`` through; when not,
        they are dropped with one /error a second."""
        host = addr[0]
        if self.limiter.take(host, n):
            return True
        self.stats.limited += n
        if self.limiter.notice_due(host):
            self._reply_error(addr, CommandError(address, "rate limit exceeded; messages dropped",
                                                 allowed=f"{self.limiter.rate:g} messages/s per client"))
        return False

    def _handle_scheduled(self, key: int, message: Any, addr: Addr, size: int) -> None:
        del self._scheduled[key]
        self._handle(message, addr, size)

    def _handle(self, message: Any, addr: Addr, size: int = 0) -> None:
        self.stats.received += 1
        reg, ctx = self.server.registry, self.server.context
        try:
            cmd, target = reg.parse_address(message.address, ctx)
            call = reg.bind(cmd, message.params, ctx, target)
            self.server.dispatch(call, OscOrigin(self, addr))
        except CommandError as exc:
            self._reply_error(addr, exc, size)

    def _reply_error(self, addr: Addr, exc: CommandError, size: int = 0) -> None:
        """``/error`` to the sender of a ``size``-byte request: cut to fit the request (see
        ERROR_REPLY_FLOOR) and rate-limited per host, so replies never amplify what was sent."""
        self.stats.errors += 1
        log.debug("OSC error to %s: %s", addr, str(exc)[:300])
        fb = error_feedback(exc)
        dgram = fit_strings(fb.address, tuple(str(v) for v in fb.values), max(size, ERROR_REPLY_FLOOR))
        if dgram is None or not self._errors.take(addr[0]) or self._transport is None or self._paused:
            self.stats.errors_unsent += 1
            return
        try:
            self._transport.sendto(dgram, self.reply_address(addr))
            self.stats.sent += 1
        except OSError as exc2:
            self._notice("send", "OSC: cannot send /error to %s: %s", addr, exc2)

    def _notice(self, kind: str, msg: str, *args: Any) -> None:
        """A warning caused by what clients send: one line, at most one per NOTICE_INTERVAL per
        kind (a flood must not fill the disk with log)."""
        now = time.monotonic()
        if now - self._noticed.get(kind, -NOTICE_INTERVAL) >= NOTICE_INTERVAL:
            self._noticed[kind] = now
            log.warning(msg + f" (more like it in the next {NOTICE_INTERVAL:g} s are not logged)", *args)

    # --- sending ---------------------------------------------------------------------------------
    def send(self, fb: Feedback, dest: Addr) -> None:
        if self._transport is None:
            return
        if self._paused:
            self.stats.dropped += 1
            return
        try:
            dgram = encode(fb)
            if len(dgram) > MAX_FEEDBACK_DATAGRAM:
                self.stats.oversized += 1
                self._notice("size", "OSC: %s is %d bytes, over %d; not sent", fb.address, len(dgram),
                             MAX_FEEDBACK_DATAGRAM)
                return
            self._transport.sendto(dgram, dest)
            self.stats.sent += 1
        except (OSError, ValueError, BuildError) as exc:  # an unencodable value or a dead route: go on
            self._notice("send", "OSC: cannot send %s to %s: %s", fb.address, dest, exc)

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
        if self.max_subscribers == 0:
            raise CommandError("/folkrnn/subscribe", "feedback is off (osc.max_subscribers = 0)", argument="port",
                               allowed="nothing; raise osc.max_subscribers in the config")
        was = self.subscriptions.pop(dest, None)  # a renewed subscription counts as the newest
        pinned = was is not None and was.pinned
        while not pinned and sum(not s.pinned for s in self.subscriptions.values()) >= self.max_subscribers:
            # Full: the oldest goes.  Clients that vanish never unsubscribe (a patch reopened on a
            # new port, a script that ended), so refusing here would lock out the live performer;
            # osc.pinned receivers are never the ones to go.
            old = next(d for d, s in self.subscriptions.items() if not s.pinned)
            del self.subscriptions[old]
            self.stats.evicted += 1
            self._notice("evict", "OSC: feedback to %s:%d stopped to make room for %s:%d (osc.max_subscribers = %d)",
                         *old, *dest, self.max_subscribers)
        self.subscriptions[dest] = Subscription(dest, source, chosen, pinned)
        self._resubscribe()

    def unsubscribe(self, source: Addr, port: int) -> None:
        if port:
            if not getattr(self.subscriptions.get((source[0], port)), "pinned", False):
                self.subscriptions.pop((source[0], port), None)
        else:
            for dest in [d for d, s in self.subscriptions.items()
                         if (s.source == source or d == source) and not s.pinned]:
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
        if self._paused:
            self.stats.dropped += 1
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
                    if len(dgram) > MAX_FEEDBACK_DATAGRAM:
                        self.stats.oversized += 1
                        self._notice("size", "OSC: %s is %d bytes, over %d; not sent", fb.address, len(dgram),
                                     MAX_FEEDBACK_DATAGRAM)
                        return
                try:
                    self._transport.sendto(dgram, sub.dest)
                    self.stats.sent += 1
                except OSError as exc:
                    log.debug("OSC: send to %s failed: %s", sub.dest, exc)
