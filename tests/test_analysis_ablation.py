"""The ablation experiment on a tiny model: the right units are snipped, tunes are reproducible,
bars are counted by the project's bar checker."""

from __future__ import annotations

import numpy as np
import pytest
from _models import tiny_model

from folkrnn_live.abc.bars import check_bars
from folkrnn_live.analysis.ablation import parse_seeds, run_ablation
from folkrnn_live.analysis.spectra import band_power_fraction
from folkrnn_live.model.network import FolkRNN
from folkrnn_live.sampler.voice import Voice

PRIME = ["M:4/4", "K:Cmaj"]


def tiny() -> FolkRNN:
    return tiny_model(hidden=16, layers=2, seed=1)


def test_ablation_snips_the_top_band_units_and_random_ones_over_fixed_seeds() -> None:
    model = tiny()
    res = run_ablation(model, 1, [0.5], [3, 4], prime=PRIME, max_tokens=40, random_sets=2, random_seed=9)
    assert res.fractions == (0.0, 0.5)
    kinds = [(p.fraction, p.kind, p.set_index, p.count) for p in res.points]
    assert kinds == [(0.0, "none", 0, 0), (0.5, "band", 0, 8), (0.5, "random", 0, 8), (0.5, "random", 1, 8)]

    # The reference ranking is each unit's band share over the unsnipped tunes, computed here apart.
    shares = []
    for seed in (3, 4):
        rows: list[np.ndarray] = []
        v = Voice(model, seed=seed, prime=PRIME, max_tokens=40, capture=True)
        v.listeners.append(lambda r, rows=rows: rows.append(np.array(r.activations.h[1][0], dtype=np.float64)))
        tokens = v.generate()
        assert list(res.points[0].tunes[[3, 4].index(seed)].tokens) == tokens  # same seed, same tune
        h = np.stack(rows)
        shares.append(band_power_fraction(h, (8.7, 9.3), "hann", max(1024, len(h))))
    np.testing.assert_allclose(res.band_share, np.mean(shares, axis=0))
    band = res.points[1]
    assert set(band.selection.units) == set(np.argsort(-res.band_share, kind="stable")[:8].tolist())

    # Each snipped tune is what a voice with that snip generates; bars are the bar checker's.
    for p in res.points[1:]:
        for t in p.tunes:
            v = Voice(model, seed=t.seed, prime=PRIME, max_tokens=40)
            v.controls.set_snip(1, list(p.selection.units), "out")
            tokens = v.generate()
            assert list(t.tokens) == tokens
            rep = check_bars(tokens)
            assert (t.bars, t.bars_ok) == (rep.n_bars, rep.n_ok)
    assert res.points[2].selection.units != res.points[3].selection.units
    for p in res.points:
        total = sum(t.bars for t in p.tunes)
        assert p.share_ok == (sum(t.bars_ok for t in p.tunes) / total if total else 0.0)

    curve = res.curve("random")
    assert curve[0][1] == res.points[0].share_ok  # fraction 0 is the unsnipped model for both kinds
    vals = [res.points[2].share_ok, res.points[3].share_ok]
    assert curve[1][1:] == pytest.approx((np.mean(vals), min(vals), max(vals)))
    js = res.to_json()
    assert js["selections"][0]["snip"] == {"layer": 1, "mode": "out", "units": list(band.selection.units)}
    assert len(res.rows()) == 4


def test_ablation_rejects_bad_arguments() -> None:
    model = tiny()
    with pytest.raises(ValueError, match=r"layer must be in range 0\.\.1"):
        run_ablation(model, 2, [0.2], [1])
    with pytest.raises(ValueError, match=r"fractions must be in range 0\.\.1"):
        run_ablation(model, 1, [1.5], [1])
    with pytest.raises(ValueError, match="window must be 'hann' or 'rect'"):
        run_ablation(model, 1, [0.2], [1], window_name="blackman")


def test_parse_seeds() -> None:
    assert parse_seeds("1..4") == [1, 2, 3, 4]
    assert parse_seeds("1..3,7, 9") == [1, 2, 3, 7, 9]
    for bad in ("", "a", "5..2", "1..x", "-3"):
        with pytest.raises(ValueError, match="seeds must be integers or ranges like 1..8"):
            parse_seeds(bad)
