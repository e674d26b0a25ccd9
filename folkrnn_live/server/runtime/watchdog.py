"""A watchdog per voice: a voice that should be playing but has stopped moving is restarted.

Issue 12 saw every voice freeze once (step counters still, no notes, commands ignored, SIGTERM
fine).  The cause found: all voices share one scheduler, which ran a step only when its estimated
cost fitted before the next timed action; one slow step (a GC pause, a busy machine) raised the
estimate above every gap between MIDI clock ticks, so no step ever ran again to bring it down
(fixed in :mod:`folkrnn_live.player.scheduler`).  Other ways to the same silence remain possible
(a worker the scheduler dropped after an exception, a scheduler task that ended), so this watchdog
checks every voice twice a second: a voice whose player is ``playing`` but that has pulled no
token and played no note for :data:`WATCH_BEATS` beats (and at least :data:`MIN_SECONDS`) is

* logged at ERROR, on one line, with what its scheduler is doing (the task's stack, its queue);
* restarted: ``stop`` silences its sounding notes (note-offs, All Notes Off), ``start`` plays on
  from where it was, and a scheduler task that had ended is started again;
* announced on the ``state`` feedback stream as ``/folkrnn/<voice>/watchdog idle_seconds step``
  (MQTT: ``<prefix>/<voice>/event/watchdog``).
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Any

from folkrnn_live.server.transports.feedback import Feedback

log = logging.getLogger("folkrnn_live.server")

WATCH_BEATS = 8.0  # beats without a token or a note before a playing voice counts as frozen
MIN_SECONDS = 3.0  # ... and never sooner than this (a fast tempo, a slow machine)
CHECK_INTERVAL = 0.5


class VoiceWatchdog:
    """``async with VoiceWatchdog(server):`` checks ``server.voices`` in a background task."""

    def __init__(self, server: Any, *, beats: float = WATCH_BEATS, min_seconds: float = MIN_SECONDS,
                 interval: float = CHECK_INTERVAL) -> None:
        self.server = server
        self.beats, self.min_seconds, self.interval = beats, min_seconds, interval
        self.restarts = 0
        self._seen: dict[str, tuple[tuple[int, int], float]] = {}  # voice -> (progress mark, since)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> VoiceWatchdog:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="folkrnn-live voice watchdog")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.check(loop.time())
            except Exception:  # the watchdog must outlive whatever it finds
                log.exception("voice watchdog: check failed")

    def check(self, now: float) -> list[str]:
        """Restart every frozen voice; returns their names."""
        restarted = []
        for name, lv in list(self.server.voices.items()):
            p = lv.player
            if p.state != "playing":
                self._seen.pop(name, None)
                continue
            mark = (p.stats.tokens, p.stats.notes)
            seen = self._seen.get(name)
            if seen is None or seen[0] != mark:
                self._seen[name] = (mark, now)
                continue
            idle = now - seen[1]
            if idle >= max(self.min_seconds, self.beats * _seconds_per_beat(p)):
                self._restart(name, lv, idle)
                self._seen.pop(name, None)
                restarted.append(name)
        return restarted

    def _restart(self, name: str, lv: Any, idle: float) -> None:
        p = lv.player
        sched = p.scheduler
        log.error("voice %s: playing but no token and no note for %.1f s (step %d, %d note(s) sounding, "
                  "worker %s); restarting it; %s", name, idle, lv.voice.total_steps, len(p.sounding),
                  "registered" if sched.has_worker(p) else "NOT registered", sched.describe())
        if sched.revive():
            log.error("voice %s: the scheduler task had ended; started a new one", name)
        p.stop()  # note-offs for what sounds, All Notes Off on the channels used
        p.start()
        self.restarts += 1
        step = lv.voice.total_steps
        lv.hub.publish(Feedback("state", "watchdog", name, (round(idle, 2), step),
                                {"idle_seconds": round(idle, 2), "step": step}))


def _seconds_per_beat(player: Any) -> float:
    clock = player.clock
    spq = clock.seconds_per_quarter if clock is not None else None
    return float(spq) if spq else 60.0 / float(player.settings.tempo)
