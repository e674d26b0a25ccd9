"""MIDI in: controller CCs and notes carry out registry commands (mappings: :mod:`.commands.midi_map`).

:class:`MidiIn` is an async context manager: it opens the configured input port (mido with
python-rtmidi; rtmidi calls back on its own thread, so messages are handed to the event loop with
``call_soon_threadsafe``), and runs the task ``folkrnn-live midi-in`` that maps each message to a
validated call and dispatches it like an OSC or MQTT message.  Anything that yields
``mido.Message`` objects can feed it instead of a port (``feed``, ``feed_threadsafe`` or an async
iterator ``source``): that is how the tests drive it without ALSA.

A burst of CC messages from one knob is collapsed to its last value per batch, so turning a knob
fast queues one command per step, not hundreds.  Learn mode (``midi_learn``) binds the next CC or
note-on to a command; ``midi_save`` writes every mapping to ``midi_in.map_file``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import mido

from folkrnn_live.player.clock import ExternalClock
from folkrnn_live.server.commands.handlers import MIDI_IN
from folkrnn_live.server.commands.midi_map import (
    MidiMapError,
    MidiMapping,
    parse_mapping,
    parse_mappings,
    to_toml,
)
from folkrnn_live.server.commands.registry import Call, CommandError
from folkrnn_live.server.runtime.midi_in_settings import SECTION, MidiInSettings
from folkrnn_live.server.transports import midi_in_commands  # noqa: F401  (registers the midi_* handlers)
from folkrnn_live.server.transports.common import Dispatcher, Host, Origin, TransportOrigin
from folkrnn_live.server.transports.feedback import Feedback, error_feedback
from folkrnn_live.server.transports.midi_in_port import MidiInError, open_input_port, read_map_file, write_map_file

if TYPE_CHECKING:
    from folkrnn_live.server.runtime.config import Config

log = logging.getLogger(__name__)
QUEUE_LIMIT = 10_000  # messages waiting for the loop, at most (a stuck loop must not grow memory)
CLOCK_TYPES = frozenset({"clock", "start", "stop", "continue"})


@dataclass
class MidiInStats:
    received: int = 0  # messages handled, collapsed ones included
    dispatched: int = 0
    collapsed: int = 0  # CC values superseded by a later one in the same batch
    unmapped: int = 0
    errors: int = 0
    dropped: int = 0  # queue full


class MidiIn:
    """MIDI controller input for the server (see the module doc).

    ``tables``: the ``[[midi_in.map]]`` tables, validated now against ``server.context`` (so build
    it after the model is loaded); :class:`MidiMapError` names the bad key.
    """

    def __init__(
        self,
        server: Dispatcher,
        settings: MidiInSettings | None = None,
        tables: Sequence[Mapping[str, Any]] | None = None,
        *,
        source: AsyncIterator[mido.Message] | None = None,
        clock: ExternalClock | None = None,
    ) -> None:
        self.server = server
        self.settings = settings or MidiInSettings()
        self.source = source
        self.clock = clock  # fed the port's clock and transport messages (midi_in.clock)
        self.stats = MidiInStats()
        self.errors: deque[str] = deque(maxlen=50)
        self.mappings: list[MidiMapping] = []
        self.port: Any = None
        self.port_error: str | None = None
        self._index: dict[tuple[str, int, int | None], list[MidiMapping]] = {}
        self._held: set[int] = set()  # id() of CC buttons now pressed
        self._learning: tuple[dict[str, Any], Origin | None] | None = None
        self._swallow_off: tuple[int, int] | None = None  # the learned pad's own note-off
        self._queue: asyncio.Queue[mido.Message] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.load(tables)

    # --- mappings --------------------------------------------------------------------------------
    def load(self, tables: Sequence[Mapping[str, Any]] | None) -> None:
        """(Re)load the config's tables and then the map file's (whose controls win)."""
        reg, ctx = self.server.registry, self.server.context
        maps = parse_mappings(list(tables) if tables is not None else None, reg, ctx, f"{SECTION}.map")
        saved = read_map_file(self.settings.map_file, reg, ctx)
        keys = {m.key for m in saved}
        self._set([m for m in maps if m.key not in keys] + saved)

    def _set(self, maps: list[MidiMapping]) -> None:
        self.mappings = maps
        self._index = {}
        for m in maps:
            self._index.setdefault(m.key, []).append(m)
        self._held &= {id(m) for m in maps}

    def lookup(self, kind: str, number: int, channel: int) -> list[MidiMapping]:
        return self._index.get((kind, number, channel), []) + self._index.get((kind, number, None), [])

    def table_text(self) -> str:
        return to_toml(self.mappings, f"{SECTION}.map")

    def save(self) -> Path:
        """Write every mapping to ``midi_in.map_file`` (the path comes from the config only)."""
        if not self.settings.map_file:
            raise MidiMapError(f"{SECTION}.map_file is not set; allowed: a file path in the config to save to")
        path = write_map_file(self.settings.map_file, self.mappings)
        log.info("MIDI mappings saved to %s", path)
        return path

    def forget(self, kind: str, number: int, channel: int | None = None) -> int:
        """Remove the mappings of one control (every channel when ``channel`` is None)."""
        keep = [m for m in self.mappings
                if not (m.kind == kind and m.number == number and (channel is None or m.channel == channel))]
        n = len(self.mappings) - len(keep)
        self._set(keep)
        return n

    # --- learn mode ------------------------------------------------------------------------------
    def learn(self, command: str, voice: str | None = None, args: Any = None, *, origin: Origin | None = None,
              **extra: Any) -> None:
        """Bind the next CC or note-on to ``command`` (``extra``: more table keys, e.g. min, max,
        curve, release).  Raises :class:`MidiMapError` at once when the command cannot be mapped."""
        table: dict[str, Any] = {"command": command, **extra}
        if voice:
            table["voice"] = voice
        if args not in (None, "", [], {}):
            table["args"] = args
        reg, ctx = self.server.registry, self.server.context
        try:
            parse_mapping({**table, "cc": 0}, reg, ctx, "midi_learn")
        except MidiMapError as cc_error:
            try:
                parse_mapping({**table, "note": 0}, reg, ctx, "midi_learn")
            except MidiMapError:
                raise cc_error from None
        self._learning = (table, origin)
        log.info("MIDI learn: move a control or hit a pad for %s", command)

    def cancel_learn(self) -> bool:
        was = self._learning is not None
        self._learning = None
        return was

    @property
    def learning(self) -> bool:
        return self._learning is not None

    def _learn_from(self, kind: str, msg: mido.Message) -> None:
        assert self._learning is not None
        table, origin = self._learning
        self._learning = None
        number = msg.control if kind == "cc" else msg.note
        full = {kind: number, "channel": msg.channel, **table}
        try:
            m = parse_mapping(full, self.server.registry, self.server.context, "midi_learn")
        except MidiMapError as exc:
            self.note_error(str(exc))
            if origin is not None:
                origin.reply(error_feedback(CommandError("/folkrnn/midi_learn", str(exc))))
            return
        self._set([x for x in self.mappings if x.key != m.key] + [m])
        log.info("MIDI learned: %s", m.describe())
        if origin is not None:
            origin.reply(Feedback("replies", "midi_learned", None, (m.describe(),), {"mapping": dict(m.table)}))

    # --- lifecycle -------------------------------------------------------------------------------
    async def __aenter__(self) -> MidiIn:
        self._loop = asyncio.get_running_loop()
        s = self.settings
        if s.enabled:
            if s.required:  # fail the start-up: the performer said this controller is essential
                self.port = open_input_port(s.port, virtual=s.virtual, callback=self.feed_threadsafe)
                log.info("MIDI in: listening on %s (%d mappings)", self.port.name, len(self.mappings))
            else:
                self._reopen_port()
        self._tasks.append(self._loop.create_task(self.run(), name="folkrnn-live midi-in"))
        if self.source is not None:
            self._tasks.append(self._loop.create_task(self._pump(self.source), name="folkrnn-live midi-in source"))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        port, self.port = self.port, None
        if port is not None:
            port.close()  # joins rtmidi's thread first, so no callback comes after this
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def reconfigure(self, config: Config) -> None:
        """SIGHUP: new mappings and map file at once; a new port setting reopens the port.  A bad
        table raises (the server logs it) and leaves the running mappings as they were."""
        values = config.values
        new = MidiInSettings.from_config(values)
        old = self.settings
        self.settings = new
        try:
            self.load(values.get(f"{SECTION}.map") or [])
        except MidiMapError:
            self.settings = old
            raise
        if (new.enabled, new.port, new.virtual) != (old.enabled, old.port, old.virtual):
            self._reopen_port()

    def _reopen_port(self) -> None:
        port, self.port = self.port, None
        if port is not None:
            port.close()
        self.port_error = None
        s = self.settings
        if not s.enabled:
            log.info("MIDI in: port closed (midi_in.enabled = false)")
            return
        try:
            self.port = open_input_port(s.port, virtual=s.virtual, callback=self.feed_threadsafe)
            log.info("MIDI in: listening on %s (%d mappings)", self.port.name, len(self.mappings))
        except MidiInError as exc:  # at run time never fatal: the music goes on without the controller
            self.port_error = str(exc)
            log.error("MIDI in is off: %s", exc)

    # --- input -----------------------------------------------------------------------------------
    def feed(self, msg: mido.Message, at: float | None = None) -> None:
        """Take a message on the event loop: clock and transport messages go to the clock at once
        (received at ``at``, the loop's clock; default now), the rest are queued for the mappings."""
        if self.clock is not None and msg.type in CLOCK_TYPES:
            self.clock.feed(msg, at)
        else:
            self._put(msg)

    def feed_threadsafe(self, msg: mido.Message) -> None:
        """Take a message from another thread (rtmidi's callback)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        # Stamped on arrival: the tempo comes from the spacing of the ticks, not of the loop's turns.
        at = time.monotonic()
        with contextlib.suppress(RuntimeError):  # the loop closed between the check and the call
            loop.call_soon_threadsafe(self.feed, msg, at)

    def _put(self, msg: mido.Message) -> None:
        if self._queue.qsize() >= QUEUE_LIMIT:
            self.stats.dropped += 1
            return
        self._queue.put_nowait(msg)

    async def _pump(self, source: AsyncIterator[mido.Message]) -> None:
        async for msg in source:
            self.feed(msg)

    async def run(self) -> None:
        """Handle queued messages in batches until cancelled; nothing a controller sends ends it."""
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                self.handle_batch(batch)
            except Exception:  # a mapping bug must not end MIDI input for the rest of the show
                log.exception("MIDI in: cannot handle %s", batch)

    async def idle(self) -> None:
        """Wait until every queued message was handled (tests)."""
        while not self._queue.empty():
            await asyncio.sleep(0)
        await asyncio.sleep(0)

    def handle_batch(self, batch: Sequence[mido.Message]) -> None:
        # Later values of a knob supersede earlier ones; buttons keep every edge.
        last: dict[tuple[int, int], int] = {}
        for i, msg in enumerate(batch):
            if msg.type == "control_change":
                last[(msg.channel, msg.control)] = i
        for i, msg in enumerate(batch):
            if msg.type == "control_change" and last[(msg.channel, msg.control)] != i and not self._learning \
                    and not any(m.is_button for m in self.lookup("cc", msg.control, msg.channel)):
                self.stats.received += 1
                self.stats.collapsed += 1
                continue
            self.handle(msg)

    def handle(self, msg: mido.Message) -> None:
        """Map one message to its commands and dispatch them."""
        self.stats.received += 1
        t = msg.type
        if t == "note_on" and msg.velocity == 0:  # running-status note-off
            t = "note_off"
        if t == "control_change":
            kind, number = "cc", msg.control
        elif t in ("note_on", "note_off"):
            kind, number = "note", msg.note
        else:
            return  # clock, sysex, aftertouch...: not mapped
        if self._learning is not None and t != "note_off":
            self._learn_from(kind, msg)
            if kind == "note":
                self._swallow_off = (msg.channel, msg.note)
            return
        if t == "note_off" and self._swallow_off == (msg.channel, msg.note):
            self._swallow_off = None  # the pad hit to learn was not played: do not release it
            return
        maps = self.lookup(kind, number, msg.channel)
        if not maps:
            self.stats.unmapped += 1
            return
        for m in maps:
            if kind == "cc":
                if m.is_button:
                    pressed = msg.value >= 64
                    if pressed == (id(m) in self._held):
                        continue
                    (self._held.add if pressed else self._held.discard)(id(m))
                    self._send(m, pressed, None)
                else:
                    self._send(m, True, msg.value)
            else:
                self._send(m, t == "note_on", msg.velocity if m.arg is not None else None)

    def _send(self, m: MidiMapping, press: bool, raw: int | None) -> None:
        control = f"{m.kind}{m.number}/ch{'*' if m.channel is None else m.channel}"
        origin = TransportOrigin(f"midi:{control}", partial(self._reply, control))
        reg, ctx = self.server.registry, self.server.context
        try:
            call = m.press(raw, reg, ctx) if press else m.release_call(reg, ctx)
            if call is None:
                return
            self.server.dispatch(call, origin)
            self.stats.dispatched += 1
        except (CommandError, KeyError) as exc:  # e.g. the voice was removed by a reload
            origin.reply(error_feedback(exc if isinstance(exc, CommandError) else CommandError(m.describe(), str(exc))))

    def _reply(self, control: str, fb: Feedback) -> None:
        """Replies to commands from a controller have nobody to go to: errors are logged and kept."""
        if fb.name == "error":
            self.note_error(f"{control}: {fb.data.get('message', fb.values)}")
        else:
            log.debug("MIDI %s: reply %s %s", control, fb.name, fb.values)

    def note_error(self, text: str) -> None:
        self.stats.errors += 1
        self.errors.append(text)
        log.warning("MIDI in: %s", text)

    # --- the midi_* commands (global; Server._apply_global calls these with the origin) -------------
    def apply_command(self, call: Call, origin: Origin) -> None:
        """Carry out a ``midi_*`` command (group ``midi``); raises CommandError (the server answers it)."""
        addr = call.address
        try:
            MIDI_IN.run(self, call, origin)
        except MidiMapError as exc:
            raise CommandError(addr, str(exc)) from exc


def open_transport(server: Host) -> MidiIn | None:
    """The server's hook (listed in ``runtime.service.TRANSPORTS``): a MidiIn from the ``[midi_in]`` section
    and its ``[[midi_in.map]]`` tables, or None when ``midi_in.enabled`` is false.  Bad tables
    raise :class:`MidiMapError` (start-up fails with the key named)."""
    values = server.config.values
    settings = MidiInSettings.from_config(values)
    if not settings.enabled:
        return None
    return MidiIn(server, settings, values.get(f"{SECTION}.map") or [], clock=server.clock)
