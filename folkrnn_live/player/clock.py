"""MIDI clock: following an external clock (24 ppqn, start/stop/continue) and sending one out.

The internal tempo clock is simply the voice's ``tempo`` setting (see ``perform.Timeline``).  An
:class:`ExternalClock` derives the tempo from the spacing of incoming clock ticks (averaged over one
quarter note, so single late ticks barely move it) and passes transport messages on to its
subscribers (a player pauses on stop and resumes on start/continue).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Literal

import mido

from folkrnn_live.player import ports
from folkrnn_live.player.scheduler import PRIO_CLOCK, Scheduler, Timer

if TYPE_CHECKING:
    from folkrnn_live.player.events import Meter

PPQN = 24
Transport = Literal["start", "stop", "continue"]
STALE_GAP = 0.5  # seconds without ticks after which the old tick spacing no longer says anything
MAX_SNAP = 0.06  # seconds a bar line may move to meet the clock's (more: not the same bar)


class ExternalClock:
    """Tempo and transport from incoming MIDI clock messages; feed it with :meth:`feed`."""

    def __init__(self, window: int = PPQN) -> None:
        if not 2 <= window <= 8 * PPQN:
            raise ValueError(f"window must be in range 2..{8 * PPQN} ticks; got {window!r}")
        self._ticks: deque[float] = deque(maxlen=window + 1)
        self._subscribers: list[Callable[[Transport, float], None]] = []
        self.running = False
        self.ticks = 0  # clock ticks since the last start

    def subscribe(self, fn: Callable[[Transport, float], None]) -> None:
        self._subscribers.append(fn)

    def unsubscribe(self, fn: Callable[[Transport, float], None]) -> None:
        if fn in self._subscribers:
            self._subscribers.remove(fn)

    def feed(self, msg: mido.Message, at: float | None = None) -> None:
        """One incoming message, received at ``at`` (the loop's clock; default now)."""
        at = time.monotonic() if at is None else at
        if msg.type == "clock":
            if self._ticks and at - self._ticks[-1] > STALE_GAP:
                self._ticks.clear()
            self._ticks.append(at)
            self.ticks += 1
        elif msg.type in ("start", "stop", "continue"):
            self.running = msg.type != "stop"
            if msg.type == "start":
                self.ticks = 0
            for fn in tuple(self._subscribers):
                fn(msg.type, at)

    @property
    def tick_interval(self) -> float | None:
        if len(self._ticks) < 2:
            return None
        return (self._ticks[-1] - self._ticks[0]) / (len(self._ticks) - 1)

    def tick_time(self, n: int) -> float | None:
        """Loop-clock time of tick ``n`` after the last Start (0 is the downbeat, the first tick after
        Start), from the recent ticks (each one's arrival minus its index times the spacing, averaged,
        so one tick that came a JACK period late barely moves it); None before two ticks or when stopped."""
        iv = self.tick_interval
        if iv is None or not self.running or not self._ticks:
            return None
        first = self.ticks - len(self._ticks)  # index (since Start) of the oldest tick held
        origin = sum(t - (first + j) * iv for j, t in enumerate(self._ticks)) / len(self._ticks)
        return origin + n * iv

    def bar_line(self, t: float, meter: Meter) -> float:
        """Phase lock: the clock's bar line nearest to ``t`` (where a voice plans a bar to start) when
        it is within :data:`MAX_SNAP` of it, else ``t``.  Bars count from the downbeat after Start, so
        a voice started by Start keeps its bar lines on the clock's instead of drifting with the tempo
        estimate; a tune whose bars do not fall near the clock's (a pickup) is left alone."""
        iv, t0 = self.tick_interval, self.tick_time(0)
        if iv is None or t0 is None:
            return t
        bar = meter.num * 4 * PPQN / meter.den  # ticks per bar
        want = t0 + round((t - t0) / (bar * iv)) * bar * iv
        return want if abs(want - t) <= MAX_SNAP else t

    @property
    def seconds_per_quarter(self) -> float | None:
        """Quarter-note length from the tick spacing; None until two ticks have arrived."""
        iv = self.tick_interval
        return None if iv is None or iv <= 0 else iv * PPQN

    @property
    def bpm(self) -> float | None:
        """Tempo in quarter notes per minute."""
        spq = self.seconds_per_quarter
        return None if spq is None else 60.0 / spq


class MidiClockInput:
    """Feeds an :class:`ExternalClock` from a MIDI input port (async context manager).

    rtmidi calls back on its own thread; the message is time-stamped there and handed to the loop."""

    def __init__(self, clock: ExternalClock, name: str | None = None, *, virtual: bool = False) -> None:
        self.clock = clock
        self.name = name
        self.virtual = virtual
        self._port: mido.ports.BaseInput | None = None

    async def __aenter__(self) -> MidiClockInput:
        loop = asyncio.get_running_loop()

        def callback(msg: mido.Message) -> None:
            loop.call_soon_threadsafe(self.clock.feed, msg, time.monotonic())

        try:
            self._port = ports.open_input(self.name, virtual=self.virtual, callback=callback)
        except (OSError, ValueError) as exc:
            raise OSError(f"cannot open MIDI input port {self.name or 'default'!r} for clock: {exc}") from exc
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None


class ClockOut:
    """Sends MIDI clock (24 ppqn) and transport through ``send``, timed by the scheduler.

    The tick spacing follows ``seconds_per_quarter()`` tick by tick, so a tempo change is heard in the
    clock at once, as in the notes from the next note on."""

    def __init__(
        self,
        scheduler: Scheduler,
        send: Callable[[mido.Message, float], None],
        seconds_per_quarter: Callable[[], float],
    ) -> None:
        self.scheduler = scheduler
        self._send = send
        self._spq = seconds_per_quarter
        self._timer: Timer | None = None
        self.running = False

    def start(self, at: float, kind: Literal["start", "continue"] = "start") -> None:
        self.stop(at, send=False)
        self.running = True

        def begin() -> None:
            self._send(mido.Message(kind), at)
            self._tick(at)

        self._timer = self.scheduler.at(at, begin, PRIO_CLOCK)

    def _tick(self, when: float) -> None:
        self._send(mido.Message("clock"), when)
        nxt = when + self._spq() / PPQN
        self._timer = self.scheduler.at(nxt, lambda: self._tick(nxt), PRIO_CLOCK)

    def stop(self, at: float, *, send: bool = True) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.running and send:
            self._send(mido.Message("stop"), at)
        self.running = False
