"""Issue 15's analyses against independent computations: bar correlations of single units, the
Δsoftmax relation, the output SVD with the common mode removed, projections on its directions, the
Gramians measured against the one-hot Gramian, and the band taken from the tune's bar period."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from folkrnn_live.analysis import gramians as gr
from folkrnn_live.analysis import softmax as sm
from folkrnn_live.analysis import units as un
from folkrnn_live.analysis.bar_period import band_around, bar_period, few_units_warning
from folkrnn_live.analysis.tasks import Context, Options, run_analysis
from folkrnn_live.model.config import ModelConfig
from folkrnn_live.model.network import FolkRNN
from folkrnn_live.recording import Recorder, Recording, load_recording
from folkrnn_live.sampler.voice import Voice


@pytest.fixture(scope="module")
def model() -> FolkRNN:
    torch.manual_seed(4)
    return FolkRNN(ModelConfig(hidden_size=8, num_layers=2)).eval()


@pytest.fixture(scope="module")
def rec(model: FolkRNN, tmp_path_factory: pytest.TempPathFactory) -> Recording:
    out = tmp_path_factory.mktemp("rec") / "rec"
    voice = Voice(model, seed=2, prime=["M:6/8", "K:Cmaj", "|:", "A", "B", "|", "c", "d", "e", "|"], max_tokens=60)
    with Recorder(out, model) as r:
        r.attach(voice)
        voice.generate()
    return load_recording(out)


def test_bar_correlations_are_pearson_r_with_bars_in_and_out(rec: Recording) -> None:
    bc = un.bar_correlations(rec)
    bars_in = [t for t, tok in enumerate(rec.input_tokens) if tok in ("|", "|:", ":|", "|1", "|2")]
    bars_out = [t for t, tok in enumerate(rec.tokens) if tok in ("|", "|:", ":|", "|1", "|2")]
    assert bc.bars_in == bars_in and bc.bars_out == bars_out and len(bars_in) >= 2
    ind_in = np.isin(np.arange(rec.n_steps), bars_in).astype(float)
    for k, u in ((0, 3), (1, 5)):
        h = rec.gate("h", k)[:, u].astype(float)
        assert bc.r_in[k, u] == pytest.approx(np.corrcoef(h, ind_in)[0, 1], abs=1e-9)
    top = bc.ranking(1, "out", 3)
    assert [abs(t[2]) for t in top] == sorted((abs(t[2]) for t in top), reverse=True)
    assert abs(top[0][2]) == pytest.approx(np.abs(bc.r_out[1]).max())
    assert un.parse_units("0:3, 1:5", 2, 8) == [(0, 3), (1, 5)]
    with pytest.raises(ValueError, match="--units: layer must be in range 0..1 and unit in range 0..7; got 1:8"):
        un.parse_units("1:8", 2, 8)


def test_delta_softmax_matches_softmax_recomputed() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=12)
    p = sm.softmax(z)
    for t, d in ((3, 2.0), (7, -4.0)):
        bumped = z.copy()
        bumped[t] += d
        assert sm.moved_probability(p[t], d) == pytest.approx(sm.softmax(bumped)[t])
        assert sm.moved_probability(p[t], sm.delta_for(float(p[t]), 0.5)) == pytest.approx(0.5)
    v = rng.normal(size=(12, 5))
    h_eps = 1e-6
    numeric = (sm.softmax(z + h_eps * v[:, 2]) - sm.softmax(z - h_eps * v[:, 2])) / (2 * h_eps)
    np.testing.assert_allclose(sm.jacobian(p, v)[:, 2], numeric, atol=1e-8)
    exact, linear = sm.linear_check(z, v, 2, 1e-3, 4)
    assert exact == pytest.approx(linear, rel=1e-2)


def test_svd_with_the_common_mode_removed(model: FolkRNN, rec: Recording) -> None:
    m = FolkRNN(ModelConfig(hidden_size=8, num_layers=2)).eval()
    with torch.no_grad():
        m.out.weight.copy_(m.out.weight + 3.0)  # a big shift of every logit alike: softmax ignores it
    r = sm.svd_reading(m)
    w = m.out.weight.detach().double().numpy()
    np.testing.assert_allclose(r.centred, np.linalg.svd(w - w.mean(axis=0), compute_uv=False), rtol=1e-10)
    assert r.cos_ones > 0.99 and r.ratio_raw > 5 * r.ratio_centred
    reading = sm.svd_reading(model)
    coeffs = sm.projections(rec.gate("h", 1), reading, 3)
    np.testing.assert_allclose(coeffs, rec.gate("h", 1) @ reading.vt_centred[:3].T * reading.centred[:3], rtol=1e-6)


def test_gramians_measured_against_the_one_hot_gramian(rec: Recording) -> None:
    inputs, outputs = np.array(rec.input_tokens), np.array(rec.tokens)
    mats = {"onehot": gr.onehot_gramian(rec.x), "outputs": gr.same_token(outputs),
            "h1": gr.magnitude_gramian(rec.gate("h", 1))}  # fmt: skip
    sim = gr.onehot_similarity(mats, inputs, outputs)
    assert sim["onehot"]["input token (XᵀX)"] == pytest.approx(1.0)
    assert sim["outputs"]["generated token (shifted 1)"] == pytest.approx(1.0)
    g, x = mats["h1"], gr.same_token(inputs)
    iu = np.triu_indices(len(g), 1)
    assert sim["h1"]["input token (XᵀX)"] == pytest.approx(np.corrcoef(g[iu], x[iu])[0, 1])


def test_band_follows_the_tunes_bar_period(rec: Recording, tmp_path: Path) -> None:
    bars = [t for t, tok in enumerate(rec.tokens) if tok in ("|", "|:", ":|", "|1", "|2")]
    period = bar_period(rec.tokens)
    assert period == pytest.approx(np.mean(np.diff(bars)))
    assert band_around(period) == pytest.approx((max(2.0, period - 0.3), max(period, 2.3) + 0.3), abs=1e-3)
    assert band_around(None) == (8.7, 9.3) and bar_period(["A", "|", "B"]) is None
    ctx = Context(tmp_path, Options(layer=1, min_fraction=0.99), rec)
    band, text = ctx.band()
    assert band == band_around(period) and f"{period:.2f} steps" in text
    sec = run_analysis("select", ctx)
    assert sec.warnings and "fewer than 5 %" in sec.warnings[0]  # 0.99 of a unit's power: few qualify
    assert few_units_warning(30, 512, 2, (8.7, 9.3), "qualify") is None
    assert "only 10 of 512" in str(few_units_warning(10, 512, 2, (8.7, 9.3), "qualify"))
