"""Where each voice plays: a MIDI port, the built-in synth, MIDI files or nothing (``[midi]`` and a
voice table's ``output`` key).

``auto`` plays to a MIDI port when one can be opened, else to the built-in synth when an audio device
can be opened, else writes MIDI files, and says once which and why.  A port or the synth is shared by
every voice that plays to it (each voice has its own channel and program); files are per voice (a
per-tune file would otherwise be split by another voice's tune ends).  A voice's ``output`` names a
port (a name, a unique part of one, ``virtual`` or ``virtual:NAME``) or one of ``auto``, ``port``,
``synth``, ``file``, ``none``; what it names must open, or the server does not start.  Every output is
entered into the server's exit stack, so closing the server silences and closes them all.
"""

from __future__ import annotations

import datetime as _dt
import logging
from contextlib import AsyncExitStack
from pathlib import Path

from folkrnn_live.player import ports
from folkrnn_live.player.outputs import MidiFileOutput, MidiOutput, OscOutput, PortOutput
from folkrnn_live.server.runtime.config import Config

log = logging.getLogger("folkrnn_live.server")
VIRTUAL_PORT_NAME = "folkrnn-live"
OUTPUT_MODES = ("auto", "port", "synth", "file", "none")


class VoiceOutputs:
    def __init__(self, config: Config, stack: AsyncExitStack) -> None:
        self.config = config
        self.stack = stack
        self.stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self._ports: dict[str, MidiOutput] = {}  # port spec -> the open port, shared by voices
        self._failed: dict[str, str] = {}  # port spec or "synth" -> why it did not open
        self._synth: MidiOutput | None = None
        self._osc: MidiOutput | None = None
        self._fallback_said = False
        self.files: list[MidiFileOutput] = []
        stack.callback(self._report)  # registered before any output: runs after they are closed
        choice = ports.select_api(config["midi.api"])  # before anything opens a MIDI port (in or out)
        # With none, the line that says where the voices go instead gives the reason: one line, not two.
        log.log(logging.INFO if choice.api else logging.DEBUG, "MIDI system: %s (%s)", choice.title, choice.reason)

    def _report(self) -> None:
        for path in self.file_paths():
            log.info("MIDI file written: %s", path)

    async def open_for(self, voice: str, output: str = "") -> list[MidiOutput]:
        """The outputs of one voice: ``output`` is the voice table's key (empty: the ``[midi]`` section's)."""
        cfg = self.config
        mode = output or cfg["midi.output"]
        outs: list[MidiOutput] = []
        played = None
        if mode in ("auto", "port"):
            spec = cfg["midi.port"] or (ports.VIRTUAL + ":" + VIRTUAL_PORT_NAME if cfg["midi.virtual"] else "")
            played = await self._open_port(spec, required=mode == "port")
        elif mode not in OUTPUT_MODES:  # a voice's own port
            played = await self._open_port(mode, required=True)
        if mode == "synth" or (mode == "auto" and played is None):
            played = await self._open_synth(required=mode == "synth")
        if played is not None:
            outs.append(played)
        if mode == "file" or (mode == "auto" and played is None):
            outs.append(await self._open_file(voice, fallback=mode == "auto"))
        if cfg["midi.osc_notes"]:
            if self._osc is None:
                host, port_s = cfg["midi.osc_notes"].rsplit(":", 1)
                self._osc = await self.stack.enter_async_context(OscOutput(host, int(port_s)))
                log.info("sending OSC notes to %s", cfg["midi.osc_notes"])
            outs.append(self._osc)
        return outs

    async def _open_port(self, spec: str, required: bool) -> MidiOutput | None:
        if spec in self._ports:
            return self._ports[spec]
        if spec in self._failed and not required:
            return None
        port = PortOutput(spec or None)
        try:
            self._ports[spec] = await self.stack.enter_async_context(port)
        except OSError as exc:
            if required:
                raise
            self._failed[spec] = str(exc.__cause__ or exc).split("; available")[0]  # the why, not our wrapper
            return None
        log.info("playing to MIDI port %r", port.name)
        return self._ports[spec]

    async def _open_synth(self, required: bool) -> MidiOutput | None:
        if self._synth is not None or ("synth" in self._failed and not required):
            return self._synth
        from folkrnn_live.player.synth import SynthOutput

        cfg = self.config
        synth = SynthOutput(cfg["midi.soundfont"] or None, driver=cfg["midi.audio"])
        try:
            self._synth = await self.stack.enter_async_context(synth)
        except OSError as exc:
            if required:
                raise
            self._failed["synth"] = str(exc)
            return None
        log.info("playing to the built-in %s", synth.name)
        return self._synth

    async def _open_file(self, voice: str, fallback: bool) -> MidiFileOutput:
        cfg = self.config
        d = Path(cfg["midi.dir"])
        f = MidiFileOutput(d / f"{self.stamp}-{voice}.mid", per_tune=cfg["midi.per_tune"])
        await self.stack.enter_async_context(f)
        self.files.append(f)
        if fallback and not self._fallback_said:  # said once, not per voice
            self._fallback_said = True
            why = "; ".join(self._failed.values())
            log.info("no MIDI port and no audio device: writing MIDI files to %s/ instead (%s); "
                     "`folkrnn-live ports` lists what there is", d, why)
        log.info("voice %s: writing MIDI files to %s/%s*.mid", voice, d, f.path.stem)
        return f

    def file_paths(self) -> list[Path]:
        return [p for f in self.files for p in f.written]
