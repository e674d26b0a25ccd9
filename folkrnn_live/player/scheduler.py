"""Real-time timing on the asyncio loop: timed actions fired at absolute times, generation in the gaps.

asyncio's timers wake 1-2 ms late (epoll takes whole milliseconds and the timeout is rounded up), so
the scheduler sleeps until shortly before an action's time and spins on the loop clock for the rest.
The spin window adapts to the wake-up lateness actually observed, so spins stay short.

Token generation (a model step runs synchronously on the loop) is "work": each worker (a player)
says when it wants work and by when it is needed; the scheduler runs one step at a time, and only
when the step (by a running estimate of its cost) ends before the next timed action.  With
a ``batcher`` set, the model's forward passes of all voices run as one batched step, and each
voice's own step then only draws its token.  One scheduler
serves every voice on a loop, so no voice's generation delays another voice's notes.
"""

from __future__ import annotations

import asyncio
import gc
import heapq
import itertools
import logging
import math
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol

log = logging.getLogger(__name__)

# Action priorities at equal times: note-offs before clock ticks before note-ons (a repeated pitch
# is released before it is struck again).
PRIO_OFF, PRIO_CLOCK, PRIO_ON, PRIO_LAST = 0, 1, 2, 3
MAX_BUSY = 0.005  # seconds of back-to-back work steps before the scheduler yields to the loop


class Worker(Protocol):
    def work_window(self) -> tuple[float, float] | None:
        """(opens, deadline): work is wanted from ``opens`` and needed by ``deadline``; None: no work."""
        ...

    def work(self) -> None:
        """One short step of work (one token)."""
        ...


class Batcher(Protocol):
    """Prepares several workers' work in one go (the server: one model step for every voice)."""

    def ready(self, worker: Worker) -> bool:
        """True when ``worker.work()`` needs no preparation first."""
        ...

    def prepare(self, worker: Worker, workers: list[Worker]) -> None:
        """Prepare ``worker``'s work and any of ``workers``' (every worker, also those whose next
        work is not wanted yet: a voice with its next note already decided steps with the batch)."""
        ...


class Timer:
    __slots__ = ("cancelled", "fn", "when")

    def __init__(self, when: float, fn: Callable[[], None]) -> None:
        self.when = when
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class SchedulerStats:
    fired: int = 0
    late_fires: int = 0  # actions fired more than 1 ms after their time
    max_late: float = 0.0
    work_steps: int = 0
    work_time: float = 0.0
    spin_time: float = 0.0
    sleeps: int = 0
    max_wake_late: float = 0.0
    # What the loop did just before each action that fired more than 1 ms late: "sleep" (woke late:
    # the OS or another callback held the loop), "work" (a step overran its estimate) or "action".
    late_causes: dict[str, int] = field(default_factory=lambda: {"sleep": 0, "work": 0, "action": 0})


class Scheduler:
    """Fires timed actions on time and runs workers' steps in the gaps.  Use ``async with``."""

    def __init__(
        self,
        *,
        guard: float = 0.0005,
        spin_min: float = 0.0003,
        spin_max: float = 0.004,
        step_estimate: float = 0.001,
    ) -> None:
        if not 0 <= guard <= 0.05:
            raise ValueError(f"guard must be in range 0..0.05 s; got {guard!r}")
        if not 0 <= spin_min <= spin_max <= 0.02:
            raise ValueError(f"spin_min and spin_max must satisfy 0 <= spin_min <= spin_max <= 0.02 s; "
                             f"got {spin_min!r}, {spin_max!r}")
        self.guard = guard
        self.spin_min, self.spin_max = spin_min, spin_max
        self.stats = SchedulerStats()
        self._initial_step = step_estimate
        self._steps: deque[float] = deque(maxlen=16)
        self._wake_late: deque[float] = deque(maxlen=64)
        self._heap: list[tuple[float, int, int, Timer]] = []
        self._seq = itertools.count()
        self._workers: list[Worker] = []
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_fut: asyncio.Future[bool] | None = None
        self._sleep_until = math.inf
        self._closed = False
        # Set by the server to step every voice's model as one batch (folkrnn_live.sampler.together):
        # when the chosen worker is not ready, the batch runs first as a round of its own, and the
        # worker's own (now cheap) step follows in a later round.  Each kind has its own cost
        # estimate: with one, a batch's cost kept the cheap steps out of every short gap.
        self.batcher: Batcher | None = None
        self._prep_steps: deque[float] = deque(maxlen=16)
        self._just_prepared: Worker | None = None

    # --- lifecycle ---

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def ensure_running(self) -> None:
        """Start the scheduler task on the running loop (idempotent)."""
        if self._closed:
            raise RuntimeError("scheduler is closed")
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._task = self._loop.create_task(self._run(), name="folkrnn-live scheduler")

    async def close(self) -> None:
        self._closed = True
        self.wake()
        if self._task is not None:
            try:
                await self._task
            finally:
                self._task = None

    def describe(self) -> str:
        """What the scheduler task is doing, on one line: its stack, or how it ended (for logs)."""
        task = self._task
        if task is None:
            return "scheduler not started"
        if task.done():
            return "scheduler task ended: " + ("cancelled" if task.cancelled() else repr(task.exception()))
        frames = task.get_stack(limit=8)
        where = " < ".join(f"{f.f_code.co_name}:{f.f_lineno}" for f in reversed(frames)) or "?"
        return (f"scheduler at {where}; {len(self._heap)} timed action(s), {len(self._workers)} worker(s), "
                f"step estimate {self.step_estimate * 1000:.1f} ms")

    def has_worker(self, worker: Worker) -> bool:
        return worker in self._workers

    def revive(self) -> bool:
        """A new scheduler task when the old one ended (a bug); True when one was started."""
        if self._closed or self._task is None or not self._task.done():
            return False
        self._task = None
        self.ensure_running()
        return True

    async def __aenter__(self) -> Scheduler:
        self.ensure_running()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # --- API for players ---

    def now(self) -> float:
        """The loop's clock (time.monotonic() for asyncio's loops), also when no loop runs."""
        if self._loop is not None:
            return self._loop.time()
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            return time.monotonic()

    def at(self, when: float, fn: Callable[[], None], priority: int = PRIO_ON) -> Timer:
        """Run ``fn`` at ``when`` (the loop's clock).  Returns a cancellable timer."""
        timer = Timer(when, fn)
        heapq.heappush(self._heap, (when, priority, next(self._seq), timer))
        if when < self._sleep_until:
            self.wake()
        return timer

    def add_worker(self, worker: Worker) -> None:
        if worker not in self._workers:
            self._workers.append(worker)
        self.wake()

    def remove_worker(self, worker: Worker) -> None:
        if worker in self._workers:
            self._workers.remove(worker)

    def wake(self) -> None:
        """Re-plan now (a worker wants work, a control changed something)."""
        fut = self._wake_fut
        if fut is not None and not fut.done():
            fut.set_result(False)

    @property
    def step_estimate(self) -> float:
        """What one token is expected to cost (a batch's share included): the largest of the last
        16 steps (spikes fade out), plus the largest of the last 16 batches when batching."""
        return self._work_estimate + (self._prep_estimate if self.batcher is not None else 0.0)

    @property
    def _work_estimate(self) -> float:
        return max(self._steps) if self._steps else self._initial_step

    @property
    def _prep_estimate(self) -> float:
        return max(self._prep_steps) if self._prep_steps else self._initial_step

    @property
    def spin_window(self) -> float:
        """How long before an action's time to stop sleeping: the worst recent wake-up lateness."""
        if not self._wake_late:
            return min(max(0.0025, self.spin_min), self.spin_max)
        return min(max(max(self._wake_late) + 0.00025, self.spin_min), self.spin_max)

    # --- the loop ---

    async def _run(self) -> None:
        loop = self._loop
        assert loop is not None
        clock = loop.time
        heap = self._heap
        stats = self.stats
        last = "sleep"
        last_yield = clock()
        while not self._closed:
            now = clock()
            while heap and heap[0][3].cancelled:
                heapq.heappop(heap)
            deadline = heap[0][0] if heap else math.inf
            window = self.spin_window
            overdue: Worker | None = None
            if now < deadline <= now + window:
                # A worker whose note is already due goes before an action not due yet (the action
                # is late by one step): dense actions must not starve it (see below).
                w, _, needed = self._pick_worker(now)
                overdue = w if w is not None and needed <= now else None
            if deadline - now <= window and overdue is None:
                if deadline > now:
                    # The rest of the way by spinning: short by construction (<= spin window).
                    spin_start = now
                    while (now := clock()) < deadline:
                        pass
                    stats.spin_time += now - spin_start
                timer = heapq.heappop(heap)[3]
                late = clock() - timer.when
                stats.fired += 1
                if late > 0.001:
                    stats.late_fires += 1
                    stats.late_causes[last] += 1
                stats.max_late = max(stats.max_late, late)
                self._call(timer.fn)
                last = "action"
                if clock() - last_yield > MAX_BUSY:
                    # Actions back to back (MIDI clock ticks of many voices closer than the spin
                    # window) never reach a sleep: without this the loop's other callbacks (OSC,
                    # signals) would wait for as long as they keep coming.
                    await asyncio.sleep(0)
                    last_yield = clock()
                continue
            worker, opens_next, needed_by = (overdue, math.inf, now) if overdue else self._pick_worker(now)
            # A step runs when it fits before the next action, or when its note is already due:
            # without the second rule one slow step (a GC pause, a busy machine) raised the
            # estimate above every gap between dense actions (MIDI clock ticks, many voices), no
            # step ever ran again to bring it down, and every voice fell silent for good.
            batcher = self.batcher
            # A worker prepared in the round before works now, ready or not (a batcher that failed
            # or left it out must not keep it from ever working).
            prep = (batcher is not None and worker is not None and worker is not self._just_prepared
                    and not self._ready(batcher, worker))
            cost = self._prep_estimate if prep else self._work_estimate
            if worker is not None and (now + cost + self.guard <= deadline or needed_by <= now):
                t0 = clock()
                if prep:
                    assert batcher is not None
                    self._prepare(batcher, worker)
                    self._just_prepared = worker
                else:
                    self._call(worker.work)
                    self._just_prepared = None
                dt = clock() - t0
                (self._prep_steps if prep else self._steps).append(dt)
                stats.work_steps += 1
                stats.work_time += dt
                last = "work"
                if t0 + dt - last_yield > MAX_BUSY:
                    # Back-to-back steps: let the loop's other callbacks (OSC, MQTT) run.
                    await asyncio.sleep(0)
                    last_yield = clock()
                continue
            target = deadline - window
            if worker is None:
                target = min(target, opens_next)
            await self._sleep(target)
            last = "sleep"
            last_yield = clock()

    def _pick_worker(self, now: float) -> tuple[Worker | None, float, float]:
        """The open worker with the earliest deadline, when the next window opens, and that deadline."""
        best: Worker | None = None
        best_deadline = math.inf
        opens_next = math.inf
        for w in tuple(self._workers):
            try:
                win = w.work_window()
            except Exception:  # one broken worker must not stop every voice's notes (and note-offs)
                log.exception("scheduler: a worker failed; it gets no more work")
                self.remove_worker(w)
                continue
            if win is None:
                continue
            opens, deadline = win
            if opens <= now:
                if deadline < best_deadline:
                    best, best_deadline = w, deadline
            else:
                opens_next = min(opens_next, opens)
        return best, opens_next, best_deadline

    def _ready(self, batcher: Batcher, worker: Worker) -> bool:
        try:
            return batcher.ready(worker)
        except Exception:  # the worker then steps alone
            log.exception("scheduler: asking whether work is prepared failed")
            return True

    def _prepare(self, batcher: Batcher, worker: Worker) -> None:
        try:
            batcher.prepare(worker, list(self._workers))
        except Exception:  # the workers still step one by one
            log.exception("scheduler: preparing work failed")

    def _call(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:  # a player handles its own errors; this keeps the other voices going
            log.exception("scheduler action failed")

    async def _sleep(self, target: float) -> None:
        loop = self._loop
        assert loop is not None
        fut: asyncio.Future[bool] = loop.create_future()
        self._wake_fut = fut
        self._sleep_until = target
        handle = None if math.isinf(target) else loop.call_at(target, _resolve, fut)
        try:
            by_timer = await fut
        finally:
            self._wake_fut = None
            self._sleep_until = math.inf
            if handle is not None:
                handle.cancel()
        self.stats.sleeps += 1
        if by_timer:
            late = loop.time() - target
            self._wake_late.append(late)
            self.stats.max_wake_late = max(self.stats.max_wake_late, late)


def realtime_priority(priority: int = 10) -> str:
    """Run the calling thread under SCHED_RR at ``priority`` (Linux, needs root or CAP_SYS_NICE; the
    systemd unit's comment says how to grant it).  On a busy machine this is what keeps the loop's
    wake-ups on time: ordinary processes no longer delay it.  Threads that share the GIL
    with the loop should run at a lower real-time priority (or in another process), or one holding
    the GIL while preempted stalls the loop (priority inversion).  Returns what was done."""
    if not 1 <= priority <= 99:
        raise ValueError(f"priority must be in range 1..99; got {priority!r}")
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(priority))
        return f"SCHED_RR {priority}"
    except (AttributeError, PermissionError, OSError) as exc:
        return f"normal (SCHED_RR refused: {exc})"


def freeze_gc() -> None:
    """Move everything allocated so far (model, imports) out of the collector's reach, so a full
    collection scans only what the performance allocates and stays short."""
    gc.collect()
    gc.freeze()


def _resolve(fut: asyncio.Future[bool]) -> None:
    if not fut.done():
        fut.set_result(True)
