"""``folkrnn-live record`` stopped from the terminal: Ctrl-C keeps a closed, readable recording."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

from _models import tiny_model

from folkrnn_live.model import checkpoint
from folkrnn_live.recording.recording import load_recording


def test_ctrl_c_stops_recording_and_keeps_what_was_generated(tmp_path: Path) -> None:
    model_dir = checkpoint.save(tiny_model(hidden=8, layers=2), tmp_path / "model")
    out = tmp_path / "rec"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "folkrnn_live", "record", "--model", str(model_dir), "--out", str(out),
           "--n-tunes", "100000", "--max-tokens", "50", "--chunk-steps", "16"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        printed = []
        for _ in range(3):  # three tunes generated: the recording is well under way
            ready, _, _ = select.select([proc.stdout], [], [], 120)
            assert ready, "record printed no tune"
            printed.append(proc.stdout.readline())
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    meta = json.loads((out / "meta.json").read_text())
    assert meta["closed"] is True and meta["stats"]["dropped"] == 0
    r = load_recording(out)
    assert r.n_steps == meta["stats"]["steps"] and len(r.tune_ids) >= 3
    first = printed[0].split(": ", 1)[1].split()
    assert r.tune_view(0).tokens == first  # the tunes it printed are the tunes it recorded
