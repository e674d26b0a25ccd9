"""Checkpoints rebuild from their files alone; hostile or broken files get clear errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from _models import random_model
from safetensors.torch import load_file, save_file

from folkrnn_live.cli.main import main
from folkrnn_live.model import checkpoint
from folkrnn_live.model.checkpoint import CheckpointError


def test_round_trip_rebuilds_the_same_model_from_its_files(tmp_path):
    m = random_model(hidden=24, layers=2, seed=1)
    checkpoint.save(m, tmp_path, provenance={"source": "test"})
    ck = checkpoint.load(tmp_path)
    assert ck.config == m.config
    assert ck.meta["provenance"]["source"] == "test"
    toks = torch.randint(0, 137, (2, 9))
    with torch.no_grad():
        np.testing.assert_array_equal(m(toks)[0].numpy(), ck.model(toks)[0].numpy())
    np.testing.assert_array_equal(ck.model.hid_init.numpy(), m.hid_init.numpy())


@pytest.fixture
def saved(tmp_path):
    checkpoint.save(random_model(hidden=8, layers=1), tmp_path)
    return tmp_path


def test_wrong_shape_is_named(saved):
    t = load_file(str(saved / "model.safetensors"))
    t["lstm.weight_hh_l0"] = torch.zeros(32, 7)
    save_file(t, str(saved / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"'lstm.weight_hh_l0' must have shape \(32, 8\)"):
        checkpoint.load(saved)


def test_nan_weights_are_refused(saved):
    t = load_file(str(saved / "model.safetensors"))
    t["out.bias"][3] = float("nan")
    save_file(t, str(saved / "model.safetensors"))
    with pytest.raises(CheckpointError, match="'out.bias' contains NaN"):
        checkpoint.load(saved)


def test_missing_and_extra_tensors_are_listed(saved):
    t = load_file(str(saved / "model.safetensors"))
    del t["hid_init"]
    t["evil"] = torch.zeros(1)
    save_file(t, str(saved / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing \['hid_init'\], unexpected \['evil'\]"):
        checkpoint.load(saved)


def test_garbage_weights_file(saved):
    (saved / "model.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        checkpoint.load(saved)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("not json", "not valid JSON"),
        (json.dumps({"format": "other"}), "'format' must be"),
        (json.dumps({"format": "folkrnn-live/1", "config": {"hidden_size": -3}}), "hidden_size must be in range"),
        (json.dumps({"format": "folkrnn-live/1", "config": {"evil": 1}}), "unknown keys"),
        (json.dumps({"format": "folkrnn-live/1", "config": {"tokens": ["A", "A"]}}), "unique"),
        (json.dumps({"format": "folkrnn-live/1", "config": {"tokens": ["<s>", "</s>", *map(str, range(1, 5000))]}}),
         "tokens must number 2..4096"),
    ],
    ids=["not json", "format", "hidden size", "unknown key", "repeated token", "too many tokens"],
)
def test_bad_json_is_named(saved, doc, message):
    (saved / "model.json").write_text(doc)
    with pytest.raises(CheckpointError, match=message):
        checkpoint.load(saved)


def test_deeply_nested_json_is_named(saved):
    (saved / "model.json").write_text("[" * 100_000)
    with pytest.raises(CheckpointError, match="not valid JSON"):
        checkpoint.load(saved)


def test_a_huge_architecture_is_refused_before_anything_is_allocated(saved):
    # 8 x 8192 LSTM layers would take 17 GB; the weights file holds a 1 x 8 model.  Run with a 4 GB
    # address-space limit, so that building the model before checking the tensors fails loudly.
    doc = json.loads((saved / "model.json").read_text())
    doc["config"].update(num_layers=8, hidden_size=8192)
    (saved / "model.json").write_text(json.dumps(doc))
    code = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30)); "
        "from folkrnn_live.cli.main import main; sys.exit(main(sys.argv[1:]))"
    )
    run = subprocess.run([sys.executable, "-c", code, "score", "--model", str(saved), "--tokens", "C"],
                         capture_output=True, text=True)
    assert run.returncode == 2, run.stderr
    assert "model.safetensors: tensors missing ['lstm.bias_l1'," in run.stderr and "Traceback" not in run.stderr


def test_cli_reports_a_broken_model_with_exit_2(saved, capsys):
    (saved / "model.json").write_text("{")
    assert main(["generate", "--model", str(saved)]) == 2
    err = capsys.readouterr().err
    assert "model.json: not valid JSON" in err and "Traceback" not in err


def test_evaluate_reports_bar_accuracy_and_end_rate(tmp_path, capsys):
    checkpoint.save(random_model(hidden=16, seed=3), tmp_path)
    assert main(["evaluate", "--model", str(tmp_path), "--seeds", "1..4", "--max-tokens", "50"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["tunes"] == 4 and doc["seeds"] == "1..4"
    assert 0.0 <= doc["bar_accuracy"] <= 1.0 and 0.0 <= doc["ended_with_end_token"] <= 1.0
    assert main(["evaluate", "--model", str(tmp_path), "--seeds", "9..2"]) == 2
    assert "--seeds must satisfy" in capsys.readouterr().err
