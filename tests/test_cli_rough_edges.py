"""Command-line rough edges (issue 13 §5): help on every flag with its default, generate's closing
line, train's elapsed time and ETA and a --max-minutes that stops within an epoch, a closed pipe."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from folkrnn_live.cli.main import EXIT_CLOSED_PIPE, build_parser, main

DATA = Path(__file__).parent / "data" / "abc"
TINY = ["--num-layers", "1", "--hidden-size", "16", "--batch-size", "2", "--valid-fraction", "0.15"]


def subparser(name: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]  # type: ignore[no-any-return]


@pytest.mark.parametrize("command", ["generate", "train"])
def test_every_flag_has_help_and_its_default(command: str) -> None:
    p = subparser(command)
    assert p.description
    text = p.format_help()
    for action in p._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        flag = action.option_strings[0]
        assert action.help and action.help != argparse.SUPPRESS, f"{command} {flag} has no help"
        shown = action.default not in (None, False, "") and not action.required
        if shown:  # the value itself, as the user would type it
            assert f"(default: {action.default})" in " ".join(text.split()), f"{command} {flag}: default not shown"
    assert "within an epoch" in " ".join(subparser("train").format_help().split())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lines = (DATA / "tunes.expected").read_text(encoding="utf-8").splitlines()
    tunes = [line.split("\t")[1] for line in lines if line.strip() and not line.startswith("#")]
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("".join(t + "\n\n" for t in tunes * 2), encoding="utf-8")
    return path


def test_train_reports_elapsed_and_eta_and_stops_within_an_epoch(corpus: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    # Batches of 2 tunes: an epoch is a dozen batches; a limit of 0.0001 minutes (6 ms) passes during
    # the first one, so training stops after it, not after the whole epoch.
    assert main(["train", "--corpus", str(corpus), "--out", str(out), *TINY, "--epochs", "3",
                 "--max-minutes", "0.0001"]) == 0
    err = capsys.readouterr().err
    hist = json.loads((out / "history.json").read_text())["epochs"]
    assert len(hist) == 1 and hist[0]["batches"] == 1
    assert "epoch 1/3 (batch 1/" in err and "elapsed " in err and "ETA " in err
    assert "stopping within epoch 1, after batch 1/" in err and "--resume continues with epoch 2" in err
    assert (out / "last" / "trainer.pt").is_file()
    # Without a limit every epoch runs all its batches, and each line has its ETA.
    out2 = tmp_path / "full"
    assert main(["train", "--corpus", str(corpus), "--out", str(out2), *TINY, "--batch-size", "8",
                 "--epochs", "1"]) == 0
    err = capsys.readouterr().err
    assert "epoch 1/1: train" in err and "ETA 0s for 0 more epoch(s)" in err
    assert all("batches" not in e for e in json.loads((out2 / "history.json").read_text())["epochs"])


def test_generate_ends_with_how_many_tunes_it_wrote(tiny_model_dir: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tunes.abc"
    assert main(["generate", "--model", str(tiny_model_dir), "--n", "3", "--seed", "5", "--max-tokens", "40",
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"wrote 3 tunes (abc, seeds 5..7) to {out}"
    assert out.read_text().count("X:") == 3


def test_a_closed_pipe_ends_quietly(tiny_model_dir: Path) -> None:
    # Far more than a pipe holds (64 KiB): the writer meets the closed pipe mid-way.
    proc = subprocess.Popen(
        [sys.executable, "-m", "folkrnn_live.cli.main", "generate", "--model", str(tiny_model_dir), "--n", "400",
         "--seed", "1", "--format", "tokens", "--max-tokens", "400"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()  # what `| head -1` reads
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(300) == EXIT_CLOSED_PIPE
    assert first.strip()
    assert "Traceback" not in err and "Broken pipe" not in err and "BrokenPipeError" not in err
