"""`evaluate` reports the form figures of generated tunes, the corpus's beside them, and a held-out loss."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from folkrnn_live.cli.main import main
from folkrnn_live.model import checkpoint
from tests._models import random_model

CORPUS = [
    "M:6/8 K:Cmaj |: C 6 | D 6 :| |: E 6 | F 6 :|",
    "M:6/8 K:Cmaj |: C 3 z 3 | D 6 :|",
    "M:4/4 K:Cmaj |: C 8 :|",
]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("".join(t + "\n\n" for t in CORPUS))
    return path


def test_evaluate_prints_form_figures_with_the_corpus_of_the_primes_meter(
    tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint.save(random_model(hidden=16, seed=3), tmp_path / "m")
    args = ["evaluate", "--model", str(tmp_path / "m"), "--seeds", "1..4", "--max-tokens", "60",
            "--prime", "M:6/8 K:Cmaj", "--corpus", str(corpus), "--heldout", str(corpus)]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    for key in ("two_repeated_parts", "repeat_start_when_repeated", "rests_per_note", "mean_tokens_per_tune"):
        assert doc[key] >= 0.0 and doc["corpus"][key] >= 0.0
    # Only the two 6/8 tunes count: one in two repeated parts, one rest among 7 notes and rests.
    assert doc["corpus"]["tunes"] == 2 and doc["corpus"]["meter"] == "M:6/8"
    assert doc["corpus"]["two_repeated_parts"] == 0.5
    assert doc["corpus"]["rests_per_note"] == pytest.approx(1 / 7, abs=1e-4)
    # An untrained 16-unit model is near uniform over 137 tokens: about ln 137 nats per token.
    assert doc["heldout"]["tunes"] == 3
    assert abs(doc["heldout"]["nats_per_token"] - math.log(137)) < 1.0


def test_evaluate_names_a_missing_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint.save(random_model(hidden=16, seed=3), tmp_path / "m")
    missing = tmp_path / "nope.txt"
    assert main(["evaluate", "--model", str(tmp_path / "m"), "--seeds", "1..2", "--max-tokens", "20",
                 "--corpus", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "--corpus" in err and "Traceback" not in err


def test_corpus_split_writes_disjoint_seeded_files(tmp_path: Path, corpus: Path) -> None:
    train, held = tmp_path / "train.txt", tmp_path / "held.txt"
    assert main(["corpus", "split", str(corpus), "--train", str(train), "--heldout", str(held),
                 "--fraction", "0.3"]) == 0
    blocks = [b for b in train.read_text().split("\n\n") if b.strip()]
    held_blocks = [b for b in held.read_text().split("\n\n") if b.strip()]
    assert len(held_blocks) == 1 and len(blocks) == 2
    assert sorted(blocks + held_blocks) == sorted(CORPUS)
