"""Ableton Link: a voice follows another peer's tempo, starts on its bar line, and can lead it.

Both peers run in a private network namespace (``unshare -n``, loopback up with multicast), so Link's
discovery traffic never leaves this process tree; where the namespace cannot be made (no root, no
user namespaces) the test is skipped and says why.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
NETNS_SETUP = "ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo"


def private_network() -> str | None:
    """None when ``unshare -n`` with a multicast loopback works here, else why not."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs unshare and ip (util-linux, iproute2)"
    try:
        import aalink  # noqa: F401
    except ImportError:
        return "needs the aalink package"
    res = subprocess.run(["unshare", "-n", "sh", "-c", NETNS_SETUP], capture_output=True, text=True, timeout=30)
    if res.returncode != 0:
        return f"cannot make a private network namespace here: {res.stderr.strip() or res.returncode}"
    return None


def run_in_private_network(script: str, timeout: float) -> dict[str, Any]:
    """Run a script of this folder in a private network namespace (skip where none can be made);
    its last line of output, as JSON."""
    why = private_network()
    if why is not None:
        pytest.skip(why)
    res = subprocess.run(["unshare", "-n", "sh", "-c", f"{NETNS_SETUP} && exec {sys.executable} {script}"],
                         cwd=HERE, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stderr
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


@pytest.mark.slow
def test_a_voice_follows_a_link_session_starts_on_its_bar_and_leads_it() -> None:
    out = run_in_private_network("link_peers.py", timeout=120)
    assert out["peers"] is True
    ours, theirs = out["joined_tempo"]  # one session, one tempo: whichever peer's Link settled on
    assert ours == pytest.approx(theirs, abs=0.01) and round(ours) in (90, 120)
    # Our first note is scheduled exactly on our bar line, which is the other peer's bar line to
    # within 1 ms by its own clock.
    assert out["first_note_vs_start_ms"] == pytest.approx(0.0, abs=1e-6)
    offset_beats = min(out["start_phase_in_other"], 4 - out["start_phase_in_other"])
    assert offset_beats * out["beat_s_at_start"] < 0.001
    # The other peer's tempo change reached the voice: eighths at 150 BPM are 0.2 s apart.
    assert out["tempo_heard"] == 150.0
    assert out["last_gaps_s"] == pytest.approx([0.2, 0.2, 0.2], abs=1e-6)
    assert out["led"] is True  # our lead(100) became the other peer's tempo


@pytest.mark.slow
def test_the_server_joins_a_link_session_starts_voices_on_its_bar_lines_and_follows_it() -> None:
    out = run_in_private_network("link_server.py", timeout=180)
    ours, theirs = out["tempo_at_start"]
    assert ours == pytest.approx(theirs, abs=0.01)  # the session's tempo, not the voice's own 200
    offset_beats = min(out["start_phase_in_other"], 4 - out["start_phase_in_other"])
    assert offset_beats * out["beat_s"] < 0.001  # the first note on the other peer's bar line
    assert out["followed"] == 150.0
