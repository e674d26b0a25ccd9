"""A subcommand loads only its own module: `ports` and `patches` answer without importing torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import sys
from folkrnn_live.cli.main import main
status = main(sys.argv[1:])
print("torch loaded" if "torch" in sys.modules else "torch not loaded", status)
"""


def run(*args: str) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120, check=True)
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("args", [("patches", "{tmp}"), ("import-lasagne", "--help"), ("ports",)])
def test_light_subcommands_do_not_import_torch(args: tuple[str, ...], tmp_path: Path) -> None:
    line = run(*(a.format(tmp=tmp_path / "p") for a in args))
    assert line.startswith("torch not loaded"), line


def test_a_subcommand_that_needs_the_model_still_gets_it() -> None:
    assert run("generate", "--n", "1", "--max-tokens", "8", "--format", "tokens").startswith("torch loaded")


def test_top_level_help_still_lists_every_subcommand() -> None:
    out = subprocess.run([sys.executable, "-m", "folkrnn_live", "--help"], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    for name in ("serve", "generate", "score", "import-lasagne", "ports", "patches", "train", "evaluate"):
        assert name in out
