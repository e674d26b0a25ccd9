"""Real MIDI ports: a voice plays into a JACK MIDI port and another JACK client receives every message.

JACK runs with its dummy driver (no sound card); the receiving end is a plain rtmidi input in this
process (polled from a thread, see jack_server.Receiver), so what is checked is what arrived at a port,
not what we handed to our own send call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import mido
import pytest
from jack_server import JackServer, Receiver, jack  # noqa: F401

from folkrnn_live.player import ListSource, MemoryOutput, Player, PortOutput, VoiceSettings, ports

TUNE = "M:4/4 K:Cmaj | G A B c | d 2 B G | A /2 B /2 c A F | G 4 | c B A G | [ C E G ] 4 |"


@pytest.fixture
def receiver(jack: JackServer) -> Iterator[Receiver]:  # noqa: F811
    r = Receiver("synth-under-test")
    yield r
    r.close()


async def wait_for(pred: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("the receiving port did not get everything within 5 s")
        await asyncio.sleep(0.01)


def notes_only(msgs: list[mido.Message]) -> list[tuple[str, int, int]]:
    """(on/off, channel, note); a note-on of velocity 0 is a note-off."""
    out = []
    for m in msgs:
        if m.type in ("note_on", "note_off"):
            out.append(("on" if m.type == "note_on" and m.velocity > 0 else "off", m.channel, m.note))
    return out


def test_ports_are_listed_with_the_jack_api(receiver: Receiver) -> None:
    assert ports.select_api().api == "jack"
    outs = ports.output_names()
    assert any("synth-under-test" in n for n in outs), outs
    # By a part of its name, in any case: the way a user names a port in the config.
    assert "synth-under-test" in ports.resolve("SYNTH-under", outs)
    with pytest.raises(OSError, match="no MIDI output port matches 'nothing-like-it'"):
        ports.resolve("nothing-like-it", outs)


@pytest.mark.asyncio
async def test_a_voice_plays_every_note_into_a_jack_port_in_order(receiver: Receiver) -> None:
    settings = VoiceSettings(tempo=480, channel=5, program=40)
    mem = MemoryOutput()
    async with PortOutput("synth-under") as port, mem:
        player = Player(ListSource(TUNE), [port, mem], settings, max_late=10.0)
        async with player:
            player.start()
            await asyncio.wait_for(player.finished(), 30)
    sent = [s.msg for s in mem.sent]
    await wait_for(lambda: len(receiver.messages()) >= len(sent))
    got = receiver.messages()
    # The program change comes first, on the voice's channel.
    assert got[0].type == "program_change" and (got[0].channel, got[0].program) == (5, 40)
    # Every note-on and note-off arrives, in the order played, all on channel 5.
    assert notes_only(got) == notes_only(sent)
    assert {ch for _, ch, _ in notes_only(got)} == {5}
    ons = [n for kind, _, n in notes_only(got) if kind == "on"]
    assert ons == [67, 69, 71, 72, 74, 71, 67, 69, 71, 72, 69, 65, 67, 72, 71, 69, 67, 60, 64, 67]
    # Every note-on is answered by its note-off: nothing hangs at the receiver.
    sounding: set[int] = set()
    for kind, _, note in notes_only(got):
        if kind == "on":
            assert note not in sounding
            sounding.add(note)
        else:
            sounding.discard(note)
    assert sounding == set()


@pytest.mark.asyncio
async def test_midi_clock_out_arrives_at_24_ppqn(receiver: Receiver) -> None:
    settings = VoiceSettings(tempo=240, channel=0, send_clock=True)
    mem = MemoryOutput()
    async with PortOutput("synth-under") as port, mem:
        player = Player(ListSource("M:4/4 K:Cmaj C D E F | G A B c |"), [port, mem], settings, max_late=10.0)
        async with player:
            player.start()
            await asyncio.wait_for(player.finished(), 30)
    await wait_for(lambda: any(m.type == "stop" for m in receiver.messages()))
    got = receiver.timed()
    kinds = [g.msg.type for g in got if g.msg.type in ("start", "stop", "clock")]
    assert kinds[0] == "start" and kinds[-1] == "stop"
    ticks = [g.at for g in got if g.msg.type == "clock"]
    # Every tick sent arrives: eight eighths at 240 quarters a minute are 4 quarters of 24 ticks
    # each, 1/96 s apart (the clock runs on to the voice's finish, after the tune's end gap).
    assert len(ticks) == len(mem.messages("clock"))
    assert len(ticks) >= 4 * 24 - 1
    # JACK delivers in whole periods (5.3 ms here) and a loaded machine delays some cycles, so
    # single gaps jitter (bench_midi_ports.py measures that); their mean over the run does not.
    mean_gap = (ticks[-1] - ticks[0]) / (len(ticks) - 1)
    assert mean_gap == pytest.approx(60 / 240 / 24, rel=0.03)
    # The first note sounds with the first tick (the start of the bar), within a JACK period.
    ons = [g.at for g in got if g.msg.type == "note_on" and g.msg.velocity > 0]
    assert ons[0] == pytest.approx(ticks[0], abs=256 / 48_000 + 0.001)
