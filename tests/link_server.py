"""The server in an Ableton Link session (run by test_link.py inside a private network namespace):
another peer at 90 BPM; a voice starts on the session's bar line and follows its tempo changes."""

from __future__ import annotations

import asyncio
import json
import time

import aalink
from _models import tiny_model
from live_server import serving, until

from folkrnn_live.server.runtime import config as config_mod


async def main() -> dict[str, object]:
    other = aalink.Link(90.0)
    other.quantum = 4
    other.enabled = True
    await asyncio.sleep(0.5)
    cfg = config_mod.parse({"midi": {"output": "none"}, "osc": {"enabled": False}, "recording": {"dir": ""},
                            "web": {"enabled": False}, "link": {"enabled": True, "tempo": 120.0},
                            "voice": [{"name": "1", "tempo": 200.0, "autostart": False}]})
    out: dict[str, object] = {}
    async with serving(cfg, model=tiny_model()) as srv:
        await until(lambda: srv.link.peers == 1, "the other peer")
        await asyncio.sleep(0.3)
        lv = srv.voices["1"]
        lv.cmd_start()
        first = lv.player._next_onset
        now = time.monotonic()
        out["start_phase_in_other"] = (float(other.phase) + (first - now) * float(other.tempo) / 60) % 4
        out["beat_s"] = 60.0 / float(other.tempo)
        out["tempo_at_start"] = [lv.player.settings.tempo, float(other.tempo)]
        other.tempo = 150.0
        await until(lambda: lv.player.settings.tempo == 150.0, "the voice at the session's new tempo")
        out["followed"] = lv.player.settings.tempo
        await until(lambda: lv.player.stats.notes >= 3, "notes")
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
