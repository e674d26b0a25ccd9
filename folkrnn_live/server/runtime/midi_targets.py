"""MIDI outputs of the voices, from the ``[midi]`` config section.

``auto`` plays to a MIDI port when one can be opened and otherwise writes MIDI files, and says
where.  One port is shared by every voice (each voice has its own channel); files are per voice
(a per-tune file would otherwise be split by another voice's tune ends).  Every output is entered
into the server's exit stack, so closing the server silences and closes them all.
"""

from __future__ import annotations

import datetime as _dt
import logging
from contextlib import AsyncExitStack
from pathlib import Path

from folkrnn_live.player.outputs import MidiFileOutput, MidiOutput, OscOutput, PortOutput
from folkrnn_live.server.runtime.config import Config

log = logging.getLogger("folkrnn_live.server")
VIRTUAL_PORT_NAME = "folkrnn-live"


class VoiceOutputs:
    def __init__(self, config: Config, stack: AsyncExitStack) -> None:
        self.config = config
        self.stack = stack
        self.stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self._port: MidiOutput | None = None
        self._port_failed: str | None = None
        self._osc: MidiOutput | None = None
        self.files: list[MidiFileOutput] = []
        stack.callback(self._report)  # registered before any output: runs after they are closed

    def _report(self) -> None:
        for path in self.file_paths():
            log.info("MIDI file written: %s", path)

    async def open_for(self, voice: str) -> list[MidiOutput]:
        cfg = self.config
        mode = cfg["midi.output"]
        outs: list[MidiOutput] = []
        if mode in ("auto", "port"):
            port = await self._open_port(required=mode == "port")
            if port is not None:
                outs.append(port)
        if mode == "file" or (mode == "auto" and self._port is None):
            d = Path(cfg["midi.dir"])
            f = MidiFileOutput(d / f"{self.stamp}-{voice}.mid", per_tune=cfg["midi.per_tune"])
            await self.stack.enter_async_context(f)
            self.files.append(f)
            outs.append(f)
            why = f" (no MIDI port: {self._port_failed})" if mode == "auto" else ""
            log.info("voice %s: writing MIDI files to %s/%s*.mid%s", voice, d, f.path.stem, why)
        if cfg["midi.osc_notes"]:
            if self._osc is None:
                host, port_s = cfg["midi.osc_notes"].rsplit(":", 1)
                self._osc = await self.stack.enter_async_context(OscOutput(host, int(port_s)))
                log.info("sending OSC notes to %s", cfg["midi.osc_notes"])
            outs.append(self._osc)
        return outs

    async def _open_port(self, required: bool) -> MidiOutput | None:
        if self._port is not None or self._port_failed is not None:
            return self._port
        cfg = self.config
        name = cfg["midi.port"] or (VIRTUAL_PORT_NAME if cfg["midi.virtual"] else None)
        port = PortOutput(name, virtual=cfg["midi.virtual"])
        try:
            self._port = await self.stack.enter_async_context(port)
            log.info("playing to MIDI port %s%s", port.name, " (virtual)" if cfg["midi.virtual"] else "")
        except OSError as exc:
            if required:
                raise
            self._port_failed = str(exc).split(";")[0]
        return self._port

    def file_paths(self) -> list[Path]:
        return [p for f in self.files for p in f.written]
