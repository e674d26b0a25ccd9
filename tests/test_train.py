"""``folkrnn-live train``: outputs, resume, determinism and bad input, on a tiny model and corpus."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from safetensors.torch import load_file

from folkrnn_live.cli.main import main
from folkrnn_live.model import checkpoint

DATA = Path(__file__).parent / "data" / "abc"
TINY = ["--num-layers", "1", "--hidden-size", "16", "--batch-size", "8", "--lr", "0.01", "--valid-fraction", "0.15"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hand-converted tunes of tests/data/abc, twice over (28 tunes)."""
    lines = (DATA / "tunes.expected").read_text(encoding="utf-8").splitlines()
    tunes = [line.split("\t")[1] for line in lines if line.strip() and not line.startswith("#")]
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("".join(t + "\n\n" for t in tunes * 2), encoding="utf-8")
    return path


def train(corpus: Path, out: Path, *extra: str) -> int:
    return main(["train", "--corpus", str(corpus), "--out", str(out), *TINY, *extra])


def history(out: Path) -> list[dict[str, float]]:
    return json.loads((out / "history.json").read_text())["epochs"]  # type: ignore[no-any-return]


@pytest.mark.slow
def test_training_lowers_the_loss_and_keeps_the_best_model(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert train(corpus, out, "--epochs", "3") == 0
    epochs = history(out)
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    assert epochs[-1]["valid_loss"] < epochs[0]["valid_loss"]
    assert (out / "loss.png").stat().st_size > 0
    best = checkpoint.load(out)
    best_epoch = min(epochs, key=lambda e: e["valid_loss"])["epoch"]
    assert best.meta["provenance"]["epoch"] == best_epoch
    # The model names the exact corpus it learned from (the model card quotes this hash).
    assert best.meta["provenance"]["corpus_sha256"] == hashlib.sha256(corpus.read_bytes()).hexdigest()
    assert best.config.num_layers == 1 and best.config.hidden_size == 16
    assert checkpoint.load(out / "last").meta["provenance"]["epoch"] == 3


@pytest.mark.slow
def test_resume_continues_exactly_as_an_uninterrupted_run(corpus: Path, tmp_path: Path) -> None:
    assert train(corpus, tmp_path / "straight", "--epochs", "2") == 0
    assert train(corpus, tmp_path / "resumed", "--epochs", "1") == 0
    assert train(corpus, tmp_path / "resumed", "--epochs", "2", "--resume") == 0
    straight, resumed = history(tmp_path / "straight"), history(tmp_path / "resumed")
    key = ("epoch", "train_loss", "valid_loss", "lr")
    assert [[e[k] for k in key] for e in resumed] == [[e[k] for k in key] for e in straight]
    a = load_file(str(tmp_path / "straight" / "last" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "last" / "model.safetensors"))
    assert all((a[name] == b[name]).all() for name in a)


@pytest.mark.slow
def test_a_fine_tune_names_the_model_it_started_from_even_after_resume(corpus: Path, tmp_path: Path) -> None:
    assert train(corpus, tmp_path / "pre", "--epochs", "1") == 0
    pre = checkpoint.load(tmp_path / "pre").meta["provenance"]
    ft = tmp_path / "ft"
    assert train(corpus, ft, "--init", str(tmp_path / "pre"), "--epochs", "1") == 0
    assert train(corpus, ft, "--init", str(tmp_path / "pre"), "--epochs", "2", "--resume") == 0
    for saved in (ft, ft / "last"):
        prov = checkpoint.load(saved).meta["provenance"]
        # The model card quotes the pre-training's corpus and recipe from the shipped file alone.
        assert prov["pretrained"] == pre, saved
        assert prov["recipe"]["init"] == str(tmp_path / "pre")
    assert "pretrained" not in pre


def test_resume_refuses_settings_other_than_the_run_has(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert train(corpus, out, "--epochs", "1") == 0
    capsys.readouterr()
    assert train(corpus, out, "--lr", "0.5", "--epochs", "2", "--resume") == 2  # the last --lr counts
    err = capsys.readouterr().err
    assert "--lr 0.5 (the run has 0.01)" in err and "Traceback" not in err
    other = tmp_path / "other.txt"
    other.write_text(corpus.read_text(encoding="utf-8") * 2, encoding="utf-8")
    assert train(other, out, "--epochs", "2", "--resume") == 2
    assert "not the corpus the run was trained on" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--corpus", "no/such/corpus.txt"], "corpus no/such/corpus.txt: no such file"),
        (["--resume"], "trainer.pt not found; train without --resume first"),
        (["--device", "tpu"], "device must be auto, cpu, cuda or cuda:N; got 'tpu'"),
        (["--init", "no/such/model"], "no/such/model/model.json: no such file"),
        (["--epochs", "0"], "--epochs must be in range 1..10000"),
        (["--dropout", "1"], "--dropout must be in range 0.0..0.99"),
        (["--lr", "fast"], "--lr must be a number"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    base = {"--corpus": str(corpus), "--out": str(tmp_path / "run")}
    for k in list(base):
        if k in args:
            del base[k]
    argv = ["train", *[x for kv in base.items() for x in kv], *TINY, *args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_corpus_too_small_to_split_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = tmp_path / "one.txt"
    one.write_text("M:4/4 K:Cmaj C D E F |\n\n", encoding="utf-8")
    assert train(one, tmp_path / "run") == 2
    assert "the corpus has 1 tune: too few to keep 1 for validation" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_corpus_with_unknown_tokens_names_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("M:4/4 K:Cmaj C D E F |\n\nM:4/4 K:Cmaj C D H F |\n\n", encoding="utf-8")
    assert train(bad, tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert "tune 2: position 4: unknown token 'H'" in err


def test_training_threads_follow_omp_num_threads() -> None:
    """A trainer started beside a live server with OMP_NUM_THREADS=1 keeps to one core."""
    from folkrnn_live.train.trainer import train_threads

    assert train_threads({"OMP_NUM_THREADS": "1"}) == 1
    assert train_threads({}) == (os.cpu_count() or 1)
    assert train_threads({"OMP_NUM_THREADS": "junk"}) == (os.cpu_count() or 1)
