"""The ablation's statistics: the paired sign-flip test, its confidence intervals, and the
per-seed scores they are computed from."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy import stats as st

from folkrnn_live.analysis.ablation import run_ablation
from folkrnn_live.analysis.bar_period import pooled_bar_period
from folkrnn_live.analysis.stats import mean_interval, paired_comparison, sign_flip_p
from folkrnn_live.model.config import ModelConfig
from folkrnn_live.model.network import FolkRNN


def test_sign_flip_p_counts_the_sign_patterns_at_least_as_extreme() -> None:
    d = [0.5, 0.4, 0.6, 0.5, 0.3, 0.2, 0.4, 0.5]  # all positive: only all-plus and all-minus reach it
    assert sign_flip_p(d) == pytest.approx(2 / 256)
    d2 = [0.3, -0.1, 0.2]
    brute = np.mean([abs(np.dot(s, d2)) / 3 >= abs(np.mean(d2)) - 1e-12
                     for s in itertools.product((1, -1), repeat=3)])  # fmt: skip
    assert sign_flip_p(d2) == pytest.approx(brute)
    assert sign_flip_p([0.0, 0.0, 0.0]) == 1.0  # no difference at all
    many = np.full(20, 0.1)  # more than 16 pairs: drawn sign patterns, reproducible
    assert sign_flip_p(many) == sign_flip_p(many) < 0.001


def test_intervals_are_student_t_clipped_to_what_a_share_can_be() -> None:
    v = [0.9, 0.7, 1.0, 0.8, 0.95]
    iv = mean_interval(v)
    lo, hi = st.t.interval(0.95, len(v) - 1, loc=np.mean(v), scale=st.sem(v))
    assert (iv.low, iv.high) == pytest.approx((lo, min(hi, 1e9)))
    clipped = mean_interval(v, bounds=(0.0, 1.0))
    assert clipped.high == 1.0 and clipped.low == pytest.approx(lo)
    assert mean_interval([0.5]).text() == "50.0 % (n=1, no interval)"
    with pytest.raises(ValueError, match="at least one value"):
        mean_interval([])
    c = paired_comparison(0.33, [0.2, 0.1, 0.3, 0.25], [1.0, 0.9, 1.0, 0.95])
    assert c.difference.mean == pytest.approx(-0.75) and c.difference.high < 0 and c.p_value == pytest.approx(2 / 16)
    with pytest.raises(ValueError, match="paired per seed"):
        paired_comparison(0.2, [1.0, 0.5], [1.0])


def test_ablation_compares_band_and_random_seed_by_seed() -> None:
    torch.manual_seed(0)
    model = FolkRNN(ModelConfig(hidden_size=8, num_layers=2)).eval()
    res = run_ablation(model, 1, (0.0, 0.5), (1, 2, 3), random_sets=2, max_tokens=40)
    ref = [t.tokens for p in res.points if p.kind == "none" for t in p.tunes]
    period = pooled_bar_period(ref)
    assert res.settings["measured_bar_period"] == period  # the band came from the tunes' own bars
    if period is not None:
        assert res.band == pytest.approx((max(2.0, period - 0.3), max(period, 2.3) + 0.3), abs=1e-3)
    (c,) = res.comparisons()
    band_pt = next(p for p in res.points if p.kind == "band")
    rand_pts = [p for p in res.points if p.kind == "random"]
    band_scores = [t.bars_ok / t.bars if t.bars else 0.0 for t in band_pt.tunes]
    rand_scores = [np.mean([p.tunes[j].score for p in rand_pts]) for j in range(3)]
    assert c.band.mean == pytest.approx(np.mean(band_scores)) and c.random.mean == pytest.approx(np.mean(rand_scores))
    assert c.p_value == pytest.approx(sign_flip_p(np.subtract(band_scores, rand_scores)))
    assert res.to_json()["comparisons"][0]["test"].startswith("paired sign-flip permutation test")
