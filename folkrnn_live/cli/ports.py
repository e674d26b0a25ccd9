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


def _settings(config_path: str | None) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The [midi] values and each voice's own output (name, output) of the config, or the defaults."""
    if config_path is None:
        return {"midi.output": "auto", "midi.port": "", "midi.virtual": False, "midi.dir": "midi"}, []
    from folkrnn_live.server.runtime import config

    cfg = config.load(config_path, {})
    return dict(cfg.values), [(v.name, v.output) for v in cfg.voices if v.output]


def pick(spec: str, virtual: bool, outputs: list[str]) -> str | None:
    """The port ``serve`` opens for ``midi.port``/``midi.virtual`` (in words), or None."""
    if virtual or ports.is_virtual(spec):
        return f"a virtual port {ports._virtual(spec, ports.CLIENT_NAME)!r} that other programs connect to"
    if spec:
        try:
            return f"{ports.resolve(spec, outputs)!r} (midi.port = {spec!r})"
        except OSError:
            return None
    chosen = ports.default_output(outputs)
    return repr(chosen) + " (the first port that is not MIDI Through)" if chosen else None


def target(mode: str, cfg: dict[str, Any], outputs: list[str], synth: str | None) -> str:
    """What ``serve`` plays to for one output setting (the [midi] section's or a voice's)."""
    files = f"MIDI files in {cfg.get('midi.dir', 'midi')}/"
    if mode == "none":
        return "nothing (output = none)"
    if mode == "file":
        return files
    if mode == "synth":
        return f"the built-in synth ({synth})" if synth else "nothing: the synth cannot sound here (see above)"
    if mode not in ("auto", "port"):  # a voice's own port
        found = pick(mode, False, outputs)
        return found or f"nothing: no MIDI output port matches {mode!r} (serve would not start)"
    found = pick(cfg["midi.port"], cfg["midi.virtual"], outputs)
    if found:
        return found
    if mode == "port":
        return "nothing: " + (f"no MIDI output port matches {cfg['midi.port']!r}" if cfg["midi.port"]
                              else "no MIDI output port") + " (serve would not start)"
    if synth:
        return f"the built-in synth ({synth}): no MIDI port"
    return f"{files}: no MIDI port and no audio device for the synth"


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
    synth_ok, synth_text = _synth()
    print("Synth:", synth_text)
    cfg, voices = _settings(args.config)
    synth = synth_text if synth_ok else None
    print(f"serve would play to: {target(cfg['midi.output'], cfg, outputs, synth)}")
    for name, output in voices:
        print(f"  voice {name}: {target(output, cfg, outputs, synth)}")
    return 0


def _synth() -> tuple[bool, str]:
    """Whether the built-in synth can sound here, and what it would use (or why not)."""
    from folkrnn_live.player import synth

    try:
        sf = synth.find_soundfont()
        synth._fluidsynth()
    except synth.SynthError as exc:
        return False, f"not available: {exc}"
    drivers = synth.audio_driver_candidates()
    if not drivers:
        return False, f"soundfont {sf}; no audio device (no JACK server, no PulseAudio socket, no /dev/snd)"
    return True, f"soundfont {sf}; audio: {', '.join(drivers)}"
