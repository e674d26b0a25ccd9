"""The live server: start-up, main loop, shutdown (the uvicorn shape), signals, reload, dispatch.

``Server(config).serve()`` loads the model once (GPU when present), opens one async context
manager per outside resource (MIDI outputs, the OSC endpoint, recordings through each voice),
starts the voices and runs its background loops as named tasks of one ``asyncio.TaskGroup``.
SIGTERM/SIGINT stop it (note-offs sent, recordings flushed, within ``server.shutdown_timeout``);
SIGHUP re-reads the config without dropping voices.

Dispatch API (every transport: OSC here, MQTT and MIDI-in beside it; see ``common.Dispatcher``):
validate with ``server.registry`` against ``server.context``, then ``server.dispatch(call, origin)``.
Feedback: ``server.hub``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from folkrnn_live.player.clock import ExternalClock
from folkrnn_live.player.scheduler import Scheduler, freeze_gc, realtime_priority
from folkrnn_live.server.commands.catalog import COMMANDS
from folkrnn_live.server.commands.handlers import MIDI_IN, SERVER
from folkrnn_live.server.commands.registry import ALL, Call, CommandContext, CommandError, Registry
from folkrnn_live.server.runtime import loop_errors, preflight, watchdog
from folkrnn_live.server.runtime.blas_threads import limit_blas_threads
from folkrnn_live.server.runtime.config import RESTART_KEYS, Config, VoiceConfig
from folkrnn_live.server.runtime.lifecycle import capture_signals, read_reload
from folkrnn_live.server.runtime.midi_targets import VoiceOutputs
from folkrnn_live.server.runtime.sdnotify import Notifier
from folkrnn_live.server.runtime.token_source import LogEntry, VoiceBatcher
from folkrnn_live.server.runtime.voices import LiveVoice
from folkrnn_live.server.transports import midi_in, mqtt, web
from folkrnn_live.server.transports.common import NullOrigin, Origin, Transport
from folkrnn_live.server.transports.feedback import Feedback, Hub, error_feedback
from folkrnn_live.server.transports.osc import OscEndpoint

log = logging.getLogger("folkrnn_live.server")
# Transports beside OSC: each ``open_transport(server)`` returns an async context manager (or None
# when its config section disables it), entered after the OSC endpoint; SIGHUP reloads call the
# ``reconfigure(config)`` of what it returned.
TRANSPORTS = (mqtt.open_transport, midi_in.open_transport, web.open_transport)


class Server:
    def __init__(self, config: Config, *, overrides: Mapping[str, Any] | None = None, model: Any = None,
                 notifier: Notifier | None = None) -> None:
        self.config = config
        self.overrides = dict(overrides or {})
        self.registry: Registry = COMMANDS
        self.hub = Hub()
        self.notifier = notifier or Notifier()
        self.voices: dict[str, LiveVoice] = {}
        self.model = model  # a preloaded FolkRNN (tests, benchmarks); else loaded from the config
        self.osc: OscEndpoint | None = None
        self.started = asyncio.Event()
        self._ctx: CommandContext | None = None
        self._exit = asyncio.Event()
        self._reload = asyncio.Event()
        self._stack: AsyncExitStack | None = None
        self._scheduler: Scheduler | None = None
        self.clock: ExternalClock | None = None  # an external MIDI clock every voice follows (midi_in.clock)
        self.link: Any = None  # the Ableton Link session every voice follows ([link]), a LinkSession
        self._outputs: VoiceOutputs | None = None
        self._stepper: Any = None
        self._log_files: dict[str, Any] = {}
        self.transports: list[Transport] = []

    # --- dispatch API ------------------------------------------------------------------------------
    @property
    def context(self) -> CommandContext:
        assert self._ctx is not None, "the server is not started"
        return self._ctx

    def dispatch(self, call: Call, origin: Origin) -> None:
        """Carry out a validated call: voice commands go to the target voice(s) (``all``: every
        voice), global ones run on the loop.  Raises CommandError when a voice queue is full."""
        if call.command.scope == "global":
            asyncio.get_running_loop().call_soon(self._apply_global, call, origin)
            return
        targets = list(self.voices.values()) if call.target == ALL else [self.voices[str(call.target)]]
        for lv in targets:
            lv.submit(call, origin)

    def _apply_global(self, call: Call, origin: Origin) -> None:
        try:
            if MIDI_IN.accepts(call.command):  # learn mode and mappings live in the MIDI-in transport
                midi = next((t for t in self.transports if isinstance(t, midi_in.MidiIn)), None)
                if midi is None:
                    raise CommandError(call.address, "MIDI input is off", allowed="set [midi_in] enabled = true")
                midi.apply_command(call, origin)
                return
            SERVER.run(self, call, origin)
        except (ValueError, KeyError) as exc:
            err = exc if isinstance(exc, CommandError) else CommandError(call.address, str(exc))
            origin.reply(error_feedback(err))

    @SERVER.handles("status")
    def cmd_status(self, origin: Origin, voice: str | None) -> None:
        for name, lv in self.voices.items():
            if voice is None or name == voice:
                origin.reply(lv.state_feedback())

    def state_feedbacks(self) -> list[Feedback]:
        """Every voice's current state (what MQTT retains)."""
        return [lv.state_feedback() for lv in self.voices.values()]

    @SERVER.handles("ping")
    def cmd_ping(self, origin: Origin, id: int) -> None:
        origin.reply(Feedback("replies", "pong", None, (id,), {"id": id}))

    @SERVER.handles("subscribe")
    def cmd_subscribe(self, origin: Origin, port: int, streams: tuple[str, ...]) -> None:
        subs = origin.subscriptions
        if subs is None:
            raise CommandError("/folkrnn/subscribe", f"{origin.name} has its own feedback channel",
                               allowed="OSC clients")
        subs.subscribe(port, streams)
        self._loop_call(lambda: self.cmd_status(origin, None))  # a new subscriber starts from the state

    @SERVER.handles("unsubscribe")
    def cmd_unsubscribe(self, origin: Origin, port: int) -> None:
        subs = origin.subscriptions
        if subs is not None:
            subs.unsubscribe(port)

    @staticmethod
    def _loop_call(fn: Callable[[], Any]) -> None:
        asyncio.get_running_loop().call_soon(fn)

    # --- lifecycle ---------------------------------------------------------------------------------
    def request_exit(self) -> None:
        log.debug("exit requested")
        self._exit.set()

    def request_reload(self) -> None:
        self._reload.set()

    async def serve(self, *, install_signals: bool = True) -> None:
        signals = capture_signals(self.request_exit, self.request_reload) if install_signals else None
        with signals or contextlib.nullcontext():
            async with AsyncExitStack() as stack:
                self._stack = stack
                stack.callback(self.notifier.close)  # the last thing closed, also when start-up fails
                try:
                    await self.startup(stack)
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(self._main_loop(), name="folkrnn-live main")
                        tg.create_task(self._state_loop(), name="folkrnn-live state")
                        if self.notifier.watchdog_interval:
                            tg.create_task(self._watchdog_loop(), name="folkrnn-live watchdog")
                finally:
                    log.debug("background tasks ended; shutting down")
                    t0 = time.monotonic()
                    await self.shutdown()
            log.info("stopped: voices closed and outputs flushed in %.2f s", time.monotonic() - t0)

    async def startup(self, stack: AsyncExitStack) -> None:
        cfg = self.config
        logging.getLogger("folkrnn_live").setLevel(cfg["server.log_level"].upper())
        loop_errors.install(asyncio.get_running_loop())  # one line per escaped exception, not a traceback
        model = self.model if self.model is not None else self._load_model()
        self.model = model
        limit_blas_threads(1)  # batch-1 steps on the loop's thread, never waiting for a BLAS pool
        mc = model.config
        from folkrnn_live.model.steppers import shared_stepper

        self._stepper = shared_stepper(model, cfg["model.backend"], cfg["model.precision"])
        self._ctx = CommandContext.for_model(mc.vocab, mc.num_layers, mc.hidden_size, [v.name for v in cfg.voices])
        plans = [(v, cfg.voice_calls(v, self._ctx)) for v in cfg.voices]  # every key checked first
        preflight.check_all(cfg.values, self.registry, self._ctx)  # the rest, before anything opens
        self._scheduler = await stack.enter_async_context(Scheduler())
        if cfg["model.batch_voices"]:
            self._scheduler.batcher = VoiceBatcher()
        if cfg["midi_in.enabled"] and cfg["midi_in.clock"]:
            self.clock = ExternalClock()  # fed by the MIDI-in transport
        if cfg["link.enabled"]:
            from folkrnn_live.player.link import LinkSession

            self.link = await stack.enter_async_context(LinkSession(cfg["link.tempo"], quantum=cfg["link.quantum"]))
            if cfg["link.lead"]:
                self.link.lead(cfg["link.tempo"])
            log.info("Ableton Link: %s at %.1f BPM, %d peer(s)", "leading" if cfg["link.lead"] else "following",
                     self.link.tempo, self.link.peers)
        self._outputs = VoiceOutputs(cfg, stack)
        for v, calls in plans:
            await self._add_voice(v, calls)
        if cfg["osc.enabled"]:
            self.osc = await stack.enter_async_context(OscEndpoint(
                self, self.hub, host=cfg["osc.host"], port=cfg["osc.port"], allow=cfg["osc.allow"],
                rate_limit=cfg["osc.rate_limit"], burst=cfg["osc.burst"], max_delay=cfg["osc.max_delay"],
                max_subscribers=cfg["osc.max_subscribers"], pinned=cfg["osc.pinned"],
            ))
            host, port = self.osc.address
            log.info("listening for OSC on %s:%d (commands: /folkrnn/<voice>/<command>)", host, port)
        await self._open_transports(stack)
        await stack.enter_async_context(watchdog.VoiceWatchdog(self))  # restarts a voice that froze
        freeze_gc()  # the model and imports out of the collector's reach: collections stay short
        if cfg["server.realtime_priority"]:
            log.info("event loop scheduling: %s", realtime_priority(cfg["server.realtime_priority"]))
        for v in cfg.voices:
            if v.autostart:
                self.voices[v.name].cmd_start()
        self.started.set()
        self.notifier.ready(f"{len(self.voices)} voice(s) playing")

    async def _open_transports(self, stack: AsyncExitStack) -> None:
        for opener in TRANSPORTS:
            cm = opener(self)
            if cm is not None:
                self.transports.append(await stack.enter_async_context(cm))

    def _load_model(self) -> Any:
        import torch

        from folkrnn_live.model import checkpoint

        device = self.config["model.device"]
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        path = self.config["model.path"] or None
        ckpt = checkpoint.load_default_or(path, device)
        log.info("model %s on %s", ckpt.path, device)
        return ckpt.model

    async def _add_voice(self, v: VoiceConfig, calls: list[Call]) -> None:
        assert self._outputs is not None and self._stack is not None and self._scheduler is not None
        outputs = await self._outputs.open_for(v.name, v.output)
        rec_dir = self.config["recording.dir"] or None
        lv = LiveVoice(
            v.name, self.model, scheduler=self._scheduler, outputs=outputs, hub=self.hub, seed=v.seed,
            recordings_dir=rec_dir, stepper=self._stepper, queue_limit=self.config["server.queue_limit"],
            log_sink=self._log_sink if self.config["server.log_dir"] else None, clock=self.clock, link=self.link,
            recording_max_bytes=self.config["recording.max_bytes"] or None, lookahead=self.config["server.lookahead"],
        )
        self.voices[v.name] = lv
        if lv.name not in self.context.voices:
            self.context.voices = (*self.context.voices, lv.name)
        self._stack.push_async_callback(lv.aclose)  # closed before the outputs it plays to
        self._submit_config(lv, calls)
        lv.source.drain()  # settings from the config hold from the first token on

    def _log_sink(self, voice: str, e: LogEntry) -> None:
        f = self._log_files.get(voice)
        if f is None:
            d = Path(self.config["server.log_dir"])
            d.mkdir(parents=True, exist_ok=True)
            stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            f = self._log_files[voice] = open(d / f"{stamp}-{voice}.jsonl", "a", buffering=1, encoding="utf-8")  # noqa: SIM115
            f.write(json.dumps({"voice": voice, "seed": self.voices[voice].source.initial_seed}) + "\n")
        f.write(json.dumps(e.to_json()) + "\n")

    async def _main_loop(self) -> None:
        while not self._exit.is_set():
            waiters = {asyncio.ensure_future(self._exit.wait()), asyncio.ensure_future(self._reload.wait())}
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
            if self._reload.is_set() and not self._exit.is_set():
                self._reload.clear()
                await self.reload()

    async def _state_loop(self) -> None:
        while not await self._sleep_or_exit(self.config["server.state_interval"] or 3600.0):
            if self.config["server.state_interval"] and self.hub.wants("state"):
                for lv in self.voices.values():
                    self.hub.publish(lv.state_feedback())

    async def _watchdog_loop(self) -> None:
        interval = self.notifier.watchdog_interval or 1.0
        while True:
            self.notifier.watchdog()  # pinged from the loop: a stuck loop misses it and gets restarted
            if await self._sleep_or_exit(interval):
                return

    async def _sleep_or_exit(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._exit.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def shutdown(self) -> None:
        """Stop every voice (note-offs now), flush recordings; the exit stack then closes the OSC
        endpoint, outputs (note-offs, files written) and the scheduler."""
        self.notifier.stopping()
        timeout = self.config["server.shutdown_timeout"]
        for lv in self.voices.values():
            lv.player.stop()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*(lv.aclose(timeout / 2) for lv in self.voices.values()))
        except TimeoutError:
            log.error("shutdown: voices did not close within %.1f s", timeout)
        for f in self._log_files.values():
            f.close()
        self._log_files.clear()

    # --- reload ------------------------------------------------------------------------------------
    async def reload(self) -> None:
        """Re-read the config file: apply changed voice settings and live OSC limits, add new voices;
        report keys that need a restart.  A bad file changes nothing; nothing a reload meets stops
        the voices, and systemd always hears READY=1 after RELOADING=1."""
        self.notifier.reloading()
        status = "reload failed; running on the old config"
        try:
            new, ctx_new, calls = read_reload(self.config, self.overrides, self.context, self.voices)
        except (ValueError, OSError) as exc:
            log.error("reload failed, config unchanged: %s", exc)
            self.notifier.ready(status)
            return
        try:
            await self._apply_reload(new, ctx_new, calls)
            status = f"reloaded; {len(self.voices)} voice(s)"
            log.info("configuration reloaded from %s", new.source)
        except Exception:  # a bug here must not end the performance: the voices play on
            log.exception("reload: not every change was applied")
        finally:
            self.notifier.ready(status)

    async def _apply_reload(self, new: Config, ctx_new: CommandContext, calls: dict[str, list[Call]]) -> None:
        for k, v in new.values.items():
            if v != self.config.values[k] and k.startswith(RESTART_KEYS):
                log.warning("reload: %s changed; it takes effect after a restart", k)
        old, self.config = self.config, new
        new.values.update({k: old.values[k] for k in old.values if k.startswith(RESTART_KEYS)})
        logging.getLogger("folkrnn_live").setLevel(new["server.log_level"].upper())
        if self.osc is not None:
            self.osc.configure(allow=new["osc.allow"], rate_limit=new["osc.rate_limit"], burst=new["osc.burst"],
                               max_delay=new["osc.max_delay"], max_subscribers=new["osc.max_subscribers"])
        self._ctx = ctx_new
        for t in self.transports:
            try:
                t.reconfigure(new)
            except (ValueError, OSError) as exc:
                log.error("reload: %s: %s", type(t).__name__, exc)
        for name, lv in self.voices.items():
            lv.recordings_dir = Path(new["recording.dir"]) if new["recording.dir"] else None
            lv.source.queue_limit = new["server.queue_limit"]
            if name not in calls:
                log.warning("reload: voice %s is no longer in the config; it keeps playing until restart", name)
            self._submit_config(lv, calls.get(name, ()))
        for v in new.voices:
            if v.name in self.voices:
                continue
            try:
                await self._add_voice(v, calls[v.name])
            except (ValueError, OSError) as exc:
                log.error("reload: voice %s not added: %s", v.name, exc)
                continue
            if v.autostart:
                self.voices[v.name].cmd_start()
            log.info("reload: voice %s added", v.name)

    def _submit_config(self, lv: LiveVoice, calls: Sequence[Call]) -> None:
        """A voice's settings from the config, as commands; errors (a full queue) are logged."""
        origin = NullOrigin(f"config voice {lv.name}")
        for call in calls:
            try:
                lv.submit(call, origin)
            except CommandError as exc:
                log.error("%s: %s not applied: %s", origin.name, call.name, exc)
