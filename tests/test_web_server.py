"""The page's server over real localhost TCP, without a browser: who may connect, what a page may
send, what it gets back.  A web page on another site must not drive the server (a foreign Origin on
the WebSocket, a foreign Host from a DNS-rebinding page are refused); a page's commands go through
the same registry, validation and rate limit as OSC; finished tunes download as ABC and MIDI."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from live_server import WAIT, serving, until

from folkrnn_live.server.commands.catalog import COMMANDS
from folkrnn_live.server.commands.registry import CommandError
from folkrnn_live.server.runtime import config
from folkrnn_live.server.runtime.config_keys import ConfigError
from folkrnn_live.server.runtime.service import Server
from folkrnn_live.server.transports.web.settings import WebSettings
from folkrnn_live.server.transports.web.transport import WebTransport


@contextlib.asynccontextmanager
async def running(model_dir: Path, port: int, **settings: Any) -> AsyncIterator[tuple[Server, Any, str]]:
    overrides = {"model.path": str(model_dir), "osc.port": port, "midi.output": "none", "recording.dir": "",
                 "voice_defaults.tempo": 600, "server.state_interval": 0.0, "web.port": 0}
    overrides.update(settings)
    async with serving(config.load(None, overrides), overrides=overrides) as srv:
        web = next((t for t in srv.transports if isinstance(t, WebTransport)), None)
        yield srv, web, "" if web is None else f"127.0.0.1:{web.port}"


class Page:
    """A WebSocket client speaking the page's protocol."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.messages.extend(json.loads(msg.data))

    async def send(self, **msg: Any) -> None:
        await self.ws.send_str(json.dumps(msg))

    def replies(self, name: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == "reply" and m["name"] == name]

    def feedback(self, stream: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == "fb" and m["stream"] == stream]


@contextlib.asynccontextmanager
async def page(address: str, origin: str | None = None) -> AsyncIterator[Page]:
    async with aiohttp.ClientSession() as session, session.ws_connect(
            f"http://{address}/ws", origin=origin or f"http://{address}") as ws:
        p = Page(ws)
        try:
            yield p
        finally:
            await ws.close()
            await p.task


@pytest.mark.asyncio
async def test_a_foreign_host_is_refused(tiny_model_dir: Path, free_udp_port: int) -> None:
    # DNS rebinding: evil.example resolves to 127.0.0.1, and the browser sends Host: evil.example.
    async with running(tiny_model_dir, free_udp_port) as (_, web, address), aiohttp.ClientSession() as s:
        port = address.rsplit(":", 1)[1]
        for host, status in ((address, 200), (f"localhost:{port}", 200), (f"evil.example:{port}", 403),
                             (f"127.0.0.1.evil.example:{port}", 403), ("", 403)):
            async with s.get(f"http://{address}/", headers={"Host": host}) as r:
                assert r.status == status, host
                if status == 200:
                    assert "folkrnn-live" in await r.text()
                    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
            async with s.get(f"http://{address}/api/schema", headers={"Host": host}) as r:
                assert r.status == status, host
        assert web.stats.refused == 6


@pytest.mark.asyncio
async def test_a_websocket_from_another_site_is_refused(tiny_model_dir: Path, free_udp_port: int) -> None:
    async with running(tiny_model_dir, free_udp_port) as (_, web, address):
        port = int(address.rsplit(":", 1)[1])
        for origin in ("http://evil.example", f"http://evil.example:{port}", f"http://127.0.0.1:{port + 1}",
                       "null", f"file://127.0.0.1:{port}"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                async with page(address, origin=origin):
                    pass
            assert info.value.status == 403, origin
        async with aiohttp.ClientSession() as s:  # no Origin at all: not a page of ours either
            with pytest.raises(aiohttp.WSServerHandshakeError):
                async with s.ws_connect(f"http://{address}/ws"):
                    pass
        assert web.clients == {}
        async with page(address, origin=f"http://localhost:{port}") as p:  # the page's own origin
            await until(lambda: p.messages, "the hello")
            assert p.messages[0]["type"] == "hello"


@pytest.mark.asyncio
async def test_the_allowlist_applies_to_pages(tiny_model_dir: Path, free_udp_port: int) -> None:
    async with running(tiny_model_dir, free_udp_port, **{"web.allow": ["10.0.0.0/8"]}) as (_, _, address), \
            aiohttp.ClientSession() as s, s.get(f"http://{address}/") as r:
        assert r.status == 403


@pytest.mark.asyncio
async def test_page_commands_go_through_the_registry(tiny_model_dir: Path, free_udp_port: int) -> None:
    async with running(tiny_model_dir, free_udp_port, **{"server.voices": 2}) as (srv, _, address), \
            page(address) as p:
        hello = await until(lambda: [m for m in p.messages if m["type"] == "hello"], "the hello")
        names = {c["name"] for c in hello[0]["schema"]["commands"]}
        assert names == set(COMMANDS.names())  # every command of the registry, none written by hand
        await p.send(type="command", id=1, command="temperature", target="2", args=[0.5])
        await until(lambda: [m for m in p.feedback("applied") if m["data"]["command"] == "temperature"],
                    "the temperature applied")
        assert srv.voices["2"].voice.controls.temperature == 0.5
        assert srv.voices["1"].voice.controls.temperature == 1.0
        await p.send(type="command", id=2, command="temperature", target="1", args=[99])
        err = await until(lambda: [m for m in p.replies("error") if m.get("id") == 2], "the error")
        with pytest.raises(CommandError) as expected:
            COMMANDS.bind("temperature", [99], srv.context, "1")
        assert err[0]["data"]["message"] == expected.value.detail
        assert err[0]["data"]["address"] == "/folkrnn/1/temperature"
        await p.send(type="command", id=3, command="tempo", target="9", args=[120])
        await p.send(type="command", id=4, command="ping", target=None, args=[7])
        await until(lambda: p.replies("pong"), "the pong")
        assert p.replies("pong")[0]["data"] == {"id": 7}
        assert "unknown voice '9'" in next(m for m in p.replies("error") if m.get("id") == 3)["data"]["message"]
        await p.ws.send_str("not json")
        await until(lambda: [m for m in p.replies("error") if "not JSON" in m["data"]["message"]], "the JSON error")
        assert srv.voices["1"].player.state == "playing"  # nothing a page sends stops the music


@pytest.mark.asyncio
async def test_hostile_json_from_a_page_gets_an_error_and_the_music_goes_on(tiny_model_dir: Path,
                                                                             free_udp_port: int) -> None:
    async with running(tiny_model_dir, free_udp_port) as (srv, _, address), page(address) as p:
        await until(lambda: [m for m in p.messages if m["type"] == "hello"], "the hello")
        await p.ws.send_str("[" * 30_000 + "]" * 30_000)  # json.loads alone raises RecursionError
        await until(lambda: [m for m in p.replies("error") if "nested 30000 levels" in m["data"]["message"]],
                    "the nesting error")
        await p.ws.send_str(json.dumps({"type": "command", "id": 5, "command": "seed", "target": "1"})[:-1]
                            + ', "args": [' + "9" * 5_000 + "]}")  # int() of 4,300+ digits raises
        err = await until(lambda: [m for m in p.replies("error") if m.get("id") == 5], "the seed error")
        assert err[0]["data"]["address"] == "/folkrnn/1/seed"
        await p.send(type="command", id=6, command="ping", target=None, args=[8])
        await until(lambda: p.replies("pong"), "the pong after hostile JSON")
        assert srv.voices["1"].player.state == "playing"


@pytest.mark.asyncio
async def test_a_flood_from_a_page_is_rate_limited(tiny_model_dir: Path, free_udp_port: int) -> None:
    settings = {"web.rate_limit": 5.0, "web.burst": 10}
    async with running(tiny_model_dir, free_udp_port, **settings) as (srv, web, address), page(address) as p:
        for i in range(40):
            await p.send(type="command", id=i, command="velocity", target="1", args=[60 + i])
        await until(lambda: [m for m in p.replies("error") if "rate limit" in m["data"]["message"]], "the notice")
        await asyncio.sleep(0.2)
        assert 10 <= web.stats.commands <= 12 and web.stats.limited >= 28
        assert len([m for m in p.replies("error") if "rate limit" in m["data"]["message"]]) == 1
        assert srv.voices["1"].player.settings.velocity < 60 + 39


@pytest.mark.asyncio
async def test_finished_tunes_download_as_abc_and_midi(tiny_model_dir: Path, free_udp_port: int) -> None:
    async with running(tiny_model_dir, free_udp_port, **{"voice_defaults.max_tokens": 12}) as (srv, web, address):
        await until(lambda: web.book.finished.get("1"), "a finished tune", timeout=WAIT)
        tune = web.book.finished["1"][0]
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://{address}/tunes/1/{tune.number}.abc") as r:
                assert r.status == 200
                abc = await r.text()
            async with s.get(f"http://{address}/tunes/1/{tune.number}.mid") as r:
                assert r.status == 200
                midi = await r.read()
            async with s.get(f"http://{address}/tunes/1/99999.abc") as r:
                assert r.status == 404
        assert abc.startswith(f"X:{tune.number}\n") and "K:" in abc
        assert midi[:4] == b"MThd"
        assert len(tune.tokens) == 12 and srv.voices["1"].voice.tunes_started > tune.number


@pytest.mark.asyncio
async def test_binding_beyond_the_loopback_needs_expose(tiny_model_dir: Path, free_udp_port: int,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ConfigError, match="web.host '0.0.0.0' is beyond the loopback.*web.expose = true"):
        WebSettings.from_config({"web.host": "0.0.0.0"})
    with pytest.raises(ConfigError, match="web.hosts entry 'http://x' must be a host name"):
        WebSettings.from_config({"web.hosts": ["http://x"]})
    # Exposed, but only to this machine's own addresses (the test talks to 127.0.0.1 only).
    settings = {"web.host": "0.0.0.0", "web.expose": True, "web.allow": ["127.0.0.0/8"]}
    with caplog.at_level(logging.INFO, logger="folkrnn_live"):
        async with running(tiny_model_dir, free_udp_port, **settings) as (_, web, address), \
                aiohttp.ClientSession() as s, s.get(f"http://{address}/") as r:
            assert r.status == 200
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("beyond this machine" in w and str(web.port) in w for w in warnings)


@pytest.mark.asyncio
async def test_no_web_serves_no_page(tiny_model_dir: Path, free_udp_port: int) -> None:
    async with running(tiny_model_dir, free_udp_port, **{"web.enabled": False}) as (srv, _, _):
        pass
    assert not any(isinstance(t, WebTransport) for t in srv.transports)


def test_no_web_flag() -> None:
    from folkrnn_live.cli.main import build_parser
    from folkrnn_live.cli.serve import overrides_from

    args = build_parser().parse_args(["serve", "--no-web", "--web-port", "7555"])
    assert overrides_from(args) == {"web.enabled": False, "web.port": 7555}


@pytest.mark.asyncio
async def test_a_page_opened_mid_tune_gets_the_whole_tune_and_every_token_after(tiny_model_dir: Path,
                                                                                 free_udp_port: int) -> None:
    async with running(tiny_model_dir, free_udp_port) as (srv, web, address):
        await until(lambda: len(web.book.current.get("1", ()).tokens) >= 5 if "1" in web.book.current else False,
                    "a tune under way")
        async with page(address) as p:
            hello = await until(lambda: [m for m in p.messages if m["type"] == "hello"], "the hello")
            cur = hello[0]["voices"]["1"]["current"]
            await until(lambda: len(p.feedback("tokens")) >= 30, "30 more tokens")
            totals = [m["data"]["total"] for m in p.feedback("tokens")]
            tokens = [m for m in p.feedback("tokens") if m["data"]["tune"] == cur["tune"]]
        # The tune so far, then every token after it: no gap, no repeat.
        first = cur["first_total"] + cur["length"]
        assert totals == list(range(first, first + len(totals)))
        kept = web.book.find("1", cur["tune"])
        assert kept is not None
        assert cur["tokens"] + [m["data"]["token"] for m in tokens] == kept.tokens[:cur["length"] + len(tokens)]
        assert all(isinstance(m["play"], int) and m["play"] >= 0 for m in tokens)
        assert srv.voices["1"].voice.total_steps >= totals[-1]


@pytest.mark.asyncio
async def test_the_activation_strip_only_while_a_page_asks(tiny_model_dir: Path, free_udp_port: int) -> None:
    import base64

    async with running(tiny_model_dir, free_udp_port) as (srv, _, address), page(address) as p:
        await until(lambda: p.messages, "the hello")
        await asyncio.sleep(0.3)
        assert not [m for m in p.messages if m["type"] == "act"]  # off by default: nothing computed
        lv = srv.voices["1"]
        listeners = len(lv.voice.listeners)
        await p.send(type="activations", on=True)
        acts = await until(lambda: [m for m in p.messages if m["type"] == "act"][:5], "activations")
        hidden = lv.model.config.hidden_size
        for m in acts:
            assert m["voice"] == "1" and len(base64.b64decode(m["hidden"])) == hidden
            probs = [pr for _, pr in m["top"]]
            assert len(probs) == 10 and probs == sorted(probs, reverse=True) and sum(probs) <= 1.0001
        assert len(lv.voice.listeners) == listeners + 1
        await p.send(type="activations", on=False)
        await until(lambda: len(lv.voice.listeners) == listeners, "the listener removed")


def _stalled_page(host: str, port: int) -> socket.socket:
    """A WebSocket client that opens the page's socket with a tiny receive buffer, asks for activations (the
    most traffic) and then never reads again, like a frozen tab.  Written by hand on a plain socket: aiohttp's
    client would go on reading into its own buffer after the test stops reading."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: the TCP window is agreed then
    sock.settimeout(WAIT)
    sock.connect((host, port))
    sock.sendall((f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nOrigin: http://{host}:{port}\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                  f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)  # byte by byte: nothing after the headers is read
    assert head.startswith(b"HTTP/1.1 101"), head
    payload, mask = json.dumps({"type": "activations", "on": True}).encode(), os.urandom(4)
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    return sock


@pytest.mark.asyncio
async def test_a_page_that_stops_reading_is_disconnected_and_the_others_play_on(tiny_model_dir: Path,
                                                                                free_udp_port: int) -> None:
    """A page whose tab is frozen stops reading its socket: its queue fills to web.queue_limit and the server
    closes it (it would reconnect and redraw), while another page and the voices go on."""
    async with running(tiny_model_dir, free_udp_port, **{"web.queue_limit": 100, "server.voices": 4}) as (
            srv, web, address), page(address) as reader:
        sock = await asyncio.to_thread(_stalled_page, "127.0.0.1", web.port)
        try:
            # Loopback send buffers grow to megabytes, which would take minutes to fill at this rate: give the
            # server's end of the stalled page's connection a small one, as a slow network would.
            stalled = max(web.clients.values(), key=lambda c: c.key)
            stalled.ws.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            await until(lambda: web.stats.overflows == 1, "the stalled page disconnected", timeout=60)
            # At once, not at the next missed heartbeat (10 s): its connection is dropped.
            await until(lambda: len(web.clients) == 1, "the stalled page removed", timeout=3)
            seen = len(reader.feedback("tokens"))
            steps = srv.voices["1"].voice.total_steps
            await until(lambda: len(reader.feedback("tokens")) >= seen + 20, "20 more tokens on the reading page")
            assert srv.voices["1"].voice.total_steps > steps
            assert web.stats.overflows == 1  # the page that read never fell behind
        finally:
            sock.close()
