"""The voice's command queue and log, without a player: controls change what the network
generates from the very next token, and a logged session replays token for token."""

from __future__ import annotations

import numpy as np
import pytest
from _models import tiny_model

from folkrnn_live.model.network import FolkRNN
from folkrnn_live.sampler.voice import Voice
from folkrnn_live.server.commands.catalog import COMMANDS
from folkrnn_live.server.commands.registry import Call, CommandContext
from folkrnn_live.server.runtime.token_source import ControlledSource, LogEntry, replay
from folkrnn_live.server.transports.common import ListOrigin
from folkrnn_live.tokens.vocab import END


@pytest.fixture(scope="module")
def model() -> FolkRNN:
    return tiny_model()


def ctx_for(model: FolkRNN) -> CommandContext:
    return CommandContext.for_model(model.config.vocab, 3, 16, ["1"])


def call(model: FolkRNN, name: str, *values: object) -> Call:
    return COMMANDS.bind(name, list(values), ctx_for(model), "1")


def source(model: FolkRNN, seed: int = 1, **kw: object) -> ControlledSource:
    return ControlledSource(Voice(model, seed=seed), continuous=True, **kw)  # type: ignore[arg-type]


def run(src: ControlledSource, n: int) -> list[str]:
    out = []
    for _ in range(n):
        tok = src.next_token()
        assert tok is not None
        out.append(src.vocab.tokens[tok])
    return out


def test_queued_command_reaches_the_very_next_token(model: FolkRNN) -> None:
    src = source(model)
    run(src, 5)
    src.enqueue(call(model, "inject", "M:6/8", "K:Cdor"), ListOrigin())
    assert run(src, 2) == ["M:6/8", "K:Cdor"]
    assert src.log[-1] == LogEntry(5, 1, "inject", {"tokens": ("M:6/8", "K:Cdor")})


def test_suppress_bar_lines_for_n_steps(model: FolkRNN) -> None:
    src = source(model)
    bars = set(src.voice.vocab.decode(src.voice.vocab.select("@bar")))
    src.enqueue(call(model, "bias", "@bar", 4.0), ListOrigin())  # bar lines likely...
    assert any(t in bars for t in run(src, 30))
    src.enqueue(call(model, "suppress", 40, "@bar"), ListOrigin())  # ...then forbidden for 40 steps
    assert not any(t in bars for t in run(src, 40))
    assert any(t in bars for t in run(src, 30))  # and back after


def test_bias_toward_a_pitch_gives_more_of_it(model: FolkRNN) -> None:
    def count_g(bias: float) -> int:
        src = source(model, seed=3)
        if bias:
            src.enqueue(call(model, "bias", "pc:G", bias), ListOrigin())
        g = set(src.voice.vocab.decode(src.voice.vocab.select("pc:G")))
        return sum(t in g for t in run(src, 200))

    assert count_g(3.0) > 3 * count_g(0.0)


def test_snip_then_restore(model: FolkRNN) -> None:
    src = source(model)
    run(src, 3)
    src.enqueue(call(model, "snip", 2, "out", *range(16)), ListOrigin())
    src.drain()
    # Every unit of the last layer cut: the softmax sees only its bias, whatever came before.
    p1 = src.voice.preview()
    run(src, 4)
    np.testing.assert_allclose(src.voice.preview(), p1, rtol=1e-6)
    src.enqueue(call(model, "restore"), ListOrigin())
    src.drain()
    assert not np.allclose(src.voice.preview(), p1, rtol=1e-3)


def test_force_changes_the_input(model: FolkRNN) -> None:
    src = source(model)
    run(src, 5)
    before = src.voice.preview()
    src.enqueue(call(model, "force", 0.0, "M:3/4", 1.0, 3), ListOrigin())
    src.drain()
    assert not np.allclose(src.voice.preview(), before)
    run(src, 3)
    assert src.voice.controls.force is None  # lasted 3 steps


def test_restarts_wait_for_the_loop(model: FolkRNN) -> None:
    scheduled: list[bool] = []
    src = source(model, schedule_drain=lambda: scheduled.append(True))
    run(src, 3)
    o = ListOrigin()
    for c in (call(model, "temperature", 0.5), call(model, "next"), call(model, "temperature", 2.0)):
        src.enqueue(c, o)
    run(src, 1)  # drained up to the restart only
    assert scheduled and [c.name for c, _ in src.queue] == ["next", "temperature"]
    assert src.voice.controls.temperature == 0.5
    src.drain()  # what the event loop does
    assert src.voice.tunes_started == 2 and src.voice.seed == 2
    assert src.voice.controls.temperature == 2.0


def test_seed_and_reset(model: FolkRNN) -> None:
    src = source(model)
    first = run(src, 8)
    src.enqueue(call(model, "reset"), ListOrigin())
    src.drain()
    assert run(src, 8) == first  # the same tune again
    src.enqueue(call(model, "seed", 1), ListOrigin())
    src.enqueue(call(model, "next"), ListOrigin())
    src.drain()
    assert run(src, 8) == first


def test_continuous_mode_and_length_cap(model: FolkRNN) -> None:
    src = source(model)
    src.enqueue(call(model, "max_tokens", 4), ListOrigin())
    toks = run(src, 10)
    assert toks[4] == END and toks[9] == END  # a capped tune is closed for the player
    assert src.voice.tunes_started == 2
    src.enqueue(call(model, "continuous", False), ListOrigin())
    # Without continuous mode the voice stops at the end of a tune (at most 4 tokens and END):
    # a bounded number of pulls, so a voice that never stops fails here instead of hanging.
    rest = [src.next_token() for _ in range(8)]
    assert None in rest, f"the voice did not stop: {rest}"
    stop = rest.index(None)
    assert stop <= 5 and rest[stop:] == [None] * (8 - stop), rest


def test_apply_errors_go_to_the_origin_not_up(model: FolkRNN) -> None:
    src = source(model)
    o = ListOrigin()
    src.enqueue(call(model, "suppress", 0, "|"), o)
    src.enqueue(call(model, "bias_target", "|", 0.5), o)  # | is suppressed: cannot reach 0.5
    run(src, 1)
    (err,) = o.replies
    assert err.name == "error" and "suppressed" in err.values[2]
    assert [e.command for e in src.log] == ["suppress"]


def test_injected_tokens_waiting_are_bounded(model: FolkRNN) -> None:
    # Injected tokens are fed one per step; a client sending inject after inject must not make
    # them pile up without end.
    src = source(model)
    o = ListOrigin()
    for _ in range(3):
        src.enqueue(call(model, "inject", *(["G"] * 400)), o)
    src.drain()
    (err,) = o.replies
    assert "800 injected tokens are still waiting; at most 1000" in err.values[2]
    assert [e.command for e in src.log] == ["inject", "inject"]
    assert run(src, 800) == ["G"] * 800  # the two accepted ones play, then sampling goes on
    src.enqueue(call(model, "inject", *(["A"] * 400)), o)
    assert run(src, 1) == ["A"]


def test_queue_is_bounded(model: FolkRNN) -> None:
    src = source(model, queue_limit=2)
    src.enqueue(call(model, "clear"), ListOrigin())
    src.enqueue(call(model, "clear"), ListOrigin())
    with pytest.raises(ValueError, match="queue is full"):
        src.enqueue(call(model, "clear"), ListOrigin())


def test_replay_reproduces_a_session(model: FolkRNN) -> None:
    rng = np.random.default_rng(7)
    src = source(model, seed=11)
    src.schedule_drain = src.drain  # restarts: applied when the loop would
    menu = [
        ("temperature", 0.7), ("bias", "pc:D", 2.0), ("suppress", 5, "@duration"), ("snip_random", 1, 0.5, 3),
        ("restore",), ("force", 0.6, "@pitch", 0.4, 4), ("steer", 1, 3.0), ("steer_clear",), ("next",),
        ("inject", "|:"), ("bias_target", "@bar", 0.3), ("clear",), ("seed", 99), ("reset",), ("max_tokens", 30),
    ]
    tokens: list[tuple[int, str]] = []
    src.voice.listeners.append(lambda r: tokens.append((src.voice.total_steps - 1, r.text)))
    for _ in range(40):
        for _ in range(int(rng.integers(0, 3))):
            name, *vals = menu[int(rng.integers(len(menu)))]
            src.enqueue(call(model, name, *vals), ListOrigin())
        run(src, int(rng.integers(1, 8)))
    src.drain()
    assert len(src.log) > 20
    assert replay(model, 11, [e.to_json() for e in src.log], len(tokens), continuous=True) == tokens
    # ...and the commands mattered: without them the tokens differ.
    assert replay(model, 11, [], len(tokens), continuous=True) != tokens
