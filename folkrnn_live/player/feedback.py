"""A voice's reports (:class:`~folkrnn_live.player.events.PlayerEvent`) on their way to its listener.

Feedback never holds up a note.  In the server the listener publishes every note to OSC, MQTT and the
web page, and voices on one beat grid have notes due at the same instants: called from inside an
onset, the listener made every later voice's coincident note wait for it.  So events that arise while
notes are due are held and delivered once the scheduler is done with the actions due now (it fires
every due action before it yields to the loop).  Events keep their order, and the player delivers
what it holds before it pulls its next token and before a control call (stop, pause, update) returns,
so a listener still sees each event with the voice as it was then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterator

from folkrnn_live.player.events import PlayerEvent

log = logging.getLogger(__name__)

Listener = Callable[[PlayerEvent], None]


class Feedback:
    """Delivers events to ``listener()`` (read at each delivery: the player's listener may change) in
    order; :meth:`held` holds them until a loop callback."""

    def __init__(self, listener: Callable[[], Listener | None], name: str) -> None:
        self._listener = listener
        self.name = name
        self._pending: deque[PlayerEvent] = deque()
        self._holding = False
        self._delivery_due = False  # a loop callback will deliver what is pending

    def emit(self, event: PlayerEvent) -> None:
        if self._listener() is None:
            return
        self._pending.append(event)
        if not self._holding:
            self.deliver()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold what is emitted inside (notes are due): delivered by a loop callback soon after."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
            if self._pending:
                self._deliver_soon()

    def deliver(self) -> None:
        """Everything pending, now and in order (a listener that stops the voice adds to it)."""
        pending = self._pending
        while pending:
            event = pending.popleft()
            listener = self._listener()
            if listener is None:
                pending.clear()
                return
            try:
                listener(event)
            except Exception:  # a listener's bug must not stop the music
                log.exception("voice %s: listener failed", self.name)

    def _deliver_soon(self) -> None:
        if self._delivery_due:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): nothing to wait for
            self.deliver()
            return
        self._delivery_due = True
        loop.call_soon(self._deliver_due)

    def _deliver_due(self) -> None:
        self._delivery_due = False
        self.deliver()
