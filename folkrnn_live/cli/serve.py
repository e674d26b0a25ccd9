"""``folkrnn-live serve``: the live server (see docs/server.md)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

# Flags for the keys set most often: (flag, config key, metavar).  Help, type, range and choices
# come from the key's row in the config schema, so a flag allows exactly what the file allows;
# --set reaches every other key.
FLAGS = (
    ("--model", "model.path", "DIR"),
    ("--device", "model.device", "DEVICE"),
    ("--voices", "server.voices", "N"),
    ("--osc-host", "osc.host", "ADDRESS"),
    ("--osc-port", "osc.port", "PORT"),
    ("--web-port", "web.port", "PORT"),
    ("--midi-output", "midi.output", None),
    ("--midi-port", "midi.port", "NAME"),
    ("--midi-dir", "midi.dir", "DIR"),
    ("--osc-notes", "midi.osc_notes", "HOST:PORT"),
    ("--recordings", "recording.dir", "DIR"),
    ("--log-dir", "server.log_dir", "DIR"),
    ("--shutdown-timeout", "server.shutdown_timeout", "SECONDS"),
    ("--log-level", "server.log_level", None),
)


def register(sub: argparse._SubParsersAction) -> None:
    from folkrnn_live.server.runtime.config import DEFAULT_OSC_PORT, SCHEMA

    p = sub.add_parser(
        "serve",
        help="run the live server: voices steered over OSC (see docs/server.md)",
        description="Run the live server. With no arguments: the shipped model, one voice, OSC on "
        f"127.0.0.1:{DEFAULT_OSC_PORT}, a MIDI port when one opens, else MIDI files in ./midi.",
    )
    p.add_argument("--config", metavar="FILE", help="TOML config (docs/config.md); flags override it")
    keys = {k.path: k for k in SCHEMA}
    for flag, path, metavar in FLAGS:
        key = keys[path]
        p.add_argument(flag, dest=path, type=_key_type(path), metavar=metavar, choices=key.choices or None,
                       help=f"{key.help} ({path})")
    p.add_argument("--no-osc", action="store_true", help="do not listen for OSC (osc.enabled = false)")
    p.add_argument("--no-web", action="store_true", help="do not serve the live page (web.enabled = false)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override any config key (value in TOML syntax); repeatable")
    p.set_defaults(func=run)


def _key_type(path: str) -> Callable[[str], Any]:
    """argparse type: the flag's text as the key's type, checked by the config schema."""
    from folkrnn_live.server.runtime.config import SCHEMA, ConfigError, check_value

    key = next(k for k in SCHEMA if k.path == path)

    def parse(text: str) -> Any:
        try:
            value: Any = int(text) if key.type == "int" else float(text) if key.type == "float" else text
            return check_value(key, value, where="")
        except (ValueError, ConfigError) as exc:
            msg = str(exc) if isinstance(exc, ConfigError) else f"{path} must be {key.allowed()}; got {text!r}"
            raise argparse.ArgumentTypeError(msg) from exc

    return parse


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    from folkrnn_live.server.runtime.config import parse_override

    out: dict[str, Any] = dict(parse_override(s) for s in args.set)
    for _, path, _ in FLAGS:
        v = getattr(args, path)
        if v is not None:
            out[path] = v
    if args.no_osc:
        out["osc.enabled"] = False
    if args.no_web:
        out["web.enabled"] = False
    return out


def run(args: argparse.Namespace) -> int:
    from folkrnn_live.server.runtime import config
    from folkrnn_live.server.runtime.service import Server

    overrides = overrides_from(args)
    cfg = config.load(args.config, overrides)
    logging.basicConfig(level=cfg["server.log_level"].upper(), format="folkrnn-live: %(levelname)s: %(message)s")
    asyncio.run(Server(cfg, overrides=overrides).serve())
    # Everything is closed by now: notes off, MIDI files written, recordings flushed, sockets
    # closed.  The interpreter's own teardown (torch's and OpenBLAS's finalisers) takes 1-3 s on a
    # small machine, which would break the "SIGTERM stops within 2 s" promise, so skip it.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
