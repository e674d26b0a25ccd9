"""``folkrnn-live ports``: the MIDI system, its output and input ports, the synth, and what ``serve`` picks."""

from __future__ import annotations

import argparse
from typing import Any

from folkrnn_live.player import ports


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ports",
        help="list MIDI output and input ports and the built-in synth, and say which serve would use",
        description="List the MIDI output and input ports of the MIDI system rtmidi uses here (ALSA or JACK "
        "on Linux, CoreMIDI on macOS, Windows MM), whether the built-in synth can sound, and which output "
        "`serve` would play to with the given config.",
    )
    p.add_argument("--config", metavar="FILE", help="TOML config whose [midi] section is read (default: none)")
    p.add_argument("--api", choices=ports.API_CHOICES, default="auto",
                   help="MIDI system to list (default auto: $FOLKRNN_MIDI_API, else ALSA when /dev/snd/seq "
                   "exists, else JACK when a server runs; CoreMIDI on macOS, Windows MM on Windows)")
    p.set_defaults(func=run)


def _midi_settings(config_path: str | None) -> dict[str, Any]:
    if config_path is None:
        return {"midi.output": "auto", "midi.port": "", "midi.virtual": False}
    from folkrnn_live.server.runtime import config

    return dict(config.load(config_path, {}).values)


def pick(spec: str, virtual: bool, outputs: list[str]) -> str:
    """What ``serve`` does with ``midi.port``/``midi.virtual``, in words."""
    if virtual or ports.is_virtual(spec):
        return f"a virtual port {ports._virtual(spec, ports.CLIENT_NAME)!r} that other programs connect to"
    if spec:
        try:
            return f"{ports.resolve(spec, outputs)!r} (midi.port = {spec!r})"
        except OSError as exc:
            return f"nothing: {exc}"
    chosen = ports.default_output(outputs)
    return repr(chosen) + " (the first port that is not MIDI Through)" if chosen else "no port"


def run(args: argparse.Namespace) -> int:
    choice = ports.select_api(args.api)
    compiled = ", ".join(ports.API_TITLE[a] for a in ports.compiled_apis()) or "none"
    print(f"MIDI system: {choice.title} ({choice.reason}); this python-rtmidi has: {compiled}")
    outputs = ports.output_names() if choice.api else []
    inputs = ports.input_names() if choice.api else []
    for title, names in (("MIDI outputs", outputs), ("MIDI inputs", inputs)):
        print(f"{title}:" if names else f"{title}: none")
        for n in names:
            print(f"  {n!r}{'  (MIDI Through: sounds nowhere)' if ports.is_through(n) else ''}")
    print("Synth:", _synth_line())
    cfg = _midi_settings(args.config)
    mode = cfg["midi.output"]
    if mode == "none":
        print("serve would play to: nothing (midi.output = none)")
        return 0
    if mode == "file":
        print(f"serve would write: MIDI files in {cfg.get('midi.dir', 'midi')}/ (midi.output = file)")
        return 0
    target = pick(cfg["midi.port"], cfg["midi.virtual"], outputs) if choice.api else "no port (no MIDI system)"
    print(f"serve would play to: {target}")
    return 0


def _synth_line() -> str:
    from folkrnn_live.player import synth

    try:
        sf = synth.find_soundfont()
        synth._fluidsynth()
    except synth.SynthError as exc:
        return f"not available: {exc}"
    drivers = synth.audio_driver_candidates()
    where = ", ".join(drivers) if drivers else "no audio device (no JACK server, no PulseAudio socket, no /dev/snd)"
    return f"soundfont {sf}; audio: {where}"
