"""Two Ableton Link peers on one machine, run by test_link.py inside a private network namespace.

Peer A is a plain aalink session (another musician's app); peer B is folkrnn-live's LinkSession with
a voice.  Prints one JSON object with what happened: tempo followed, bar alignment, leading.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import aalink

from folkrnn_live.player import ListSource, MemoryOutput, Player, VoiceSettings
from folkrnn_live.player.link import LinkSession

TUNE = "M:4/4 K:Cmaj | " + " | ".join(["c d e f g a b c'"] * 6) + " |"


async def until(pred, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def main() -> dict[str, object]:
    other = aalink.Link(90.0)
    other.quantum = 4
    other.enabled = True
    out: dict[str, object] = {}
    async with LinkSession(120.0, quantum=4) as link:
        out["peers"] = await until(lambda: link.peers == 1 and other.num_peers == 1)
        await asyncio.sleep(0.3)
        out["joined_tempo"] = [link.tempo, float(other.tempo)]  # one session: one tempo (90 or 120)
        heard: list[float] = []
        mem = MemoryOutput()
        async with mem:
            player = Player(ListSource(TUNE), [mem], VoiceSettings(tempo=link.tempo), max_late=10.0)
            link.subscribe(heard.append)
            link.subscribe(player.set_tempo)
            async with player:
                start = link.next_bar()
                now = time.monotonic()
                # Where that is in the other peer's session, by its own beat clock (0 or 4: its bar line).
                out["start_phase_in_other"] = (float(other.phase) + (start - now) * float(other.tempo) / 60) % 4
                out["beat_s_at_start"] = 60.0 / float(other.tempo)
                player.start(at=start)
                await until(lambda: len(mem.messages("note_on")) >= 3)
                other.tempo = 150.0  # the other musician speeds up
                await until(lambda: bool(heard) and heard[-1] == 150.0)
                await asyncio.sleep(1.0)
                ons = [s.when for s in mem.sent if s.msg.type == "note_on"]
                # Where in the other peer's bar our first note fell, from its own beat clock.
                now = time.monotonic()
                phase_now, tempo_now = float(other.phase), float(other.tempo)
                first = next(x for x in mem.sent if x.msg.type == "note_on")
                out["first_note_vs_start_ms"] = (ons[0] - start) * 1e3
                out["first_note_sent_late_ms"] = (first.at - first.when) * 1e3
                out["tempo_heard"] = heard[-1]
                late = [b - a for a, b in itertools.pairwise(ons)][-3:]
                out["last_gaps_s"] = late
                # Phase of our next bar line in the other peer's session (0 or 4 = on its bar line).
                nxt = link.next_bar()
                out["next_bar_phase_in_other"] = (phase_now + (nxt - now) * tempo_now / 60.0) % 4
                out["bar_s"] = 4 * 60.0 / tempo_now
                player.stop()
        # Leading: our tempo becomes everyone's.
        link.lead(100.0)
        out["led"] = await until(lambda: abs(float(other.tempo) - 100.0) < 1e-6)
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
