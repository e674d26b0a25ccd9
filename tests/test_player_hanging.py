"""Never a hanging note: every path that interrupts playing leaves no note sounding, in memory and in
the MIDI file written alongside."""

from __future__ import annotations

import asyncio
from pathlib import Path

import mido
import pytest

from folkrnn_live.player import (
    ListSource,
    MemoryOutput,
    MidiFileOutput,
    NotePlayed,
    OutputFailed,
    Player,
    PlayerEvent,
    VoiceSettings,
    hanging_notes,
)

# Long chords at a fast tempo: three notes sound for most of the time.
TUNE = "M:4/4 K:Cmaj " + " ".join(["[ C E G ] 4 [ D F A ] 4"] * 3)
SETTINGS = VoiceSettings(tempo=600, gate=1.0)
TRIGGER_NOTE = 3  # the path is taken while the third chord sounds


class FailingSource(ListSource):
    def __init__(self, tokens: str, fail_at: int) -> None:
        super().__init__(tokens)
        self.fail_at = fail_at

    def next_token(self) -> int | None:
        if self.position == self.fail_at:
            raise RuntimeError("model step failed")
        return super().next_token()


def file_messages(path: Path) -> list[mido.Message]:
    return [m for m in mido.MidiFile(path) if not m.is_meta]


async def run_path(path: str, tmp_path: Path) -> tuple[Player, MemoryOutput, Path, dict[str, object]]:
    loop = asyncio.get_running_loop()
    mem = MemoryOutput()
    midi = MidiFileOutput(tmp_path / "take.mid")
    seen: dict[str, object] = {}
    notes = 0
    source: ListSource = ListSource(TUNE)
    if path == "exception":
        source = FailingSource(TUNE, fail_at=2 + 6 * TRIGGER_NOTE + 2)  # inside the 4th chord
    player = Player(source, [mem, midi], SETTINGS, max_late=10.0)
    player_task: asyncio.Task[None] | None = None

    def act() -> None:
        seen["sounding"] = len(player.sounding)
        if path == "stop":
            player.stop()
        elif path == "pause":
            player.pause()
            loop.call_later(0.05, player.stop)
        elif path == "reset":
            player.reset()
            loop.call_later(0.05, player.stop)
        elif path == "tempo":
            player.set_tempo(200)  # from the next chord; the sounding one keeps its length
        elif path == "cancel":
            assert player_task is not None
            player_task.cancel()

    def listener(ev: PlayerEvent) -> None:
        nonlocal notes
        if isinstance(ev, NotePlayed):
            notes += 1
            if notes == TRIGGER_NOTE and path not in ("exception", "shutdown"):
                loop.call_soon(act)
            if notes == TRIGGER_NOTE and path == "shutdown":
                seen["sounding"] = len(player.sounding)
                seen["shutdown"].set()  # type: ignore[attr-defined]

    player.listener = listener
    seen["shutdown"] = asyncio.Event()

    async def perform() -> None:
        async with mem, midi, player:
            player.start()
            if path == "shutdown":  # leave the block while notes sound
                await seen["shutdown"].wait()  # type: ignore[attr-defined]
                return
            await player.finished()

    player_task = asyncio.ensure_future(perform())
    try:
        await asyncio.wait_for(asyncio.shield(player_task), 20)
    except asyncio.CancelledError:
        assert path == "cancel"
    return player, mem, midi.written[0], seen


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["stop", "pause", "reset", "tempo", "exception", "shutdown", "cancel"])
async def test_no_hanging_note(path: str, tmp_path: Path) -> None:
    player, mem, file, seen = await run_path(path, tmp_path)
    if path != "exception":
        assert seen["sounding"] == 3  # the path was taken while a chord sounded
    msgs = mem.messages()
    assert sum(m.type == "note_on" for m in msgs) >= 3 * TRIGGER_NOTE
    assert hanging_notes(msgs) == set()
    assert hanging_notes(file_messages(file)) == set()
    if path in ("stop", "pause", "reset", "exception", "shutdown", "cancel"):
        assert any(m.type == "control_change" and m.control == 123 for m in msgs)  # All Notes Off
    if path == "exception":
        assert player.state == "failed" and isinstance(player.error, RuntimeError)
    if path == "tempo":
        assert player.state == "finished"  # played to the end at the changed tempi
        assert sum(m.type == "note_on" for m in msgs) == 18


@pytest.mark.asyncio
async def test_a_failing_output_is_dropped_silenced_and_the_others_play_on(tmp_path: Path) -> None:
    bad = MemoryOutput("bad", fail_sends={7})  # fails once, while a chord sounds
    good = MemoryOutput("good")
    midi = MidiFileOutput(tmp_path / "good.mid")
    events: list[PlayerEvent] = []
    async with bad, good, midi:
        player = Player(ListSource(TUNE), [bad, good, midi], SETTINGS, listener=events.append, max_late=10.0)
        async with player:
            player.start()
            await asyncio.wait_for(player.finished(), 20)
    assert player.state == "finished"
    assert [o.name for o, _ in player.failed_outputs] == ["bad"]
    assert any(isinstance(ev, OutputFailed) and ev.output == "bad" for ev in events)
    assert sum(m.type == "note_on" for m in bad.messages()) < 18  # dropped after the failure
    assert hanging_notes(bad.messages()) == set()  # but silenced
    assert sum(m.type == "note_on" for m in good.messages()) == 18
    assert hanging_notes(good.messages()) == set()
    assert hanging_notes(file_messages(midi.written[0])) == set()


@pytest.mark.asyncio
async def test_closing_an_output_silences_what_it_has_sounding(tmp_path: Path) -> None:
    mem, midi = MemoryOutput(), MidiFileOutput(tmp_path / "x.mid")
    async with mem, midi:
        for out in (mem, midi):
            out.send(mido.Message("note_on", channel=2, note=60, velocity=90), 1.0, 0.5)
            out.send(mido.Message("note_on", channel=2, note=64, velocity=90), 1.0, 0.5)
    assert hanging_notes(mem.messages()) == set()
    assert [m.type for m in mem.messages()][-3:] == ["note_off", "note_off", "control_change"]
    assert hanging_notes(file_messages(midi.written[0])) == set()
