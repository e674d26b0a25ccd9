"""Issue 12, config and CLI: bad input ends ``serve`` with one line and status 2 before anything
opens; what would expose the server is said; the performer's own feedback cannot be pushed out."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from pathlib import Path
from typing import Any

import pytest
from live_server import serving, until
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from folkrnn_live.cli.main import main
from folkrnn_live.server.runtime import config


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def one_line_error(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    lines = [ln for ln in err.splitlines() if ln.startswith("folkrnn-live serve: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert all(n in lines[0] for n in needles), lines[0]
    return lines[0]


def test_a_config_of_5000_nested_brackets_is_one_line_and_status_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name, text in (("deep.toml", "a = " + "[" * 5000), ("deep-table.toml", "[osc]\nallow = " + "[" * 5000)):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        assert main(["serve", "--config", str(path)]) == 2
        one_line_error(capsys, str(path), "nested too deeply")


def test_a_midi_dir_that_is_a_file_ends_serve_before_anything_opens(
        tmp_path: Path, tiny_model_dir: Path, free_udp_port: int, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    # It logged "voice 1 failed: FileExistsError" and played on with no music.
    afile = tmp_path / "midi"
    afile.write_text("not a directory", encoding="utf-8")
    caplog.set_level(logging.INFO)
    args = ["serve", "--model", str(tiny_model_dir), "--midi-output", "file", "--midi-dir", str(afile),
            "--osc-port", str(free_udp_port), "--no-web"]
    assert main(args) == 2
    one_line_error(capsys, "midi.dir", "a file, not a directory")
    assert not [r for r in caplog.records if "model" in r.getMessage() or "listening" in r.getMessage()]
    assert port_is_free(free_udp_port)
    # A directory below the file cannot be made either.
    assert main([*args[:5], "--midi-dir", str(afile / "sub"), "--osc-port", str(free_udp_port), "--no-web"]) == 2
    one_line_error(capsys, "midi.dir", "inside")


@pytest.mark.parametrize("setting, needle", [
    ('mqtt.prefix="folk/#"', "mqtt.prefix"),
    ('mqtt.keepalive=1', "mqtt.keepalive"),
])
def test_bad_transport_settings_end_serve_before_the_osc_socket_opens(
        tiny_model_dir: Path, free_udp_port: int, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture, setting: str, needle: str) -> None:
    caplog.set_level(logging.INFO)
    args = ["serve", "--model", str(tiny_model_dir), "--midi-output", "none", "--osc-port", str(free_udp_port),
            "--no-web", "--set", "mqtt.enabled=true", "--set", setting]
    assert main(args) == 2
    one_line_error(capsys, needle)
    assert not [r for r in caplog.records if "listening" in r.getMessage()]


def test_a_bad_midi_map_ends_serve_before_the_osc_socket_opens(
        tmp_path: Path, tiny_model_dir: Path, free_udp_port: int, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    cfg = tmp_path / "map.toml"
    cfg.write_text('[midi_in]\nenabled = true\n\n[[midi_in.map]]\ncc = 21\ncommand = "temperatur"\n', encoding="utf-8")
    caplog.set_level(logging.INFO)
    args = ["serve", "--config", str(cfg), "--model", str(tiny_model_dir), "--midi-output", "none",
            "--osc-port", str(free_udp_port), "--no-web"]
    assert main(args) == 2
    one_line_error(capsys, "midi_in.map")
    assert not [r for r in caplog.records if "listening" in r.getMessage()]
    assert port_is_free(free_udp_port)


@pytest.mark.asyncio
async def test_osc_on_every_interface_with_no_allow_list_is_warned_about(
        tiny_model_dir: Path, free_udp_port: int, caplog: pytest.LogCaptureFixture) -> None:
    # osc.host = "0" bound 0.0.0.0 silently: anybody on the network could steer the voices.
    base = {"model.path": str(tiny_model_dir), "osc.port": free_udp_port, "midi.output": "none",
            "recording.dir": "", "web.enabled": False}
    for host, allow, warned in (("0", [], True), ("127.0.0.1", [], False), ("0", ["127.0.0.0/8"], False)):
        caplog.clear()
        overrides = {**base, "osc.host": host, "osc.allow": allow}
        async with serving(config.load(None, overrides), overrides=overrides):
            pass
        warnings = [r for r in caplog.records
                    if r.levelno == logging.WARNING and "osc.allow is empty" in r.getMessage()]
        assert len(warnings) == (1 if warned else 0), (host, allow)


@pytest.mark.asyncio
async def test_the_osc_note_stream_socket_is_bound_to_loopback(tiny_model_dir: Path, free_udp_port: int) -> None:
    # midi.osc_notes opened a socket on 0.0.0.0 that nothing read.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.setblocking(False)
        overrides = {"model.path": str(tiny_model_dir), "osc.port": free_udp_port, "midi.output": "none",
                     "recording.dir": "", "web.enabled": False, "voice_defaults.tempo": 600,
                     "midi.osc_notes": f"127.0.0.1:{receiver.getsockname()[1]}"}
        async with serving(config.load(None, overrides), overrides=overrides) as srv:
            loop = asyncio.get_running_loop()
            data = await asyncio.wait_for(loop.sock_recv(receiver, 4096), 20)
            assert OscMessage(data).address == "/note"
            out = next(o for lv in srv.voices.values() for o in lv.player.outputs if o.kind == "osc")
            assert out._client._sock.getsockname()[0] == "127.0.0.1"  # type: ignore[attr-defined]


class Peer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[OscMessage] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.got.append(OscMessage(data))


@pytest.mark.asyncio
async def test_a_pinned_subscriber_keeps_its_feedback_when_100_others_subscribe(
        tiny_model_dir: Path, free_udp_port: int) -> None:
    loop = asyncio.get_running_loop()
    _, performer = await loop.create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
    assert performer.transport is not None
    mine = performer.transport.get_extra_info("sockname")[1]
    overrides = {"model.path": str(tiny_model_dir), "osc.port": free_udp_port, "midi.output": "none",
                 "recording.dir": "", "web.enabled": False, "voice_defaults.tempo": 600,
                 "osc.max_subscribers": 4, "osc.pinned": [f"127.0.0.1:{mine}"]}
    try:
        async with serving(config.load(None, overrides), overrides=overrides) as srv:
            await until(lambda: any(m.address == "/folkrnn/1/note" for m in performer.got), "notes to the pinned")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
                other.bind(("127.0.0.1", 0))
                for port in range(100):  # 100 subscribers from one client, each on its own port
                    b = OscMessageBuilder("/folkrnn/subscribe")
                    b.add_arg(20000 + port)
                    other.sendto(b.build().dgram, ("127.0.0.1", free_udp_port))
                    await asyncio.sleep(0.002)
                assert srv.osc is not None
                await until(lambda: srv.osc is not None and srv.osc.stats.evicted >= 90, "the others evicted")
            assert ("127.0.0.1", mine) in srv.osc.subscriptions
            n = len(performer.got)
            await until(lambda: len([m for m in performer.got[n:] if m.address == "/folkrnn/1/note"]) > 3,
                        "notes still reach the pinned subscriber")
            state = [json.loads(m.params[0]) for m in performer.got if m.address == "/folkrnn/1/state"]
            assert all(s["voice"] == "1" for s in state)
    finally:
        performer.transport.close()
