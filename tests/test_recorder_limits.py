"""Recordings that cannot run away or take bad input (issue 12): the size cap, ``record --out`` into
a folder that holds something else, ``record --snip`` with the exact inputs that gave tracebacks, and
``record --suppress/--bias`` doing what the server's commands do."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _models import tiny_model

from folkrnn_live.cli.main import main
from folkrnn_live.model import checkpoint
from folkrnn_live.model.network import FolkRNN
from folkrnn_live.recording import Recorder, RecordingFull, load_recording
from folkrnn_live.recording.recording import chunk_files
from folkrnn_live.sampler.voice import Voice
from folkrnn_live.tokens import CLASS_NAMES

Capture = pytest.CaptureFixture[str]


def tiny() -> FolkRNN:
    return tiny_model(hidden=8, layers=2)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return checkpoint.save(tiny(), tmp_path_factory.mktemp("model"))


def _chunk_bytes(tmp_path: Path, steps: int) -> int:
    """The size of one uncapped chunk of ``steps`` steps of this model."""
    model = tiny()
    voice = Voice(model, seed=1, max_tokens=steps)
    with Recorder(tmp_path / "probe", model, chunk_steps=steps) as rec:
        rec.attach(voice)
        voice.generate()
    return rec.stats.bytes


def test_size_cap_stops_writing_and_keeps_a_readable_recording(tmp_path: Path) -> None:
    cap = int(_chunk_bytes(tmp_path, 4) * 2.5)  # room for two chunks of 4 steps, not three
    model = tiny()
    voice = Voice(model, seed=3, max_tokens=40)
    reached: list[RecordingFull] = []
    with Recorder(tmp_path / "rec", model, chunk_steps=4, max_bytes=cap, on_limit=reached.append) as rec:
        rec.attach(voice)
        tokens = voice.generate()
        assert rec.flush()
    assert len(tokens) == 40 and len(reached) == 1 and rec.limit_reached is reached[0]
    full = reached[0]
    assert "size cap" in str(full) and "\n" not in str(full) and full.max_bytes == cap and full.steps == 8
    files = chunk_files(tmp_path / "rec")
    assert len(files) == 2 and sum(f.stat().st_size for f in files) <= cap
    assert not list((tmp_path / "rec").glob("*.tmp"))
    r = load_recording(tmp_path / "rec")
    assert r.tokens == tokens[:8] and r.step.tolist() == list(range(8))
    assert rec.stats.steps == 8 and rec.stats.over_limit == 32
    meta = json.loads((tmp_path / "rec" / "meta.json").read_text())
    assert meta["closed"] is True and meta["max_bytes"] == cap
    assert meta["limit_reached"]["steps"] == 8 and meta["stats"]["over_limit"] == 32


def test_after_the_cap_a_blocking_voice_never_waits(tmp_path: Path) -> None:
    model = tiny()
    voice = Voice(model, seed=4, max_tokens=300)
    with Recorder(tmp_path / "rec", model, chunk_steps=2, max_queue_steps=1, on_full="block", max_bytes=1) as rec:
        rec.attach(voice)
        tokens = voice.generate()  # returns: the writer keeps emptying the queue
    assert len(tokens) > 100 and rec.limit_reached is not None
    assert rec.stats.steps == 0 and rec.stats.over_limit == len(tokens)
    assert load_recording(tmp_path / "rec").n_steps == 0  # no chunk, still a recording


def test_a_failing_limit_callback_does_not_stop_the_writer(tmp_path: Path) -> None:
    model = tiny()

    def broken(_: RecordingFull) -> None:
        raise RuntimeError("callback bug")

    voice = Voice(model, seed=4, max_tokens=30)
    with Recorder(tmp_path / "rec", model, chunk_steps=2, max_bytes=1, on_limit=broken) as rec:
        rec.attach(voice)
        tokens = voice.generate()
    assert rec.limit_reached is not None and rec.stats.over_limit == len(tokens)


def test_bad_caps_and_non_empty_folders_are_refused(tmp_path: Path) -> None:
    model = tiny()
    for bad in (0, -5, 1 << 60):
        with pytest.raises(ValueError, match=r"max_bytes must be in range 1\.\."):
            Recorder(tmp_path / "r", model, max_bytes=bad)
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"not a recording")
    with pytest.raises(ValueError, match="is not empty and not a recording"):
        Recorder(other, model)
    assert [p.name for p in other.iterdir()] == ["holiday.jpg"]


def _record(model_dir: Path, out: Path, *extra: str) -> int:
    return main(["record", "--model", str(model_dir), "--out", str(out), "--seed", "5", "--prime", "M:4/4 K:Cmaj",
                 "--max-tokens", "30", *extra])  # fmt: skip


def test_record_refuses_a_folder_that_holds_something_else(model_dir: Path, tmp_path: Path, capsys: Capture) -> None:
    out = tmp_path / "docs"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert _record(model_dir, out) == 2
    err = capsys.readouterr().err.strip()
    assert "is not empty and not a recording" in err and "\n" not in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    (tmp_path / "empty").mkdir()
    assert _record(model_dir, tmp_path / "empty") == 0  # an empty folder is fine, as the help says


SNIP_CASES = [
    ("[" * 3000, "nested too deeply"),  # the exact input of issue 12 (a traceback before)
    ("{\"a\": " * 3000, "nested too deeply"),
    ('{"layer": 0, "units": [' + "[" * 3000 + "]}", "nested too deeply"),
    ('{"layer": 1, "units": [' + "9" * 5000 + "]}", "--snip must be JSON"),  # over Python's digit limit
    ('{"layer": 1, "units": [1e400]}', '"units" must be a list of integers'),
    ('{"layer": 1, "units": [true]}', '"units" must be a list of integers'),
    ('{"layer": 1, "units": [{"a": 1}]}', '"units" must be a list of integers'),
    ('{"layer": 1.5, "units": [1]}', '"layer" must be an integer'),
    ('{"layer": 0, "units": [1], "mode": "cut"}', '"mode" must be "out" or "all"'),
    ('{"layer": 0, "units": [1], "unit": 3}', "unknown keys 'unit'"),
    ("[1, 2]", "got a JSON list, not an object"),
    ("not json", "--snip must be JSON"),
    ('{"layer": 7, "units": [1]}', "--snip: layer must be in range 0..1"),
    ('{"layer": 1, "units": [99]}', "--snip: snip units must be in range 0..7"),
]


@pytest.mark.parametrize(("snip", "message"), SNIP_CASES, ids=[f"snip{k}" for k in range(len(SNIP_CASES))])
def test_bad_snip_is_one_line_and_exit_2(
    model_dir: Path, tmp_path: Path, capsys: Capture, snip: str, message: str
) -> None:
    assert _record(model_dir, tmp_path / "rec", "--snip", snip) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "--snip" in err and "\n" not in err and "Traceback" not in err, err
    assert not (tmp_path / "rec").exists()  # refused before the recording was made


def test_record_stops_at_its_size_cap(model_dir: Path, tmp_path: Path, capsys: Capture) -> None:
    assert _record(model_dir, tmp_path / "whole", "--n-tunes", "4") == 0
    whole = load_recording(tmp_path / "whole")
    one_tune = sum(f.stat().st_size for f in chunk_files(tmp_path / "whole")) // 4  # tunes of 30 tokens
    capsys.readouterr()
    out = tmp_path / "capped"
    assert _record(model_dir, out, "--n-tunes", "4", "--max-bytes", str(int(one_tune * 2.5))) == 0
    printed, err = capsys.readouterr()
    assert "size cap (max_bytes" in err and "later tunes not generated" in err
    r = load_recording(out)
    assert len(printed.splitlines()) == len(r.tune_ids) == 2  # each tune printed is kept whole
    assert r.tokens == whole.tokens[: r.n_steps]
    assert r.meta["limit_reached"] is not None


def test_record_suppress_and_bias_act_like_the_servers_commands(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "rec"
    assert _record(model_dir, out, "--n-tunes", "2", "--suppress", "5", "@bar", "--bias", "</s>", "-100") == 0
    r = load_recording(out)
    model = checkpoint.load(model_dir).model
    vocab = model.config.vocab
    bars = vocab.select("@bar")
    for k in r.tune_ids:
        t = r.tune_view(k)
        gen = np.flatnonzero(~t.injected)
        assert len(gen) and gen[0] == 2  # the prime M:4/4 K:Cmaj is fed first
        assert t.probs[gen[:5]][:, bars].sum() == 0  # the first 5 generated steps cannot draw a bar token
        assert t.probs[gen[5], bars].sum() > 0  # then they can again
        assert t.probs[gen, vocab.end].max() < 1e-30  # bias -100 on </s> for the whole tune
        # The same as a voice given the server's commands (the sampler's controls) after its prime.
        voice = Voice(model, seed=5 + k, prime=["M:4/4", "K:Cmaj"], max_tokens=30)
        voice.step(), voice.step()
        voice.controls.add_suppress(bars, 5)
        voice.controls.set_bias([vocab.end], -100.0)
        assert voice.generate() == t.tokens
    assert r.meta["meta"]["suppress"] == [[5, ["@bar"]]] and r.meta["meta"]["bias"] == [["</s>", -100.0]]
    assert "--suppress 5 @bar --bias '</s>' -100" in r.meta["meta"]["command"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--suppress", "5"], "--suppress takes STEPS and at least one SELECTOR"),
        (["--suppress", "many", "|"], "--suppress STEPS must be an integer in range 0..1000000; got 'many'"),
        (["--suppress", "-1", "|"], "--suppress STEPS must be in range 0..1000000; got -1"),
        (["--suppress", "3", "@nothing"], "--suppress: token class '@nothing' is unknown"),
        (["--suppress", "3", *(f"@{c}" for c in CLASS_NAMES)], "--suppress: suppress would forbid every token"),
        (["--bias", "</s>", "loud"], "--bias AMOUNT must be a number in range -100..100; got 'loud'"),
        (["--bias", "</s>", "nan"], "--bias AMOUNT must be in range -100..100; got 'nan'"),
        (["--bias", "</s>", "1e9"], "--bias AMOUNT must be in range -100..100"),
        (["--bias", "zz", "1"], "--bias: "),  # an unknown token, named with its nearest ones
        (["--max-bytes", "0"], "--max-bytes must be in range 1.."),
    ],
)  # fmt: skip
def test_bad_interventions_are_one_line_and_exit_2(
    model_dir: Path, tmp_path: Path, capsys: Capture, extra: list[str], message: str
) -> None:
    assert _record(model_dir, tmp_path / "rec", *extra) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err, err
    assert not (tmp_path / "rec").exists()
