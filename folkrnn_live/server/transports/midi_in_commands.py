"""The ``midi_*`` commands (learn mode and the mapping table), carried out on the server's
:class:`~folkrnn_live.server.transports.midi_in.MidiIn`; the server calls them through
:data:`~folkrnn_live.server.commands.handlers.MIDI_IN` with the command's origin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from folkrnn_live.server.commands.handlers import MIDI_IN
from folkrnn_live.server.commands.midi_map import MidiMapError
from folkrnn_live.server.transports.common import Origin
from folkrnn_live.server.transports.feedback import Feedback

if TYPE_CHECKING:
    from folkrnn_live.server.transports.midi_in import MidiIn


@MIDI_IN.handles("midi_learn")
def midi_learn(m: MidiIn, origin: Origin, command: str, voice: str, args: str) -> None:
    m.learn(command, voice or None, args or None, origin=origin)
    origin.reply(Feedback("replies", "midi_learning", None, (command,), {"command": command, "voice": voice}))


@MIDI_IN.handles("midi_learn_cancel")
def midi_learn_cancel(m: MidiIn, origin: Origin) -> None:
    m.cancel_learn()


@MIDI_IN.handles("midi_forget")
def midi_forget(m: MidiIn, origin: Origin, kind: str, number: int, channel: int) -> None:
    if not m.forget(kind, number, None if channel < 0 else channel):
        raise MidiMapError(f"no mapping for {kind} {number}" + ("" if channel < 0 else f" on channel {channel}")
                           + "; allowed: a mapped control (see midi_map)")


@MIDI_IN.handles("midi_map")
def midi_map(m: MidiIn, origin: Origin) -> None:
    text = m.table_text()
    origin.reply(Feedback("replies", "midi_map", None, (text,),
                          {"map": [dict(x.table) for x in m.mappings], "toml": text}))


@MIDI_IN.handles("midi_save")
def midi_save(m: MidiIn, origin: Origin) -> None:
    path = m.save()
    origin.reply(Feedback("replies", "midi_saved", None, (str(path),), {"path": str(path)}))
