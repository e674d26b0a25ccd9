"""The MQTT bridge: the registry's commands in, state (retained) and events out, over aiomqtt.

Topics, under ``prefix`` (default ``folkrnn``)::

    <prefix>/<voice>/<command>    voice command for one voice         (subscribed)
    <prefix>/all/<command>        voice command for every voice       (subscribed)
    <prefix>/<command>            global command                      (subscribed)
    <prefix>/<voice>/state        JSON state snapshot, retained       (published)
    <prefix>/<voice>/event/<name> token, note, bar, tune_start, ...   (published, not retained)
    <prefix>/error                JSON: topic, address, argument, message, allowed
    <prefix>/pong                 JSON reply to <prefix>/ping
    <prefix>/online               "true" while connected, "false" (retained; also the last will)

A payload is JSON (a list: positional values, an object: named values, a scalar: one value, empty
or ``null``: none) or plain text (space-separated values, shell quoting), validated by the same
registry as OSC.  A bad payload is answered on ``<prefix>/error``; the music never stops for it.

The bridge never blocks or crashes the service: the hub listener only encodes and appends to a
bounded queue, one background task connects, subscribes, receives and publishes, and any broker
failure (refused, lost, auth, TLS) is logged and retried with capped exponential backoff while
the voices play on.  Events produced while disconnected are dropped (they are live, not history);
the latest state of each voice is kept and published on reconnect.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any

import aiomqtt

from folkrnn_live.server.commands.registry import CommandError
from folkrnn_live.server.runtime.mqtt_settings import MqttConfigError, MqttSettings
from folkrnn_live.server.transports.common import Host, RateLimiter, TransportOrigin
from folkrnn_live.server.transports.feedback import Feedback, Hub
from folkrnn_live.server.transports.mqtt_link import explain_failure, tls_context
from folkrnn_live.server.transports.mqtt_payload import bind_payload, payload_bytes

if TYPE_CHECKING:
    from folkrnn_live.server.runtime.config import Config

log = logging.getLogger(__name__)

MAX_EVENTS_QUEUED = 10_000  # events waiting for the broker, at most (older ones are kept, newer dropped)
CLOSE_TIMEOUT = 0.5  # seconds to publish the final states and "offline" on shutdown
# Names the bridge publishes on itself; messages on them (our own echoes) are not commands.
_OUTPUT_NAMES = ("error", "pong", "online")


@dataclass
class MqttStats:
    received: int = 0  # command messages seen
    errors: int = 0  # errors published on <prefix>/error
    ignored: int = 0  # our own output topics echoed back
    limited: int = 0  # commands dropped by command_rate
    published: int = 0
    dropped: int = 0  # events not published (disconnected, event_rate, queue full)
    connects: int = 0
    failures: int = 0  # connection attempts or sessions that failed


class MqttBridge:
    """One MQTT connection for the server, as an async context manager.

    ``async with MqttBridge(server, server.hub, settings):`` subscribes to the hub and starts the
    background task ``folkrnn-live mqtt`` (:meth:`run`); leaving it publishes the final states and
    ``online = false`` (within :data:`CLOSE_TIMEOUT`) and stops the task.
    """

    def __init__(
        self,
        server: Host,
        hub: Hub,
        settings: MqttSettings,
        *,
        states: Callable[[], Iterable[Feedback]] | None = None,
    ) -> None:
        self.server = server
        self.hub = hub
        self.settings = settings
        self.prefix = settings.prefix
        # Fresh snapshots to publish on every (re)connect; by default every voice's state_feedback().
        self._states_fn = states if states is not None else server.state_feedbacks
        self.stats = MqttStats()
        self.connected = asyncio.Event()
        self.last_error: str | None = None
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._wake = asyncio.Event()
        self._flushed = asyncio.Event()
        self._flushed.set()
        self._states: dict[str, bytes] = {}  # topic -> latest retained snapshot not yet published
        self._events: deque[tuple[str, bytes]] = deque()
        self._own = set(_OUTPUT_NAMES)  # topics below the prefix that we publish: not commands
        self._commands = RateLimiter(settings.command_rate, settings.command_burst)
        self._event_bucket = RateLimiter(settings.event_rate, max(1, int(settings.event_rate)))
        self._closing = False

    # --- lifecycle -------------------------------------------------------------------------------
    async def __aenter__(self) -> MqttBridge:
        self._unsubscribe = self.hub.subscribe(self._on_feedback, self.settings.streams)
        self._task = asyncio.get_running_loop().create_task(self.run(), name="folkrnn-live mqtt")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self._final_publish()
        finally:
            self._closing = True
            if self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None
            task, self._task = self._task, None
            if task is not None:
                task.cancel()
                # The client's graceful disconnect waits for the broker; a dead one must not hold
                # up the server's shutdown.
                done, _ = await asyncio.wait({task}, timeout=CLOSE_TIMEOUT)
                if not done:
                    task.cancel()
                    await asyncio.wait({task}, timeout=CLOSE_TIMEOUT)
            self.connected.clear()

    async def _final_publish(self) -> None:
        client = self._client
        if client is None or not self.connected.is_set():
            return
        self._refresh_states()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self.flushed()
                # A graceful disconnect suppresses the last will, so say "offline" ourselves.
                await client.publish(f"{self.prefix}/online", "false", qos=1, retain=True)
        except (TimeoutError, aiomqtt.MqttError) as exc:
            log.debug("MQTT: final publish incomplete: %s", exc)

    @property
    def running(self) -> bool:
        """Whether the connection task is alive (connected or retrying)."""
        return self._task is not None and not self._task.done()

    async def flushed(self) -> None:
        """Wait until everything queued so far was handed to the broker (tests, shutdown)."""
        await self._flushed.wait()

    def reconfigure(self, config: Config) -> None:
        """SIGHUP: take the new ``[mqtt]`` settings.  Rates and streams change at once; a new
        broker, prefix, identity or TLS setting reconnects; ``enabled = false`` disconnects.  Bad
        settings raise MqttConfigError (the server logs it) and change nothing."""
        new = MqttSettings.from_config(config.values)
        old = self.settings
        if new == old:
            return
        self.settings = new
        self._commands = RateLimiter(new.command_rate, new.command_burst)
        self._event_bucket = RateLimiter(new.event_rate, max(1, int(new.event_rate)))
        if new.streams != old.streams and self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = self.hub.subscribe(self._on_feedback, new.streams)
        link = ("enabled", "host", "port", "prefix", "client_id", "username", "password", "password_file", "tls",
                "ca_file", "cert_file", "key_file", "keepalive", "qos", "timeout")
        if any(getattr(new, k) != getattr(old, k) for k in link) and self._task is not None:
            log.info("MQTT: settings changed; reconnecting to %s", new.describe())
            old_task, self._task = self._task, None
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._restart(old_task), name="folkrnn-live mqtt")

    async def _restart(self, old: asyncio.Task[None]) -> None:
        try:
            await self._final_publish()  # "offline" under the old prefix, while the old link is up
        finally:
            old.cancel()  # also when this task is cancelled (shutdown) before getting here
        await asyncio.wait({old}, timeout=CLOSE_TIMEOUT)
        self.prefix = self.settings.prefix
        self._own = set(_OUTPUT_NAMES)
        self._states.clear()
        self._events.clear()
        if self.settings.enabled:
            await self.run()

    # --- connection loop -------------------------------------------------------------------------
    async def run(self) -> None:
        """Connect, serve, and reconnect with capped exponential backoff, until cancelled.  Never
        raises anything else: a broker problem must not reach the server's task group."""
        s = self.settings
        delay = s.reconnect_min
        while True:
            try:
                async with self._make_client() as client:
                    self._client = client
                    self.stats.connects += 1
                    delay = s.reconnect_min  # a connection was accepted: the next loss retries soon
                    await self._session(client)
            except aiomqtt.MqttError as exc:
                self._failed(exc)
            except MqttConfigError as exc:  # e.g. the password file vanished since start-up
                self._failed(exc)
            except Exception as exc:  # paho internals, a bug: log it and keep the bridge alive
                log.exception("MQTT bridge: unexpected error; reconnecting")
                self._failed(exc)
            finally:
                self._client = None
                self.connected.clear()
                self._events.clear()  # live events are stale once the link is gone
                self._flushed.set()
            await asyncio.sleep(delay)
            delay = min(delay * 2.0, s.reconnect_max)

    def _make_client(self) -> aiomqtt.Client:
        s = self.settings
        return aiomqtt.Client(
            s.host, s.port, username=s.username or None, password=s.read_password(),
            identifier=s.identifier(), keepalive=s.keepalive, timeout=s.timeout, tls_context=tls_context(s),
            will=aiomqtt.Will(f"{self.prefix}/online", "false", qos=1, retain=True),
            logger=logging.getLogger(f"{__name__}.client"), clean_session=True,
        )

    def _failed(self, exc: BaseException) -> None:
        self.stats.failures += 1
        try:
            msg = explain_failure(self.settings, exc, connected=self.connected.is_set())
        except Exception:  # explaining must never be what kills the reconnect loop
            msg = f"MQTT broker {self.settings.describe()}: {exc!r}"
        if msg != self.last_error:  # say it once, not on every retry
            log.error("%s", msg)
        else:
            log.debug("%s", msg)
        self.last_error = msg

    async def _session(self, client: aiomqtt.Client) -> None:
        s, p = self.settings, self.prefix
        # Two single-level patterns rather than '#': our events (<prefix>/<voice>/event/...) are
        # deeper, so the broker does not echo the token stream back to us.
        await client.subscribe(f"{p}/+", qos=s.qos, timeout=s.timeout)
        await client.subscribe(f"{p}/+/+", qos=s.qos, timeout=s.timeout)
        await client.publish(f"{p}/online", "true", qos=1, retain=True, timeout=s.timeout)
        self.connected.set()
        if self.last_error is not None:
            log.info("MQTT: reconnected to %s", s.describe())
        else:
            log.info("MQTT: connected to %s (commands: %s/<voice>/<command>)", s.describe(), p)
        self.last_error = None
        self._refresh_states()
        loop = asyncio.get_running_loop()
        tasks = {loop.create_task(self._publish_loop(client), name="folkrnn-live mqtt publish"),
                 loop.create_task(self._receive_loop(client), name="folkrnn-live mqtt receive")}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for t in done:
            t.result()  # re-raise the MqttError that ended the session
        raise aiomqtt.MqttError("session ended")  # pragma: no cover - both loops run forever

    async def _receive_loop(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            self.handle_message(str(message.topic), payload_bytes(message.payload), retained=bool(message.retain))

    async def _publish_loop(self, client: aiomqtt.Client) -> None:
        s = self.settings
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._states or self._events:
                if self._states:
                    topic, payload = next(iter(self._states.items()))
                    await client.publish(topic, payload, qos=1, retain=True, timeout=s.timeout)
                    if self._states.get(topic) is payload:  # not replaced by a newer one meanwhile
                        del self._states[topic]
                else:
                    topic, payload = self._events.popleft()
                    await client.publish(topic, payload, qos=s.qos, timeout=s.timeout)
                self.stats.published += 1
            self._flushed.set()

    # --- commands in -----------------------------------------------------------------------------
    def handle_message(self, topic: str, payload: bytes, *, retained: bool = False) -> None:
        """Validate one message and dispatch it; every problem is answered on ``<prefix>/error``."""
        p = self.prefix
        if not topic.startswith(p + "/"):
            return
        rel = topic[len(p) + 1:]
        if rel in self._own or (rel.endswith("/state") and rel.count("/") == 1):
            # Our own output (state snapshots: retained, so also those of an earlier run).
            self.stats.ignored += 1
            return
        self.stats.received += 1
        if retained:
            # A retained command would be replayed at every reconnect: refuse it, once per topic.
            self._error(topic, CommandError(topic, "retained commands are ignored",
                                            allowed="publish commands with retain off; clear this one "
                                                    "with an empty retained message"))
            return
        if not self._commands.take("mqtt"):
            self.stats.limited += 1
            if self._commands.notice_due("mqtt"):  # one notice per second, not one per message
                self._error(topic, CommandError(topic, "rate limit exceeded; commands dropped",
                                                allowed=f"{self.settings.command_rate:g} commands/s"))
            return
        try:
            if len(payload) > self.settings.max_payload:
                raise CommandError(topic, f"payload of {len(payload)} bytes is too large", argument="payload",
                                   allowed=f"at most {self.settings.max_payload} bytes (mqtt.max_payload)")
            try:
                text = payload.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise CommandError(topic, f"payload is not UTF-8 ({exc.reason})", argument="payload",
                                   allowed="JSON or plain UTF-8 text") from exc
            reg, ctx = self.server.registry, self.server.context
            cmd, target = reg.resolve(rel.split("/"), ctx, address=topic)
            call = bind_payload(reg, cmd, target, text, ctx)
            # replies (errors, pong, status) are published back under the prefix
            self.server.dispatch(call, TransportOrigin(f"mqtt:{topic}", partial(self.publish_feedback, topic=topic)))
        except CommandError as exc:
            self._error(topic, exc, payload)
        except Exception as exc:  # a bug behind dispatch must not end the receive loop
            log.exception("MQTT: %s failed", topic)
            self._error(topic, CommandError(topic, f"internal error: {exc}"), payload)

    def _error(self, topic: str, exc: CommandError, payload: bytes | None = None) -> None:
        from folkrnn_live.server.transports.feedback import error_feedback

        log.debug("MQTT error on %s: %s", topic, exc)
        self.publish_feedback(error_feedback(exc), topic=topic, payload=payload)

    # --- feedback out ----------------------------------------------------------------------------
    def topic_for(self, fb: Feedback) -> tuple[str, bool]:
        """(topic, retained) of a feedback message."""
        p = self.prefix
        if fb.voice is not None:
            if fb.name == "state":
                return f"{p}/{fb.voice}/state", True
            return f"{p}/{fb.voice}/event/{fb.name}", False
        if fb.stream == "replies":
            return f"{p}/{fb.name}", False
        return f"{p}/event/{fb.name}", False

    def publish_feedback(self, fb: Feedback, *, topic: str | None = None, payload: bytes | None = None) -> None:
        """Queue one feedback message (never blocks).  ``topic``: the command it answers; errors
        name it in their JSON."""
        if self._closing:
            return
        data: dict[str, Any] = dict(fb.data)
        if fb.name == "error":
            self.stats.errors += 1  # also those the server answers later (a failed step command)
        if fb.name == "error" and topic is not None:
            data = {"topic": topic, **data}
            if payload is not None:
                data["payload"] = payload[:200].decode("utf-8", "replace")
        out_topic, retained = self.topic_for(fb)
        rel = out_topic[len(self.prefix) + 1:]
        if rel.count("/") <= 1:
            self._own.add(rel)  # it matches our subscriptions: its echo is not a command
        body = json.dumps(data, separators=(",", ":"), default=str).encode()
        if retained:
            self._states[out_topic] = body
        elif not self.connected.is_set() or not self._event_bucket.take("events") \
                or len(self._events) >= MAX_EVENTS_QUEUED:
            self.stats.dropped += 1
            return
        else:
            self._events.append((out_topic, body))
        self._flushed.clear()
        self._wake.set()

    def _on_feedback(self, fb: Feedback) -> None:
        self.publish_feedback(fb)

    def _refresh_states(self) -> None:
        try:
            for fb in self._states_fn():
                self.publish_feedback(fb)
        except Exception:  # a snapshot bug must not cost the connection
            log.exception("MQTT: cannot build state snapshots")


def open_transport(server: Host) -> MqttBridge | None:
    """The server's hook (listed in ``runtime.service.TRANSPORTS``): a bridge from the ``[mqtt]`` section, or
    None when ``mqtt.enabled`` is false.  Bad settings raise :class:`MqttConfigError` naming the key."""
    settings = MqttSettings.from_config(server.config.values)
    if not settings.enabled:
        return None
    return MqttBridge(server, server.hub, settings)
