"""Recorder and reader: what is written is what the voice computed, chunks survive kill -9, memory is
bounded (drops are counted, the voice never waits), closing flushes, broken directories give clear
errors."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from _models import tiny_model

from folkrnn_live.model.network import FolkRNN
from folkrnn_live.recording.recorder import Recorder
from folkrnn_live.recording.recording import RecordingError, chunk_files, load_recording
from folkrnn_live.sampler.voice import StepResult, Voice

GATES = ("i", "f", "o", "g_pre", "g", "c", "h")


def tiny(hidden: int = 8, layers: int = 2, seed: int = 0) -> FolkRNN:
    return tiny_model(hidden, layers, seed)


def as_np(v: Any) -> np.ndarray:
    return v.detach().cpu().numpy().copy() if isinstance(v, torch.Tensor) else np.array(v)


class Copier:
    """An independent listener that deep-copies what the voice hands out."""

    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []

    def __call__(self, r: StepResult) -> None:
        a = r.activations
        assert a is not None
        self.steps.append({
            "token": r.token, "step": r.step, "probs": r.probs.copy(), "logits": as_np(r.logits),
            "controls": json.loads(json.dumps(r.controls)),
            "x": None if a.x is None else as_np(a.x[0]),
            **{g: np.stack([as_np(v[0]) for v in getattr(a, g)]) for g in GATES},
        })


def test_round_trip_matches_what_the_voice_computed(tmp_path: Path) -> None:
    model = tiny()
    voice = Voice(model, seed=5, prime=["M:4/4", "K:Cmaj"], max_tokens=23)
    copier = Copier()
    with Recorder(tmp_path / "rec", model, meta={"who": "test"}, chunk_steps=5) as rec:
        assert rec.attach(voice, name="fiddle") == "fiddle"
        voice.listeners.append(copier)
        tokens = voice.generate()
    r = load_recording(tmp_path / "rec")
    n = len(copier.steps)
    assert n == len(tokens) and r.n_steps == n
    assert len(chunk_files(tmp_path / "rec")) == -(-n // 5)  # full chunks plus the partial one at close
    assert r.voice == "fiddle" and r.meta["meta"] == {"who": "test"} and r.meta["closed"] is True
    assert r.tokens == tokens
    assert r.step.tolist() == list(range(n))
    assert r.input_tokens == ["<s>", *tokens[:-1]]
    vocab = model.config.vocab
    for t, s in enumerate(copier.steps):
        for g in GATES:
            np.testing.assert_array_equal(r.gates[g][t], s[g].astype(np.float32))
        np.testing.assert_allclose(r.probs[t], s["probs"], rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(r.logits[t], s["logits"])
        assert r.controls[t] == s["controls"]
        onehot = np.zeros(len(vocab), np.float32)
        onehot[vocab.index[r.input_tokens[t]]] = 1
        np.testing.assert_array_equal(r.x[t], onehot)
    # The LSTM identities hold on the stored arrays: names are not swapped.
    np.testing.assert_allclose(r.gates["h"], r.gates["o"] * np.tanh(r.gates["c"]), atol=1e-6)
    np.testing.assert_allclose(r.gates["g"], np.tanh(r.gates["g_pre"]), atol=1e-6)
    assert r.injected[:2].tolist() == [True, True] and not r.injected[2:].any()
    assert r.ended[-1] in (1, 2) and not r.ended[:-1].any()
    assert r.gate("h", 1).shape == (n, 8)


def test_forced_mix_and_interventions_are_recorded(tmp_path: Path) -> None:
    model = tiny()
    vocab = model.config.vocab
    voice = Voice(model, seed=2, max_tokens=12)
    copier = Copier()
    with Recorder(tmp_path / "rec", model) as rec:
        rec.attach(voice)
        voice.listeners.append(copier)
        voice.controls.set_force(0.7, [(vocab.select("@pitch"), 0.3)], None)
        for _ in range(4):
            voice.step()
        voice.controls.set_snip(1, [0, 3], "out")
        for _ in range(4):
            voice.step()
    r = load_recording(tmp_path / "rec")
    assert r.voice == "voice0"
    assert (r.input_token == -1).all()  # every input was a mix
    for t, s in enumerate(copier.steps):
        np.testing.assert_array_equal(r.x[t], s["x"])
        parts = sorted(round(float(v), 3) for v in r.x[t][r.x[t] > 0])
        assert parts in ([0.3, 0.7], [1.0])  # 1.0: both parts on one token
    # The voice's summary counts the snipped units; the recording keeps which ones they were.
    assert [c["snip"] for c in r.controls] == [{}] * 4 + [{"1": {"mode": "out", "units": [0, 3]}}] * 4
    assert all(c["force"]["weight_generated"] == 0.7 for c in r.controls)
    # A snipped unit sends nothing onward: its recorded h is zero once the snip is on.
    assert not r.gates["h"][4:, 1, [0, 3]].any() and r.gates["h"][:4, 1, [0, 3]].any()


def test_several_voices_are_kept_apart(tmp_path: Path) -> None:
    model = tiny()
    a, b = Voice(model, seed=1, max_tokens=9), Voice(model, seed=2, max_tokens=13)
    with Recorder(tmp_path / "rec", model, chunk_steps=4) as rec:
        rec.attach(a, name="a")
        rec.attach(b, name="b")
        ta, tb = [], []
        while a.ended is None or b.ended is None:
            for v, out in ((a, ta), (b, tb)):
                res = v.step()
                if res is not None:
                    out.append(res.text)
    assert load_recording(tmp_path / "rec", "a").tokens == ta
    assert load_recording(tmp_path / "rec", voice="b").tokens == tb
    with pytest.raises(ValueError, match=r"voice must be one of \['a', 'b'\] \(this recording has several\)"):
        load_recording(tmp_path / "rec")
    with pytest.raises(ValueError, match="voice must be one of"):
        load_recording(tmp_path / "rec", "c")


def test_tunes_of_one_voice_are_told_apart(tmp_path: Path) -> None:
    model = tiny()
    voice = Voice(model, seed=10, max_tokens=6)
    with Recorder(tmp_path / "rec", model) as rec:
        rec.attach(voice)
        first = voice.generate()
        voice.start_tune()
        second = voice.generate()
    r = load_recording(tmp_path / "rec")
    assert r.tune_ids == [0, 1]
    assert r.tune_view(0).tokens == first and r.tune_view(1).tokens == second
    assert r.tune_view(1).seed.tolist() == [11] * len(second)
    with pytest.raises(ValueError, match=r"tune must be in range 0\.\.1"):
        r.tune_view(2)


def test_close_flushes_a_partial_chunk_and_is_idempotent(tmp_path: Path) -> None:
    model = tiny()
    voice = Voice(model, seed=3, max_tokens=20)
    rec = Recorder(tmp_path / "rec", model, chunk_steps=1000, flush_seconds=3600)
    rec.attach(voice)
    tokens = voice.generate()
    assert chunk_files(tmp_path / "rec") == []  # nothing forced a write yet
    rec.close()
    rec.close()
    assert load_recording(tmp_path / "rec").tokens == tokens
    assert rec.stats.steps == len(tokens) and rec.stats.chunks == 1 and rec.stats.bytes > 0
    assert voice.listeners == [] and voice.capture is False  # detached, capture as it was
    with pytest.raises(ValueError, match="closed"):
        rec.attach(voice)


def test_flush_writes_what_is_queued(tmp_path: Path) -> None:
    model = tiny()
    voice = Voice(model, seed=3, max_tokens=50)
    with Recorder(tmp_path / "rec", model, chunk_steps=1000, flush_seconds=3600) as rec:
        rec.attach(voice)
        for _ in range(7):
            voice.step()
        assert rec.flush()
        assert load_recording(tmp_path / "rec").n_steps == 7


def test_full_queue_drops_and_never_blocks_the_voice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny()
    release = threading.Event()
    writing = threading.Event()
    original = Recorder._write_chunk

    def stuck_write(self: Recorder) -> None:
        writing.set()
        release.wait()  # a disk that hangs
        original(self)

    monkeypatch.setattr(Recorder, "_write_chunk", stuck_write)
    voice = Voice(model, seed=4, max_tokens=1000)
    rec = Recorder(tmp_path / "rec", model, chunk_steps=4, max_queue_steps=6, on_full="drop")
    rec.attach(voice)
    for _ in range(4):
        voice.step()
    assert writing.wait(10)  # the worker is now stuck writing the first chunk
    for _ in range(36):
        voice.step()  # returns although the writer hangs: the voice never waits
    assert rec.stats.dropped == 36 - 6  # the queue holds 6; the rest were counted, not kept
    release.set()
    rec.close(timeout=10)
    r = load_recording(tmp_path / "rec")
    assert r.n_steps == 10 and r.n_steps + rec.stats.dropped == 40
    assert r.step.tolist() == list(range(10))
    assert json.loads((tmp_path / "rec" / "meta.json").read_text())["stats"]["dropped"] == 30


def test_block_policy_loses_nothing(tmp_path: Path) -> None:
    model = tiny()
    voice = Voice(model, seed=4, max_tokens=40)
    with Recorder(tmp_path / "rec", model, chunk_steps=3, max_queue_steps=1, on_full="block") as rec:
        rec.attach(voice)
        tokens = voice.generate()
    assert rec.stats.dropped == 0
    assert load_recording(tmp_path / "rec").tokens == tokens


@pytest.mark.asyncio
async def test_async_context_manager_closes(tmp_path: Path) -> None:
    model = tiny()
    voice = Voice(model, seed=6, max_tokens=10)
    async with Recorder(tmp_path / "rec", model) as rec:
        rec.attach(voice)
        tokens = voice.generate()
    assert rec.closed
    assert load_recording(tmp_path / "rec").tokens == tokens


KILL_SCRIPT = textwrap.dedent(
    """
    import json, sys, time, torch
    from folkrnn_live.recording.recorder import Recorder
    from folkrnn_live.model.config import ModelConfig
    from folkrnn_live.model.network import FolkRNN
    from folkrnn_live.sampler.voice import Voice
    torch.manual_seed(0)
    model = FolkRNN(ModelConfig(hidden_size=8, num_layers=2)).eval()
    rec = Recorder(sys.argv[1], model, chunk_steps=4, flush_seconds=3600)
    voice = Voice(model, seed=7, max_tokens=100000)
    rec.attach(voice)
    tokens = []
    while rec.stats.chunks < 3:
        tokens.append(voice.step().text)
        time.sleep(0.001)
    print(json.dumps(tokens), flush=True)
    while True:  # keep recording until killed
        tokens.append(voice.step().text)
        time.sleep(0.001)
    """
)


def test_recording_survives_kill_9_up_to_its_last_chunk(tmp_path: Path) -> None:
    out = tmp_path / "rec"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(out)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 120)  # never hang the suite on a stuck child
        line = proc.stdout.readline() if ready else ""
        assert line, "the recording process did not write 3 chunks"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
    before_kill = json.loads(line)
    r = load_recording(out)
    assert r.n_steps >= 12 and r.n_steps % 4 == 0  # whole chunks only
    assert r.tokens[:12] == before_kill[:12]
    assert r.step.tolist() == list(range(r.n_steps))
    assert r.meta["closed"] is False
    # Every surviving row is what the same voice computes here, activations included.
    voice = Voice(tiny(), seed=7, max_tokens=100000, capture=True)
    copier = Copier()
    voice.listeners.append(copier)
    for _ in range(r.n_steps):
        voice.step()
    assert r.tokens == [voice.vocab.tokens[s["token"]] for s in copier.steps]
    np.testing.assert_array_equal(r.gates["c"], np.stack([s["c"] for s in copier.steps]))


def _small_recording(path: Path) -> None:
    model = tiny()
    voice = Voice(model, seed=1, max_tokens=7)
    with Recorder(path, model, chunk_steps=3) as rec:
        rec.attach(voice)
        assert len(voice.generate()) == 7


def test_broken_directories_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="not a directory"):
        load_recording(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RecordingError, match=r"meta\.json: missing"):
        load_recording(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "meta.json").write_text("{not json")
    with pytest.raises(RecordingError, match="not valid JSON"):
        load_recording(bad)
    (bad / "meta.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(RecordingError, match="'format' must be"):
        load_recording(bad)

    rec = tmp_path / "rec"
    _small_recording(rec)
    (rec / "chunk_000099.npz.tmp").write_bytes(b"half a chunk from a killed writer")
    assert load_recording(rec).n_steps == 7  # leftovers of a killed writer are ignored
    first = chunk_files(rec)[0]
    first.write_bytes(first.read_bytes()[:100])
    with pytest.raises(RecordingError, match=r"chunk_000000\.npz: not a readable chunk"):
        load_recording(rec)


def test_recorder_refuses_an_existing_recording_and_bad_settings(tmp_path: Path) -> None:
    _small_recording(tmp_path / "rec")
    model = tiny()
    with pytest.raises(ValueError, match="already holds a recording"):
        Recorder(tmp_path / "rec", model)
    with pytest.raises(ValueError, match="on_full must be 'drop' or 'block'; got 'wait'"):
        Recorder(tmp_path / "r2", model, on_full="wait")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="chunk_steps must be in range"):
        Recorder(tmp_path / "r3", model, chunk_steps=0)
    with Recorder(tmp_path / "r4", model) as rec:
        v = Voice(model)
        rec.attach(v, name="x")
        with pytest.raises(ValueError, match="already attached"):
            rec.attach(v)
        with pytest.raises(ValueError, match="already used"):
            rec.attach(Voice(model), name="x")
        with pytest.raises(ValueError, match="layers/hidden/vocab"):
            rec.attach(Voice(tiny(hidden=4)))


def test_torch_backend_and_float16_compressed_chunks(tmp_path: Path) -> None:
    model = tiny()
    voice = Voice(model, seed=5, max_tokens=15, backend="torch")
    copier = Copier()
    with Recorder(tmp_path / "rec", model, dtype="float16", compress=True) as rec:
        rec.attach(voice)
        voice.listeners.append(copier)
        tokens = voice.generate()
    r = load_recording(tmp_path / "rec")
    assert r.tokens == tokens and r.gates["h"].dtype == np.float16
    for g in GATES:
        want = np.stack([s[g] for s in copier.steps])
        np.testing.assert_allclose(r.gates[g].astype(np.float32), want, rtol=1e-3, atol=1e-3)


def test_loading_one_tune_reads_only_its_rows(tmp_path: Path) -> None:
    model = tiny()
    voice = Voice(model, seed=10, max_tokens=6)
    with Recorder(tmp_path / "rec", model, chunk_steps=4) as rec:
        rec.attach(voice)
        voice.generate()
        voice.start_tune()
        second = voice.generate()
    r = load_recording(tmp_path / "rec", tune=1)
    assert r.tokens == second and r.tune_ids == [1]
    with pytest.raises(ValueError, match=r"tune must be in range 0\.\.1 \(this voice has 2 tunes\); got 5"):
        load_recording(tmp_path / "rec", tune=5)


def test_a_step_previewed_before_attaching_is_recorded(tmp_path: Path) -> None:
    model = tiny()
    voice = Voice(model, seed=5, max_tokens=10)
    voice.preview()  # computed without capture; the recorder must not get a step without activations
    with Recorder(tmp_path / "rec", model) as rec:
        rec.attach(voice)
        voice.step()
    assert rec.stats.skipped == 0 and load_recording(tmp_path / "rec").n_steps == 1


def test_the_recording_names_its_model(tmp_path: Path) -> None:
    with Recorder(tmp_path / "a", tiny(seed=0)), Recorder(tmp_path / "b", tiny(seed=0)), \
            Recorder(tmp_path / "c", tiny(seed=1)):
        pass
    fp = {k: json.loads((tmp_path / k / "meta.json").read_text())["model"]["fingerprint"] for k in "abc"}
    assert fp["a"] == fp["b"] != fp["c"]
