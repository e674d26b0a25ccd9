"""End to end over real localhost UDP: an in-process server, a python-osc-built client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from live_server import WAIT, serving, until
from pythonosc.osc_bundle_builder import OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from folkrnn_live.model import checkpoint
from folkrnn_live.server.runtime import config
from folkrnn_live.server.runtime.service import Server
from folkrnn_live.server.runtime.token_source import replay
from folkrnn_live.server.transports.common import RateLimiter


def build(address: str, *args: Any) -> bytes:
    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(a)
    return b.build().dgram


class Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.messages: list[OscMessage] = []
        self._new = asyncio.Event()
        self.transport: asyncio.DatagramTransport | None = None
        self.server: tuple[str, int] = ("127.0.0.1", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.messages.append(OscMessage(data))
        self._new.set()

    def send(self, address: str, *args: Any) -> None:
        assert self.transport is not None
        self.transport.sendto(build(address, *args), self.server)

    def send_raw(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(data, self.server)

    def of(self, address: str) -> list[OscMessage]:
        return [m for m in self.messages if m.address == address]

    async def until(self, cond: Callable[[], Any], timeout: float = WAIT) -> Any:
        async with asyncio.timeout(timeout):
            while _pending(result := cond()):
                self._new.clear()
                # Woken by a datagram, or after a short while for conditions on server state.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._new.wait(), 0.02)
            return result


def _pending(result: Any) -> bool:
    """Not there yet: None, False or an empty list (0 is a real step number)."""
    return result is None or result is False or (isinstance(result, list) and not result)


@contextlib.asynccontextmanager
async def running(model_dir: Path, port: int, tmp: Path, **settings: Any) -> AsyncIterator[tuple[Server, Client]]:
    overrides = {"model.path": str(model_dir), "osc.port": port, "midi.output": "none",
                 "recording.dir": str(tmp / "rec"), "voice_defaults.tempo": 600, "server.state_interval": 0.0}
    overrides.update(settings)
    async with serving(config.load(None, overrides), overrides=overrides) as srv:
        loop = asyncio.get_running_loop()
        _, client = await loop.create_datagram_endpoint(Client, local_addr=("127.0.0.1", 0))
        client.server = ("127.0.0.1", port)
        try:
            yield srv, client
        finally:
            assert client.transport is not None
            client.transport.close()


def tokens_of(client: Client) -> dict[int, str]:
    """total step -> token, from the token feedback."""
    return {int(m.params[3]): str(m.params[2]) for m in client.of("/folkrnn/1/token")}


def applied_step(client: Client, command: str) -> int | None:
    """The step at which the first command whose text starts with ``command`` took effect."""
    for m in client.of("/folkrnn/1/applied"):
        text = str(m.params[1])
        if text == command or text.startswith(command + " "):
            return int(m.params[0])
    return None


@pytest.mark.asyncio
async def test_bad_messages_get_errors_while_notes_keep_coming(
    tiny_model_dir: Path, free_udp_port: int, tmp_path: Path
) -> None:
    async with running(tiny_model_dir, free_udp_port, tmp_path) as (srv, c):
        c.send("/folkrnn/subscribe", 0, "notes")
        await c.until(lambda: len(c.of("/folkrnn/1/note")) >= 3)
        bad = [
            (("/folkrnn/1/nope",), "/folkrnn/1/nope", ""),
            (("/folkrnn/1/temperature", "hot"), "/folkrnn/1/temperature", "value"),
            (("/folkrnn/1/temperature",), "/folkrnn/1/temperature", "value"),
            (("/folkrnn/1/temperature", 1.0, 2.0), "/folkrnn/1/temperature", "argument 2"),
            (("/folkrnn/1/channel", 99), "/folkrnn/1/channel", "channel"),
            (("/folkrnn/1/bias", "X9", 1.0), "/folkrnn/1/bias", "selector"),
            (("/folkrnn/1/snip", 7, "out", 1), "/folkrnn/1/snip", "layer"),
            (("/folkrnn/7/stop",), "/folkrnn/7/stop", "voice"),
            (("/folkrnn/tempo", 90.0), "/folkrnn/tempo", ""),
            (("/elsewhere",), "/elsewhere", ""),
        ]
        for args, _, _ in bad:
            c.send(*args)
        c.send_raw(b"\x00garbage")
        errors = await c.until(lambda: (e := c.of("/error")) and len(e) >= len(bad) + 1 and e)
        got = [(str(e.params[0]), str(e.params[1])) for e in errors]
        for _, address, argument in bad:
            assert (address, argument) in got
        assert all(e.params[2] for e in errors)  # every error says what is allowed
        assert any("malformed" in str(e.params[2]) for e in errors)
        n = len(c.of("/folkrnn/1/note"))
        await c.until(lambda: len(c.of("/folkrnn/1/note")) >= n + 3)  # the music goes on
        assert srv.voices["1"].player.state == "playing"


@pytest.mark.asyncio
async def test_controls_change_what_the_network_generates(
    tiny_model_dir: Path, free_udp_port: int, tmp_path: Path
) -> None:
    async with running(tiny_model_dir, free_udp_port, tmp_path) as (srv, c):
        vocab = srv.voices["1"].voice.vocab
        bars = set(vocab.decode(vocab.select("@bar")))
        c.send("/folkrnn/subscribe", 0, "tokens", "applied", "probs")
        # Bar lines made likely, then suppressed for 30 steps: none in those steps.
        c.send("/folkrnn/1/bias", "@bar", 4.0)
        c.send("/folkrnn/1/suppress", 20, "@bar")
        s = await c.until(lambda: applied_step(c, "suppress"))
        await c.until(lambda: max(tokens_of(c), default=-1) >= s + 40)
        toks = tokens_of(c)
        assert not any(toks[i] in bars for i in range(s, s + 20))
        assert any(toks[i] in bars for i in range(s + 20, s + 40))
        # Snip every unit of the last layer: the softmax only sees its bias, the same every step.
        c.send("/folkrnn/1/snip", 2, "out", *range(16))
        s = await c.until(lambda: applied_step(c, "snip"))
        await c.until(lambda: max(tokens_of(c), default=-1) >= s + 5)
        c.send("/folkrnn/1/restore")
        r = await c.until(lambda: applied_step(c, "restore"))
        await c.until(lambda: max(tokens_of(c), default=-1) >= r + 5)
        probs = {int(m.params[0]): tuple(m.params[1:]) for m in c.of("/folkrnn/1/probs")}
        assert len({probs[i] for i in range(s, r)}) == 1
        assert len({probs[i] for i in range(r, r + 5)}) == 5
        # Bias toward a pitch class: measurably more of it.
        g = set(vocab.decode(vocab.select("pc:G")))
        c.send("/folkrnn/1/clear")
        c.send("/folkrnn/1/bias", "pc:G", 3.0)
        b = await c.until(lambda: applied_step(c, "bias pc:G"))
        await c.until(lambda: max(tokens_of(c), default=-1) >= b + 50)
        toks = tokens_of(c)
        with_bias = sum(toks[i] in g for i in range(b, b + 50))
        assert with_bias > 15  # ~6 % of tokens (3 of 50) without the bias: the tiny model is near uniform


@pytest.mark.asyncio
async def test_a_live_session_replays_token_for_token(
    tiny_model_dir: Path, free_udp_port: int, tmp_path: Path
) -> None:
    async with running(tiny_model_dir, free_udp_port, tmp_path) as (srv, c):
        c.send("/folkrnn/subscribe", 0, "tokens", "applied")
        script = [("temperature", 0.8), ("bias", "pc:D", 1.5), ("suppress", 6, "|"), ("force", 0.5, "@pitch", 0.5, 5),
                  ("next",), ("snip_random", 1, 0.5, 4, "all"), ("steer", 2, 5.0), ("inject", "|:", "G"),
                  ("bias_target", "@duration", 0.4), ("restore",), ("seed", 1234), ("reset",), ("clear",)]
        for name, *args in script:
            n = max(tokens_of(c), default=0)
            c.send(f"/folkrnn/1/{name}", *args)
            await c.until(lambda n=n: max(tokens_of(c), default=0) >= n + 4)
        c.send("/folkrnn/1/stop")
        await c.until(lambda: srv.voices["1"].player.state == "stopped" or None)
        lv = srv.voices["1"]
        live = sorted(tokens_of(c).items())
        names = [name for name, *_ in script]
        assert [e.command for e in lv.source.log if e.command in names] == names
        again = replay(srv.model, lv.source.initial_seed, [e.to_json() for e in lv.source.log], len(live))
        assert again == live


@pytest.mark.asyncio
async def test_session_commands_transport_and_recording(
    tiny_model_dir: Path, free_udp_port: int, tmp_path: Path
) -> None:
    async with running(tiny_model_dir, free_udp_port, tmp_path, **{"server.voices": 2}) as (srv, c):
        c.send("/folkrnn/ping", 42)
        assert (await c.until(lambda: c.of("/pong")))[0].params == [42]
        c.send("/folkrnn/status", "2")
        (st,) = await c.until(lambda: c.of("/folkrnn/2/state"))
        snap = json.loads(st.params[0])
        assert snap["voice"] == "2" and snap["player"]["channel"] == 1 and snap["continuous"] is True
        c.send("/folkrnn/subscribe", 0, "tunes", "state")
        c.send("/folkrnn/all/pause")
        await c.until(lambda: all(v.player.state == "paused" for v in srv.voices.values()))
        c.send("/folkrnn/all/resume")
        c.send("/folkrnn/1/tempo", 300.0)
        c.send("/folkrnn/1/next")
        await c.until(lambda: c.of("/folkrnn/1/tune_start"))
        await c.until(lambda: all(v.player.state == "playing" for v in srv.voices.values()))
        assert srv.voices["1"].player.settings.tempo == 300.0
        c.send("/folkrnn/1/send_clock", "on")
        await c.until(lambda: srv.voices["1"].snapshot()["player"]["send_clock"])
        c.send("/folkrnn/2/record_start", "take")
        rec = await c.until(lambda: srv.voices["2"].recorder)
        steps = srv.voices["2"].voice.total_steps
        await c.until(lambda: srv.voices["2"].voice.total_steps >= steps + 10)
        c.send("/folkrnn/2/record_start")  # already recording: an error, not a crash
        await c.until(lambda: any("already recording" in str(e.params[2]) for e in c.of("/error")))
        c.send("/folkrnn/2/record_stop")
        await c.until(lambda: srv.voices["2"].recorder is None)
        await c.until(lambda: not srv.voices["2"]._tasks)
        assert (rec.path / "meta.json").is_file() and list(rec.path.glob("chunk_*.npz"))
        assert rec.path.name.endswith("-2-take")
        c.send("/folkrnn/unsubscribe")
        await c.until(lambda: not srv.osc.subscriptions)
        c.send("/folkrnn/all/stop")
        await c.until(lambda: all(v.player.state == "stopped" for v in srv.voices.values()))



@pytest.mark.asyncio
async def test_a_recording_that_cannot_be_written_is_an_error_not_a_crash(
    tiny_model_dir: Path, free_udp_port: int, tmp_path: Path
) -> None:
    (tmp_path / "not-a-dir").write_text("x", encoding="utf-8")
    settings = {"recording.dir": str(tmp_path / "not-a-dir" / "rec")}
    async with running(tiny_model_dir, free_udp_port, tmp_path, **settings) as (srv, c):
        c.send("/folkrnn/subscribe", 0, "notes")
        c.send("/folkrnn/1/record_start", "take")
        (err,) = await c.until(lambda: c.of("/error"))
        assert err.params[0] == "/folkrnn/1/record_start"
        assert "cannot record to" in str(err.params[2]) and "recording.dir" in str(err.params[2])
        assert srv.voices["1"].recorder is None
        n = len(c.of("/folkrnn/1/note"))
        await c.until(lambda: len(c.of("/folkrnn/1/note")) > n + 2)  # the music goes on

@pytest.mark.asyncio
async def test_bundles_rate_limit_and_allowlist(tiny_model_dir: Path, free_udp_port: int, tmp_path: Path) -> None:
    limits = {"osc.rate_limit": 5.0, "osc.burst": 10, "osc.max_delay": 5.0}
    async with running(tiny_model_dir, free_udp_port, tmp_path, **limits) as (srv, c):
        later = OscBundleBuilder(time.time() + 0.2)
        later.add_content(OscMessageBuilder("/folkrnn/ping").build())
        b = OscMessageBuilder("/folkrnn/ping")
        b.add_arg(7)
        later.add_content(b.build())
        c.send_raw(later.build().dgram)
        too_late = OscBundleBuilder(time.time() + 600)
        too_late.add_content(OscMessageBuilder("/folkrnn/ping").build())
        c.send_raw(too_late.build().dgram)
        pongs = await c.until(lambda: len(c.of("/pong")) >= 2 and c.of("/pong"))
        assert sorted(p.params[0] for p in pongs) == [0, 7]
        assert srv.osc.stats.scheduled == 2
        assert any(e.params[1] == "timetag" for e in c.of("/error"))
        for i in range(50):
            c.send("/folkrnn/ping", i)
        await c.until(lambda: any("rate limit" in str(e.params[2]) for e in c.of("/error")))
        assert srv.osc.stats.limited > 0
        srv.osc.configure(allow=["10.0.0.0/8"], rate_limit=0, burst=1, max_delay=5.0, max_subscribers=4)
        c.send("/folkrnn/ping", 1)
        await c.until(lambda: srv.osc.stats.denied >= 1)  # dropped without a reply


@pytest.mark.asyncio
async def test_reload_keeps_voices_and_applies_changes(
    tiny_model_dir: Path, free_udp_port: int, tmp_path: Path
) -> None:
    cfg_file = tmp_path / "live.toml"
    body = f"""
[model]
path = "{checkpoint.Path(tiny_model_dir).as_posix()}"
[osc]
port = {free_udp_port}
[midi]
output = "none"
[[voice]]
name = "1"
tempo = 600
"""
    cfg_file.write_text(body, encoding="utf-8")
    async with serving(config.load(cfg_file)) as srv:
        lv = srv.voices["1"]
        await until(lambda: lv.voice.total_steps >= 5)
        cfg_file.write_text(body + 'temperature = 0.5\n[[voice]]\nname = "2"\ntempo = 500\n', encoding="utf-8")
        srv.request_reload()
        await until(lambda: "2" in srv.voices and lv.voice.controls.temperature == 0.5, "the reload")
        assert srv.voices["1"] is lv and lv.player.state == "playing"  # not dropped or restarted
        assert lv.player.settings.tempo == 600  # unchanged keys are not re-applied
        assert "2" in srv.context.voices
        cfg_file.write_text("[osc\n", encoding="utf-8")  # a broken file changes nothing
        srv.request_reload()
        steps = lv.voice.total_steps
        await until(lambda: lv.voice.total_steps > steps + 5)
        assert srv.voices.keys() == {"1", "2"}



@pytest.mark.asyncio
async def test_a_reload_that_cannot_apply_everything_keeps_the_music_going(
    tiny_model_dir: Path, free_udp_port: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A queue of one command: the reload's second sampler setting finds it full.
    body = (f'[model]\npath = "{tiny_model_dir.as_posix()}"\n[osc]\nport = {free_udp_port}\n[midi]\n'
            'output = "none"\n[server]\nqueue_limit = 1\n[[voice]]\nname = "1"\ntempo = 600\n')
    cfg_file = tmp_path / "live.toml"
    cfg_file.write_text(body, encoding="utf-8")
    async with serving(config.load(cfg_file)) as srv:
        lv = srv.voices["1"]
        await until(lambda: lv.player.stats.notes >= 2)
        cfg_file.write_text(body + "temperature = 0.5\nmax_tokens = 300\n", encoding="utf-8")
        await srv.reload()
        assert "max_tokens not applied" in caplog.text and "queue is full" in caplog.text
        await until(lambda: lv.voice.controls.temperature == 0.5)
        notes = lv.player.stats.notes
        await until(lambda: lv.player.stats.notes > notes + 2, "notes after the reload")
        assert lv.player.state == "playing"

@pytest.mark.asyncio
async def test_feedback_to_the_servers_own_port_is_refused(tiny_model_dir: Path, free_udp_port: int,
                                                           tmp_path: Path) -> None:
    # Subscribing the server's own port would make it answer its own feedback with /error forever.
    async with running(tiny_model_dir, free_udp_port, tmp_path) as (srv, c):
        c.send("/folkrnn/subscribe", free_udp_port, "tokens")
        err = await c.until(lambda: [e for e in c.of("/error") if e.params[1] == "port"])
        assert "own OSC port" in str(err[0].params[2])
        c.send("/folkrnn/ping", 5)
        await c.until(lambda: c.of("/pong"))
        assert len(c.of("/error")) == 1  # no storm of errors
        assert not srv.osc.subscriptions


@pytest.mark.asyncio
async def test_midi_commands_answer_clearly_when_midi_input_is_off(tiny_model_dir: Path, free_udp_port: int,
                                                                   tmp_path: Path) -> None:
    async with running(tiny_model_dir, free_udp_port, tmp_path) as (_, c):
        c.send("/folkrnn/midi_learn", "temperature", "1")
        err = await c.until(lambda: c.of("/error"))
        assert "MIDI input is off" in str(err[0].params[2]) and "[midi_in] enabled" in str(err[0].params[2])


@pytest.mark.asyncio
async def test_a_flood_of_garbage_is_rate_limited_like_any_other(tiny_model_dir: Path, free_udp_port: int,
                                                                 tmp_path: Path) -> None:
    # A malformed packet is answered with /error; a flood of them must not be answered packet for
    # packet (the server would amplify it towards whatever address the packets claim to be from).
    limits = {"osc.rate_limit": 0.001, "osc.burst": 10}  # refills one message in 1,000 s: the burst only
    async with running(tiny_model_dir, free_udp_port, tmp_path, **limits) as (srv, c):
        for _ in range(60):
            c.send_raw(b"\x00garbage")
        await c.until(lambda: any("rate limit" in str(e.params[2]) for e in c.of("/error")))
        await c.until(lambda: srv.osc.stats.limited >= 50)
        malformed = [e for e in c.of("/error") if "malformed" in str(e.params[2])]
        assert len(malformed) == 10
        assert srv.voices["1"].player.state == "playing"


@pytest.mark.asyncio
async def test_a_new_subscriber_replaces_the_oldest_when_full(tiny_model_dir: Path, free_udp_port: int,
                                                              tmp_path: Path) -> None:
    # Clients that went away never unsubscribe; a full table must not lock the performer out.
    async with running(tiny_model_dir, free_udp_port, tmp_path, **{"osc.max_subscribers": 2}) as (srv, c):
        loop = asyncio.get_running_loop()
        others = []
        for _ in range(2):
            _, other = await loop.create_datagram_endpoint(Client, local_addr=("127.0.0.1", 0))
            other.server = c.server
            others.append(other)
        try:
            for client in (c, *others):
                client.send("/folkrnn/subscribe", 0, "state")
                await client.until(lambda client=client: client.of("/folkrnn/1/state"))  # status on subscribing
            assert all(not e for e in (c.of("/error"), *(o.of("/error") for o in others)))
            assert c.transport is not None
            first = c.transport.get_extra_info("sockname")[:2]
            assert first not in srv.osc.subscriptions and len(srv.osc.subscriptions) == 2
            n = len(others[1].of("/folkrnn/1/state"))
            c.messages.clear()
            srv.voices["1"].schedule_state()
            await others[1].until(lambda: len(others[1].of("/folkrnn/1/state")) > n)
            assert not c.of("/folkrnn/1/state")  # the oldest no longer gets feedback
        finally:
            for o in others:
                assert o.transport is not None
                o.transport.close()


def test_rate_limiter_memory_is_bounded_whatever_the_senders() -> None:
    now = [0.0]
    lim = RateLimiter(rate=1.0, burst=1, clock=lambda: now[0], max_clients=4)
    assert lim.take("a") and not lim.take("a")
    assert lim.notice_due("a") and not lim.notice_due("a")  # one notice a second
    now[0] += 1.0
    assert lim.take("a") and not lim.take("a") and lim.notice_due("a")
    for i in range(100):  # forged source addresses
        lim.take(f"10.0.0.{i}")
    assert len(lim._buckets) <= 4
    assert lim.take("a")  # forgotten: a full bucket again
