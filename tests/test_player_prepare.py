"""A voice rehearses each note shortly before it (folkrnn_live.player.prepare): that changes nothing."""

from __future__ import annotations

import asyncio

import pytest

from folkrnn_live.player import ListSource, MemoryOutput, Player, Scheduler, VoiceSettings
from folkrnn_live.player.prepare import LEAD

FAST = VoiceSettings(tempo=600, gate=0.5)  # one eighth lasts 0.05 s
TUNE = "M:4/4 K:Cmaj c d e f g a"


async def velocities(change_before_third_note: float) -> list[int]:
    """Note-on velocities when the velocity is set to 30 this long before the third note."""
    out = MemoryOutput()
    async with out, Scheduler() as sched:
        player = Player(ListSource(TUNE), [out], FAST, scheduler=sched, max_late=10.0)
        async with player:
            t0 = sched.now() + 0.1
            player.start(t0)

            def change() -> None:
                player.update(velocity=30)

            sched.at(t0 + 2 * 0.05 - change_before_third_note, change)
            await asyncio.wait_for(player.finished(), 20)
    return [s.msg.velocity for s in out.sent if s.msg.type == "note_on"]


@pytest.mark.asyncio
async def test_a_control_between_the_rehearsal_and_the_note_still_reaches_the_note() -> None:
    early = await velocities(0.02)  # well before the rehearsal
    late = await velocities(LEAD / 3)  # after the rehearsal, just before the note
    assert early == late
    assert len(late) == 6 and late[2] < late[1]  # the third note on is the first with the new velocity
