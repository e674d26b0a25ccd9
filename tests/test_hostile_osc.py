"""Issue 12: what a hostile OSC sender tried, sent byte for byte over real UDP on 127.0.0.1.

Each test sends the exact input that hung, crashed or flooded the server and checks what a
performer would notice: an ``/error`` naming the problem, ``/pong`` right after, notes still
coming, replies never larger than the request, and no traceback in the log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from live_server import WAIT, serving, until
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from folkrnn_live.server.runtime import config
from folkrnn_live.server.runtime.service import Server
from folkrnn_live.server.transports.osc import ERROR_REPLY_FLOOR, MAX_FEEDBACK_DATAGRAM

NEGATIVE_SIZE_BUNDLE = b"#bundle\x00" + b"\x00" * 8 + struct.pack(">i", -4)  # the 20 bytes that hung it


def build(address: str, *args: Any) -> bytes:
    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(a)
    return b.build().dgram


def bundle(*elements: bytes, timetag: int = 1) -> bytes:
    return b"#bundle\x00" + struct.pack(">Q", timetag) + b"".join(struct.pack(">i", len(e)) + e for e in elements)


def nested(depth: int, inner: bytes) -> bytes:
    for _ in range(depth):
        inner = bundle(inner)
    return inner


def ntp(seconds_from_now: float) -> int:
    return int((time.time() + seconds_from_now + 2_208_988_800) * 2**32)


class Peer(asyncio.DatagramProtocol):
    """A client socket on 127.0.0.1 that keeps every datagram it gets, raw."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.server: tuple[str, int] = ("127.0.0.1", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.append(data)

    def send_raw(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(data, self.server)

    def of(self, address: str) -> list[list[Any]]:
        out = []
        for d in self.received:
            m = OscMessage(d)
            if m.address == address:
                out.append(m.params)
        return out

    async def ping(self, n: int) -> None:
        """/ping n, and wait for its /pong (the server is alive and answering)."""
        self.send_raw(build("/folkrnn/ping", n))
        await until(lambda: [n] in self.of("/pong"), f"/pong {n}")


@asynccontextmanager
async def running(model_dir: Path, port: int, **settings: Any) -> AsyncIterator[tuple[Server, Peer]]:
    overrides = {"model.path": str(model_dir), "osc.port": port, "midi.output": "none", "recording.dir": "",
                 "voice_defaults.tempo": 600, "server.state_interval": 0.0, "server.voices": 2}
    overrides.update(settings)
    async with serving(config.load(None, overrides), overrides=overrides) as srv:
        _, peer = await asyncio.get_running_loop().create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
        peer.server = ("127.0.0.1", port)
        try:
            yield srv, peer
        finally:
            assert peer.transport is not None
            peer.transport.close()


def notes(srv: Server) -> int:
    return sum(lv.player.stats.notes for lv in srv.voices.values())


async def notes_keep_coming(srv: Server) -> None:
    before = notes(srv)
    await until(lambda: notes(srv) >= before + 4, "notes after the hostile input")


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert not bad, f"{len(bad)} log record(s) with a traceback, first: {bad[0].getMessage()[:200]}"


def errors_with(peer: Peer, text: str) -> Callable[[], list[list[Any]]]:
    return lambda: [e for e in peer.of("/error") if text in str(e[2])]


@pytest.mark.asyncio
async def test_a_bundle_element_of_negative_size_is_an_error_not_a_hang(
        tiny_model_dir: Path, free_udp_port: int, caplog: pytest.LogCaptureFixture) -> None:
    # python-osc's bundle parser never returned on it: no notes, no /pong, SIGTERM ignored, 10 MB/s of log.
    async with running(tiny_model_dir, free_udp_port) as (srv, peer):
        assert len(NEGATIVE_SIZE_BUNDLE) == 20
        peer.send_raw(NEGATIVE_SIZE_BUNDLE)
        err = await until(errors_with(peer, "bundle element size -4"), "an /error about the element size")
        assert err[0][2].startswith("malformed OSC packet")
        await peer.ping(1)
        await notes_keep_coming(srv)
    no_traceback(caplog)


@pytest.mark.asyncio
async def test_bundles_nested_3000_deep_get_an_error_and_no_traceback(
        tiny_model_dir: Path, free_udp_port: int, caplog: pytest.LogCaptureFixture) -> None:
    # ~60 KB nested 3,000 deep: RecursionError escaped datagram_received with 33 KB of traceback
    # logged per packet, and no /error.
    packet = nested(3000, build("/folkrnn/ping", 99))
    assert 50_000 < len(packet) < 65_000
    caplog.set_level(logging.INFO)
    async with running(tiny_model_dir, free_udp_port) as (srv, peer):
        for i in range(1, 11):  # one at a time: ten 60 KB datagrams at once overflow a socket buffer
            peer.send_raw(packet)
            await until(lambda i=i: len(errors_with(peer, "nested more than")()) == i, f"/error {i}")
        assert [99] not in peer.of("/pong")  # nothing inside was acted on
        await peer.ping(2)
        await notes_keep_coming(srv)
    no_traceback(caplog)
    # Shallow nesting is still fine: three levels hold a ping that is answered.
    async with running(tiny_model_dir, free_udp_port) as (_, peer):
        peer.send_raw(nested(3, build("/folkrnn/ping", 3)))
        await until(lambda: [3] in peer.of("/pong"), "/pong from a bundle nested 3 deep")


@pytest.mark.asyncio
@pytest.mark.parametrize("digits", [400, 5000])
async def test_a_seed_of_hundreds_of_digits_is_an_error_naming_the_argument(
        tiny_model_dir: Path, free_udp_port: int, caplog: pytest.LogCaptureFixture, digits: int) -> None:
    # 400 digits: OverflowError in validation, a traceback in the asyncio handler, no /error.
    # 5,000 digits: past Python's 4,300-digit limit; the /error echoed all of them (5 KB).
    request = build("/folkrnn/1/seed", "9" * digits)
    async with running(tiny_model_dir, free_udp_port) as (srv, peer):
        peer.send_raw(request)
        err = await until(lambda: peer.of("/error"), "an /error for the seed")
        address, argument, message = err[0]
        assert (address, argument) == ("/folkrnn/1/seed", "seed")
        assert "at most 64 characters" in message
        assert all(len(d) <= max(len(request), ERROR_REPLY_FLOOR) for d in peer.received)
        await peer.ping(4)
        await notes_keep_coming(srv)
    no_traceback(caplog)


@pytest.mark.asyncio
async def test_huge_integers_in_time_tagged_bundles_are_errors_too(
        tiny_model_dir: Path, free_udp_port: int, caplog: pytest.LogCaptureFixture) -> None:
    async with running(tiny_model_dir, free_udp_port) as (srv, peer):
        later = bundle(build("/folkrnn/1/seed", "7" * 400), build("/folkrnn/1/temperature", "1" * 400),
                       timetag=ntp(0.3))
        peer.send_raw(later)
        err = await until(lambda: len(peer.of("/error")) >= 2 and peer.of("/error"), "two /error replies")
        assert {(e[0], e[1]) for e in err} == {("/folkrnn/1/seed", "seed"), ("/folkrnn/1/temperature", "value")}
        # A 64-bit OSC integer ('h') far out of range is an error naming the range, not an overflow.
        peer.send_raw(build("/folkrnn/1/temperature", 2**62))
        await until(errors_with(peer, "must be in range"), "an out-of-range /error")
        await peer.ping(5)
        await notes_keep_coming(srv)
    no_traceback(caplog)


@pytest.mark.asyncio
async def test_an_error_reply_is_never_larger_than_the_request_or_the_floor(
        tiny_model_dir: Path, free_udp_port: int) -> None:
    # A 16-byte packet to an unknown command got 500 bytes back (every command name listed).
    request = build("/folkrnn/zz")
    assert len(request) == 16
    async with running(tiny_model_dir, free_udp_port) as (_, peer):
        peer.send_raw(request)
        err = await until(errors_with(peer, "unknown command"), "an /error for the unknown command")
        assert len(peer.received[0]) <= ERROR_REPLY_FLOOR
        assert err[0][0] == "/folkrnn/zz" and err[0][2].endswith("…")
        # A large request may get its whole answer.
        padded = build("/folkrnn/zz", "x" * 600)
        peer.send_raw(padded)
        await until(lambda: len(peer.of("/error")) == 2, "the second /error")
        assert len(peer.received[-1]) > ERROR_REPLY_FLOOR and not peer.of("/error")[1][2].endswith("…")


@pytest.mark.asyncio
async def test_error_replies_are_rate_limited_per_client(tiny_model_dir: Path, free_udp_port: int) -> None:
    async with running(tiny_model_dir, free_udp_port) as (srv, peer):
        t0 = time.monotonic()
        for _ in range(10):  # in batches: 400 datagrams at once overflow the socket's receive buffer
            for _ in range(40):
                peer.send_raw(build("/folkrnn/zz"))
            await asyncio.sleep(0.005)
        await until(lambda: srv.osc is not None and srv.osc.stats.errors >= 200, "200 bad messages counted")
        elapsed = time.monotonic() - t0
        await asyncio.sleep(0.2)
        sent = len(peer.of("/error"))
        assert srv.osc is not None and srv.osc.stats.errors_unsent > 0
        assert sent <= 50 + 50 * (elapsed + 0.2) + 1  # ERROR_BURST + ERROR_RATE per second


@pytest.mark.asyncio
async def test_state_of_a_4096_token_prime_fits_a_datagram_and_says_it_was_cut(
        tiny_model_dir: Path, free_udp_port: int) -> None:
    # The state snapshot grew past what a UDP datagram holds and feedback went silent: no /error, no log.
    async with running(tiny_model_dir, free_udp_port) as (srv, peer):
        tokens = [t for t in srv.context.vocab.tokens if t.startswith(("M:", "K:"))]
        prime = (tokens * 4096)[:4096]
        peer.send_raw(build("/folkrnn/subscribe", 0, "state"))
        await until(lambda: peer.of("/folkrnn/1/state"), "state on subscribing")
        peer.send_raw(build("/folkrnn/1/prime", *prime))

        def cut_state() -> dict[str, Any] | None:
            for params in peer.of("/folkrnn/1/state"):
                snap = json.loads(params[0])
                if snap.get("prime_length") == 4096:
                    return snap
            return None

        snap = await until(cut_state, "a state snapshot with the 4,096-token prime")
        assert snap["prime"] == prime[:len(snap["prime"])] and len(snap["prime"]) < 4096
        assert "prime" in snap["truncated"]
        assert all(len(d) <= MAX_FEEDBACK_DATAGRAM for d in peer.received)
        n = len(peer.of("/folkrnn/1/state"))
        srv.voices["1"].schedule_state()
        await until(lambda: len(peer.of("/folkrnn/1/state")) > n, "state keeps coming", WAIT)
