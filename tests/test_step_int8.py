"""The opt-in int8 step (fbgemm, int8 weights with per-row scales): close to float32 on the shipped
model, reproducible per seed, chosen by name, refused where it cannot run."""

from __future__ import annotations

import numpy as np
import pytest
from _models import random_model

from folkrnn_live.model import checkpoint
from folkrnn_live.model.draw import softmax
from folkrnn_live.model.step import NumpyStepper
from folkrnn_live.model.step_int8 import Int8Stepper
from folkrnn_live.model.steppers import make_stepper
from folkrnn_live.sampler.batch import generate_tunes
from folkrnn_live.sampler.voice import Voice


@pytest.fixture(scope="module")
def shipped():
    return checkpoint.load_default_or(None).model


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    return float(np.sum(p * (np.log(p + 1e-30) - np.log(q + 1e-30))))


def test_int8_next_token_distributions_stay_within_001_nats_of_float32_along_real_tunes(shipped):
    fp32, int8 = NumpyStepper(shipped), Int8Stepper(shipped)
    kls = []
    for seed in (1, 2):
        tune = Voice(shipped, seed=seed).generate()  # a real tune of the float32 model
        toks = [shipped.config.vocab.start, *shipped.config.vocab.encode(tune)]
        s32, s8 = fp32.initial_state(1), int8.initial_state(1)
        for t in toks[:-1]:
            l32, s32, _ = fp32.step(np.array([t]), s32)
            l8, s8, _ = int8.step(np.array([t]), s8)
            kls.append(_kl(softmax(l32[0].astype(np.float64)), softmax(l8[0].astype(np.float64))))
    assert len(kls) > 100
    assert np.mean(kls) <= 0.01
    assert np.mean(kls) > 0.0  # it really is another computation


def test_int8_tunes_are_reproducible_per_seed_and_end_like_float32(shipped):
    def run(precision: str) -> dict[int, list[str]]:
        return {t.seed: t.tokens for t in generate_tunes(shipped, range(1, 7), batch=6, precision=precision)}

    a, b, ref = run("int8"), run("int8"), run("fp32")
    assert a == b
    assert sum(t[-1] == "</s>" for t in a.values()) >= sum(t[-1] == "</s>" for t in ref.values()) - 1
    # a voice (batch 1) and a batch of 1 give the same int8 tune for a seed
    assert Voice(shipped, seed=3, precision="int8").generate() == next(
        iter(generate_tunes(shipped, [3], batch=1, precision="int8"))
    ).tokens


def test_int8_capture_matches_the_lstm_equations():
    m = random_model(hidden=64, seed=5)
    st = make_stepper(m, precision="int8")
    assert st.precision == "int8"
    s = st.initial_state(2)
    logits, _, acts = st.step(np.array([4, 9]), s, capture=True)
    for k in range(3):
        np.testing.assert_allclose(acts.c[k], acts.f[k] * s.c[k] + acts.i[k] * acts.g[k], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(acts.h[k], acts.o[k] * np.tanh(acts.c[k]), rtol=1e-5, atol=1e-6)
    out = m.out.weight.detach().numpy()
    np.testing.assert_allclose(logits, acts.h[2] @ out.T + m.out.bias.detach().numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"precision": "int4"}, "precision must be one of fp32, int8; got 'int4'"),
        ({"precision": "int8", "backend": "torch"}, "precision int8 is a CPU path"),
        ({"backend": "jax"}, "backend must be one of auto, numpy, torch; got 'jax'"),
    ],
)
def test_unknown_precision_or_backend_is_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_stepper(random_model(), **kwargs)


def test_generate_cli_precision_int8_is_reproducible_and_other_names_are_refused(tiny_model_dir, tmp_path, capsys):
    from folkrnn_live.cli.main import main

    def run(name: str, precision: str) -> str:
        args = ["generate", "--model", str(tiny_model_dir), "--n", "3", "--seed", "4", "--max-tokens", "40"]
        assert main([*args, "--format", "tokens", "--precision", precision, "--out", str(tmp_path / name)]) == 0
        return (tmp_path / name).read_text(encoding="utf-8")

    a, b = run("a.txt", "int8"), run("b.txt", "int8")
    assert a == b and len([t for t in a.split("\n\n") if t.strip()]) == 3
    assert main(["generate", "--model", str(tiny_model_dir), "--precision", "int4"]) == 2
    assert "invalid choice: 'int4'" in capsys.readouterr().err


def test_a_voice_switched_to_int8_mid_tune_goes_on_from_its_state_and_back(shipped):
    ref = Voice(shipped, seed=9)
    v = Voice(shipped, seed=9)
    for _ in range(10):
        assert v.step().token == ref.step().token
    v.set_precision("int8")
    assert v.precision == "int8"
    r8, r32 = v.preview(), ref.preview()
    assert _kl(r32, r8) < 0.01 and not np.array_equal(r8, r32)  # same state, other weights
    v.set_precision("fp32")
    np.testing.assert_array_equal(v.preview(), r32)
    with pytest.raises(ValueError, match="precision must be one of fp32, int8; got 'fp16'"):
        v.set_precision("fp16")


def test_the_precision_voice_command_switches_the_very_next_token_to_int8():
    from folkrnn_live.server.commands.catalog import COMMANDS
    from folkrnn_live.server.commands.registry import CommandContext, CommandError
    from folkrnn_live.server.runtime.token_source import ControlledSource
    from folkrnn_live.server.transports.common import ListOrigin

    m = random_model(hidden=64, seed=8)
    ctx = CommandContext.for_model(m.config.vocab, 3, 64, ["1"])
    src, ref = (ControlledSource(Voice(m, seed=4), continuous=True) for _ in range(2))
    for _ in range(5):
        assert src.next_token() == ref.next_token()
    src.enqueue(COMMANDS.bind("precision", ["int8"], ctx, "1"), ListOrigin())
    src.next_token()
    ref.next_token()
    assert src.voice.precision == "int8" and src.log[-1].command == "precision"
    got, want = src.voice.step(), ref.voice.step()  # the step after: int8 weights, close to fp32
    assert 0.0 < _kl(want.probs, got.probs) < 0.05
    with pytest.raises(CommandError, match="fp32"):
        COMMANDS.bind("precision", ["int4"], ctx, "1")


def test_batched_products_give_what_the_live_path_gives() -> None:
    """Batches of 64 rows or more go through another int8 engine (oneDNN, faster for many rows):
    the same weights give the same products as the live path's, so a tune does not depend on
    which engine stepped it."""
    import torch

    from folkrnn_live.model.step_int8 import BATCH_ENGINE_MIN_ROWS, REDUCE_RANGE

    stepper = Int8Stepper(random_model(hidden=64))
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((BATCH_ENGINE_MIN_ROWS, 128)).astype(np.float32))
    batched = torch.ops.quantized.linear_dynamic(x, stepper._packed_batch[1], REDUCE_RANGE).numpy()
    live = torch.ops.quantized.linear_dynamic(x, stepper._packed[1], REDUCE_RANGE).numpy()
    np.testing.assert_allclose(batched, live, atol=1e-4)
    np.testing.assert_allclose(stepper._linear(1, x.numpy()), batched)  # 64 rows take the batch engine
