"""MIDI in: mappings from the config and learn mode, fed with mido messages in-process (no ALSA
here); one test drives the real server with a tiny model."""

from __future__ import annotations

import asyncio
import math
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mido
import pytest
from _models import tiny_model
from live_server import serving, until

from folkrnn_live.server.commands.catalog import COMMANDS
from folkrnn_live.server.commands.midi_map import MidiMapError, parse_mapping, parse_mappings
from folkrnn_live.server.commands.registry import Call, CommandContext, Registry
from folkrnn_live.server.runtime import config as config_mod
from folkrnn_live.server.transports.common import ListOrigin
from folkrnn_live.server.transports.midi_in import MidiIn, MidiInError, MidiInSettings, open_input_port
from folkrnn_live.tokens import V2

CTX = CommandContext.for_model(V2, 3, 16, ["1", "2"])


@dataclass
class FakeServer:
    """The dispatch API with a recording dispatch."""

    registry: Registry = COMMANDS
    context: CommandContext = field(default_factory=lambda: CTX)
    calls: list[tuple[str, str | None, dict[str, Any]]] = field(default_factory=list)

    def dispatch(self, call: Call, origin: Any) -> None:
        self.calls.append((call.name, call.target, dict(call.args)))


def cc(control: int, value: int, channel: int = 0) -> mido.Message:
    return mido.Message("control_change", channel=channel, control=control, value=value)


def note(n: int, velocity: int = 100, channel: int = 9, on: bool = True) -> mido.Message:
    return mido.Message("note_on" if on else "note_off", channel=channel, note=n, velocity=velocity)


def midi_in(tables: list[dict[str, Any]], **kw: Any) -> tuple[FakeServer, MidiIn]:
    srv = FakeServer()
    return srv, MidiIn(srv, MidiInSettings(**kw), tables)


# --- CC knobs ------------------------------------------------------------------------------------
def test_cc_scales_onto_the_given_range_and_the_registry_range() -> None:
    srv, m = midi_in([
        {"cc": 21, "channel": 0, "command": "temperature", "voice": "1", "min": 0.1, "max": 2.0},
        {"cc": 22, "command": "temperature", "voice": "all"},  # the registry's range 0.01..10
        {"cc": 23, "command": "velocity", "voice": "2"},  # an int argument 1..127
        {"cc": 24, "command": "temperature", "voice": "1", "min": 0.1, "max": 10.0, "curve": "log"},
    ])
    for v in (0, 64, 127):
        m.handle(cc(21, v))
    temps = [c[2]["value"] for c in srv.calls]
    assert temps[0] == pytest.approx(0.1) and temps[2] == pytest.approx(2.0)
    assert temps[1] == pytest.approx(0.1 + 1.9 * 64 / 127)
    srv.calls.clear()
    m.handle(cc(22, 0, channel=5))  # no channel in the table: any channel
    m.handle(cc(22, 127, channel=5))
    assert srv.calls == [("temperature", "all", {"value": 0.01}), ("temperature", "all", {"value": 10.0})]
    srv.calls.clear()
    m.handle(cc(23, 0))
    m.handle(cc(23, 127))
    m.handle(cc(23, 50))
    assert [c[2]["velocity"] for c in srv.calls] == [1, 127, round(1 + 126 * 50 / 127)]
    srv.calls.clear()
    m.handle(cc(24, 0))
    m.handle(cc(24, 127))
    m.handle(cc(24, round(127 / 2)))
    vals = [c[2]["value"] for c in srv.calls]
    assert vals[0] == pytest.approx(0.1) and vals[1] == pytest.approx(10.0)
    assert math.log(vals[2]) == pytest.approx(math.log(0.1) + math.log(100) * 64 / 127)


def test_cc_on_fixed_args_bool_and_open_ranges() -> None:
    srv, m = midi_in([
        {"cc": 1, "command": "bias", "voice": "1", "args": ["pc:G"], "min": -5, "max": 5},
        {"cc": 2, "command": "bias_target", "voice": "1", "args": {"selector": "@bar"}},
        {"cc": 3, "command": "continuous", "voice": "1"},
        {"cc": 4, "command": "snip_random", "voice": "1", "arg": "fraction", "args": [1], "max": 0.5},
    ])
    for ctrl in (1, 2, 3, 4):
        m.handle(cc(ctrl, 0))
        m.handle(cc(ctrl, 127))
    (b0, b1, t0, t1, c0, c1, s0, s1) = srv.calls
    assert b0 == ("bias", "1", {"selector": "pc:G", "amount": -5.0}) and b1[2]["amount"] == 5.0
    assert 0 < t0[2]["probability"] < 0.01 and 0.99 < t1[2]["probability"] < 1  # open range (0, 1)
    assert (c0[2], c1[2]) == ({"on": False}, {"on": True})
    assert s0[2] == {"layer": 1, "fraction": 0.0, "seed": 0, "mode": "out"} and s1[2]["fraction"] == 0.5


def test_cc_bursts_are_collapsed_to_the_last_value() -> None:
    srv, m = midi_in([{"cc": 21, "command": "temperature", "voice": "1"},
                      {"cc": 22, "command": "next", "voice": "1"}])  # a button: every edge counts
    m.handle_batch([cc(21, v) for v in range(0, 100, 3)] + [cc(22, 127), cc(22, 0), cc(22, 127), cc(21, 127)])
    assert [c[0] for c in srv.calls] == ["next", "next", "temperature"]
    assert srv.calls[-1][2]["value"] == 10.0
    assert m.stats.collapsed == len(range(0, 100, 3))


def test_cc_button_presses_at_64_and_releases_below() -> None:
    srv, m = midi_in([{"cc": 30, "command": "pause", "voice": "1"}])  # release: resume by default
    for v in (0, 100, 127, 90, 10, 0, 64):
        m.handle(cc(30, v))
    assert [c[0] for c in srv.calls] == ["pause", "resume", "pause"]


# --- notes ---------------------------------------------------------------------------------------
def test_pad_presses_and_restores_the_same_layer() -> None:
    srv, m = midi_in([
        {"note": 36, "channel": 9, "command": "snip_random", "voice": "1", "args": [2, 0.33, 1, "out"]},
        {"note": 37, "command": "suppress", "voice": "all", "args": [0, "@bar", "pc:G"]},
        {"note": 38, "command": "next", "voice": "2"},  # no release
        {"note": 39, "command": "snip_random", "voice": "1", "args": [0], "arg": "fraction",
         "release": "clear"},  # velocity drives the fraction; explicit release
    ])
    m.handle(note(36))
    m.handle(note(36, on=False))
    m.handle(note(36, channel=3))  # another channel: not this pad
    m.handle(note(37))
    m.handle(note(37, velocity=0))  # note-on with velocity 0 is a note-off
    m.handle(note(38))
    m.handle(note(38, on=False))
    m.handle(note(39, velocity=127))
    m.handle(note(39, velocity=1))
    m.handle(note(39, on=False))
    assert srv.calls == [
        ("snip_random", "1", {"layer": 2, "fraction": 0.33, "seed": 1, "mode": "out"}),
        ("restore", "1", {"layer": 2}),
        ("suppress", "all", {"steps": 0, "selectors": ("@bar", "pc:G")}),
        ("suppress_clear", "all", {}),
        ("next", "2", {}),
        ("snip_random", "1", {"layer": 0, "fraction": 1.0, "seed": 0, "mode": "out"}),
        ("snip_random", "1", {"layer": 0, "fraction": 0.0, "seed": 0, "mode": "out"}),
        ("clear", "1", {}),
    ]
    assert m.stats.unmapped == 1


def test_other_messages_and_unmapped_controls_are_ignored() -> None:
    srv, m = midi_in([{"cc": 21, "command": "temperature", "voice": "1"}])
    for msg in (mido.Message("clock"), mido.Message("pitchwheel", pitch=100), cc(22, 5), note(60)):
        m.handle(msg)
    assert srv.calls == [] and m.stats.unmapped == 2


# --- learn mode ----------------------------------------------------------------------------------
def test_learn_binds_the_next_control_and_saves(tmp_path: Path) -> None:
    path = tmp_path / "midi-map.toml"
    srv, m = midi_in([{"cc": 21, "command": "temperature", "voice": "1"}], map_file=str(path))
    origin = ListOrigin()
    m.learn("tempo", "all", origin=origin)
    assert m.learning
    m.handle(cc(74, 127, channel=2))  # consumed by learn mode, not dispatched
    assert not m.learning and srv.calls == []
    assert origin.replies[-1].name == "midi_learned"
    assert origin.replies[-1].data["mapping"] == {"cc": 74, "channel": 2, "command": "tempo", "voice": "all"}
    m.handle(cc(74, 0, channel=2))
    assert srv.calls == [("tempo", "all", {"bpm": 10.0})]

    m.learn("snip_random", "1", "2 0.5 7")  # text args, as sent over OSC/MQTT
    m.handle(note(40, on=False))  # a note-off does not complete learning
    m.handle(note(40, channel=9))  # learned: bound, not played (nor released)
    m.handle(note(40, channel=9, on=False))
    assert len(srv.calls) == 1
    m.handle(note(40, channel=9))
    m.handle(note(40, channel=9, on=False))
    assert srv.calls[1:] == [("snip_random", "1", {"layer": 2, "fraction": 0.5, "seed": 7, "mode": "out"}),
                             ("restore", "1", {"layer": 2})]
    # Learning a control again replaces its mapping.
    m.learn("gate", "1")
    m.handle(cc(74, 10, channel=2))
    assert [x.command.name for x in m.mappings] == ["temperature", "snip_random", "gate"]

    saved = m.save()
    doc = tomllib.loads(saved.read_text())
    assert [t["command"] for t in doc["map"]] == ["temperature", "snip_random", "gate"]
    assert doc["map"][1] == {"note": 40, "channel": 9, "command": "snip_random", "voice": "1", "args": "2 0.5 7"}
    # A new MidiIn loads the config's tables and then the file (the file's controls win).
    srv2, m2 = midi_in([{"cc": 74, "channel": 2, "command": "temperature", "voice": "2"}], map_file=str(path))
    assert [x.command.name for x in m2.mappings] == ["temperature", "snip_random", "gate"]
    m2.handle(cc(74, 127, channel=2))
    assert srv2.calls == [("gate", "1", {"fraction": 1.0})]
    assert "[[midi_in.map]]" in m2.table_text()
    assert m2.forget("cc", 74) == 1 and m2.forget("cc", 74) == 0


def test_learn_rejects_what_cannot_be_mapped() -> None:
    _, m = midi_in([])
    with pytest.raises(MidiMapError, match=r"midi_learn.command: unknown command 'temprature' \(did you mean"):
        m.learn("temprature", "1")
    with pytest.raises(MidiMapError, match=r"midi_learn.voice: unknown voice '7'; allowed: all, 1, 2"):
        m.learn("temperature", "7")
    with pytest.raises(MidiMapError, match=r"midi_learn.args.fraction: must be in range 0..1"):
        m.learn("snip_random", "1", [0, 3.0])
    assert not m.learning
    m.learn("next", "1")
    assert m.cancel_learn() and not m.learning


def test_midi_commands_through_the_registry(tmp_path: Path) -> None:
    reg = COMMANDS  # the MIDI commands are part of the one table
    srv = FakeServer(registry=reg)
    m = MidiIn(srv, MidiInSettings(map_file=str(tmp_path / "m.toml")), [])
    origin = ListOrigin()
    m.apply_command(reg.bind("midi_learn", ["temperature", "1"], CTX), origin)
    m.handle(cc(7, 127))
    m.apply_command(reg.bind("midi_map", [], CTX), origin)
    assert origin.replies[-1].name == "midi_map" and origin.replies[-1].data["map"][0]["cc"] == 7
    m.apply_command(reg.bind("midi_save", [], CTX), origin)
    assert Path(origin.replies[-1].data["path"]).exists()
    m.apply_command(reg.bind("midi_forget", ["cc", 7], CTX), origin)
    from folkrnn_live.server.commands.registry import CommandError

    with pytest.raises(CommandError, match="no mapping for cc 7"):
        m.apply_command(reg.bind("midi_forget", ["cc", 7], CTX), origin)
    m2 = MidiIn(srv, MidiInSettings(), [])
    with pytest.raises(CommandError, match=r"midi_in.map_file is not set"):
        m2.apply_command(reg.bind("midi_save", [], CTX), origin)


# --- bad mapping tables --------------------------------------------------------------------------
@pytest.mark.parametrize(("table", "expect"), [
    ({"command": "temperature", "voice": "1"}, "midi_in.map[0]: needs exactly one of cc or note"),
    ({"cc": 1, "note": 2, "command": "next", "voice": "1"}, "got cc, note"),
    ({"cc": 128, "command": "next", "voice": "1"}, "midi_in.map[0].cc must be an integer 0..127; got 128"),
    ({"cc": True, "command": "next", "voice": "1"}, "midi_in.map[0].cc must be an integer 0..127"),
    ({"cc": 1, "channel": 16, "command": "next", "voice": "1"}, "midi_in.map[0].channel must be an integer 0..15"),
    ({"cc": 1, "command": "temprature", "voice": "1"}, "midi_in.map[0].command: unknown command 'temprature'"),
    ({"cc": 1, "command": 5}, "midi_in.map[0].command must be a command name"),
    ({"cc": 1, "command": "temperature"}, "midi_in.map[0].voice: temperature is a voice command; allowed: all, 1, 2"),
    ({"cc": 1, "command": "temperature", "voice": "9"}, "midi_in.map[0].voice: unknown voice '9'; allowed: all, 1, 2"),
    ({"cc": 1, "command": "ping", "voice": "1"}, "midi_in.map[0].voice: ping is a global command"),
    ({"cc": 1, "command": "temperature", "voice": "1", "min": 0.0},
     "midi_in.map[0].min: must be in range 0.01..10; got 0.0"),
    ({"cc": 1, "command": "temperature", "voice": "1", "max": "hot"}, "midi_in.map[0].max must be a number"),
    ({"cc": 1, "command": "bias", "voice": "1", "args": ["pc:X"]},
     "midi_in.map[0].args.selector: pitch class 'X' is unknown"),
    ({"cc": 1, "command": "bias", "voice": "1", "arg": "selector"},
     "midi_in.map[0].arg: bias has no number or on/off argument 'selector'; allowed: amount"),
    ({"cc": 1, "command": "snip", "voice": "1", "arg": "layer", "max": 3},
     "midi_in.map[0].max: must be in range 0..2; got 3"),  # a range from the model: layers-1
    ({"note": 1, "command": "temperature", "voice": "1"}, "midi_in.map[0].args.value: missing"),
    ({"note": 1, "command": "next", "voice": "1", "min": 1}, "midi_in.map[0].min/max: nothing to scale"),
    ({"cc": 1, "command": "temperature", "voice": "1", "curve": "exp"},
     "midi_in.map[0].curve must be one of linear, log"),
    ({"cc": 1, "command": "bias", "voice": "1", "args": ["G"], "min": -1, "curve": "log"},
     "midi_in.map[0].curve: log needs min and max above 0"),
    ({"cc": 1, "command": "next", "voice": "1", "knob": 3}, "midi_in.map[0].knob: unknown key; allowed: cc, note"),
    ({"note": 1, "command": "snip_random", "voice": "1", "args": [0, 0.5], "release": "restor"},
     "midi_in.map[0].release: unknown command 'restor'"),
    ({"note": 1, "command": "snip_random", "voice": "1", "args": [0, 0.5], "release": "ping"},
     "midi_in.map[0].release: ping is a global command"),
    ({"note": 1, "command": "snip_random", "voice": "1", "args": [0, 0.5], "release_args": [5]},
     "midi_in.map[0].release_args.layer: must be in range 0..2; got 5"),
    ({"note": 1, "command": "next", "voice": "1", "args": [1, 2]}, "midi_in.map[0].args: 2 values for next"),
    ({"note": 1, "command": "next", "voice": "1", "release_args": []}, "release_args: no release command"),
])
def test_bad_mappings_name_the_key(table: dict[str, Any], expect: str) -> None:
    with pytest.raises(MidiMapError) as info:
        parse_mappings([table], COMMANDS, CTX)
    assert expect in str(info.value)


def test_bad_map_sections() -> None:
    with pytest.raises(MidiMapError, match=r"midi_in.map must be an array of tables"):
        parse_mappings({"cc": 1}, COMMANDS, CTX)
    with pytest.raises(MidiMapError, match=r"midi_in.map\[1\] must be a table"):
        parse_mappings([{"cc": 1, "command": "next", "voice": "1"}, 5], COMMANDS, CTX)
    with pytest.raises(MidiMapError, match=r"unknown key midi_in.colour; allowed in \[midi_in\]: enabled"):
        MidiInSettings.from_table({"colour": 1})
    with pytest.raises(MidiMapError, match=r"midi_in.enabled must be true or false; got 'yes'"):
        MidiInSettings.from_config({"midi_in.enabled": "yes"})
    assert MidiInSettings.from_table({"port": "nano", "map": []}).port == "nano"
    m = parse_mapping({"note": 5, "command": "ping"}, COMMANDS, CTX)
    assert m.target is None and m.describe() == "note 5 (any channel) -> ping"


def test_bad_map_file(tmp_path: Path) -> None:
    f = tmp_path / "m.toml"
    f.write_text("[[map]]\ncc = 300\ncommand = 'next'\nvoice = '1'\n")
    with pytest.raises(MidiMapError, match=r"m.toml: map\[0\].cc must be an integer 0..127; got 300"):
        midi_in([], map_file=str(f))
    f.write_text("[[map]\n")
    with pytest.raises(MidiMapError, match="cannot read the MIDI map file"):
        midi_in([], map_file=str(f))


# --- ports ---------------------------------------------------------------------------------------
def test_no_port_gives_a_clear_error() -> None:
    """No port has this name, with or without ALSA: either way the error names the port asked for
    ("no MIDI input port matches ...; allowed: <the ports>" or "cannot open MIDI input port ...: <why>")."""
    with pytest.raises(MidiInError, match="MIDI input port (matches )?'no such controller'"):
        open_input_port("no such controller", virtual=False, callback=lambda m: None)


@pytest.mark.asyncio
async def test_port_failure_is_logged_unless_required() -> None:
    srv = FakeServer()
    settings = MidiInSettings(enabled=True, port="no such controller")
    async with MidiIn(srv, settings, []) as m:
        assert m.port is None and m.port_error
    with pytest.raises(MidiInError):
        async with MidiIn(srv, MidiInSettings(enabled=True, port="no such controller", required=True), []):
            pass  # pragma: no cover


@pytest.mark.asyncio
async def test_threadsafe_feed_and_async_source() -> None:
    async def source() -> AsyncIterator[mido.Message]:
        for v in (0, 127):
            yield cc(21, v)

    srv = FakeServer()
    async with MidiIn(srv, None, [{"cc": 21, "command": "temperature", "voice": "1"}], source=source()) as m:
        await asyncio.to_thread(m.feed_threadsafe, note(1))  # from another thread, like rtmidi's
        for _ in range(1000):
            if m.stats.received >= 3:
                break
            await asyncio.sleep(0.005)
        await m.idle()
    assert srv.calls[-1] == ("temperature", "1", {"value": 10.0})
    assert m.stats.received == 3


# --- end to end: the real server -----------------------------------------------------------------
@pytest.mark.asyncio
async def test_pad_and_knob_steer_the_real_server() -> None:
    cfg = config_mod.parse({"midi": {"output": "none"}, "osc": {"enabled": False}, "recording": {"dir": ""},
                            "voice": [{"name": "1", "tempo": 600.0}]})
    tables = [{"note": 36, "command": "snip_random", "voice": "1", "args": [1, 0.5, 3, "all"]},
              {"cc": 21, "command": "temperature", "voice": "all", "min": 0.5, "max": 1.5}]
    async with serving(cfg, model=tiny_model()) as srv, \
            MidiIn(srv, None, tables) as m:
        tokens: list[int] = []
        srv.hub.subscribe(lambda fb: tokens.append(fb.data["total"]), ["tokens"])
        controls = srv.voices["1"].voice.controls
        m.feed(note(36))
        m.feed(cc(21, 127))
        await until(lambda: 1 in controls.snips and controls.temperature == 1.5)
        assert len(controls.snips[1].units) == 8 and controls.snips[1].mode == "all"
        n = len(tokens)
        await until(lambda: len(tokens) >= n + 5, "tokens while snipped")  # it plays on, snipped
        m.feed(note(36, on=False))
        await until(lambda: 1 not in controls.snips)
        assert m.stats.errors == 0 and m.stats.dispatched == 3


@pytest.mark.asyncio
async def test_server_builds_midi_in_from_its_config(tmp_path: Path) -> None:
    """[midi_in] enabled: no port opens here (no ALSA), which is logged, not fatal; the mappings
    work for anything fed in; a reload replaces them; required = true refuses to start."""
    path = tmp_path / "folkrnn.toml"
    base = '[midi]\noutput = "none"\n[osc]\nenabled = false\n[recording]\ndir = ""\n[[voice]]\nname = "1"\n'

    def write(midi: str) -> None:
        path.write_text(base + midi)

    write('[midi_in]\nenabled = true\nport = "no such controller"\n'
          '[[midi_in.map]]\ncc = 21\ncommand = "temperature"\nvoice = "1"\nmin = 0.5\nmax = 1.5\n')
    model = tiny_model()
    async with serving(config_mod.load(path), model=model) as srv:
        m = next(t for t in srv.transports if isinstance(t, MidiIn))
        assert m.port is None and "no such controller" in str(m.port_error)
        controls = srv.voices["1"].voice.controls
        m.feed(cc(21, 127))
        await until(lambda: controls.temperature == 1.5)
        write('[midi_in]\nenabled = true\nport = "no such controller"\n'
              '[[midi_in.map]]\ncc = 21\ncommand = "temperature"\nvoice = "1"\nmin = 0.2\nmax = 0.4\n')
        await srv.reload()
        m.feed(cc(21, 0))
        await until(lambda: controls.temperature == 0.2)
        write('[midi_in]\nenabled = true\n[[midi_in.map]]\ncc = 300\ncommand = "temperature"\nvoice = "1"\n')
        await srv.reload()  # a bad table is logged; the running mappings stay
        m.feed(cc(21, 127))
        await until(lambda: controls.temperature == 0.4)

    write('[midi_in]\nenabled = true\nrequired = true\nport = "no such controller"\n')
    with pytest.raises(MidiInError, match="no such controller"):
        async with serving(config_mod.load(path), model=model):
            pass


@pytest.mark.asyncio
async def test_the_server_follows_midi_clock_from_the_input_port(tmp_path: Path) -> None:
    """midi_in.clock: start/stop/continue from the controller drive every voice's transport and
    its 24 ppqn ticks set the tempo (shown in the state as clock_bpm)."""
    path = tmp_path / "folkrnn.toml"
    path.write_text('[midi]\noutput = "none"\n[osc]\nenabled = false\n[recording]\ndir = ""\n'
                    '[midi_in]\nenabled = true\nclock = true\nport = "no such controller"\n'
                    '[[voice]]\nname = "1"\nautostart = false\n[[voice]]\nname = "2"\nautostart = false\n')
    async with serving(config_mod.load(path), model=tiny_model()) as srv:
        m = next(t for t in srv.transports if isinstance(t, MidiIn))
        players = [lv.player for lv in srv.voices.values()]
        assert {p.state for p in players} == {"idle"}
        t0 = asyncio.get_running_loop().time()
        for i in range(48):  # two quarters of ticks at 200 quarters a minute
            m.feed(mido.Message("clock"), t0 + i * 0.3 / 24)
        m.feed(mido.Message("start"))
        assert {p.state for p in players} == {"playing"}
        assert [lv.snapshot()["clock_bpm"] for lv in srv.voices.values()] == [200.0, 200.0]
        await until(lambda: all(p.stats.notes >= 2 for p in players), "notes")
        m.feed(mido.Message("stop"))
        assert {p.state for p in players} == {"paused"} and not any(p.sounding for p in players)
        m.feed(mido.Message("continue"))
        assert {p.state for p in players} == {"playing"}
        assert m.stats.received == 0  # clock messages go to the clock, not to the mappings

