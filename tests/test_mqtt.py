"""The MQTT bridge end to end: a real Mosquitto broker, the real server with a tiny random model,
aiomqtt clients on 127.0.0.1.  Waits have generous deadlines; nothing asserts on timing."""
# The broker fixtures are imported from mqtt_broker (tests/conftest.py is not ours) and used as
# test arguments, which pyflakes reads as unused imports redefined.
# ruff: noqa: F401, F811

from __future__ import annotations

import asyncio
import gc
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import pytest_asyncio
import torch
from _models import tiny_model
from live_server import serving, until
from mqtt_broker import PASSWORD, USER, Mosquitto, auth_broker, broker, broker_factory, tls_broker

from folkrnn_live.model.config import ModelConfig
from folkrnn_live.model.network import FolkRNN
from folkrnn_live.server.runtime import config as config_mod
from folkrnn_live.server.runtime.mqtt_settings import MqttSettings
from folkrnn_live.server.runtime.service import Server
from folkrnn_live.server.transports.mqtt import MqttBridge
from folkrnn_live.tokens import V2

pytestmark = pytest.mark.mqtt
DEADLINE = 20.0  # seconds any awaited event may take on a loaded machine before the test fails
BARS = frozenset(V2.tokens[i] for i in V2.select("@bar"))


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Server]:
    """Two voices of a tiny random model playing fast to no MIDI output, OSC off."""
    model = tiny_model()
    cfg = config_mod.parse({
        "midi": {"output": "none"}, "osc": {"enabled": False}, "recording": {"dir": ""},
        "server": {"state_interval": 0.5},
        "voice": [{"name": "1", "seed": 1, "tempo": 600.0}, {"name": "2", "seed": 2, "tempo": 600.0}],
    })
    async with serving(cfg, model=model) as srv:
        yield srv


def hub_tokens(srv: Server) -> list[str]:
    """Tokens as generated, straight from the hub (the music, whatever MQTT does)."""
    out: list[str] = []
    srv.hub.subscribe(lambda fb: out.append(fb.data["token"]), ["tokens"])
    return out


def settings_for(b: Mosquitto, **kw: Any) -> MqttSettings:
    prefix = kw.pop("prefix", f"t{uuid.uuid4().hex[:10]}/folkrnn")
    return MqttSettings(enabled=True, host=b.host, port=b.port, prefix=prefix, reconnect_min=0.05,
                        reconnect_max=0.3, timeout=5.0, **kw)


@dataclass
class Observer:
    """A plain MQTT client: publishes commands and records everything under the prefix."""

    client: aiomqtt.Client
    prefix: str
    messages: list[aiomqtt.Message] = field(default_factory=list)

    async def send(self, rel: str, payload: Any, retain: bool = False) -> None:
        await self.client.publish(f"{self.prefix}/{rel}", payload, retain=retain)

    def on(self, rel: str) -> list[Any]:
        topic = f"{self.prefix}/{rel}"
        return [json.loads(m.payload) for m in self.messages if str(m.topic) == topic]

    def tokens(self, voice: str = "1") -> list[tuple[int, str]]:
        return [(d["total"], d["token"]) for d in self.on(f"{voice}/event/token")]

    def applied(self, command: str, voice: str = "1") -> list[dict[str, Any]]:
        return [d for d in self.on(f"{voice}/event/applied") if d["command"] == command]


@asynccontextmanager
async def observer(b: Mosquitto, prefix: str, **kw: Any) -> AsyncIterator[Observer]:
    async with aiomqtt.Client(b.host, b.port, identifier=f"obs-{uuid.uuid4().hex[:8]}", **kw) as client:
        obs = Observer(client, prefix)
        await client.subscribe(f"{prefix}/#")

        async def collect() -> None:
            async for m in client.messages:
                obs.messages.append(m)

        task = asyncio.create_task(collect(), name="test observer")
        try:
            yield obs
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@asynccontextmanager
async def bridge_for(srv: Server, settings: MqttSettings) -> AsyncIterator[MqttBridge]:
    async with MqttBridge(srv, srv.hub, settings) as bridge:
        yield bridge


# --- commands change what the network generates --------------------------------------------------
@pytest.mark.asyncio
async def test_suppress_over_mqtt_removes_bar_lines_for_n_steps(server: Server, broker: Mosquitto) -> None:
    s = settings_for(broker)
    async with bridge_for(server, s) as bridge, observer(broker, s.prefix) as obs:
        await asyncio.wait_for(bridge.connected.wait(), DEADLINE)
        await obs.send("1/bias", json.dumps(["@bar", 3.0]))  # JSON list: positional
        await until(lambda: obs.applied("bias"), "bias applied")
        n = 40
        await obs.send("1/suppress", f"{n} @bar")  # plain text payload
        applied = await until(lambda: obs.applied("suppress"), "suppress applied")
        first = applied[0]["step"]  # the first token generated under it
        assert applied[0]["args"] == {"steps": n, "selectors": ["@bar"]}

        def after() -> list[str]:
            return [t for total, t in obs.tokens() if total >= first + n]

        await until(lambda: any(t in BARS for t in after()), "bar lines come back after the suppression")
        under = [t for total, t in obs.tokens() if first <= total < first + n]
        assert len(under) == n
        assert not BARS & set(under)
        before = [t for total, t in obs.tokens() if total < first]
        assert BARS & set(before), "with the bias, bar lines were there before"


@pytest.mark.asyncio
async def test_named_json_and_all_target(server: Server, broker: Mosquitto) -> None:
    s = settings_for(broker)
    async with bridge_for(server, s) as bridge, observer(broker, s.prefix) as obs:
        await asyncio.wait_for(bridge.connected.wait(), DEADLINE)
        await obs.send("all/temperature", json.dumps({"value": 1.25}))  # JSON object: named
        await obs.send("2/tempo", "300")  # JSON scalar
        def warmer(voice: str) -> list[Any]:
            return [d for d in obs.on(f"{voice}/state") if d["controls"]["temperature"] == 1.25]

        await until(lambda: warmer("1") and warmer("2"), "both voices' state")
        await until(lambda: [d for d in obs.on("2/state") if d["player"]["tempo"] == 300.0], "tempo state")
        await obs.send("ping", json.dumps({"id": 7}))
        assert (await until(lambda: obs.on("pong"), "pong"))[0] == {"id": 7}


# --- errors --------------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_bad_payloads_get_errors_while_notes_keep_coming(server: Server, broker: Mosquitto) -> None:
    s = settings_for(broker)
    async with bridge_for(server, s) as bridge, observer(broker, s.prefix) as obs:
        await asyncio.wait_for(bridge.connected.wait(), DEADLINE)
        await until(lambda: obs.on("1/event/note"), "notes")
        bad = [
            ("1/temperature", b"hot"),
            ("1/temperature", b"99"),
            ("1/temprature", b"1.0"),
            ("9/temperature", b"1.0"),
            ("temperature", b"1.0"),
            ("1/bias", b'["pc:G", '),
            ("1/bias", json.dumps({"selector": "pc:G", "amount": 1, "colour": "red"}).encode()),
            ("1/temperature", b"\xff\xfe"),
            ("subscribe", b""),
        ]
        for rel, payload in bad:
            await obs.send(rel, payload)
        errors = await until(lambda: len(obs.on("error")) >= len(bad) and obs.on("error"), "an error per message")
        by_topic: dict[str, list[dict[str, Any]]] = {}
        for e in errors:
            by_topic.setdefault(e["topic"].split("/folkrnn/", 1)[1], []).append(e)
            assert set(e) >= {"topic", "address", "argument", "message", "allowed"}
        t = by_topic["1/temperature"]
        assert [e["argument"] for e in t] == ["value", "value", "payload"]
        assert "0.01..10" in t[1]["allowed"] and "99" in t[1]["message"]
        assert t[0]["payload"] == "hot"
        assert "did you mean temperature" in by_topic["1/temprature"][0]["message"]
        assert by_topic["9/temperature"][0]["argument"] == "voice"
        assert "1" in by_topic["9/temperature"][0]["allowed"]
        assert "voice command" in by_topic["temperature"][0]["message"]
        assert [e["argument"] for e in by_topic["1/bias"]] == ["payload", "colour"]
        assert "selector, amount" in by_topic["1/bias"][1]["allowed"]
        assert "own feedback channel" in by_topic["subscribe"][0]["message"]
        # The music goes on: more notes after the last error.
        seen = len(obs.on("1/event/note"))
        await until(lambda: len(obs.on("1/event/note")) >= seen + 5, "notes after the errors")
        assert bridge.stats.errors == len(bad)


@pytest.mark.asyncio
async def test_retained_commands_are_refused(server: Server, broker: Mosquitto) -> None:
    s = settings_for(broker)
    async with observer(broker, s.prefix) as obs:
        await obs.send("1/temperature", "2.0", retain=True)  # stored before the bridge connects
        async with bridge_for(server, s) as bridge:
            err = await until(lambda: obs.on("error"), "error for the retained command")
            assert "retained" in err[0]["message"] and err[0]["topic"].endswith("/1/temperature")
            assert server.voices["1"].voice.controls.temperature != 2.0
            assert bridge.stats.errors == 1
        await obs.send("1/temperature", b"", retain=True)  # clear it on the broker


# --- state ---------------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_state_is_retained_and_offline_said_on_exit(server: Server, broker: Mosquitto) -> None:
    s = settings_for(broker)
    async with bridge_for(server, s) as bridge:
        await asyncio.wait_for(bridge.connected.wait(), DEADLINE)
        async with observer(broker, s.prefix) as obs:
            await obs.send("1/temperature", "0.7")
            await until(lambda: [d for d in obs.on("1/state") if d["controls"]["temperature"] == 0.7], "state")
        await bridge.flushed()
        # A client that connects later gets the snapshot from the broker at once (retained).
        async with aiomqtt.Client(broker.host, broker.port) as late:
            await late.subscribe(f"{s.prefix}/+/state")
            await late.subscribe(f"{s.prefix}/online")
            got: dict[str, aiomqtt.Message] = {}
            async with asyncio.timeout(DEADLINE):
                async for m in late.messages:
                    got[str(m.topic)] = m
                    if len(got) == 3:
                        break
        st = got[f"{s.prefix}/1/state"]
        assert st.retain
        assert json.loads(st.payload)["voice"] == "1"
        assert got[f"{s.prefix}/online"].payload == b"true"
    async with aiomqtt.Client(broker.host, broker.port) as late:
        await late.subscribe(f"{s.prefix}/online")
        async with asyncio.timeout(DEADLINE):
            m = await anext(aiter(late.messages))
        assert m.payload == b"false" and m.retain


# --- the broker goes away and comes back ---------------------------------------------------------
@pytest.mark.asyncio
async def test_broker_restart_does_not_stop_the_music(server: Server, broker_factory: Any) -> None:
    b: Mosquitto = broker_factory()
    s = settings_for(b)
    tokens = hub_tokens(server)
    async with bridge_for(server, s) as bridge:
        await asyncio.wait_for(bridge.connected.wait(), DEADLINE)
        b.stop()
        await until(lambda: not bridge.connected.is_set(), "the bridge notices the broker is gone")
        n = len(tokens)
        await until(lambda: len(tokens) >= n + 30, "tokens while the broker is down")
        await until(lambda: bridge.stats.failures >= 2, "reconnection attempts")
        # the first failure is the lost connection; every later one a refused reconnection attempt
        assert "cannot connect" in str(bridge.last_error) and "retrying" in str(bridge.last_error)
        b.start()
        await until(lambda: bridge.connected.is_set(), "reconnected")
        assert bridge.stats.connects == 2 and bridge.last_error is None
        async with observer(b, s.prefix) as obs:
            await obs.send("1/temperature", "2.5")
            await until(lambda: [d for d in obs.on("1/state") if d["controls"]["temperature"] == 2.5],
                        "a command works after the reconnect")
            m = len(obs.on("1/event/token"))
            await until(lambda: len(obs.on("1/event/token")) >= m + 5, "events flow again")


# --- authentication and TLS ----------------------------------------------------------------------
@pytest.mark.asyncio
async def test_username_password(server: Server, auth_broker: Mosquitto) -> None:
    s = settings_for(auth_broker, username=USER, password=PASSWORD)
    async with bridge_for(server, s) as bridge, \
            observer(auth_broker, s.prefix, username=USER, password=PASSWORD) as obs:
        await asyncio.wait_for(bridge.connected.wait(), DEADLINE)
        await obs.send("ping", "3")
        assert (await until(lambda: obs.on("pong"), "pong"))[0] == {"id": 3}


@pytest.mark.asyncio
@pytest.mark.parametrize("creds", [{"username": USER, "password": "wrong"}, {}], ids=["bad-password", "anonymous"])
async def test_bad_credentials_give_a_clear_error(server: Server, auth_broker: Mosquitto,
                                                  creds: dict[str, str]) -> None:
    tokens = hub_tokens(server)
    async with bridge_for(server, settings_for(auth_broker, **creds)) as bridge:
        await until(lambda: bridge.stats.failures >= 2, "refused twice (it keeps retrying)")
        err = str(bridge.last_error)
        assert "refused the connection" in err and "mqtt.username" in err
        assert ("user 'folk'" if creds else "anonymous connections") in err
        assert not bridge.connected.is_set() and bridge.running
        n = len(tokens)
        await until(lambda: len(tokens) >= n + 10, "the music goes on")


@pytest.mark.asyncio
async def test_tls(server: Server, tls_broker: Mosquitto) -> None:
    assert tls_broker.tls is not None
    ca = str(tls_broker.tls.ca)
    s = settings_for(tls_broker, ca_file=ca)
    assert s.use_tls and s.describe().startswith("mqtts://")
    async with bridge_for(server, s) as bridge, \
            observer(tls_broker, s.prefix, tls_params=aiomqtt.TLSParameters(ca_certs=ca)) as obs:
        await asyncio.wait_for(bridge.connected.wait(), DEADLINE)
        await obs.send("ping", "[5]")
        assert (await until(lambda: obs.on("pong"), "pong over TLS"))[0] == {"id": 5}
    async with bridge_for(server, settings_for(tls_broker, tls=True)) as bridge:  # the system CAs: refused
        await until(lambda: bridge.stats.failures >= 1, "TLS failure")
        assert "TLS failed" in str(bridge.last_error) and "mqtt.ca_file" in str(bridge.last_error)


def _open_sockets() -> int:
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if _readlink(fd).startswith("socket:"))


def _readlink(p: Path) -> str:
    try:
        return os.readlink(p)
    except OSError:  # closed while listing
        return ""


@pytest.mark.asyncio
async def test_failed_tls_handshakes_leave_no_socket_open(server: Server, tls_broker: Mosquitto) -> None:
    # paho leaves the socket of a failed handshake to the garbage collector; with it off, every
    # retry would keep one open (the bridge's SSL socket closes itself instead)
    gc.collect()
    gc.disable()
    try:
        before = _open_sockets()
        async with bridge_for(server, settings_for(tls_broker, tls=True)) as bridge:
            await until(lambda: bridge.stats.failures >= 8, "8 TLS failures")
            leaked = _open_sockets() - before
        assert leaked <= 1, f"{leaked} sockets left open by 8 failed TLS handshakes"
    finally:
        gc.enable()


# --- wired into the server: [mqtt] in the config file, SIGHUP reload ------------------------------
@pytest.mark.asyncio
async def test_server_opens_the_bridge_from_its_config_and_reloads_it(broker: Mosquitto, tmp_path: Any) -> None:
    first, second = (f"t{uuid.uuid4().hex[:10]}/{p}" for p in ("a", "b"))

    def write(prefix: str) -> None:
        path.write_text(
            '[midi]\noutput = "none"\n[osc]\nenabled = false\n[recording]\ndir = ""\n'
            f'[mqtt]\nenabled = true\nhost = "{broker.host}"\nport = {broker.port}\nprefix = "{prefix}"\n'
            'reconnect_min = 0.05\nreconnect_max = 0.3\n'
            '[[voice]]\nname = "1"\ntempo = 600.0\n')

    path = tmp_path / "folkrnn.toml"
    write(first)
    async with serving(config_mod.load(path), model=tiny_model()) as srv:
        bridge = next(t for t in srv.transports if isinstance(t, MqttBridge))
        await asyncio.wait_for(bridge.connected.wait(), DEADLINE)
        async with observer(broker, first) as obs:
            await obs.send("1/temperature", "0.9")
            await until(lambda: [d for d in obs.on("1/state") if d["controls"]["temperature"] == 0.9], "state")
        write(second)
        await srv.reload()  # what SIGHUP does: the bridge moves to the new prefix
        async with observer(broker, second) as obs:
            await until(lambda: bridge.connected.is_set() and bridge.prefix == second, "reconnected")
            await obs.send("1/temperature", "1.1")
            await until(lambda: [d for d in obs.on("1/state") if d["controls"]["temperature"] == 1.1], "state")
        async with observer(broker, first) as old:  # the old prefix was said goodbye to
            online = await until(lambda: [m for m in old.messages if str(m.topic) == f"{first}/online"], "online")
            assert online[0].payload == b"false"
