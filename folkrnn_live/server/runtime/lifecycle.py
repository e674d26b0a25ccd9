"""What the server's lifecycle needs beside the Server class: the signal handlers of ``serve`` and
the reading of a reloaded config (SIGHUP)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

from folkrnn_live.server.commands.registry import Call, CommandContext
from folkrnn_live.server.runtime import config as config_mod
from folkrnn_live.server.runtime.config import Config, VoiceConfig


@contextlib.contextmanager
def capture_signals(on_exit: Callable[[], None], on_reload: Callable[[], None]) -> Iterator[None]:
    """Install SIGTERM/SIGINT (``on_exit``) and SIGHUP (``on_reload``) handlers on the running
    loop; restore the previous ones after."""
    loop = asyncio.get_running_loop()
    handlers = {signal.SIGTERM: on_exit, signal.SIGINT: on_exit, signal.SIGHUP: on_reload}
    previous = {sig: signal.getsignal(sig) for sig in handlers}
    try:
        for sig, fn in handlers.items():
            loop.add_signal_handler(sig, fn)
        yield
    finally:
        for sig, old in previous.items():
            loop.remove_signal_handler(sig)
            if old is not None:  # None: set outside Python; nothing Python can put back
                signal.signal(sig, old)


def read_reload(
    old: Config, overrides: Mapping[str, Any], ctx: CommandContext, running: Collection[str],
) -> tuple[Config, CommandContext, dict[str, list[Call]]]:
    """The new config (re-read from ``old.source``), its context (new voices added) and each
    voice's calls: the settings that changed, or all of them for a new voice.  Raises ValueError
    or OSError."""
    new = config_mod.load(old.source, overrides)
    new_names = [v.name for v in new.voices if v.name not in running]
    ctx_new = CommandContext(ctx.vocab, dict(ctx.dims), (*ctx.voices, *new_names))
    calls = {v.name: config_mod.voice_calls(v.name, _changed(old, v), ctx_new) for v in new.voices}
    return new, ctx_new, calls


def _changed(old: Config, v: VoiceConfig) -> dict[str, Any]:
    """The voice's settings that differ from the running config (all of them for a new voice)."""
    prev = next((p for p in old.voices if p.name == v.name), None)
    if prev is None:
        return dict(v.settings)
    out = {k: val for k, val in v.settings.items() if prev.settings.get(k) != val}
    if v.seed != prev.seed:
        out["seed"] = v.seed
    return out
