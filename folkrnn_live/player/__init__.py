"""Tokens to MIDI as they are generated: ABC semantics, real-time timing, MIDI outputs, no hanging note.

A server creates one :class:`Scheduler` per event loop and one :class:`Player` per voice::

    async with Scheduler() as sched, PortOutput("Synth") as port:
        player = Player(sampler, [port], VoiceSettings(tempo=180, channel=1), scheduler=sched)
        async with player:
            player.start()
            player.set_tempo(200)        # from the next note
            await player.finished()
"""

from folkrnn_live.player.clock import ClockOut, ExternalClock, MidiClockInput
from folkrnn_live.player.events import (
    Bar,
    BarPlayed,
    Meter,
    MusicEvent,
    Note,
    NotePlayed,
    OutputFailed,
    PlayerEvent,
    PlayerState,
    PlayerStats,
    PlayMode,
    Problem,
    ProblemFound,
    StateChanged,
    TokenPulled,
    TuneEnd,
    TuneKey,
    TunePlayed,
)
from folkrnn_live.player.interpret import Interpreter, interpret, tuplet_ratio
from folkrnn_live.player.outputs import (
    MemoryOutput,
    MidiFileOutput,
    MidiOutput,
    OscOutput,
    PortOutput,
    hanging_notes,
)
from folkrnn_live.player.player import Player
from folkrnn_live.player.render import Rendering, render
from folkrnn_live.player.scheduler import Scheduler, SchedulerStats
from folkrnn_live.player.settings import Accent, VoiceSettings
from folkrnn_live.player.source import ListSource, TokenSource
from folkrnn_live.player.timeline import TimedNote, Timeline
from folkrnn_live.player.unfold import Unfolder

__all__ = [
    "Accent",
    "Bar",
    "BarPlayed",
    "ClockOut",
    "ExternalClock",
    "Interpreter",
    "ListSource",
    "MemoryOutput",
    "Meter",
    "MidiClockInput",
    "MidiFileOutput",
    "MidiOutput",
    "MusicEvent",
    "Note",
    "NotePlayed",
    "OscOutput",
    "OutputFailed",
    "PlayMode",
    "Player",
    "PlayerEvent",
    "PlayerState",
    "PlayerStats",
    "PortOutput",
    "Problem",
    "ProblemFound",
    "Rendering",
    "Scheduler",
    "SchedulerStats",
    "StateChanged",
    "TimedNote",
    "Timeline",
    "TokenPulled",
    "TokenSource",
    "TuneEnd",
    "TuneKey",
    "TunePlayed",
    "Unfolder",
    "VoiceSettings",
    "hanging_notes",
    "interpret",
    "render",
    "tuplet_ratio",
]
