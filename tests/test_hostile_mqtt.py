"""Issue 12 over MQTT: huge integers and deeply nested JSON through the real Mosquitto broker.

They answered "internal error" with a traceback in the log (OverflowError, RecursionError, the
4,300-digit ValueError); each must be an ``<prefix>/error`` naming the argument and what is
allowed, with the bridge answering ``ping`` right after.
"""

# The broker fixture is imported from mqtt_broker and used as a test argument.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from live_server import serving, until
from mqtt_broker import Mosquitto, broker  # noqa: F401

from folkrnn_live.server.runtime import config
from folkrnn_live.server.runtime.service import Server

pytestmark = pytest.mark.mqtt


@asynccontextmanager
async def mqtt_server(model_dir: Path, b: Mosquitto) -> AsyncIterator[tuple[Server, aiomqtt.Client, list[Any], str]]:
    prefix = f"h{uuid.uuid4().hex[:8]}/folkrnn"
    overrides = {"model.path": str(model_dir), "osc.enabled": False, "midi.output": "none", "recording.dir": "",
                 "voice_defaults.tempo": 600, "mqtt.enabled": True, "mqtt.host": b.host, "mqtt.port": b.port,
                 "mqtt.prefix": prefix, "mqtt.reconnect_min": 0.05}
    async with (serving(config.load(None, overrides), overrides=overrides) as srv,
                aiomqtt.Client(b.host, b.port, identifier=f"hostile-{uuid.uuid4().hex[:8]}") as client):
        got: list[Any] = []
        await client.subscribe(f"{prefix}/error")
        await client.subscribe(f"{prefix}/pong")

        async def collect() -> None:
            async for m in client.messages:
                got.append((str(m.topic).rsplit("/", 1)[1], json.loads(m.payload)))  # type: ignore[arg-type]

        task = asyncio.create_task(collect(), name="hostile mqtt observer")
        bridge = next(t for t in srv.transports if type(t).__name__ == "MqttBridge")
        await asyncio.wait_for(bridge.connected.wait(), 20)
        try:
            yield srv, client, got, prefix
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


PAYLOADS = [
    ("1/seed", json.dumps(["9" * 400]).replace('"', ""), "seed", "at most 64 characters"),  # a 400-digit JSON int
    ("1/seed", "9" * 5000, "seed", "at most 64 characters"),  # plain text past the 4,300-digit limit
    ("1/seed", "[" + "9" * 5000 + "]", "seed", "at most 64 characters"),  # the same as JSON
    ("1/temperature", "[" * 30_000 + "]" * 30_000, "payload", "nested at most 32 levels"),
    ("1/bias", '{"selector": ' + "[" * 3000 + "]" * 3000 + ', "amount": 1}', "payload", "nested at most"),
]


@pytest.mark.asyncio
async def test_huge_integers_and_deep_json_are_errors_naming_the_argument(
        tiny_model_dir: Path, broker: Mosquitto, caplog: pytest.LogCaptureFixture) -> None:
    async with mqtt_server(tiny_model_dir, broker) as (srv, client, got, prefix):
        for i, (topic, payload, argument, allowed) in enumerate(PAYLOADS):
            await client.publish(f"{prefix}/{topic}", payload)
            errors = await until(lambda i=i: len([g for g in got if g[0] == "error"]) > i and got, f"error {i}")
            err = [g[1] for g in errors if g[0] == "error"][i]
            assert err["argument"] == argument and allowed in err["message"] + err["allowed"], err
            assert "internal error" not in err["message"]
        await client.publish(f"{prefix}/ping", "11")
        await until(lambda: ("pong", {"id": 11}) in got, "pong after the hostile payloads")
        before = sum(lv.player.stats.notes for lv in srv.voices.values())
        await until(lambda: sum(lv.player.stats.notes for lv in srv.voices.values()) > before + 3, "notes")
    bad = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert not bad, bad[0].getMessage()[:300]


@pytest.mark.asyncio
async def test_the_loop_reports_escaped_exceptions_in_one_line(
        tiny_model_dir: Path, free_udp_port: int, caplog: pytest.LogCaptureFixture) -> None:
    # Killing the broker raced aiomqtt's call_soon_threadsafe(loop.add_writer, fileno): the socket
    # was closed when the callback ran, and asyncio logged 20 lines of traceback (bench_soak).
    import socket

    overrides = {"model.path": str(tiny_model_dir), "osc.port": free_udp_port, "midi.output": "none",
                 "recording.dir": "", "web.enabled": False}
    async with serving(config.load(None, overrides), overrides=overrides):
        loop = asyncio.get_running_loop()
        s = socket.socket()
        fd = s.fileno()
        s.close()
        loop.call_soon(loop.add_writer, fd, lambda: None)  # the race, made certain

        def bug() -> None:
            raise RuntimeError("a bug in a callback")

        for _ in range(3):
            loop.call_soon(bug)
        await asyncio.sleep(0.1)
    records = [r for r in caplog.records if "event loop" in r.getMessage() or r.name == "asyncio"]
    errors = [r for r in records if r.levelno >= logging.WARNING]
    assert len(errors) == 1 and "a bug in a callback" in errors[0].getMessage()  # once per 10 s, one line
    assert not [r for r in caplog.records if r.levelno >= logging.INFO and (r.exc_info or "\n" in r.getMessage())]
