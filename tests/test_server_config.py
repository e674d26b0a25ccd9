"""The TOML config: defaults, errors naming the key, voice tables bound through the registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from folkrnn_live.server.commands.registry import CommandContext
from folkrnn_live.server.runtime import config
from folkrnn_live.server.runtime.config import ConfigError, load, parse, parse_override
from folkrnn_live.tokens import V2

ROOT = Path(__file__).resolve().parents[1]
CTX = CommandContext.for_model(V2, 3, 16, ["1", "2", "lead", "bass"])


def test_defaults_are_safe() -> None:
    cfg = load(None)
    assert cfg["osc.host"] == "127.0.0.1"
    assert cfg["osc.port"] == config.DEFAULT_OSC_PORT
    assert cfg["osc.allow"] == []
    assert cfg["model.path"] == ""
    assert [v.name for v in cfg.voices] == ["1"]
    assert cfg.voices[0].settings == {"channel": 0, "continuous": True}


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ({"osc": {"port": 70000}}, "osc.port must be an integer in range 1..65535; got 70000"),
        ({"osc": {"port": "7400"}}, "osc.port must be an integer"),
        ({"osc": {"prot": 1}}, "unknown key osc.prot; allowed in [osc]: enabled, host, port"),
        ({"midi": {"output": "speaker"}}, "midi.output must be one of 'auto', 'port', 'file', 'none'"),
        ({"osc": {"allow": ["not-a-net"]}}, "osc.allow entry 'not-a-net'"),
        ({"midi": {"osc_notes": "localhost"}}, "midi.osc_notes must be host:port"),
        ({"midi": {"osc_notes": "localhost:99999"}}, "midi.osc_notes must be host:port, port 1..65535"),
        ({"osc": {"rate_limit": float("nan")}}, "osc.rate_limit must be a number in range 0..1000000; got nan"),
        ({"server": {"queue_limit": 0}}, "server.queue_limit must be an integer in range 1..10000000; got 0"),
        ({"midi_in": {"port": 5}}, "midi_in.port must be a string; got 5"),
        ({"sound": {}}, "unknown section 'sound'"),
        ({"voice": [{"name": "all"}]}, "voice[0].name must match"),
        ({"voice": [{"name": "a"}, {"name": "a"}]}, "used twice"),
        ({"voice": [{"volume": 3}]}, "unknown key voice[0].volume; allowed: name, seed, autostart"),
        ({"voice": [{"start": True}]}, "unknown key voice[0].start"),  # transport is not a setting
        ({"voice": [{"seed": -1}]}, "voice[0].seed must be an integer in range 0..4294967295"),
    ],
)
def test_errors_name_the_key(doc: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(doc)
    assert fragment in str(info.value)


def test_voice_settings_are_registry_commands(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text(
        """
[voice_defaults]
tempo = 150
temperature = 0.9

[[voice]]
name = "lead"
seed = 42
prime = ["M:6/8", "K:Cmaj"]
bias = [["pc:G", 2.0], ["|", -1.0]]
force = {weight_generated = 0.7, selector = "@bar", weight = 0.3}
accent = [20, 8, 0]

[[voice]]
name = "bass"
tempo = 75
autostart = false
""",
        encoding="utf-8",
    )
    cfg = load(p)
    lead, bass = cfg.voices
    assert (lead.name, lead.seed, bass.autostart) == ("lead", 42, False)
    calls = {(c.name, tuple(c.values())) for c in cfg.voice_calls(lead, CTX)}
    assert ("tempo", (150.0,)) in calls
    assert ("prime", ("M:6/8", "K:Cmaj")) in calls
    assert ("bias", ("pc:G", 2.0)) in calls and ("bias", ("|", -1.0)) in calls
    assert ("force", (0.7, "@bar", 0.3, 0)) in calls
    assert ("accent", (20, 8, 0)) in calls
    assert ("channel", (0,)) in calls
    assert ("tempo", (75.0,)) in {(c.name, tuple(c.values())) for c in cfg.voice_calls(bass, CTX)}


def test_voice_setting_errors_name_voice_key_and_argument() -> None:
    cfg = parse({"voice": [{"name": "lead", "temperature": 99.0}]})
    with pytest.raises(ConfigError, match=r"voice 'lead': temperature.value: must be in range 0.01..10"):
        cfg.voice_calls(cfg.voices[0], CTX)


def test_overrides(tmp_path: Path) -> None:
    assert parse_override("osc.port=7401") == ("osc.port", 7401)
    assert parse_override("osc.host=0.0.0.0") == ("osc.host", "0.0.0.0")  # a bare word is a string
    assert parse_override('osc.allow=["10.0.0.0/8"]') == ("osc.allow", ["10.0.0.0/8"])
    cfg = load(None, {"osc.port": 7401, "server.voices": 3, "voice_defaults.tempo": 200})
    assert cfg["osc.port"] == 7401
    assert [v.name for v in cfg.voices] == ["1", "2", "3"]
    assert [v.settings["channel"] for v in cfg.voices] == [0, 1, 2]
    assert all(v.settings["tempo"] == 200 for v in cfg.voices)
    with pytest.raises(ConfigError, match="--set osc.nope: unknown key"):
        load(None, {"osc.nope": 1})
    with pytest.raises(ConfigError, match="command line: osc.port must be"):
        load(None, {"osc.port": 0})
    with pytest.raises(ConfigError, match="must be section.key=value"):
        parse_override("osc.port")


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[osc\nport = 1", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(bad)


def test_example_config_is_valid() -> None:
    cfg = load(ROOT / "systemd" / "folkrnn-live.toml")
    for v in cfg.voices:
        cfg.voice_calls(v, CommandContext.for_model(V2, 3, 512, [x.name for x in cfg.voices]))
    assert cfg["osc.host"] == "127.0.0.1"


def test_transport_sections_join_the_schema() -> None:
    # The transports' sections are defined beside them and checked, documented and overridden here.
    assert load(None, {"mqtt.port": 1884})["mqtt.port"] == 1884
    with pytest.raises(ConfigError, match="mqtt.port must be an integer in range 1..65535"):
        parse({"mqtt": {"port": 0}})
    assert "## [mqtt]" in config.markdown() and "## [midi_in]" in config.markdown()


def test_serve_flags_allow_what_the_config_allows(capsys: pytest.CaptureFixture[str]) -> None:
    from folkrnn_live.cli.main import build_parser, main
    from folkrnn_live.cli.serve import overrides_from

    args = build_parser().parse_args(["serve", "--osc-port", "7401", "--voices", "3", "--midi-dir", "123",
                                      "--shutdown-timeout", "0.5", "--log-level", "debug", "--no-osc",
                                      "--set", "voice_defaults.tempo=140"])
    assert overrides_from(args) == {"osc.port": 7401, "server.voices": 3, "midi.dir": "123",
                                    "server.shutdown_timeout": 0.5, "server.log_level": "debug",
                                    "osc.enabled": False, "voice_defaults.tempo": 140}
    for argv, fragment in ((["--osc-port", "0"], "osc.port must be an integer in range 1..65535; got 0"),
                           (["--voices", "many"], "server.voices must be an integer in range 1..64; got 'many'"),
                           (["--osc-notes", "here"], "midi.osc_notes must be host:port"),
                           (["--midi-output", "speaker"], "midi.output must be one of 'auto', 'port', 'file', 'none'")):
        assert main(["serve", *argv]) == 2
        assert fragment in capsys.readouterr().err
