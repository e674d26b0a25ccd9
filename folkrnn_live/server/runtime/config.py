"""The server's TOML configuration: one schema table drives validation, defaults and docs/config.md.

Service settings live in fixed sections (``[model]``, ``[osc]``, ``[midi]``, ``[recording]``,
``[server]``).  Voices are ``[[voice]]`` tables (or ``server.voices = N`` unnamed ones); apart from
``name``, ``seed`` and ``autostart``, every key of a voice table is a voice command of the registry
(temperature, tempo, bias, ...), validated by the same table as OSC and MQTT messages.
``[voice_defaults]`` holds keys every voice starts with.  CLI flags override the file
(``--set section.key=value`` for any key).  Errors name the key and the allowed values.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from folkrnn_live.player.outputs import SESSION_FILE_EVENTS
from folkrnn_live.sampler.controls import SEED_RANGE
from folkrnn_live.server.commands.catalog import COMMANDS
from folkrnn_live.server.commands.registry import (
    ALL,
    DEFAULT_OSC_PORT,
    NAME_RE,
    Call,
    CommandContext,
    CommandError,
)
from folkrnn_live.server.runtime import midi_in_settings, mqtt_settings, preflight
from folkrnn_live.server.runtime.config_keys import ConfigError, ConfigKey, toml_value
from folkrnn_live.server.transports.web import settings as web_settings

VOICE_GROUPS = ("sampler", "player")  # command groups a voice table may set
VOICE_KEYS = ("name", "seed", "autostart", "output")
# What a SIGHUP reload cannot change (whole sections end in "."): reported, applied at the next start.
RESTART_KEYS = ("model.", "link.", "osc.host", "osc.port", "osc.enabled", "osc.pinned", "midi.", "midi_in.clock",
                "web.host", "web.port", "web.enabled", "web.expose")

SCHEMA: tuple[ConfigKey, ...] = (
    ConfigKey("model", "path", "str", "", "model directory (model.json + model.safetensors); empty: the shipped model"),
    ConfigKey("model", "device", "str", "auto", "torch device: auto (CUDA when present), cpu, cuda, cuda:N"),
    ConfigKey("model", "backend", "str", "auto", "step backend", choices=("auto", "numpy", "torch")),
    ConfigKey("model", "precision", "str", "fp32", "step weights of every voice: fp32, or int8 (CPU only); "
              "a voice's precision command overrides it", choices=("fp32", "int8")),
    ConfigKey("model", "batch_voices", "bool", True, "step the model for all playing voices as one batch "
        "(one read of the weights for all; a command still reaches a voice's next token); false: one voice at a time"),
    ConfigKey("osc", "enabled", "bool", True, "listen for OSC commands"),
    ConfigKey("osc", "host", "str", "127.0.0.1", "address to listen on; 0.0.0.0 opens it to the network (set allow)"),
    ConfigKey("osc", "port", "int", DEFAULT_OSC_PORT, "UDP port (7400: clear of SuperCollider, TouchOSC, Sonic Pi)",
        1, 65535),
    ConfigKey("osc", "allow", "list", [], "client networks allowed to send (CIDR, e.g. 192.168.1.0/24); empty: any"),
    ConfigKey("osc", "rate_limit", "float", 2000.0, "messages per second per client host; 0: unlimited", 0, 1e6),
    ConfigKey("osc", "burst", "int", 500, "messages a client may send at once above the rate", 1, 1_000_000),
    ConfigKey("osc", "max_delay", "float", 60.0, "latest accepted bundle time tag, in seconds from now", 0, 3600),
    ConfigKey("osc", "max_subscribers", "int", 32,
        "feedback receivers at most (a new one replaces the oldest); 0: no feedback", 0, 1024),
    ConfigKey("osc", "pinned", "list", [], "feedback receivers (host:port) always sent the default streams, never "
        "replaced by new subscribers: the performer's own patch"),
    ConfigKey("midi", "output", "str", "auto", "auto: a MIDI port when one opens, else the built-in synth when an "
        "audio device opens, else files; port; file; none; synth (FluidSynth); a voice's output key overrides it",
        choices=("auto", "port", "file", "none", "synth")),
    ConfigKey("midi", "port", "str", "", "output port: its name or a unique part of it (`folkrnn-live ports` lists "
        "them), virtual or virtual:NAME for a port others connect to; empty: the first port that is not MIDI Through"),
    ConfigKey("midi", "virtual", "bool", False, "create a virtual output port named folkrnn-live (as port = virtual)"),
    ConfigKey("midi", "api", "str", "auto", "MIDI system: auto ($FOLKRNN_MIDI_API, else ALSA when /dev/snd/seq "
        "exists, else JACK when a server runs; CoreMIDI on macOS, Windows MM on Windows)",
        choices=("auto", "alsa", "jack", "coremidi", "winmm")),
    ConfigKey("midi", "soundfont", "str", "", "the synth's soundfont (.sf2/.sf3); empty: $FOLKRNN_SOUNDFONT, else an "
        "installed General MIDI one (Debian: fluid-soundfont-gm or timgm6mb-soundfont)"),
    ConfigKey("midi", "audio", "str", "auto", "the synth's audio system: auto (JACK when a server runs, else "
        "PulseAudio/PipeWire, else ALSA; CoreAudio on macOS, WASAPI on Windows)",
        choices=("auto", "jack", "pulseaudio", "pipewire", "alsa", "coreaudio", "wasapi", "dsound")),
    ConfigKey("midi", "dir", "str", "midi", "directory of MIDI files (output = file, or auto without a port or synth)"),
    ConfigKey("midi", "per_tune", "bool", True, "one MIDI file per tune (else one per voice and session, cut at a "
        f"tune end every {SESSION_FILE_EVENTS:,} messages)"),
    ConfigKey("midi", "osc_notes", "str", "", "also send /note pitch velocity duration_ms channel to host:port"),
    ConfigKey("link", "enabled", "bool", False, "join an Ableton Link session on the local network: voices follow "
        "its tempo and start on its bar lines (needs the aalink package: pip install aalink)"),
    ConfigKey("link", "tempo", "float", 120.0, "tempo to join with (a session with peers keeps its own) or to lead "
        "with", 20, 999),
    ConfigKey("link", "quantum", "float", 4.0, "beats per bar that Link aligns (4 for 4/4, 3 for 3/4)", 1, 64),
    ConfigKey("link", "lead", "bool", False, "set the session's tempo to link.tempo at start (else follow it)"),
    ConfigKey("recording", "dir", "str", "recordings", "where record_start writes; empty: recording off"),
    ConfigKey("recording", "max_bytes", "int", 4 << 30, "size cap of one recording's chunk files; reaching it "
        "stops the recording with an /error (what was written stays readable); 0: no cap", 0, 1 << 50),
    ConfigKey("server", "voices", "int", 1, "number of voices when there is no [[voice]] table (named 1, 2, ...)",
        1, 64),
    ConfigKey("server", "shutdown_timeout", "float", 1.5, "seconds to finish notes and recordings on SIGTERM", 0.1, 60),
    ConfigKey("server", "state_interval", "float", 1.0,
        "seconds between state snapshots to subscribers; 0: on change only",
        0, 3600),
    ConfigKey("server", "queue_limit", "int", 10_000, "commands waiting per voice at most", 1, 10_000_000),
    ConfigKey("server", "log_dir", "str", "", "write each voice's command log (JSON lines) here; empty: off"),
    ConfigKey("server", "log_level", "str", "info", "logging level", choices=("debug", "info", "warning", "error")),
    ConfigKey("server", "lookahead", "float", 0.05, "seconds before a note that its voice starts generating it "
        "(a command reaches notes not yet generated: a longer lookahead delays its effect by as much); many voices "
        "on one beat grid need more (28 int8 voices on a 2-core CPU: 0.1)", 0.01, 1.0),
    ConfigKey("server", "realtime_priority", "int", 0, "run the event loop under SCHED_RR at this priority (needs "
        "CAP_SYS_NICE); 0: normal scheduling", 0, 99),
    # The transports' sections are defined beside them (no MQTT or MIDI library imported).
    *mqtt_settings.CONFIG_KEYS,
    *midi_in_settings.CONFIG_KEYS,
    *web_settings.CONFIG_KEYS,
)
SECTIONS = tuple(dict.fromkeys(k.section for k in SCHEMA))
_BY_PATH = {k.path: k for k in SCHEMA}


@dataclass
class VoiceConfig:
    name: str
    seed: int = 0
    autostart: bool = True
    settings: dict[str, Any] = field(default_factory=dict)  # command name -> raw TOML value
    output: str = ""  # where it plays: a port name (or part), virtual[:NAME], auto, port, synth, file, none; "": [midi]


@dataclass
class Config:
    values: dict[str, Any]  # "section.key" -> value, every key present
    voices: list[VoiceConfig]
    source: Path | None = None

    def __getitem__(self, path: str) -> Any:
        return self.values[path]

    def voice_calls(self, v: VoiceConfig, ctx: CommandContext) -> list[Call]:
        """The voice's settings as validated calls, in table order (errors name the key)."""
        return voice_calls(v.name, v.settings, ctx)


def default_values() -> dict[str, Any]:
    return {k.path: (list(k.default) if isinstance(k.default, list) else k.default) for k in SCHEMA}


def check_value(key: ConfigKey, v: Any, where: str = "config") -> Any:
    """The key's own check, then what a schema row cannot say (networks, host:port)."""
    v = key.check(v, where)
    for net in v if key.path == "osc.allow" else ():
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError as exc:
            raise ConfigError(f"{where}: osc.allow entry {net!r} is not a network (e.g. 10.0.0.0/8)") from exc
    if key.path == "midi.osc_notes" and v:
        m = re.fullmatch(r"[^:\s]+:(\d{1,5})", v)
        if m is None or not 1 <= int(m.group(1)) <= 65535:
            raise ConfigError(f"{where}: midi.osc_notes must be host:port, port 1..65535 (e.g. 127.0.0.1:9000); "
                              f"got {v!r}")
    return v


def parse(doc: Mapping[str, Any], where: str = "config") -> Config:
    values = default_values()
    voices_raw: list[Any] = []
    defaults: dict[str, Any] = {}
    for section, body in doc.items():
        if section == "voice":
            if not isinstance(body, list):
                raise ConfigError(f"{where}: voice must be an array of tables ([[voice]])")
            voices_raw = body
            continue
        if section == "voice_defaults":
            if not isinstance(body, dict):
                raise ConfigError(f"{where}: voice_defaults must be a table")
            defaults = dict(body)
            continue
        if section not in SECTIONS:
            allowed = ", ".join((*SECTIONS, "voice_defaults", "[[voice]]"))
            raise ConfigError(f"{where}: unknown section {section!r}; allowed: {allowed}")
        if not isinstance(body, dict):
            raise ConfigError(f"{where}: {section} must be a table")
        for name, v in body.items():
            key = _BY_PATH.get(f"{section}.{name}")
            if key is None:
                allowed = ", ".join(k.name for k in SCHEMA if k.section == section)
                raise ConfigError(f"{where}: unknown key {section}.{name}; allowed in [{section}]: {allowed}")
            values[key.path] = check_value(key, v, where)
    voices = _voices(voices_raw, defaults, values["server.voices"], where)
    return Config(values, voices)


def _voices(raw: list[Any], defaults: dict[str, Any], count: int, where: str) -> list[VoiceConfig]:
    tables = raw or [{} for _ in range(count)]
    out: list[VoiceConfig] = []
    for i, t in enumerate(tables):
        if not isinstance(t, dict):
            raise ConfigError(f"{where}: voice[{i}] must be a table")
        merged = {**defaults, **t}
        name = merged.pop("name", str(i + 1))
        label = f"voice[{i}]"
        if not isinstance(name, str) or not NAME_RE.fullmatch(name) or name == ALL or name in COMMANDS.commands:
            raise ConfigError(f"{where}: {label}.name must match {NAME_RE.pattern}, not 'all' nor a command name; "
                              f"got {name!r}")
        if any(v.name == name for v in out):
            raise ConfigError(f"{where}: {label}.name {name!r} is used twice; voice names must be unique")
        seed = merged.pop("seed", i)
        if isinstance(seed, bool) or not isinstance(seed, int) or not SEED_RANGE[0] <= seed <= SEED_RANGE[1]:
            raise ConfigError(f"{where}: {label}.seed must be an integer in range {SEED_RANGE[0]}..{SEED_RANGE[1]}; "
                              f"got {seed!r}")
        autostart = merged.pop("autostart", True)
        if not isinstance(autostart, bool):
            raise ConfigError(f"{where}: {label}.autostart must be true or false; got {autostart!r}")
        output = merged.pop("output", "")
        if not isinstance(output, str):
            raise ConfigError(f"{where}: {label}.output must be a string: a MIDI port's name or a unique part of it, "
                              f"virtual, virtual:NAME, auto, port, synth, file or none; got {output!r}")
        merged.setdefault("channel", i % 16)
        merged.setdefault("continuous", True)  # a performance server goes on from tune to tune
        for k in merged:
            cmd = COMMANDS.commands.get(k)
            if cmd is None or cmd.scope != "voice" or cmd.group not in VOICE_GROUPS:
                allowed = ", ".join([*VOICE_KEYS, *(c.name for c in COMMANDS if c.scope == "voice"
                                                    and c.group in VOICE_GROUPS)])
                raise ConfigError(f"{where}: unknown key {label}.{k}; allowed: {allowed}")
        out.append(VoiceConfig(name, seed, autostart, merged, output))
    return out


def voice_calls(name: str, settings: Mapping[str, Any], ctx: CommandContext) -> list[Call]:
    """Bind a voice table's command keys through the registry, in table order.  A list of lists
    (or of tables) is several calls: ``bias = [["pc:G", 2.0], ["|", -1.0]]``."""
    calls: list[Call] = []
    for cmd in COMMANDS:
        if cmd.name not in settings:
            continue
        v = settings[cmd.name]
        many = isinstance(v, list) and v and all(isinstance(x, list | dict) for x in v)
        for one in (v if many else [v]):
            try:
                calls.append(COMMANDS.bind_json(cmd, one, ctx, name))
            except CommandError as exc:
                arg = f".{exc.argument}" if exc.argument else ""
                raise ConfigError(f"config: voice {name!r}: {cmd.name}{arg}: {exc.detail}") from exc
    return calls


def load(path: str | Path | None, overrides: Mapping[str, Any] | None = None) -> Config:
    """Read a TOML file (None: defaults only) and apply ``overrides`` ("section.key" -> value)."""
    doc: dict[str, Any] = {}
    src = Path(path) if path is not None else None
    if src is not None:
        try:
            doc = tomllib.loads(src.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{src}: cannot read config: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{src}: not valid TOML: {exc}") from exc
        except RecursionError as exc:  # tomllib recurses per nested array or table: 5,000 '[' ended here
            raise ConfigError(f"{src}: not valid TOML: nested too deeply; allowed: ordinary nesting") from exc
    overrides = dict(overrides or {})
    vd = {p.split(".", 1)[1]: overrides.pop(p) for p in list(overrides) if p.startswith("voice_defaults.")}
    if vd:  # --set voice_defaults.tempo=140: as if written in the file's [voice_defaults]
        doc["voice_defaults"] = {**doc.get("voice_defaults", {}), **vd}
    cfg = parse(doc, str(src) if src else "config")
    cfg.source = src
    for p, v in overrides.items():
        key = _BY_PATH.get(p)
        if key is None:
            raise ConfigError(f"--set {p}: unknown key; allowed: {', '.join(_BY_PATH)}, voice_defaults.<command>")
        cfg.values[p] = check_value(key, v, "command line")
    if "server.voices" in overrides and not doc.get("voice"):
        cfg.voices = _voices([], dict(doc.get("voice_defaults", {})), cfg.values["server.voices"], "command line")
    preflight.check(cfg.values, str(src) if src else "config")  # the whole config, before anything opens
    return cfg


def parse_override(text: str) -> tuple[str, Any]:
    """``section.key=value`` (value in TOML syntax; a bare word is a string)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: must be section.key=value (e.g. osc.port=7401)")
    path, raw = (s.strip() for s in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return path, value


def markdown() -> str:
    """docs/config.md, generated from :data:`SCHEMA` and the registry."""
    lines = [
        "# Configuration (`folkrnn-live serve --config FILE`)",
        "",
        "<!-- Generated by `folkrnn-live commands --config-markdown`; do not edit by hand. -->",
        "",
        "A TOML file; every key is optional and defaults to the value below. Command-line flags override",
        "the file, and `--set section.key=value` overrides any key (value in TOML syntax). Errors name the",
        "key and the allowed values. `systemd/folkrnn-live.toml` is a complete example. SIGHUP re-reads",
        "the file: changed voice settings are applied to the running voices, new voices are added,",
        "and keys that need a restart ("
        + ", ".join(f"`{k}*`" if k.endswith(".") else f"`{k}`" for k in RESTART_KEYS)
        + ") are reported in the log.",
        "",
    ]
    for section in SECTIONS:
        lines += [f"## [{section}]", "", "| key | default | allowed | meaning |", "|---|---|---|---|"]
        for k in SCHEMA:
            if k.section == section:
                lines.append(f"| `{k.name}` | `{toml_value(k.default)}` | {k.allowed()} | {k.help} |")
        lines.append("")
    lines += [
        "## Voices: `[[voice]]` and `[voice_defaults]`",
        "",
        "Each `[[voice]]` table is one voice; without any, `server.voices` voices named `1`, `2`, ... are",
        "made. `[voice_defaults]` holds keys every voice starts with (a voice's own keys win).",
        "",
        "| key | default | meaning |",
        "|---|---|---|",
        "| `name` | `\"1\"`, `\"2\"`, ... | OSC address part: `/folkrnn/<name>/...`; letters, digits, `_ . -` |",
        "| `seed` | the voice's index (0, 1, ...) | seed of the first tune |",
        "| `autostart` | `true` | start playing at start-up |",
        "| `output` | `[midi]`'s | where it plays: a MIDI port's name or a unique part of it (`folkrnn-live ports`), "
        "`virtual`, `virtual:NAME`, or `auto`, `port`, `synth`, `file`, `none`; a port or the synth is shared by the "
        "voices that name it, each on its own channel and program |",
        "| `channel` | the voice's index mod 16 | MIDI channel (the `channel` command) |",
        "| `continuous` | `true` | a new tune after each tune ends (the `continuous` command) |",
        "",
        "Every other key is a voice command of [docs/commands.md](commands.md) from the sampler and player",
        "groups, with the command's arguments as its value: a single value (`temperature = 0.9`), a list",
        "(`prime = [\"M:6/8\", \"K:Cmaj\"]`, `accent = [20, 8, 0]`), a table of named arguments",
        "(`force = {weight_generated = 0.7, selector = \"@bar\", weight = 0.3}`), or a list of lists for",
        "several calls (`bias = [[\"pc:G\", 2.0], [\"|\", -1.0]]`). Keys:",
        "",
        ", ".join(f"`{c.name}`" for c in COMMANDS if c.scope == "voice" and c.group in VOICE_GROUPS) + ".",
        "",
    ]
    return "\n".join(lines)

