"""Playing with others over Ableton Link (the ``aalink`` package): follow a session's tempo, start
voices on its bar lines, or lead it.

:class:`LinkSession` is an async context manager that joins the Link session on the local network
and runs one named task, ``folkrnn-live link``, that watches the session's tempo and hands every
change to its subscribers (a voice's ``set_tempo``), from the next note on.  :meth:`next_bar` is the
loop-clock time (``time.monotonic``) of the session's next bar line, so ``player.start(at=...)``
starts a voice in phase with the others; :meth:`lead` sets the session's tempo for everyone.

Link keeps its own clock (``CLOCK_MONOTONIC_RAW`` on Linux, not the loop's ``CLOCK_MONOTONIC``), so
times are converted through the session's beat and phase read at one instant, never by subtracting
clocks.  ``quantum`` is the beats per bar Link aligns (4 for 4/4; Link's beat is a quarter note).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)
TEMPO_RANGE = (20.0, 999.0)  # what Link itself allows
POLL = 0.02  # seconds between looks at the session's tempo


class LinkError(RuntimeError):
    """Link is not available (the aalink package is not installed)."""


def _check_tempo(bpm: float) -> float:
    if not TEMPO_RANGE[0] <= bpm <= TEMPO_RANGE[1]:
        raise ValueError(f"tempo must be in range {TEMPO_RANGE[0]:g}..{TEMPO_RANGE[1]:g} BPM; got {bpm!r}")
    return float(bpm)


class LinkSession:
    """One Link peer: ``async with LinkSession(120, quantum=4) as link: player.start(at=link.next_bar())``."""

    def __init__(self, bpm: float = 120.0, *, quantum: float = 4.0) -> None:
        _check_tempo(bpm)
        if not 1.0 <= quantum <= 64.0:
            raise ValueError(f"quantum must be in range 1..64 beats; got {quantum!r}")
        self.bpm, self.quantum = bpm, quantum
        self._link: Any = None
        self._task: asyncio.Task[None] | None = None
        self._subscribers: list[Callable[[float], None]] = []
        self._last_tempo = bpm

    async def __aenter__(self) -> LinkSession:
        try:
            import aalink
        except ImportError as exc:
            raise LinkError("Ableton Link needs the aalink package (pip install aalink)") from exc
        self._link = aalink.Link(self.bpm)
        self._link.quantum = self.quantum
        self._link.enabled = True
        self._last_tempo = float(self._link.tempo)
        self._task = asyncio.get_running_loop().create_task(self._watch(), name="folkrnn-live link")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._link is not None:
            self._link.enabled = False
            self._link = None

    @property
    def peers(self) -> int:
        return int(self._link.num_peers) if self._link is not None else 0

    @property
    def tempo(self) -> float:
        return float(self._link.tempo) if self._link is not None else self.bpm

    def subscribe(self, fn: Callable[[float], None]) -> None:
        """``fn(bpm)`` on every tempo change of the session (on the event loop)."""
        self._subscribers.append(fn)

    def unsubscribe(self, fn: Callable[[float], None]) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(fn)

    def lead(self, bpm: float) -> None:
        """Set the session's tempo: every peer follows."""
        self._require().tempo = _check_tempo(bpm)

    def next_bar(self, after: float | None = None) -> float:
        """Loop-clock time of the session's first bar line at or after ``after`` (default: now)."""
        link = self._require()
        now = time.monotonic()
        phase, tempo = float(link.phase), float(link.tempo)  # read at (nearly) one instant
        bar_at = now + (self.quantum - phase) % self.quantum * 60.0 / tempo
        if after is not None and after > bar_at:
            bar = self.quantum * 60.0 / tempo
            bar_at += -(-(after - bar_at) // bar) * bar
        return bar_at

    def phase_at(self, t: float) -> float:
        """The session's phase (0..quantum beats) at loop-clock time ``t`` (at the current tempo)."""
        link = self._require()
        now = time.monotonic()
        phase, tempo = float(link.phase), float(link.tempo)
        return (phase + (t - now) * tempo / 60.0) % self.quantum

    def _require(self) -> Any:
        if self._link is None:
            raise RuntimeError("the Link session is not open (use it as an async context manager)")
        return self._link

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(POLL)
            bpm = float(self._link.tempo)
            if abs(bpm - self._last_tempo) > 1e-6:
                self._last_tempo = bpm
                for fn in tuple(self._subscribers):
                    try:
                        fn(bpm)
                    except Exception:  # a subscriber's bug must not stop following the session
                        log.exception("Link tempo subscriber failed")
