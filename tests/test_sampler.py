"""Sampling and live interventions: each changes what the network generates, visibly."""

import json

import numpy as np
import pytest
from _models import random_model

from folkrnn_live.cli.main import main
from folkrnn_live.model import checkpoint
from folkrnn_live.sampler.batch import generate_tunes
from folkrnn_live.sampler.voice import Voice
from folkrnn_live.tokens import V2, UnknownTokenError

# Every intervention behaves the same whichever step path runs it: the float32 CPU default, the
# opt-in int8 weights and the torch path (the GPU's arithmetic, here on the CPU).
STEPPERS = [
    pytest.param({}, id="numpy-fp32"),
    pytest.param({"precision": "int8"}, id="int8"),
    pytest.param({"backend": "torch"}, id="torch-fp32"),
]


@pytest.fixture(scope="module")
def model():
    return random_model(hidden=32, seed=7, scale=0.4)


@pytest.mark.parametrize("stepper", STEPPERS)
def test_same_seed_same_tune_token_for_token(model, stepper):
    a = Voice(model, **stepper, seed=11, prime=["M:6/8", "K:Cmaj"]).generate()
    b = Voice(model, **stepper, seed=11, prime=["M:6/8", "K:Cmaj"]).generate()
    c = Voice(model, **stepper, seed=12, prime=["M:6/8", "K:Cmaj"]).generate()
    assert a == b
    assert a != c
    assert a[:2] == ["M:6/8", "K:Cmaj"]


def test_batched_generation_gives_the_voice_tune_for_each_seed(model):
    seeds = [3, 4, 5, 6, 7]
    by_voice = {s: Voice(model, seed=s, max_tokens=60).generate() for s in seeds}
    batched = {t.seed: t.tokens for t in generate_tunes(model, seeds, batch=1, max_tokens=60)}
    assert batched == by_voice
    full = {t.seed: t.tokens for t in generate_tunes(model, seeds * 1, batch=2, max_tokens=60)}
    assert sum(full[s] == by_voice[s] for s in seeds) >= 4  # BLAS may round a batch of 2 differently
    # a batch that drains (no seeds left) moves its running rows together: still each seed's tune
    drained = {t.seed: t.tokens for t in generate_tunes(model, seeds, batch=4, max_tokens=60)}
    assert sum(drained[s] == by_voice[s] for s in seeds) >= 4


def test_tunes_stop_at_end_token_or_length_cap(model):
    v = Voice(model, seed=1, max_tokens=5)
    toks = v.generate()
    assert len(toks) <= 5
    assert v.ended in ("end", "length")
    assert (toks[-1] == "</s>") == (v.ended == "end")
    assert v.step() is None and v.next_token() is None


def test_prime_is_validated_with_every_unknown_token_named(model):
    with pytest.raises(UnknownTokenError, match="position 1: unknown token 'K:Gmaj'"):
        Voice(model, prime=["M:4/4", "K:Gmaj"])
    v = Voice(model)
    with pytest.raises(ValueError, match="must not contain"):
        v.start_tune(prime=["</s>"])


def test_temperature_sharpens_the_distribution(model):
    v = Voice(model, seed=2)
    hot = v.preview()
    v.controls.set_temperature(0.2)
    cold = v.preview()
    entropy = lambda p: -(p * np.log(p + 1e-300)).sum()  # noqa: E731
    assert entropy(cold) < entropy(hot)
    with pytest.raises(ValueError, match="temperature must be in range 0.01..10.0"):
        v.controls.set_temperature(0)


def test_bias_toward_a_pitch_class_gives_more_of_it(model):
    def share_of_g(bias):
        v = Voice(model, seed=5, max_tokens=200)
        if bias:
            v.controls.add_bias(v.vocab.select("pc:G"), bias)
        toks = []
        for s in range(4):
            v.start_tune(seed=s)
            toks += v.generate()
        g = set(v.vocab.decode(v.vocab.select("pc:G")))
        return sum(t in g for t in toks) / len(toks)

    assert share_of_g(3.0) > 2 * share_of_g(0.0) + 0.05


def test_bias_to_target_probability_hits_the_target_at_this_step(model):
    v = Voice(model, seed=9)
    for _ in range(4):
        v.step()
    bar = v.vocab.select("@bar")
    added = v.bias_to_probability(bar, 0.6)
    assert added != 0
    assert v.preview()[bar].sum() == pytest.approx(0.6, abs=1e-6)
    r = v.step()
    assert r.probs[bar].sum() == pytest.approx(0.6, abs=1e-6)
    with pytest.raises(ValueError, match=r"target probability must be in range \(0, 1\)"):
        v.bias_to_probability(bar, 1.0)


@pytest.mark.parametrize("stepper", STEPPERS)
def test_suppress_bar_tokens_for_n_steps(model, stepper):
    v = Voice(model, **stepper, seed=4, max_tokens=400)
    bars = v.vocab.select("@bar")
    v.controls.add_bias(bars, 4.0)  # make bars likely, so their absence means something
    v.controls.add_suppress(bars, 30)
    steps = [v.step() for _ in range(30)]
    assert all(r.probs[bars].sum() == 0.0 for r in steps if r)
    assert not any(r.text in ("|", "|:", ":|", "|1", "|2") for r in steps if r)
    after = v.step()
    assert after is not None and after.probs[bars].sum() > 0.5  # the suppression has expired
    with pytest.raises(ValueError, match="would forbid every token"):
        v.controls.add_suppress(list(range(137)), None)


@pytest.mark.parametrize("stepper", STEPPERS)
def test_snip_is_visible_in_activations_and_restore_brings_the_units_back(model, stepper):
    v = Voice(model, **stepper, seed=3, capture=True)
    units = [1, 2, 3, 10]
    v.controls.set_snip(2, units, "out")
    r = v.step()
    assert (r.activations.h[2][0, units] == 0).all()
    assert r.controls["snip"] == {"2": {"mode": "out", "units": 4}}
    plain = Voice(model, **stepper, seed=3).step()
    assert not np.allclose(r.probs, plain.probs)  # the softmax saw the cut
    v.controls.restore()
    r2 = v.step()
    assert (r2.activations.h[2][0, units] != 0).all()
    with pytest.raises(ValueError, match="snip units must be in range 0..31"):
        v.controls.set_snip(0, [32], "out")
    with pytest.raises(ValueError, match="layer must be in range 0..2"):
        v.controls.set_snip(3, [1], "all")


@pytest.mark.parametrize("stepper", STEPPERS)
def test_force_mixes_the_input_as_asked(model, stepper):
    v = Voice(model, **stepper, seed=8, capture=True)
    pitches = v.vocab.select("@pitch")
    v.controls.set_force(0.7, [(pitches, 0.3)], steps=3)
    first = v.step()  # input is <s> mixed with a random pitch
    x = first.activations.input_vectors(137)[0]
    assert x[v.vocab.start] == pytest.approx(0.7)
    assert x.sum() == pytest.approx(1.0)
    (other,) = [i for i in np.flatnonzero(x) if i != v.vocab.start]
    assert other in pitches and x[other] == pytest.approx(0.3)
    v.step()
    v.step()
    assert v.controls.force is None  # 3 steps, then back to one-hot
    assert v.step().activations.input_vectors(137)[0].max() == 1.0


@pytest.mark.parametrize("stepper", STEPPERS)
def test_inject_emits_exact_tokens_and_feeds_them(model, stepper):
    v = Voice(model, **stepper, seed=1)
    v.controls.add_inject(v.vocab.encode(["|:", "G", "A"]))
    got = [v.step() for _ in range(3)]
    assert [r.text for r in got] == ["|:", "G", "A"] and all(r.injected for r in got)
    assert not v.step().injected


@pytest.mark.parametrize("stepper", STEPPERS)
def test_steer_moves_logits_along_the_output_singular_vector(model, stepper):
    v = Voice(model, **stepper, seed=2, capture=True)
    base = v.step()
    v2 = Voice(model, **stepper, seed=2, capture=True)
    v2.controls.set_steer(0, 2.5)
    steered = v2.step()
    u, s, _ = model.output_svd()
    np.testing.assert_allclose(steered.logits - base.logits, 2.5 * s[0] * u[:, 0], atol=1e-4)


@pytest.mark.parametrize("stepper", STEPPERS)
def test_controls_changed_between_steps_reach_the_very_next_token(model, stepper):
    v = Voice(model, **stepper, seed=6)
    v.step()
    v.preview()  # a cached forward pass must not hide the change
    v.controls.set_snip(0, list(range(32)), "all")
    r = v.step()
    ref = Voice(model, **stepper, seed=6)
    ref.step()
    assert not np.allclose(r.logits, ref.step().logits)


# --- the CLI: generate and score ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_dir(model, tmp_path_factory):
    return checkpoint.save(model, tmp_path_factory.mktemp("model"))


def test_generate_cli_gives_the_same_tunes_for_the_same_seed(model, model_dir, tmp_path):
    def run(seed, name):
        args = ["generate", "--model", str(model_dir), "--n", "3", "--seed", str(seed), "--max-tokens", "80"]
        assert main([*args, "--format", "tokens", "--prime", "M:6/8 K:Cdor", "--out", str(tmp_path / name)]) == 0
        return (tmp_path / name).read_text(encoding="utf-8")

    a, b, c = run(4, "a.txt"), run(4, "b.txt"), run(5, "c.txt")
    assert a == b and a != c
    tunes = [t.split() for t in a.split("\n\n") if t.strip()]
    assert len(tunes) == 3 and all(t[:2] == ["M:6/8", "K:Cdor"] for t in tunes)
    assert all(tok in V2 and tok != "</s>" for t in tunes for tok in t)
    # tune k has seed 4 + k: the same tokens as a voice with that seed
    voice = Voice(model, seed=5, prime=["M:6/8", "K:Cdor"], max_tokens=80)
    assert tunes[1] == [t for t in voice.generate() if t != "</s>"]


def test_score_cli_gives_each_tokens_log_probability(model, model_dir, capsys):
    tokens = ["M:4/4", "K:Cmaj", "|:", "G", "2", "A", "B"]
    assert main(["score", "--model", str(model_dir), "--tokens", " ".join(tokens)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [t["token"] for t in doc["tokens"]] == tokens
    # The step path, fed the same tokens, gives the same probabilities.
    v = Voice(model)
    v.controls.add_inject(v.vocab.encode(tokens))
    expected = [float(np.log(r.probs[r.token])) for r in (v.step() for _ in tokens)]
    np.testing.assert_allclose([t["logprob"] for t in doc["tokens"]], expected, atol=1e-4)
    assert doc["total_nll"] == pytest.approx(-sum(expected), abs=1e-3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", "--device", "tpu"], "device must be auto, cpu, cuda or cuda:N; got 'tpu'"),
        (["generate", "--prime", "M:4/4 K:Gmaj"], "position 1: unknown token 'K:Gmaj' (nearest: K:Cmaj"),
        (["generate", "--prime", "M:4/4 </s>"], "prime tokens must not contain <s> or </s>"),
        (["generate", "--n", "0"], "--n must be in range 1..10000000"),
        (["generate", "--seed", "-1"], "--seed must be in range 0..4294967295"),
        (["generate", "--temperature", "hot"], "--temperature must be a number in range 0.01..10.0"),
        (["generate", "--format", "midi"], "invalid choice: 'midi'"),
        (["generate", "--out", "no/such/folder/tunes.abc"], "No such file or directory"),
        (["score", "--tokens", "C D H"], "position 2: unknown token 'H'"),
        (["score", "--tokens", "<s>"], "--tokens must name at least one token"),
        (["evaluate", "--seeds", "one..two"], "--seeds must look like 1..200 or 7"),
        (["evaluate", "--seeds", "1..2", "--prime", "</s>"], "prime tokens must not contain <s> or </s>"),
        (["evaluate", "--seeds", "1..2", "--max-tokens", "0"], "--max-tokens must be in range 1..100000"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(model_dir, tmp_path, capsys, args, message):
    assert main([*args, "--model", str(model_dir)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("stepper", STEPPERS)
def test_interventions_compose_on_one_step(model, stepper):
    # temperature, suppress, snip, steer and force at once; then a bias target on top of them all
    v = Voice(model, **stepper, seed=3, capture=True)
    c = v.controls
    c.set_temperature(0.5)
    c.add_suppress(v.vocab.select("@duration"), None)
    c.set_snip(1, [0, 1, 2], "all")
    c.set_steer(1, -3.0)
    c.set_force(0.7, [(v.vocab.select("@pitch"), 0.3)], steps=None)
    bars = v.vocab.select("@bar")
    v.bias_to_probability(bars, 0.4)
    r = v.step()
    assert r.probs[bars].sum() == pytest.approx(0.4, abs=1e-6)
    assert r.probs[v.vocab.select("@duration")].sum() == 0.0
    assert (r.activations.h[1][0, [0, 1, 2]] == 0).all()
    assert r.activations.input_vectors(137)[0].max() == pytest.approx(0.7)
    # the same settings applied in another order give the same step
    w = Voice(model, **stepper, seed=3, capture=True)
    w.controls.set_force(0.7, [(w.vocab.select("@pitch"), 0.3)], steps=None)
    w.controls.set_steer(1, -3.0)
    w.controls.set_snip(1, [0, 1, 2], "all")
    w.controls.add_suppress(w.vocab.select("@duration"), None)
    w.controls.set_temperature(0.5)
    w.bias_to_probability(bars, 0.4)
    np.testing.assert_allclose(w.step().probs, r.probs, atol=1e-12)
