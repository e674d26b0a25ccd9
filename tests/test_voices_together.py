"""Live voices stepped as one batch (issue 17): the same tunes as one by one, commands still on time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _models import random_model
from live_server import serving, until

from folkrnn_live.model.steppers import make_stepper, shared_stepper
from folkrnn_live.sampler.together import forward_together
from folkrnn_live.sampler.voice import Voice
from folkrnn_live.server.runtime import config


def intervene(voices: list[Voice]) -> None:
    """A different intervention on each voice: a plain one, a snip, a forced mix, a steer."""
    voices[1].controls.set_snip(0, list(range(0, 32, 3)), "all")
    voices[2].controls.set_force(0.7, [([5, 9, 11], 0.3)], None)
    voices[3].controls.set_steer(1, 2.0)


@contextlib.contextmanager
def batch_sizes(stepper: Any) -> Iterator[list[int]]:
    """The batch size of every step the stepper takes inside the block."""
    sizes: list[int] = []
    step = stepper.step

    def counting(tokens: Any, state: Any, **kw: Any) -> Any:
        sizes.append(state.batch)
        return step(tokens, state, **kw)

    stepper.step = counting
    try:
        yield sizes
    finally:
        del stepper.step


def make_voices(model: Any, precision: str, capture: bool = False, own_stepper: bool = False,
                backend: str = "auto") -> list[Voice]:
    """Four voices on one stepper: the model's shared one, or (``own_stepper``) a new one, so that
    a comparison group's steps are not counted with the batched group's.  The numpy fp32 path
    steps live voices one by one (``batches_well`` false: OpenBLAS packs the weights for every
    multi-row product); these tests batch it anyway, as the exact path to compare rows on."""
    stepper = make_stepper(model, backend, precision) if own_stepper else shared_stepper(model, backend, precision)
    stepper.batches_well = True
    vs = [Voice(model, seed=10 + i, stepper=stepper, capture=capture, prime=["M:6/8", "K:Cmaj"]) for i in range(4)]
    intervene(vs)
    return vs


@pytest.mark.parametrize("backend", ["numpy", "torch"])  # torch: the GPU's path, here on the CPU
def test_voices_stepped_together_make_the_tunes_they_make_alone(backend: str) -> None:
    model = random_model(hidden=32)
    together = make_voices(model, "fp32", backend=backend)
    alone = make_voices(model, "fp32", own_stepper=True, backend=backend)
    with batch_sizes(together[0].stepper) as calls:
        for _ in range(40):
            forward_together(together)
            for a, b in zip(together, alone, strict=True):
                ra, rb = a.step(), b.step()
                assert (ra is None) == (rb is None)
                if ra is not None and rb is not None:
                    assert ra.token == rb.token
                    np.testing.assert_allclose(ra.logits, rb.logits, rtol=1e-4, atol=1e-4)
    assert calls[:5] == [4] * 5  # one batch for the four voices (fewer once a tune has ended)
    assert [v.tokens for v in together] == [v.tokens for v in alone]
    assert len({tuple(v.tokens) for v in together}) == 4  # four different tunes


def test_int8_rows_stepped_together_match_their_own_step() -> None:
    """int8 quantizes a step's activations with one scale per batch, so a row's logits move by
    int8 rounding with its neighbours: the distributions stay within the int8 path's fidelity."""
    model = random_model(hidden=32)
    voices = make_voices(model, "int8")
    kls = []
    for _ in range(30):
        forward_together(voices)
        batched = [v.preview() for v in voices]
        for v, p in zip(voices, batched, strict=True):
            v._preview = None  # the same step, this voice alone
            q = v.preview()
            kls.append(float(np.sum(q * (np.log(q + 1e-12) - np.log(p + 1e-12)))))
            v.step()
    assert np.mean(kls) < 1e-3, np.mean(kls)


def test_a_command_after_the_batch_reaches_the_next_token() -> None:
    model = random_model(hidden=32)
    together, alone = make_voices(model, "fp32"), make_voices(model, "fp32")
    for _ in range(5):
        forward_together(together)
        for a, b in zip(together, alone, strict=True):
            a.step(), b.step()
    forward_together(together)  # every voice's next forward computed ...
    assert all(v.forward_ready() for v in together)
    for v in (together[0], alone[0]):  # ... then a performer snips voice 1 and forces its input
        v.controls.set_snip(2, list(range(16)), "out")
        v.controls.set_force(0.0, [([20], 1.0)], 1)
    assert not together[0].forward_ready()  # its batched row is stale: recomputed under the commands
    ra, rb = together[0].step(), alone[0].step()
    assert ra is not None and rb is not None
    np.testing.assert_allclose(ra.logits, rb.logits, rtol=1e-4, atol=1e-4)
    assert ra.token == rb.token
    assert together[1].forward_ready()  # the others keep their rows


def test_recorded_activations_are_each_voices_own() -> None:
    model = random_model(hidden=32)
    together, alone = make_voices(model, "fp32", capture=True), make_voices(model, "fp32", capture=True)
    forward_together(together)
    for a, b in zip(together, alone, strict=True):
        ra, rb = a.step(), b.step()
        assert ra is not None and rb is not None and ra.activations is not None and rb.activations is not None
        for name in ("h", "c", "i"):
            np.testing.assert_allclose(ra.activations.layer_stack(name), rb.activations.layer_stack(name), atol=1e-5)
        # A token input stays a token although voice 3's forced mix made the batch input dense.
        assert (ra.activations.x is None) == (rb.activations.x is None)


async def play_tokens(model_dir: Path, tmp: Path, batch: bool, n: int, precision: str = "fp32",
                      force: bool = False) -> tuple[dict[str, list[int]], list[int]]:
    """The first ``n`` tokens of four voices, and the batch sizes their steps had (``force``: batch
    the numpy fp32 path, which the server otherwise steps voice by voice)."""
    overrides = {"model.path": str(model_dir), "osc.enabled": False, "midi.output": "none", "server.voices": 4,
                 "recording.dir": str(tmp / "rec"), "voice_defaults.tempo": 600, "model.batch_voices": batch,
                 "model.precision": precision}
    async with serving(config.load(None, overrides), overrides=overrides) as srv:
        stepper = srv.voices["1"].voice.stepper
        if force:
            stepper.batches_well = True
        with batch_sizes(stepper) as sizes:
            await until(lambda: all(lv.voice.total_steps >= n for lv in srv.voices.values()), f"{n} tokens per voice")
        tokens = {name: list(lv.voice.tokens[:n]) for name, lv in srv.voices.items()}
        await asyncio.sleep(0)
    return tokens, sizes


@pytest.mark.asyncio
async def test_the_server_steps_its_voices_as_one_batch_and_plays_the_same_tunes(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    batched, sizes = await play_tokens(tiny_model_dir, tmp_path / "a", True, 30, force=True)
    single, single_sizes = await play_tokens(tiny_model_dir, tmp_path / "b", False, 30, force=True)
    assert max(sizes) > 1  # voices shared steps
    assert set(single_sizes) == {1}
    assert batched == single


@pytest.mark.asyncio
async def test_int8_voices_are_batched_and_numpy_fp32_voices_step_alone(tiny_model_dir: Path, tmp_path: Path) -> None:
    _, int8_sizes = await play_tokens(tiny_model_dir, tmp_path / "a", True, 30, precision="int8")
    _, fp32_sizes = await play_tokens(tiny_model_dir, tmp_path / "b", True, 30)
    assert max(int8_sizes) > 1
    assert set(fp32_sizes) == {1}  # a 2-row OpenBLAS step costs more than two 1-row steps


def test_graph_steppers_get_batches_padded_to_a_power_of_two() -> None:
    """A CUDA graph is recorded per batch size; three voices step as a batch of four (checked here
    on the CPU stepper with the graph flag set: the padding is the same code)."""
    model = random_model(hidden=32)
    voices, alone = make_voices(model, "fp32")[:3], make_voices(model, "fp32", own_stepper=True)[:3]
    stepper = voices[0].stepper
    stepper.use_graph = True  # type: ignore[attr-defined]
    try:
        with batch_sizes(stepper) as calls:
            for _ in range(10):
                forward_together(voices)
                for a, b in zip(voices, alone, strict=True):
                    ra, rb = a.step(), b.step()
                    assert ra is not None and rb is not None and ra.token == rb.token
    finally:
        del stepper.use_graph  # type: ignore[attr-defined]
    assert set(calls) == {4}, calls


@pytest.mark.asyncio
async def test_server_lookahead_sets_how_far_ahead_voices_generate(tiny_model_dir: Path, tmp_path: Path) -> None:
    """``server.lookahead``: a voice starts generating a note this long before it is due (many
    voices on one grid need more time to fit all their steps in)."""
    overrides = {"model.path": str(tiny_model_dir), "osc.enabled": False, "midi.output": "none",
                 "server.voices": 2, "recording.dir": str(tmp_path / "rec"), "server.lookahead": 0.3}
    async with serving(config.load(None, overrides), overrides=overrides) as srv:
        for lv in srv.voices.values():
            opens, due = await until(lv.player.work_window, "a voice wanting a token")
            assert due - opens == pytest.approx(0.3, abs=0.01)
    with pytest.raises(config.ConfigError, match="lookahead"):
        config.load(None, {"server.lookahead": 5.0})


class _BrokenBatcher:
    """Says no voice is ready, then fails (or forgets) to prepare it."""

    def __init__(self) -> None:
        self.calls = 0

    def ready(self, worker: Any) -> bool:
        return False

    def prepare(self, worker: Any, workers: list[Any]) -> None:
        self.calls += 1
        if self.calls % 2:
            raise RuntimeError("batch failed")


@pytest.mark.asyncio
async def test_a_failing_batcher_never_stops_a_voice() -> None:
    from folkrnn_live.player import ListSource, MemoryOutput, Player, Scheduler, VoiceSettings

    batcher = _BrokenBatcher()
    out = MemoryOutput()
    async with out, Scheduler() as sched:
        sched.batcher = batcher
        player = Player(ListSource("M:4/4 K:Cmaj c d e f g a b c'"), [out], VoiceSettings(tempo=600),
                        scheduler=sched, max_late=10.0)
        async with player:
            player.start()
            await asyncio.wait_for(player.finished(), 20)
    assert len([s for s in out.sent if s.msg.type == "note_on"]) == 8
    assert batcher.calls > 0
