"""The live player on the asyncio loop: absolute timing, lazy token pulls, transport, tempo."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable

import pytest

from folkrnn_live.player import (
    ListSource,
    MemoryOutput,
    NotePlayed,
    Player,
    PlayerEvent,
    Scheduler,
    TokenPulled,
    VoiceSettings,
    hanging_notes,
)
from folkrnn_live.tokens import V2

# 600 BPM in 4/4: one eighth (one unit) lasts 0.05 s; tests stay short.
FAST = VoiceSettings(tempo=600, gate=0.5)
EIGHTH = 0.05
# Tests check scheduled times exactly; never move the timeline even on a loaded machine.
NO_RESYNC = {"max_late": 10.0}


def note_ons(out: MemoryOutput) -> list:  # type: ignore[type-arg]
    return [s for s in out.sent if s.msg.type == "note_on"]


async def play(
    tokens: str,
    settings: VoiceSettings = FAST,
    listener: Callable[[Player, PlayerEvent], None] | None = None,
    **kw: object,
) -> tuple[Player, MemoryOutput]:
    out = MemoryOutput()
    async with out:
        player = Player(ListSource(tokens), [out], settings, **{**NO_RESYNC, **kw})  # type: ignore[arg-type]
        if listener is not None:
            player.listener = lambda ev: listener(player, ev)
        async with player:
            player.start()
            await asyncio.wait_for(player.finished(), 20)
    return player, out


@pytest.mark.asyncio
async def test_notes_are_played_on_an_exact_grid_never_early() -> None:
    player, out = await play("M:4/4 K:Cmaj c d e 2 f /2 g /2 [ c e ] a z b")
    ons = note_ons(out)
    assert [s.msg.note for s in ons] == [72, 74, 76, 77, 79, 72, 76, 81, 83]
    t0 = ons[0].when
    units = [0, 1, 2, 4, 4.5, 5, 5, 6, 8]  # onsets in eighths (the rest z takes 7..8)
    assert [s.when - t0 for s in ons] == pytest.approx([u * EIGHTH for u in units], abs=1e-9)
    assert all(s.at >= s.when for s in out.sent)  # the spin waits for the exact time
    offs = [s for s in out.sent if s.msg.type == "note_off" and s.msg.note == 76]
    assert offs[0].when - ons[2].when == pytest.approx(2 * EIGHTH * FAST.gate)
    assert hanging_notes(out.messages()) == set()
    assert player.state == "finished" and player.stats.underruns == 0


@pytest.mark.asyncio
async def test_velocity_and_program_and_channel_reach_the_output() -> None:
    _, out = await play("M:3/4 K:Cmaj c d e f", VoiceSettings(tempo=600, channel=5, program=40, velocity=70))
    assert out.sent[0].msg.type == "program_change" and out.sent[0].msg.program == 40
    ons = note_ons(out)
    assert {s.msg.channel for s in ons} == {5}
    assert ons[0].msg.velocity > ons[2].msg.velocity > ons[1].msg.velocity  # downbeat, beat, offbeat


class SteerableSource:
    """One token per note; the pitch can be changed at any time (like a sampler's control)."""

    vocab = V2

    def __init__(self, n: int) -> None:
        self.pitch = "c"
        self.pulled = 0
        self.n = n

    def next_token(self) -> int | None:
        if self.pulled >= self.n:
            return None
        self.pulled += 1
        return V2.index[self.pitch]


@pytest.mark.asyncio
async def test_pulls_only_what_fixes_the_next_note_so_a_control_reaches_the_next_undecided_note() -> None:
    src = SteerableSource(12)
    pulled_at_note: list[int] = []

    def listener(ev: PlayerEvent) -> None:
        if isinstance(ev, NotePlayed):
            pulled_at_note.append(src.pulled)
            if len(pulled_at_note) == 4:
                src.pitch = "g"  # a control change while note 3 sounds

    out = MemoryOutput()
    async with out:
        player = Player(src, [out], FAST, listener=listener, lookahead=0.02, **NO_RESYNC)  # type: ignore[arg-type]
        async with player:
            player.start()
            await asyncio.wait_for(player.finished(), 20)
    # Playing note k needs token k+1 (it fixes note k's length), and nothing more yet.
    assert pulled_at_note[:-1] == [k + 2 for k in range(len(pulled_at_note) - 1)]
    pitches = [s.msg.note for s in note_ons(out)]
    # Note 4 was decided before the change (its token fixed note 3); note 5 is the next undecided one.
    assert pitches == [72] * 5 + [79] * 7


class SlowSource(ListSource):
    """A token source that blocks the loop 2 ms per token, like a slow model step."""

    def next_token(self) -> int | None:
        time.sleep(0.002)
        return super().next_token()


@pytest.mark.asyncio
async def test_slow_source_does_not_move_notes() -> None:
    out = MemoryOutput()
    tokens = "M:4/4 K:Cmaj " + " ".join(["c /2 d /2 e f"] * 3)
    async with out:
        player = Player(SlowSource(tokens), [out], VoiceSettings(tempo=300), lookahead=0.3, **NO_RESYNC)
        async with player:
            player.start()
            await asyncio.wait_for(player.finished(), 20)
    ons = note_ons(out)
    t0, unit = ons[0].when, 60 / 300 / 2
    expected = [u * unit for i in range(3) for u in (3 * i, 3 * i + 0.5, 3 * i + 1, 3 * i + 2)]
    assert [s.when - t0 for s in ons] == pytest.approx(expected, abs=1e-9)
    assert player.stats.underruns == 0  # every note's tokens were pulled in a gap before it


@pytest.mark.asyncio
async def test_tempo_change_takes_effect_from_the_next_note() -> None:
    def listener(p: Player, ev: PlayerEvent) -> None:
        if isinstance(ev, NotePlayed) and ev.note.step == 3:  # d (steps 0 and 1 are M: and K:)
            p.set_tempo(300)

    _, out = await play("M:4/4 K:Cmaj c d e f g", listener=listener)
    ons = note_ons(out)
    gaps = [b.when - a.when for a, b in itertools.pairwise(ons)]
    # The sounding note keeps its length; the notes after it are twice as long.
    assert gaps == pytest.approx([EIGHTH, EIGHTH, 2 * EIGHTH, 2 * EIGHTH])
    assert hanging_notes(out.messages()) == set()


@pytest.mark.asyncio
async def test_pause_silences_and_resume_continues_with_the_next_note() -> None:
    loop = asyncio.get_running_loop()
    marks: dict[str, float] = {}

    def listener(p: Player, ev: PlayerEvent) -> None:
        if isinstance(ev, NotePlayed) and ev.note.step == 4:  # d
            def pause() -> None:
                marks["sounding"] = len(p.sounding)
                marks["t"] = loop.time()
                p.pause()
                marks["paused_at"] = len(p.outputs[0].sent)  # type: ignore[attr-defined]
                loop.call_later(0.1, p.resume)
            loop.call_soon(pause)

    _, out = await play("M:4/4 K:Cmaj c 4 d 4 e 4 f 4 g 4 a 4", listener=listener)
    assert marks["sounding"] == 1  # a note was sounding when paused
    before = [s.msg for s in out.sent[: int(marks["paused_at"])]]
    assert hanging_notes(before) == set()
    assert any(m.type == "control_change" and m.control == 123 for m in before)
    assert [s.msg.note for s in note_ons(out)] == [72, 74, 76, 77, 79, 81]  # nothing lost, nothing twice
    ons = note_ons(out)
    assert ons[2].when >= marks["t"] + 0.1  # e waited for the resume


@pytest.mark.asyncio
async def test_reset_forgets_the_tune_in_progress() -> None:
    loop = asyncio.get_running_loop()

    def listener(p: Player, ev: PlayerEvent) -> None:
        if isinstance(ev, NotePlayed) and ev.note.step == 4:  # the second B
            loop.call_soon(p.reset)

    # In C minor B is B flat; after the reset the key of the old tune no longer applies.
    _, out = await play("M:4/4 K:Cmin B 4 B 4 B 4 B 4 B 4 B 4 B 4", listener=listener)
    notes = [s.msg.note for s in note_ons(out)]
    assert notes[0] == 70 and notes[-1] == 71
    assert hanging_notes(out.messages()) == set()


@pytest.mark.asyncio
async def test_token_and_problem_feedback_and_stop_state() -> None:
    events: list[PlayerEvent] = []
    player, _ = await play("M:4/4 K:Cmaj c ] d", listener=lambda p, ev: events.append(ev))
    pulled = [ev.token for ev in events if isinstance(ev, TokenPulled)]
    assert pulled == ["M:4/4", "K:Cmaj", "c", "]", "d", None]
    assert [p.reason for p in player.problems] == ["] without [; skipped"]
    states = [ev.state for ev in events if type(ev).__name__ == "StateChanged"]
    assert states == ["playing", "finished"]


@pytest.mark.asyncio
async def test_two_voices_share_one_scheduler() -> None:
    a, b = MemoryOutput("a"), MemoryOutput("b")
    async with a, b, Scheduler() as sched:
        pa = Player(ListSource("M:4/4 K:Cmaj c d e f"), [a], FAST, scheduler=sched, **NO_RESYNC)  # type: ignore[arg-type]
        pb = Player(ListSource("M:6/8 K:Cmaj C D E F"), [b], FAST, scheduler=sched, **NO_RESYNC)  # type: ignore[arg-type]
        async with pa, pb:
            t0 = sched.now() + 0.1
            pa.start(t0)
            pb.start(t0)
            await asyncio.wait_for(asyncio.gather(pa.finished(), pb.finished()), 20)
    assert [s.when - t0 for s in note_ons(a)] == pytest.approx([0, 0.05, 0.1, 0.15])
    # 6/8 at 600 BPM: the dotted quarter is the beat, so an eighth lasts 0.1 / 3 s
    assert [s.when - t0 for s in note_ons(b)] == pytest.approx([0, 1 / 30, 2 / 30, 3 / 30])


@pytest.mark.asyncio
async def test_a_broken_worker_does_not_stop_the_other_voices(caplog: pytest.LogCaptureFixture) -> None:
    # The scheduler is shared by every voice: a worker that fails when asked for its window is
    # dropped, and the others' notes (and note-offs) go on.
    class Broken:
        def work_window(self) -> tuple[float, float] | None:
            raise RuntimeError("broken worker")

        def work(self) -> None:  # pragma: no cover - never reached
            pass

    a = MemoryOutput("a")
    async with a, Scheduler() as sched:
        sched.add_worker(Broken())
        pa = Player(ListSource("M:4/4 K:Cmaj c d e f"), [a], FAST, scheduler=sched, **NO_RESYNC)  # type: ignore[arg-type]
        async with pa:
            pa.start()
            assert await asyncio.wait_for(pa.finished(), 20) == "finished"
    assert len(note_ons(a)) == 4 and hanging_notes(a.messages()) == set()
    assert "broken worker" in caplog.text


def test_settings_are_validated_with_the_field_and_range() -> None:
    with pytest.raises(ValueError, match=r"channel must be in range 0\.\.15"):
        VoiceSettings(channel=16)
    with pytest.raises(ValueError, match=r"program must be in range 0\.\.127"):
        VoiceSettings(program=128)
    with pytest.raises(ValueError, match=r"tempo must be in range 10\.\.600 BPM"):
        VoiceSettings(tempo=0)
    with pytest.raises(ValueError, match="mode must be one of linear, unfolded"):
        VoiceSettings(mode="backwards")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"swing must be in range 1\.\.3"):
        VoiceSettings(swing=0.5)


@pytest.mark.asyncio
async def test_update_rejects_unknown_settings_and_keeps_the_old_ones() -> None:
    player = Player(ListSource("c"), [MemoryOutput()])
    with pytest.raises(ValueError, match="unknown setting 'tempi'; allowed: tempo, mode"):
        player.update(tempi=100)
    with pytest.raises(ValueError, match="velocity must be in range 1..127"):
        player.update(velocity=0)
    assert player.settings == VoiceSettings()


@pytest.mark.asyncio
async def test_unfolded_replay_comes_from_memory_while_the_generator_waits() -> None:
    src = ListSource("M:4/4 K:Cmaj |: c d e f :| g a")
    pulled_at: list[tuple[bool, int]] = []

    def listener(ev: PlayerEvent) -> None:
        if isinstance(ev, NotePlayed):
            pulled_at.append((ev.note.repeat, src.position))

    out = MemoryOutput()
    async with out:
        player = Player(src, [out], VoiceSettings(tempo=600, mode="unfolded"), listener=listener, **NO_RESYNC)  # type: ignore[arg-type]
        async with player:
            player.start()
            await asyncio.wait_for(player.finished(), 20)
    assert [s.msg.note for s in note_ons(out)] == [72, 74, 76, 77, 72, 74, 76, 77, 79, 81]
    replayed = [n for rep, n in pulled_at if rep]
    assert len(replayed) == 4
    # no token was pulled while the first three replayed notes played; only the end of the replay
    # needed the next live note (g), fixed by the token after it
    assert replayed[0] == replayed[1] == replayed[2]


class StallingSource(ListSource):
    """Fast, except one token that blocks the loop for 0.2 s (a hiccup far beyond any estimate)."""

    def __init__(self, tokens: str, stall_at: int) -> None:
        super().__init__(tokens)
        self.stall_at = stall_at

    def next_token(self) -> int | None:
        if self.position == self.stall_at:
            time.sleep(0.2)
        return super().next_token()


@pytest.mark.asyncio
async def test_a_long_stall_moves_the_timeline_instead_of_rushing_notes() -> None:
    out = MemoryOutput()
    async with out:
        src = StallingSource("M:4/4 K:Cmaj c d e f g a b c'", stall_at=6)
        player = Player(src, [out], FAST, max_late=0.1)
        async with player:
            player.start()
            await asyncio.wait_for(player.finished(), 20)
    ons = note_ons(out)
    assert [s.msg.note for s in ons] == [72, 74, 76, 77, 79, 81, 83, 84]  # all played, in order
    assert player.stats.resyncs >= 1
    gaps = [b.when - a.when for a, b in itertools.pairwise(ons)]
    assert max(gaps) > 0.2  # the stall shows as one long gap...
    assert sorted(gaps)[:-1] == pytest.approx([EIGHTH] * 6)  # ...and every other note keeps its length
    assert hanging_notes(out.messages()) == set()


@pytest.mark.asyncio
async def test_a_long_run_of_non_note_tokens_does_not_block_the_loop() -> None:
    # 60 bar lines between two notes, 2 ms each: other coroutines (OSC handlers) must still run.
    src = SlowSource("M:4/4 K:Cmaj c " + "| " * 60 + "d e")
    seen_positions: list[int] = []

    async def other_coroutine() -> None:
        while True:
            await asyncio.sleep(0.001)
            seen_positions.append(src.position)

    out = MemoryOutput()
    async with out:
        player = Player(src, [out], FAST, **NO_RESYNC)  # type: ignore[arg-type]
        ticker = asyncio.ensure_future(other_coroutine())
        async with player:
            player.start()
            await asyncio.wait_for(player.finished(), 20)
        ticker.cancel()
    assert [s.msg.note for s in note_ons(out)] == [72, 74, 76]
    # it ran again and again while the bar lines were being pulled (the scheduler yields the loop
    # every few milliseconds of back-to-back steps)
    assert len({p for p in seen_positions if 5 < p < 62}) >= 3
