"""Parameter analyses and unit selection on small models with weights set by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _models import tiny_model
from scipy import stats

from folkrnn_live.analysis import params as pa
from folkrnn_live.analysis.selection import UnitSelection, random_units, select_by_band
from folkrnn_live.model.network import FolkRNN
from folkrnn_live.sampler.voice import Voice


def tiny(hidden: int = 4, layers: int = 1) -> FolkRNN:
    return tiny_model(hidden, layers)


def test_output_svd_finds_the_direction_that_raises_repeat_and_end() -> None:
    model = tiny(hidden=6)
    vocab = model.config.vocab
    rng = np.random.default_rng(0)
    w = 0.01 * rng.normal(size=(len(vocab), 6))
    direction = np.zeros(len(vocab))
    direction[[vocab.index["|:"], vocab.index["</s>"]]] = [0.8, 0.6]
    w += 5.0 * np.outer(direction, np.eye(6)[2])  # hidden unit 2 pushes |: and </s>
    with torch.no_grad():
        model.out.weight.copy_(torch.tensor(w))
    svd = pa.output_svd(model, directions=2, top=2)
    np.testing.assert_allclose(svd.singular_values, np.linalg.svd(w, compute_uv=False), rtol=1e-5)
    assert svd.singular_values[0] > 10 * svd.singular_values[1]
    assert [t for t, _ in svd.top[0]] == ["|:", "</s>"]
    assert svd.top[0][0][1] == pytest.approx(0.8, abs=0.01)  # sign fixed: largest loading positive
    js = svd.to_json()
    assert js["ratio_first_second"] > 10 and js["top_tokens"][0][0]["token"] == "|:"


def test_first_layer_input_norms_and_gramians_per_gate() -> None:
    H = 3
    model = tiny(hidden=H)
    vocab = model.config.vocab
    V = len(vocab)
    w = np.zeros((4 * H, V))
    a, b = vocab.index["A"], vocab.index["M:4/4"]
    w[0:H, a] = [1.0, 2.0, 2.0]  # gate i: token A, norm 3
    w[H : 2 * H, b] = [0.0, 0.0, 0.5]  # gate f: the meter token, norm 0.5
    w[2 * H : 3 * H, a] = [1.0, 0.0, 0.0]  # gate g (cell): A and
    w[2 * H : 3 * H, b] = [1.0, 1.0, 0.0]  # the meter token share one direction
    w[3 * H :, :] = 1.0  # gate o: every token, norm sqrt(3)
    with torch.no_grad():
        model.weight_ih(0).copy_(torch.tensor(w))
    n = pa.input_column_norms(model)
    assert n["i"][a] == pytest.approx(3.0) and n["i"][b] == 0.0
    assert n["f"][b] == pytest.approx(0.5) and n["f"][a] == 0.0
    assert np.allclose(n["o"], np.sqrt(3))
    g = pa.input_gramians(model)
    assert g["g"][a, b] == pytest.approx(1.0) and g["g"][b, b] == pytest.approx(2.0)
    assert g["i"][a, a] == pytest.approx(9.0) and g["o"][a, b] == pytest.approx(3.0)
    assert g["f"].shape == (V, V)


def test_output_bias_correlation_is_pearsons_r_per_hidden_unit() -> None:
    model = tiny(hidden=5)
    w = model.out.weight.detach().double().numpy()
    b = model.out.bias.detach().double().numpy()
    corr = pa.output_bias_correlation(model)
    expected = [stats.pearsonr(w[:, j], b)[0] for j in range(5)]
    np.testing.assert_allclose(corr, expected, rtol=1e-6)
    with torch.no_grad():
        model.out.weight[:, 1] = 2 * model.out.bias + 1  # a column that is the bias, scaled and shifted
    assert pa.output_bias_correlation(model)[1] == pytest.approx(1.0)


def test_input_recurrent_alignment_and_summary() -> None:
    model = tiny(hidden=4, layers=2)
    H = 4
    with torch.no_grad():
        wx = torch.zeros(4 * H, len(model.config.vocab))
        wx[0, :] = 1.0  # gate i input columns all along unit 0
        wh = torch.zeros(4 * H, H)
        wh[1, :] = 1.0  # gate i recurrent columns all along unit 1: orthogonal
        wh[H + 0, :] = 1.0  # gate f: recurrent along unit 0 ...
        wx[H + 0, :] = 1.0  # ... and input along unit 0: aligned
        model.weight_ih(0).copy_(wx)
        model.weight_hh(0).copy_(wh)
    al = pa.input_recurrent_alignment(model, 0)
    assert al["i"]["max_abs_cos"] == 0.0 and al["f"]["mean_abs_cos"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"layer must be in range 0\.\.1"):
        pa.input_recurrent_alignment(model, 2)
    summ = pa.parameter_summary(model, directions=2)
    json.dumps(summ)  # JSON-able
    assert set(summ["input_recurrent_alignment"]) == {"layer0", "layer1"}


def test_vocab_order_groups_classes_and_sorts_pitches() -> None:
    vocab = tiny().config.vocab
    order = pa.vocab_order(vocab)
    assert sorted(order) == list(range(len(vocab)))
    toks = [vocab.tokens[i] for i in order]
    pitches = [t for t in toks if vocab.info[vocab.index[t]].cls == "pitch"]
    assert toks[: len(pitches)] == pitches
    midis = [vocab.info[vocab.index[t]].midi for t in pitches]
    assert midis == sorted(midis) and pitches[0] in ("C,", "=C,") and pitches[-1] == "b'"


def test_band_selection_finds_the_periodic_units_in_the_servers_snip_form() -> None:
    n, t = 147, np.arange(147)
    rng = np.random.default_rng(5)
    h = 0.05 * rng.normal(size=(n, 6))
    h[:, 1] += np.sin(2 * np.pi * t / 9.0)
    h[:, 4] += 0.5 * np.cos(2 * np.pi * t / 8.9)
    h[:, 2] += np.sin(2 * np.pi * t / 4.5)  # a harmonic, not the band
    sel = select_by_band(h, 2, (8.7, 9.3), 0.05, "hann", pad_to=1024)
    assert set(sel.units) == {1, 4}
    assert sel.snip_json() == {"layer": 2, "mode": "out", "units": list(sel.units)}
    assert sel.osc("a") == "/folkrnn/a/snip 2 out " + " ".join(map(str, sel.units))
    assert all(s >= 0.05 for s in sel.scores) and list(sel.scores) == sorted(sel.scores, reverse=True)
    # The JSON goes straight into the voice's snip control.
    voice = Voice(tiny(hidden=6, layers=3), seed=1)
    cmd = json.loads(sel.dumps())
    voice.controls.set_snip(cmd["layer"], cmd["units"], cmd["mode"])
    assert voice.controls.snips[2].units == tuple(sorted(sel.units))
    with pytest.raises(ValueError, match=r"min_fraction must be in range 0\.\.1"):
        select_by_band(h, 2, min_fraction=1.5)
    with pytest.raises(ValueError, match="snip mode must be 'out' or 'all'"):
        UnitSelection(0, (1,), "cut")  # type: ignore[arg-type]


def test_random_units_are_distinct_reproducible_and_sized() -> None:
    a = random_units(512, 100, 2, seed=3)
    assert len(set(a.units)) == 100 and all(0 <= u < 512 for u in a.units)
    assert random_units(512, 100, 2, seed=3).units == a.units
    assert random_units(512, 100, 2, seed=4).units != a.units
    ex = random_units(20, 5, 0, seed=1, exclude=tuple(range(10)))
    assert all(u >= 10 for u in ex.units)
    with pytest.raises(ValueError, match=r"count must be in range 0\.\.8"):
        random_units(8, 9, 0)
