"""The page's server: an aiohttp site on the server's own event loop, and its page clients.

``async with WebTransport(server, settings):`` serves the page (see :mod:`.app`), subscribes to the
feedback hub and keeps the tune book.  A page client is one more command origin, like an OSC
sender: its commands go through the registry's validation, the rate limit and the allowlist, and
its replies (errors, pong, status) come back to it alone.

Nothing here may hold up a note.  The hub listener runs inside the voices' steps, so it only
encodes a message once and appends it to each page's bounded queue; one writer task per page sends
what has piled up as one WebSocket frame.  A page that falls ``queue_limit`` messages behind is
disconnected (it reconnects and redraws from the tune book) rather than letting its queue grow.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

import numpy as np

from folkrnn_live.server.commands.catalog import DEFAULT_STREAMS, STREAMS
from folkrnn_live.server.commands.registry import Call, Registry
from folkrnn_live.server.transports.common import Allowlist, RateLimiter
from folkrnn_live.server.transports.feedback import Feedback, Hub
from folkrnn_live.server.transports.web.settings import WebSettings
from folkrnn_live.server.transports.web.tunes import TuneBook

log = logging.getLogger(__name__)
TOP_K = 10  # next-token probabilities shown in the activation strip
# The book always listens to these (a page opened mid-tune still gets the whole tune).
BOOK_STREAMS = frozenset({"tokens", "tunes"})


class WebHost(Protocol):
    """What the page's server needs from the live server (``Server`` implements it)."""

    registry: Registry
    hub: Hub
    voices: Mapping[str, Any]  # name -> LiveVoice (player, voice, state_feedback())

    @property
    def context(self) -> Any: ...

    def dispatch(self, call: Call, origin: Any) -> None: ...


@dataclass
class WebStats:
    clients: int = 0  # pages connected now
    connects: int = 0
    commands: int = 0
    errors: int = 0
    limited: int = 0
    refused: int = 0  # requests refused by the Host, Origin or allowlist checks
    sent_frames: int = 0
    sent_messages: int = 0
    overflows: int = 0  # pages disconnected for falling behind


class PageClient:
    """One open page (one WebSocket): a command origin with its own feedback streams."""

    def __init__(self, transport: WebTransport, key: int, peer: str, ws: Any,
                 abort: Callable[[], None] | None = None) -> None:
        self.transport, self.key, self.peer, self.ws = transport, key, peer, ws
        self.abort = abort  # drops the connection at once (the TCP transport's abort)
        self.streams: frozenset[str] = frozenset(DEFAULT_STREAMS)
        self.activations = False
        self.queue: deque[str] = deque()
        self.wake = asyncio.Event()
        self.closing = False
        # The id of the page's message being handled: a reply made while it is (a validation
        # error) names it, so the page can show it beside the control that sent it.
        self.current_id: Any = None

    @property
    def name(self) -> str:
        return f"web:{self.peer}#{self.key}"

    # --- Origin ---------------------------------------------------------------------------------
    @property
    def subscriptions(self) -> PageClient:
        return self  # subscribe sets this page's streams

    def reply(self, fb: Feedback) -> None:
        msg = {"type": "reply", "name": fb.name, "voice": fb.voice, "data": fb.data}
        if self.current_id is not None:
            msg["id"] = self.current_id
        self.push(json.dumps(msg, separators=(",", ":")))

    def subscribe(self, port: int, streams: Iterable[str]) -> None:
        """``/folkrnn/subscribe`` from a page: these streams to this page (the port is not used)."""
        del port
        self.streams = frozenset(streams) or frozenset(DEFAULT_STREAMS)
        self.transport.resubscribe()

    def unsubscribe(self, port: int) -> None:
        del port
        self.streams = frozenset()
        self.transport.resubscribe()

    # --- sending --------------------------------------------------------------------------------
    def push(self, text: str) -> None:
        if self.closing:
            return
        if len(self.queue) >= self.transport.settings.queue_limit:
            self.closing = True
            self.transport.stats.overflows += 1
            log.warning("web: %s fell %d messages behind; disconnected (it reconnects and redraws)",
                        self.name, len(self.queue))
            self.queue.clear()
            # The writer is stuck in a send the page does not read, so it cannot close the WebSocket
            # itself (a close frame waits behind that send): drop the connection, which ends the send
            # and the page's handler now rather than at the next missed heartbeat.
            if self.abort is not None:
                self.abort()
        else:
            self.queue.append(text)
        self.wake.set()

    async def writer(self) -> None:
        """Send what has piled up, as one frame (a JSON array), until the page goes."""
        from aiohttp import WSCloseCode

        while not self.ws.closed:
            await self.wake.wait()
            self.wake.clear()
            if self.closing:
                await self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too far behind")
                return
            if not self.queue:
                continue
            batch, self.queue = self.queue, deque()
            await self.ws.send_str("[" + ",".join(batch) + "]")
            self.transport.stats.sent_frames += 1
            self.transport.stats.sent_messages += len(batch)


class WebTransport:
    """The page's HTTP and WebSocket server, as one async context manager."""

    def __init__(self, server: WebHost, settings: WebSettings) -> None:
        self.server, self.hub, self.settings = server, server.hub, settings
        self.book = TuneBook(settings.tunes_kept)
        self.stats = WebStats()
        self.allowlist = Allowlist(settings.allow)
        self.limiter = RateLimiter(settings.rate_limit, settings.burst)
        self.clients: dict[int, PageClient] = {}
        self._keys = itertools.count(1)
        self._runner: Any = None
        self._port = settings.port
        self._unsubscribe_hub: Callable[[], None] | None = None
        self._hub_streams: frozenset[str] = frozenset()
        self._act_listeners: dict[str, Callable[[Any], None]] = {}

    # --- lifecycle -------------------------------------------------------------------------------
    async def __aenter__(self) -> WebTransport:
        from aiohttp import web

        from folkrnn_live.server.transports.web.app import make_app

        self.resubscribe()
        runner = web.AppRunner(make_app(self), access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.host, self.settings.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            self._unsubscribe()
            raise OSError(f"cannot serve the page on {self.settings.host}:{self.settings.port} (web.host, web.port): "
                          f"{exc.strerror or exc}") from exc
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        log.info("serving the live score and control page on %s", self.url)
        if self.settings.exposed:
            log.warning("web: the page is served on %s beyond this machine: anyone who reaches it can drive the "
                        "server%s", self.url, "" if self.settings.allow else " (web.allow is empty: any network)")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._unsubscribe()
        self._set_activations(False)
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()  # on_shutdown (app.py) closes the pages' WebSockets first

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        host = self.settings.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
        return f"http://{shown}:{self._port}/"

    def reconfigure(self, config: Any) -> None:
        """SIGHUP: limits, names and the allowlist change at once (host, port, expose and enabled are
        restart keys: the server reports them and keeps the running values)."""
        new = WebSettings.from_config(config.values)
        self.settings = new
        self.allowlist = Allowlist(new.allow)
        self.limiter = RateLimiter(new.rate_limit, new.burst)
        self.book.kept = new.tunes_kept

    # --- clients ---------------------------------------------------------------------------------
    def add_client(self, peer: str, ws: Any, abort: Callable[[], None] | None = None) -> PageClient:
        c = PageClient(self, next(self._keys), peer, ws, abort)
        self.clients[c.key] = c
        self.stats.clients = len(self.clients)
        self.stats.connects += 1
        self.resubscribe()
        return c

    def remove_client(self, c: PageClient) -> None:
        self.clients.pop(c.key, None)
        self.stats.clients = len(self.clients)
        self.resubscribe()
        self.update_activations()

    def hello(self) -> dict[str, Any]:
        """The first message to a page: the controls, the voices' tunes so far and their state."""
        from folkrnn_live.server.commands.catalog import GROUPS
        from folkrnn_live.server.transports.web.schema import schema

        voices = {}
        for name, lv in self.server.voices.items():
            voices[name] = {**self.book.snapshot(name), "state": lv.state_feedback().data}
        return {"type": "hello", "schema": schema(self.server.registry, self.server.context, GROUPS),
                "voices": voices, "tunes_kept": self.book.kept, "server_time": time.time()}

    def update_activations(self) -> None:
        self._set_activations(any(c.activations for c in self.clients.values()))

    # --- feedback --------------------------------------------------------------------------------
    def resubscribe(self) -> None:
        """Listen to the hub for the streams some page wants, and always to the book's."""
        wanted = set(BOOK_STREAMS).union(*(c.streams for c in self.clients.values()))
        streams = frozenset(s for s in STREAMS if s in wanted)
        if streams == self._hub_streams and self._unsubscribe_hub is not None:
            return
        self._unsubscribe()
        self._hub_streams = streams
        self._unsubscribe_hub = self.hub.subscribe(self._on_feedback, streams)

    def _unsubscribe(self) -> None:
        if self._unsubscribe_hub is not None:
            self._unsubscribe_hub()
            self._unsubscribe_hub = None
            self._hub_streams = frozenset()

    def _on_feedback(self, fb: Feedback) -> None:
        msg: dict[str, Any] = {"type": "fb", "stream": fb.stream, "name": fb.name, "voice": fb.voice, "data": fb.data}
        if fb.stream == "tokens" and fb.voice is not None:
            lv = self.server.voices.get(fb.voice)
            # The token is being pulled by the player: the interpreter's counter is the number its
            # notes will carry, which lets the page find the sounding note in the notation.
            play = -1 if lv is None else int(lv.player.interpreter.step)
            d = fb.data
            self.book.add_token(fb.voice, d["tune"], d["token"], d["total"], play)
            msg["play"] = play
            msg["t"] = time.time()  # when the token was generated (the page measures its delay)
        elif fb.name == "tune_start" and fb.voice is not None:
            self.book.start(fb.voice, fb.data["tune"], fb.data["seed"])
        if not self.clients:
            return
        text = None
        for c in tuple(self.clients.values()):
            if fb.stream in c.streams:
                text = text or json.dumps(msg, separators=(",", ":"))
                c.push(text)

    # --- the activation strip ----------------------------------------------------------------------
    def _set_activations(self, on: bool) -> None:
        if on:
            for name, lv in self.server.voices.items():
                if name not in self._act_listeners:
                    fn = self._make_act_listener(name, lv)
                    self._act_listeners[name] = fn
                    lv.voice.listeners.append(fn)
            return
        for name, fn in self._act_listeners.items():
            lv = self.server.voices.get(name)
            if lv is not None and fn in lv.voice.listeners:
                lv.voice.listeners.remove(fn)
        self._act_listeners.clear()

    def _make_act_listener(self, name: str, lv: Any) -> Callable[[Any], None]:
        voice = lv.voice

        def on_step(r: Any) -> None:
            h = voice.state.h[-1][0]
            h = h.detach().cpu().numpy() if hasattr(h, "detach") else np.asarray(h)
            # Hidden states are tanh outputs in [-1, 1]: one byte each is plenty for a heatmap.
            q = np.clip(np.rint((h + 1.0) * 127.5), 0, 255).astype(np.uint8)
            probs = np.asarray(r.probs)
            top = np.argpartition(probs, -TOP_K)[-TOP_K:]
            top = top[np.argsort(-probs[top])]
            text = json.dumps({"type": "act", "voice": name, "total": voice.total_steps - 1,
                               "hidden": base64.b64encode(q.tobytes()).decode("ascii"),
                               "top": [[voice.vocab.tokens[i], round(float(probs[i]), 4)] for i in top]},
                              separators=(",", ":"))
            for c in tuple(self.clients.values()):
                if c.activations:
                    c.push(text)

        return on_step


async def close_clients(transport: WebTransport, timeout: float = 0.5) -> None:
    """Close every page's WebSocket (server shutdown): the pages show that the server went."""
    from aiohttp import WSCloseCode

    closes = [c.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
              for c in tuple(transport.clients.values()) if not c.ws.closed]
    if closes:
        await asyncio.wait([asyncio.ensure_future(x) for x in closes], timeout=timeout)
