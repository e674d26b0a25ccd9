"""Gramians and L1 distances against hand-computed values on small arrays."""

from __future__ import annotations

import numpy as np
import pytest

from folkrnn_live.analysis import gramians as gr


def test_onehot_gramian_marks_repeated_inputs() -> None:
    x = np.eye(4)[[2, 0, 2, 3]]  # steps input tokens 2, 0, 2, 3
    expected = [[1, 0, 1, 0], [0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]]
    np.testing.assert_array_equal(gr.onehot_gramian(x), expected)


def test_magnitude_gramian_ignores_length_and_polarity() -> None:
    a = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    s = 1 / np.sqrt(2)
    expected = [
        [1, 0, 1, s, 0],
        [0, 1, 0, s, 0],
        [1, 0, 1, s, 0],
        [s, s, s, 1, 0],
        [0, 0, 0, 0, 0],  # an all-zero activation has no direction
    ]
    np.testing.assert_allclose(gr.magnitude_gramian(a), expected, atol=1e-12)


def test_cross_products_between_gates_are_signed_and_row_by_row() -> None:
    a = np.array([[1.0, 0.0], [0.0, 1.0]])
    b = np.array([[-2.0, 0.0], [1.0, 1.0]])
    s = 1 / np.sqrt(2)
    np.testing.assert_allclose(gr.cross_products(a, b), [[-1, s], [0, s]], atol=1e-12)
    with pytest.raises(ValueError, match="same shape"):
        gr.cross_products(a, b[:1])


def test_l1_distances_and_seed_001_classes() -> None:
    p = np.array([
        [0.5, 0.5, 0.0, 0.0],
        [0.5, 0.49, 0.01, 0.0],  # 0.02 from the first: "near"
        [0.0, 0.0, 0.0, 1.0],  # disjoint from both: 2
        [0.0, 0.0, 0.995, 0.005],  # 1.99 from the third, 2 from the first
    ])
    d = gr.l1_distances(p)
    expected = [
        [0, 0.02, 2, 2],
        [0.02, 0, 2, 1.98],
        [2, 2, 0, 1.99],
        [2, 1.98, 1.99, 0],
    ]
    np.testing.assert_allclose(d, expected, atol=1e-12)
    s = gr.l1_summary(np.round(d, 12))
    assert s.pairs == 6 and s.near == 1 and s.far == 5
    assert s.above_far == 4  # strictly above 1.98, as seed 001 counts
    classes = gr.l1_colour_classes(np.round(d, 12))
    assert classes[0, 1] == 1 and classes[0, 2] == 2 and classes[1, 3] == 2
    assert (np.diag(classes) == 1).all()


def test_layer_gramians_with_and_without_tanh() -> None:
    # Two steps, one layer, two units: c saturates in direction (1, 1) at step 1 but not at step 0.
    c = np.array([[[0.1, 0.0]], [[5.0, 5.0]]])
    zeros = np.zeros_like(c)
    gates = {"h": c, "c": c, "i": c, "f": c, "o": c, "g": zeros, "g_pre": zeros}
    g = gr.layer_gramians(gates, 0)
    assert set(g) == {"h", "c", "tanh_c", "i", "f", "o", "g", "g_pre"}
    np.testing.assert_allclose(g["c"][0, 1], 1 / np.sqrt(2))
    np.testing.assert_allclose(g["tanh_c"][0, 1], 1 / np.sqrt(2))  # direction kept by elementwise tanh here
    c2 = np.array([[[3.0, 0.1]], [[0.1, 3.0]]])
    gates2 = {**gates, "c": c2}
    g2 = gr.layer_gramians(gates2, 0)
    raw = abs(3 * 0.1 + 0.1 * 3) / (3.0**2 + 0.1**2)
    t = np.tanh([3.0, 0.1])
    squashed = abs(2 * t[0] * t[1]) / (t[0] ** 2 + t[1] ** 2)
    assert g2["c"][0, 1] == pytest.approx(raw) and g2["tanh_c"][0, 1] == pytest.approx(squashed)
    assert not np.any(g["g"])  # all-zero activations give an all-zero Gramian


def test_bar_steps_finds_every_bar_class_token() -> None:
    toks = ["M:4/4", "|:", "A", "|", "B", "|1", "c", ":|", "|2", "d", "</s>"]
    assert gr.bar_steps(toks) == [1, 3, 5, 7, 8]
