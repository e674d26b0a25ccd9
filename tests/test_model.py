"""The network: exact v2 size, and the sequence and step paths agreeing on the same weights."""

import numpy as np
import pytest
import torch
from _models import random_model

from folkrnn_live.model.config import ModelConfig
from folkrnn_live.model.network import FolkRNN
from folkrnn_live.model.step import NumpyStepper, TorchStepper


def test_v2_has_exactly_5599881_trainable_parameters():
    m = FolkRNN(ModelConfig())
    assert m.num_trainable() == 5_599_881
    # and the layer split stated in the reference
    per_layer = [sum(p.numel() for n, p in m.lstm.named_parameters() if n.endswith(f"l{k}") and p.requires_grad)
                 for k in range(3)]
    assert per_layer == [1_331_200, 2_099_200, 2_099_200]
    assert m.out.weight.numel() + m.out.bias.numel() == 70_281


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("stepper_cls", [NumpyStepper, TorchStepper])
def test_step_path_matches_sequence_path_for_independent_voices(stepper_cls):
    m = random_model(hidden=512, seed=1, scale=0.08)  # v2 size
    B, T = 3, 24
    toks = torch.randint(0, 137, (B, T), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = torch.softmax(m(toks)[0], -1).numpy()
    st = stepper_cls(m)
    state = st.initial_state(B)
    for t in range(T):
        tk = toks[:, t].numpy() if stepper_cls is NumpyStepper else toks[:, t]
        logits, state, _ = st.step(tk, state)
        got = _softmax(np.asarray(logits if isinstance(logits, np.ndarray) else logits.numpy(), np.float64))
        assert np.abs(got - ref[:, t]).max() < 1e-5


def test_initial_state_comes_from_hid_init_not_zeros():
    m = random_model(seed=2)
    st = NumpyStepper(m)
    s = st.initial_state(2)
    np.testing.assert_array_equal(s.h[1][0], m.hid_init[1].numpy())
    zero = NumpyStepper(m)
    z = zero.initial_state(1)
    for k in range(3):
        z.h[k][:] = 0.0
    a, _, _ = st.step(np.array([5]), st.initial_state(1))
    b, _, _ = zero.step(np.array([5]), z)
    assert np.abs(a - b).max() > 1e-3


def test_capture_returns_every_activation_consistent_with_the_equations():
    m = random_model(seed=3)
    st = NumpyStepper(m)
    s = st.initial_state(1)
    plain, _, none = st.step(np.array([7]), s)
    logits, _, acts = st.step(np.array([7]), s, capture=True)
    assert none is None
    np.testing.assert_array_equal(plain, logits)  # capture changes nothing
    for k in range(3):
        np.testing.assert_allclose(acts.g[k], np.tanh(acts.g_pre[k]), rtol=1e-6)
        np.testing.assert_allclose(acts.c[k], acts.f[k] * s.c[k] + acts.i[k] * acts.g[k], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(acts.h[k], acts.o[k] * np.tanh(acts.c[k]), rtol=1e-5, atol=1e-7)
        assert ((acts.i[k] > 0) & (acts.i[k] < 1)).all()
    assert acts.layer_stack("h").shape == (3, 1, 32)
    x = acts.input_vectors(137)
    assert x[0, 7] == 1.0 and x.sum() == 1.0


def test_snip_out_cuts_only_what_is_sent_and_snip_all_cuts_recurrence():
    m = random_model(seed=4)
    st = NumpyStepper(m)
    mask = np.ones((1, 32), np.float32)
    mask[0, [0, 5, 9]] = 0
    s = st.initial_state(1)
    _, s_out, a_out = st.step(np.array([3]), s, snip_out=[None, mask, None], capture=True)
    assert (a_out.h[1][0, [0, 5, 9]] == 0).all()
    assert (s_out.h[1][0, [0, 5, 9]] != 0).all()  # recurrence kept
    _, s_all, _ = st.step(np.array([3]), s, snip_out=[None, mask, None], snip_rec=[None, mask, None])
    assert (s_all.h[1][0, [0, 5, 9]] == 0).all()


def test_dense_input_equals_one_hot_for_a_one_hot_vector():
    m = random_model(seed=5)
    st = NumpyStepper(m)
    s = st.initial_state(1)
    x = np.zeros((1, 137), np.float32)
    x[0, 11] = 1.0
    a, _, _ = st.step(np.array([11]), s)
    b, _, _ = st.step(None, s, x=x)
    np.testing.assert_allclose(a, b, atol=1e-5)
