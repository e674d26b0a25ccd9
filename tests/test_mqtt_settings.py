"""[mqtt] settings: validation names the key and what is allowed; payload binding rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from folkrnn_live.server.commands.catalog import COMMANDS
from folkrnn_live.server.commands.registry import CommandContext, CommandError
from folkrnn_live.server.runtime.mqtt_settings import CONFIG_KEYS, MqttConfigError, MqttSettings
from folkrnn_live.server.transports.mqtt_payload import bind_payload
from folkrnn_live.tokens import V2


def test_defaults_and_table() -> None:
    s = MqttSettings.from_table({})
    assert (s.host, s.port, s.prefix, s.enabled, s.use_tls) == ("127.0.0.1", 1883, "folkrnn", False, False)
    assert "tokens" in s.streams and "probs" not in s.streams
    assert s.read_password() is None
    s = MqttSettings.from_config({"mqtt.port": 8883, "mqtt.prefix": "studio/folkrnn", "osc.port": 1})
    assert (s.port, s.prefix) == (8883, "studio/folkrnn")
    assert {k.name for k in CONFIG_KEYS} == set(MqttSettings.__dataclass_fields__)


@pytest.mark.parametrize(("table", "expect"), [
    ({"port": 0}, "mqtt.port must be an integer in range 1..65535; got 0"),
    ({"port": "1883"}, "mqtt.port must be an integer"),
    ({"prefix": "folkrnn/#"}, "mqtt.prefix must be topic levels"),
    ({"prefix": "/folkrnn"}, "mqtt.prefix"),
    ({"colour": 1}, "unknown key mqtt.colour; allowed in [mqtt]: enabled, host"),
    ({"streams": ["tokens", "sparks"]}, "mqtt.streams: unknown stream 'sparks'; allowed: tokens, notes"),
    ({"qos": 3}, "mqtt.qos must be an integer in range 0..2"),
    ({"password": "x"}, "mqtt.username must be set"),
    ({"username": "u", "password": "x", "password_file": "/etc/hostname"}, "both set"),
    ({"ca_file": "/nonexistent/ca.pem"}, "mqtt.ca_file: no such file '/nonexistent/ca.pem'"),
    ({"key_file": "/etc/hostname"}, "mqtt.key_file needs mqtt.cert_file"),
    ({"reconnect_min": 5.0, "reconnect_max": 1.0}, "mqtt.reconnect_min (5) must be at most"),
    ({"tls": "yes"}, "mqtt.tls must be true or false"),
])
def test_bad_settings_name_the_key(table: dict[str, object], expect: str) -> None:
    with pytest.raises(MqttConfigError, match=None) as info:
        MqttSettings.from_table(table, "folkrnn.toml")
    assert expect in str(info.value)
    assert str(info.value).startswith("folkrnn.toml: ")


def test_password_file(tmp_path: Path) -> None:
    f = tmp_path / "pw"
    f.write_text("s3cret\nignored\n")
    s = MqttSettings(username="u", password_file=str(f), ca_file=str(f))
    assert s.read_password() == "s3cret"
    assert s.use_tls and s.describe() == "mqtts://u@127.0.0.1:1883/folkrnn"
    assert "s3cret" not in repr(s.describe())


def test_payload_forms() -> None:
    ctx = CommandContext.for_model(V2, 3, 16, ["1"])
    reg = COMMANDS

    def bind(name: str, text: str) -> dict[str, object]:
        return dict(bind_payload(reg, reg.get(name), "1", text, ctx).args)

    assert bind("bias", '["pc:G", 2]') == {"selector": "pc:G", "amount": 2.0}
    assert bind("bias", '{"amount": -1, "selector": "|"}') == {"selector": "|", "amount": -1.0}
    assert bind("bias", "pc:G 2") == {"selector": "pc:G", "amount": 2.0}
    assert bind("temperature", "0.5") == {"value": 0.5}
    assert bind("unfold", "on") == {"on": True}
    assert bind("unfold", "true") == {"on": True}
    assert bind("restore", "") == {"layer": None}
    assert bind("restore", "null") == {"layer": None}
    assert bind("prime", "M:6/8 K:Cmaj") == {"tokens": ("M:6/8", "K:Cmaj")}
    assert bind("suppress", '[10, "@bar", "pc:G"]') == {"steps": 10, "selectors": ("@bar", "pc:G")}
    with pytest.raises(CommandError) as info:
        bind("bias", '{"selector": "pc:G",')
    assert info.value.argument == "payload" and "JSON" in info.value.allowed
    with pytest.raises(CommandError) as info:
        bind("temperature", "hot")
    assert info.value.argument == "value" and "0.01..10" in info.value.allowed
