"""MIDI clock follow over a real JACK port: a voice started by a clock Start begins on the first tick
(the downbeat); the offsets of its later bar lines from the clock's are measured and printed.

The clock comes from a thread of this process sending 24 ppqn at 120 BPM into a virtual JACK port (a
drum machine, as far as folkrnn-live can tell); arrival times are stamped where the clock input hands
each message to the event loop.  JACK delivers in whole periods (256 frames = 5.3 ms here), so single
arrivals jitter by up to a period; the bounds below allow that and no more.
"""

from __future__ import annotations

import asyncio
import threading
import time

import mido
import pytest
from jack_server import PERIOD, RATE, JackServer, jack  # noqa: F401

from folkrnn_live.player import ExternalClock, ListSource, MemoryOutput, MidiClockInput, Player, VoiceSettings, ports
from folkrnn_live.player import clock as clock_mod

BPM = 120.0
TICK = 60.0 / BPM / 24
BARS = 6
TUNE = "M:4/4 K:Cmaj | " + " | ".join(["c d e f g a b c'"] * BARS) + " |"


class RecordingClock(ExternalClock):
    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[str, float]] = []

    def feed(self, msg: mido.Message, at: float | None = None) -> None:
        at = time.monotonic() if at is None else at
        self.arrivals.append((msg.type, at))
        super().feed(msg, at)


def drum_machine(port: object, stop: threading.Event, lead_in: int = 48) -> None:
    """Ticks (a running clock before Start, as most devices send), Start, then ticks on: bar 1's
    downbeat is the first tick after Start."""
    send = port.send  # type: ignore[attr-defined]
    t = time.monotonic() + 0.05
    for i in range(10_000):
        if stop.is_set():
            return
        if i == lead_in:
            send(mido.Message("start"))
        while (d := t - time.monotonic()) > 0:
            time.sleep(min(d, 0.002))
        send(mido.Message("clock"))
        t += TICK


@pytest.mark.asyncio
async def test_a_voice_started_by_clock_start_plays_its_first_note_on_the_downbeat(jack: JackServer) -> None:  # noqa: F811
    port = ports.open_output("virtual:out", client_name="Drum Machine")
    stop = threading.Event()
    clock = RecordingClock()
    mem = MemoryOutput()
    try:
        async with MidiClockInput(clock, "Drum Machine:out"), mem:
            player = Player(ListSource(TUNE), [mem], VoiceSettings(tempo=BPM), clock=clock, max_late=10.0)
            async with player:
                sender = threading.Thread(target=drum_machine, args=(port, stop), daemon=True)
                sender.start()
                await asyncio.wait_for(player.finished(), 60)
    finally:
        stop.set()
        ports.close_output(port)
    kinds = [k for k, _ in clock.arrivals]
    start = kinds.index("start")
    ticks = [t for k, t in clock.arrivals[start:] if k == "clock"]
    ons = [s.when for s in mem.sent if s.msg.type == "note_on"]
    assert len(ons) == 8 * BARS
    period = PERIOD / RATE
    offsets = [ons[8 * bar] - ticks[96 * bar] for bar in range(BARS) if 96 * bar < len(ticks)]
    print(f"\nbar line offsets, voice vs clock (ms): {[round(o * 1e3, 2) for o in offsets]}")
    # The first note on the downbeat: predicted from the tick spacing when Start arrives.
    assert abs(offsets[0]) < period + 0.002
    # Later bar lines follow the tempo estimated from the tick spacing but are not re-anchored to
    # the ticks (no phase lock yet): measured 1-39 ms off on a loaded machine (issue 13 §3), so
    # only printed here.


async def follow_ramp(lock: bool) -> list[float]:
    """A voice follows a clock that speeds up from 120 to 140 BPM over six bars (ticks fed with their
    exact times); seconds from each of the clock's bar lines to the voice's."""
    snap = clock_mod.MAX_SNAP
    clock_mod.MAX_SNAP = snap if lock else 0.0
    clock, mem = ExternalClock(), MemoryOutput()
    loop = asyncio.get_running_loop()
    ticks: list[float] = []

    async def drum() -> None:
        t = loop.time() + 0.05
        for i in range(48 + 96 * BARS + 96):
            if i == 48:
                clock.feed(mido.Message("start"), t - TICK / 2)
            await asyncio.sleep(max(0.0, t - loop.time()))
            clock.feed(mido.Message("clock"), t)
            if i >= 48:
                ticks.append(t)
            bpm = 120.0 + 20.0 * min(1.0, max(0, i - 48) / (96 * BARS))
            t += 60.0 / bpm / 24

    try:
        async with mem:
            player = Player(ListSource(TUNE), [mem], VoiceSettings(tempo=120.0), clock=clock, max_late=10.0)
            async with player:
                task = asyncio.create_task(drum(), name="drum machine")
                await asyncio.wait_for(player.finished(), 60)
                task.cancel()
    finally:
        clock_mod.MAX_SNAP = snap
    ons = [s.when for s in mem.sent if s.msg.type == "note_on"]
    return [ons[8 * bar] - ticks[96 * bar] for bar in range(BARS)]


@pytest.mark.asyncio
async def test_the_phase_lock_keeps_bar_lines_on_a_speeding_clock() -> None:
    free = await follow_ramp(lock=False)
    locked = await follow_ramp(lock=True)
    print(f"\nbar lines vs a clock speeding up (ms): free {[round(o * 1e3, 2) for o in free]}, "
          f"locked {[round(o * 1e3, 2) for o in locked]}")
    # Free-running on the tempo estimate (a quarter's average) the voice falls behind bar by bar.
    assert free[-1] > 0.01
    # Locked, every bar line after the first is on the clock's to within a millisecond.
    assert all(abs(o) < 0.001 for o in locked[1:])
