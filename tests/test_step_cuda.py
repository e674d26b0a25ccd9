"""The CUDA-graph step: the graph plumbing checked on the CPU (graph=False runs the same buffers
eagerly); the recorded graphs, GPU sampling and CPU/GPU agreement on a GPU (skipped here)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _models import random_model

from folkrnn_live.model import checkpoint
from folkrnn_live.model.step import TorchStepper
from folkrnn_live.model.step_cuda import CudaGraphStepper
from folkrnn_live.model.steppers import make_stepper
from folkrnn_live.sampler.batch import generate_tunes
from folkrnn_live.sampler.voice import Voice


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The CPU runs of these tests are a few tiny steps: torch's thread pool only costs time (on a
    loaded 2-core machine its spinning threads made 6 steps take a minute)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (benchmarks/gpu_check.sh)")


def _interventions(st, B, H, L):
    rng = np.random.default_rng(0)
    snip = [None, (rng.random((B, H)) > 0.3).astype(np.float32), None]
    rec = [(rng.random((B, H)) > 0.5).astype(np.float32), None, None]
    steer = rng.normal(size=(B, H)).astype(np.float32)
    conv = st.from_numpy
    return {"snip_out": [None if m is None else conv(m) for m in snip],
            "snip_rec": [None if m is None else conv(m) for m in rec], "steer": conv(steer)}  # fmt: skip


def _compare_with_eager(model, graph: bool) -> None:
    eager, rec = TorchStepper(model), CudaGraphStepper(model, graph=graph)
    B, H, L, V = 3, model.config.hidden_size, model.config.num_layers, model.config.vocab_size
    se, sr = eager.initial_state(B), rec.initial_state(B)
    toks = rec.from_numpy(np.array([5, 9, 20]))
    for t in range(6):
        kw = _interventions(rec, B, H, L) if t in (2, 3) else {}
        x = rec.from_numpy(np.eye(V, dtype=np.float32)[[1, 2, 3]] * 0.5) if t == 4 else None
        le, se, ae = eager.step(None if x is not None else toks, se, x=x, capture=t % 2 == 0, **kw)
        lr, sr, ar = rec.step(None if x is not None else toks, sr, x=x, capture=t % 2 == 0, **kw)
        torch.testing.assert_close(lr, le, rtol=1e-5, atol=1e-5)
        for k in range(L):
            torch.testing.assert_close(sr.h[k], se.h[k], rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(sr.c[k], se.c[k], rtol=1e-5, atol=1e-6)
        assert (ar is None) == (ae is None)
        if ar is not None:
            for name in ("i", "g_pre", "c", "h"):
                torch.testing.assert_close(torch.stack(getattr(ar, name)),
                                           torch.stack(getattr(ae, name)), rtol=1e-5, atol=1e-6)


def test_recorded_step_buffers_give_the_eager_step_with_every_intervention_on_the_cpu():
    _compare_with_eager(random_model(hidden=32, seed=2), graph=False)


def test_a_kept_state_is_not_overwritten_by_later_steps_of_another_voice():
    m = random_model(hidden=32, seed=3)
    st = CudaGraphStepper(m, graph=False)
    a = Voice(m, seed=1, stepper=st, max_tokens=40)
    b = Voice(m, seed=2, stepper=st, max_tokens=40)
    alone = Voice(m, seed=1, stepper=TorchStepper(m), max_tokens=40).generate()
    while a.step() is not None:
        b.step()  # shares the stepper and its buffers
    assert a.vocab.decode(a.tokens) == alone


def test_graph_stepper_refuses_a_cpu_model_by_name():
    with pytest.raises(ValueError, match="a CUDA graph needs the model on a CUDA device"):
        CudaGraphStepper(random_model())


def _cuda_model(hidden: int = 512):
    cpu = checkpoint.load_default_or(None).model if hidden == 512 else random_model(hidden=hidden, seed=2)
    gm = type(cpu)(cpu.config)
    checkpoint.load_state_tensors(gm, checkpoint.state_tensors(cpu))
    return cpu, gm.cuda().eval()


@needs_cuda
def test_cuda_graph_step_matches_eager_cuda_step_with_every_intervention():
    _, gm = _cuda_model(hidden=32)
    _compare_with_eager(gm, graph=True)


@needs_cuda
def test_auto_backend_on_cuda_is_the_graph_stepper():
    _, gm = _cuda_model(hidden=32)
    assert isinstance(make_stepper(gm), CudaGraphStepper)


@needs_cuda
def test_gpu_voices_and_batches_give_the_cpu_tunes_for_the_same_seeds():
    cpu, gm = _cuda_model()
    seeds = range(1, 21)
    on_cpu = {s: Voice(cpu, seed=s).generate() for s in seeds}
    on_gpu = {s: Voice(gm, seed=s).generate() for s in seeds}
    batched = {t.seed: t.tokens for t in generate_tunes(gm, seeds, batch=8)}
    # float32 logits differ in their last bits between cuBLAS and OpenBLAS: a token can differ only
    # where a uniform number falls within ~1e-6 of a cumulative-probability boundary.
    assert sum(on_gpu[s] == on_cpu[s] for s in seeds) >= 18
    assert sum(batched[s] == on_cpu[s] for s in seeds) >= 18
