"""What the server tells the outside world: one transport-neutral event type and a hub.

A :class:`Feedback` carries both forms every transport needs: ``values`` (positional, for OSC
``/folkrnn/<voice>/<name> values...``) and ``data`` (a JSON-able dict, for MQTT
``<prefix>/<voice>/<name>`` payloads and logs).  Producers build it once; the OSC endpoint and the
MQTT bridge subscribe to the :class:`Hub` and encode it their own way.

Replies to one sender (errors, ``pong``, ``status``) do not go through the hub: every submitted
command carries an :class:`~folkrnn_live.server.transports.common.Origin`, whose ``reply`` sends
back to where the command came from.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from folkrnn_live.server.commands.catalog import STREAMS
from folkrnn_live.server.commands.registry import PREFIX, CommandError

log = logging.getLogger(__name__)

Stream = Literal["tokens", "notes", "bars", "tunes", "probs", "state", "applied", "replies"]


@dataclass(frozen=True)
class Feedback:
    stream: Stream  # which subscription it belongs to ("replies": only to one origin)
    name: str  # last address part: token, note, bar, tune_start, tune_end, probs, state, applied, error, pong
    voice: str | None  # None for server-wide messages
    values: tuple[Any, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def address(self) -> str:
        """OSC address: ``/folkrnn/<voice>/<name>``, or ``/<name>`` for replies with no voice
        (``/error``, ``/pong``) and ``/folkrnn/<name>`` for other server-wide messages."""
        if self.voice is not None:
            return f"{PREFIX}/{self.voice}/{self.name}"
        return f"/{self.name}" if self.stream == "replies" else f"{PREFIX}/{self.name}"


def error_feedback(exc: CommandError | Exception, address: str = "") -> Feedback:
    """``/error address argument message`` (argument "" when the address itself is wrong)."""
    if isinstance(exc, CommandError):
        addr, arg, msg = exc.address, exc.argument or "", exc.detail
        allowed = exc.allowed
    else:
        addr, arg, msg, allowed = address, "", str(exc), ""
    return Feedback(
        "replies", "error", None, (addr, arg, msg),
        {"address": addr, "argument": arg, "message": msg, "allowed": allowed},
    )


Listener = Callable[[Feedback], None]


class Hub:
    """Fan-out of feedback to subscribers, each with a set of streams.  Synchronous and cheap:
    listeners run on the event loop and must only encode and hand off (a socket send, a queue put)."""

    def __init__(self) -> None:
        self._subs: dict[int, tuple[Listener, frozenset[str]]] = {}
        self._next = 0
        self._wanted: dict[str, int] = {}

    def subscribe(self, listener: Listener, streams: Iterable[str] = STREAMS) -> Callable[[], None]:
        """Call ``listener`` with every feedback of ``streams``; returns the unsubscribe function."""
        s = frozenset(streams)
        bad = sorted(s - set(STREAMS))
        if bad:
            raise ValueError(f"streams must be among {', '.join(STREAMS)}; got {bad}")
        key = self._next
        self._next += 1
        self._subs[key] = (listener, s)
        for st in s:
            self._wanted[st] = self._wanted.get(st, 0) + 1

        def unsubscribe() -> None:
            sub = self._subs.pop(key, None)
            if sub is not None:
                for st in sub[1]:
                    self._wanted[st] -= 1

        return unsubscribe

    def wants(self, stream: str) -> bool:
        """Whether anybody listens to ``stream`` (so producers skip building costly feedback)."""
        return self._wanted.get(stream, 0) > 0

    def publish(self, fb: Feedback) -> None:
        if not self._wanted.get(fb.stream):
            return
        for listener, streams in tuple(self._subs.values()):
            if fb.stream in streams:
                try:
                    listener(fb)
                except Exception:  # one broken subscriber must not stop the music or the others
                    log.exception("feedback listener failed")
