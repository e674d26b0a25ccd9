"""The wheel holds everything a user needs: built from the tree, installed into a fresh virtual
environment outside it, ``serve``, ``ports``, ``patches`` and ``systemd`` run from there.

The environment sees the system's site-packages (``--system-site-packages``) and the wheel is installed
with ``--no-deps``, so torch and the other dependencies are not downloaded again; the check that the
package itself comes from the environment, not from this source tree, is part of the test.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def copy_tree(dest: Path) -> None:
    """The files git knows of (tracked or not ignored), symlinks kept: what a fresh clone builds from."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if not src.exists() and not src.is_symlink():  # deleted in the tree, not yet committed
            continue
        dst = dest / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bin/ of a fresh virtual environment with the wheel built from this tree installed in it."""
    if shutil.which("git") is None:
        pytest.skip("needs git to list the tree's files")
    base = tmp_path_factory.mktemp("wheel")
    src, dist, env = base / "src", base / "dist", base / "venv"
    copy_tree(src)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(src)], check=True, capture_output=True, timeout=600)
    wheel = next(dist.glob("folkrnn_live-*.whl"))
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env)
    py = env / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True, timeout=600)
    return env / "bin"


def run(bin_dir: Path, cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bin_dir / "folkrnn-live"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=clean_env())


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONPATH", "JACK_", "FOLKRNN_MIDI"))}
    env["JACK_DEFAULT_SERVER"] = "no-such-jack-server"  # nothing to find: the plain headless case
    return env


def test_the_package_comes_from_the_environment(installed: Path, tmp_path: Path) -> None:
    res = subprocess.run([str(installed / "python"), "-c", "import folkrnn_live; print(folkrnn_live.__file__)"],
                         cwd=tmp_path, capture_output=True, text=True, check=True, env=clean_env())
    where = Path(res.stdout.strip())
    assert where.is_relative_to(installed.parent) and not where.is_relative_to(ROOT)


def test_patches_and_systemd_files_come_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    res = run(installed, tmp_path, "patches", "mine")
    assert res.returncode == 0, res.stderr
    for name in ("folkrnn-live.pd", "folkrnn-control.pd", "folkrnn-live.maxpat", "README.md"):
        assert (tmp_path / "mine" / name).read_bytes() == (ROOT / "patches" / name).read_bytes()
    again = run(installed, tmp_path, "patches", "mine")  # never overwrites without --force
    assert again.returncode == 2 and "use --force" in again.stderr
    res = run(installed, tmp_path, "systemd", "unit")
    assert res.returncode == 0, res.stderr
    unit = (tmp_path / "unit" / "folkrnn-live.service").read_text()
    assert f"ExecStart={installed / 'folkrnn-live'} serve --config /etc/folkrnn-live/folkrnn-live.toml" in unit
    config = (tmp_path / "unit" / "folkrnn-live.toml").read_bytes()
    assert config == (ROOT / "systemd" / "folkrnn-live.toml").read_bytes()


def test_ports_runs_from_the_environment(installed: Path, tmp_path: Path) -> None:
    res = run(installed, tmp_path, "ports")
    assert res.returncode == 0, res.stderr
    assert "MIDI system:" in res.stdout and "serve would play to:" in res.stdout


def test_serve_runs_from_the_environment_with_the_shipped_model(installed: Path, tmp_path: Path) -> None:
    from live_server import free_port

    port = free_port("udp")
    proc = subprocess.Popen([str(installed / "folkrnn-live"), "serve", "--osc-port", str(port), "--midi-output",
                             "file", "--set", "web.enabled=false", "--set", 'recording.dir=""'],
                            cwd=tmp_path, stderr=subprocess.PIPE, text=True, env=clean_env())
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and (line := proc.stderr.readline()):
            lines.append(line)
            if "listening for OSC" in line:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        lines += proc.communicate(timeout=60)[1].splitlines()
    text = "".join(lines)
    assert proc.returncode == 0, text
    assert "listening for OSC" in text and f"model {installed.parent}" in text  # the shipped model, from the wheel
