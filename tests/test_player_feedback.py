"""A voice's feedback (PlayerEvents to its listener) never holds up the notes due at the same instant.

In the server the listener publishes every note to OSC, MQTT and the web page.  Voices on one beat
grid have their notes at the same instants; a note's feedback is delivered after the notes due with
it are sent, in the order the events happened.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest

from folkrnn_live.player import (
    BarPlayed,
    ListSource,
    MemoryOutput,
    NotePlayed,
    Player,
    PlayerEvent,
    Scheduler,
    StateChanged,
    TokenPulled,
    VoiceSettings,
    hanging_notes,
)

FAST = VoiceSettings(tempo=600, gate=0.5)  # one eighth lasts 0.05 s
NO_RESYNC = {"max_late": 10.0}
TUNE = "M:4/4 K:Cmaj c d e f | g a b c' |"
SLOW_LISTENER = 0.005  # what a listener costs per note: far more than any real one


@pytest.mark.asyncio
async def test_a_slow_listener_does_not_delay_another_voices_coincident_note() -> None:
    a, b = MemoryOutput("a"), MemoryOutput("b")
    heard: list[tuple[str, PlayerEvent]] = []

    def slow(name: str) -> object:
        def listener(ev: PlayerEvent) -> None:
            heard.append((name, ev))
            if isinstance(ev, NotePlayed):
                end = time.perf_counter() + SLOW_LISTENER
                while time.perf_counter() < end:  # busy: publishing feedback costs CPU
                    pass

        return listener

    async with a, b, Scheduler() as sched:
        pa = Player(ListSource(TUNE), [a], FAST, scheduler=sched, listener=slow("a"), **NO_RESYNC)  # type: ignore[arg-type]
        pb = Player(ListSource(TUNE), [b], FAST, scheduler=sched, listener=slow("b"), **NO_RESYNC)  # type: ignore[arg-type]
        async with pa, pb:
            t0 = sched.now() + 0.1
            pa.start(t0)
            pb.start(t0)
            await asyncio.wait_for(asyncio.gather(pa.finished(), pb.finished()), 20)
    ons_a = [s for s in a.sent if s.msg.type == "note_on"]
    ons_b = [s for s in b.sent if s.msg.type == "note_on"]
    assert [s.when for s in ons_a] == [s.when for s in ons_b]  # one grid: every note coincides
    assert len(ons_b) == 8
    # Whichever voice went first at an instant, the other's note was sent right after it, not
    # after the first one's feedback (5 ms); the median keeps one preemption out of it.
    gaps = [abs(y.at - x.at) for x, y in zip(ons_a, ons_b, strict=True)]
    assert statistics.median(gaps) < SLOW_LISTENER / 2, gaps
    # Every note was still reported, each voice's events in the order they happened.
    for name, out in (("a", a), ("b", b)):
        events = [ev for n, ev in heard if n == name]
        notes = [ev for ev in events if isinstance(ev, NotePlayed)]
        assert [ev.onset for ev in notes] == [s.when for s in out.sent if s.msg.type == "note_on"]
        states = [ev.state for ev in events if isinstance(ev, StateChanged)]
        assert states == ["playing", "finished"]
        assert isinstance(events[0], StateChanged) and isinstance(events[-1], StateChanged)
        bars = [ev.index for ev in events if isinstance(ev, BarPlayed)]
        assert bars == sorted(bars) and len(bars) == 2
        assert hanging_notes(out.messages()) == set()


@pytest.mark.asyncio
async def test_feedback_keeps_the_order_of_events_and_reaches_the_listener_before_the_next_pull() -> None:
    src = ListSource("M:4/4 K:Cmaj c d e f")
    log: list[str] = []

    def listener(ev: PlayerEvent) -> None:
        if isinstance(ev, TokenPulled):
            log.append(f"pulled {ev.token}")
        elif isinstance(ev, NotePlayed):
            log.append(f"note {ev.note.pitches[0]} after {src.position} tokens")
        elif isinstance(ev, StateChanged):
            log.append(ev.state)

    out = MemoryOutput()
    async with out:
        player = Player(src, [out], FAST, listener=listener, **NO_RESYNC)  # type: ignore[arg-type]
        async with player:
            player.start()
            await asyncio.wait_for(player.finished(), 20)
            player.stop()
            assert log[-1] == "finished"  # a control's event is delivered before it returns
    # Playing a note needs the token after it (it fixes the note's length): the listener hears of
    # each note before the voice pulls on, as when it was called from inside the onset.
    assert log == [
        "playing", "pulled M:4/4", "pulled K:Cmaj", "pulled c", "pulled d",
        "note 72 after 4 tokens", "pulled e", "note 74 after 5 tokens", "pulled f",
        "note 76 after 6 tokens", "pulled None", "note 77 after 6 tokens", "finished",
    ]
