"""Which code carries out each command, registered explicitly beside that code.

Every command of :data:`~folkrnn_live.server.commands.catalog.COMMANDS` belongs to exactly one
table below, chosen by its scope, ``applies`` and group; the class that carries it out marks the
method with the table's decorator::

    class LiveVoice:
        @VOICE_LOOP.handles("tempo")
        def cmd_tempo(self, bpm: float) -> None: ...

The decorator checks at import time that the command exists and belongs to that table, and
``tests/test_server_registry.py`` checks that no command of a table lacks a handler, so a command
added to the catalog without one (or a handler for a command that was renamed) fails loudly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from folkrnn_live.server.commands.catalog import COMMANDS
from folkrnn_live.server.commands.midi_map import MIDI_GROUP
from folkrnn_live.server.commands.registry import Call, Command, Registry

F = TypeVar("F", bound=Callable[..., Any])


class HandlerTable:
    """Command name -> the function that carries it out, for the commands ``accepts`` selects."""

    def __init__(self, what: str, accepts: Callable[[Command], bool], registry: Registry = COMMANDS) -> None:
        self.what = what
        self.accepts = accepts
        self.registry = registry
        self._handlers: dict[str, Callable[..., Any]] = {}

    def handles(self, name: str) -> Callable[[F], F]:
        """Decorator: the function carries out command ``name`` (called with the call's arguments
        by keyword, after any leading ``extra`` arguments given to :meth:`run`)."""
        cmd = self.registry.get(name)
        if not self.accepts(cmd):
            raise ValueError(f"command {name!r} is not one of the {self.what}")
        if name in self._handlers:
            raise ValueError(f"command {name!r} already has a handler among the {self.what}")

        def register(fn: F) -> F:
            self._handlers[name] = fn
            return fn

        return register

    def run(self, owner: Any, call: Call, *extra: Any) -> Any:
        """Carry out ``call`` with the handler registered for it, as a method of ``owner``."""
        try:
            fn = self._handlers[call.name]
        except KeyError:
            raise KeyError(f"no handler for command {call.name!r} among the {self.what}") from None
        return fn(owner, *extra, **call.args)

    def names(self) -> list[str]:
        """The commands this table is for, in catalog order."""
        return [c.name for c in self.registry if self.accepts(c)]

    def missing(self) -> list[str]:
        """Commands of this table that no function handles (a test keeps this empty)."""
        return [n for n in self.names() if n not in self._handlers]


def _is_midi(c: Command) -> bool:
    return c.group == MIDI_GROUP[0]


# Step commands change what the network generates: applied by the voice's token source right
# before a step.  Loop commands (player, transport, recording) run on the event loop.
VOICE_STEP = HandlerTable("voice step commands (runtime/token_source.py)",
                          lambda c: c.scope == "voice" and c.applies == "step")
VOICE_LOOP = HandlerTable("voice loop commands (runtime/voices.py)",
                          lambda c: c.scope == "voice" and c.applies == "loop")
SERVER = HandlerTable("server-wide commands (runtime/service.py)", lambda c: c.scope == "global" and not _is_midi(c))
MIDI_IN = HandlerTable("MIDI-in commands (transports/midi_in.py)", _is_midi)
TABLES = (VOICE_STEP, VOICE_LOOP, SERVER, MIDI_IN)
