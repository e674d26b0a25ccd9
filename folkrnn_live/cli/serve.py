"""``folkrnn-live serve``: the live server (see docs/server.md)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import Any

from folkrnn_live.cli.common import bounded_float, bounded_int


def register(sub: argparse._SubParsersAction) -> None:
    from folkrnn_live.server.config import DEFAULT_OSC_PORT

    p = sub.add_parser(
        "serve",
        help="run the live server: voices steered over OSC (see docs/server.md)",
        description="Run the live server. With no arguments: the shipped model, one voice, OSC on "
        f"127.0.0.1:{DEFAULT_OSC_PORT}, a MIDI port when one opens, else MIDI files in ./midi.",
    )
    p.add_argument("--config", metavar="FILE", help="TOML config (docs/config.md); flags override it")
    p.add_argument("--model", metavar="DIR", help="model directory (model.path)")
    p.add_argument("--device", help="torch device: auto, cpu, cuda, cuda:N (model.device)")
    p.add_argument("--voices", type=bounded_int("--voices", 1, 64), help="number of voices (server.voices)")
    p.add_argument("--osc-host", help="OSC listen address (osc.host)")
    p.add_argument("--osc-port", type=bounded_int("--osc-port", 0, 65535), help="OSC UDP port (osc.port)")
    p.add_argument("--no-osc", action="store_true", help="do not listen for OSC (osc.enabled = false)")
    p.add_argument("--midi-output", choices=("auto", "port", "file", "none"), help="midi.output")
    p.add_argument("--midi-port", metavar="NAME", help="MIDI output port name (midi.port)")
    p.add_argument("--midi-dir", metavar="DIR", help="directory of MIDI files (midi.dir)")
    p.add_argument("--osc-notes", metavar="HOST:PORT", help="also send /note messages here (midi.osc_notes)")
    p.add_argument("--recordings", metavar="DIR", help="directory for record_start (recording.dir)")
    p.add_argument("--log-dir", metavar="DIR", help="write command logs here (server.log_dir)")
    p.add_argument("--shutdown-timeout", type=bounded_float("--shutdown-timeout", 0.1, 60.0))
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"), help="server.log_level")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override any config key (value in TOML syntax); repeatable")
    p.set_defaults(func=run)


FLAG_KEYS = {
    "model": "model.path", "device": "model.device", "voices": "server.voices", "osc_host": "osc.host",
    "osc_port": "osc.port", "midi_output": "midi.output", "midi_port": "midi.port", "midi_dir": "midi.dir",
    "osc_notes": "midi.osc_notes", "recordings": "recording.dir", "log_dir": "server.log_dir",
    "shutdown_timeout": "server.shutdown_timeout", "log_level": "server.log_level",
}


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    from folkrnn_live.server.config import parse_override

    out: dict[str, Any] = dict(parse_override(s) for s in args.set)
    for attr, key in FLAG_KEYS.items():
        v = getattr(args, attr)
        if v is not None:
            out[key] = v
    if args.no_osc:
        out["osc.enabled"] = False
    return out


def run(args: argparse.Namespace) -> int:
    from folkrnn_live.server import config
    from folkrnn_live.server.service import Server

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
