"""``folkrnn-live analyze --reproduce`` end to end on a tiny model: one page per seed post, each of
the post's figures beside ours (files that exist), the post's numbers beside ours with a reason."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from folkrnn_live.cli.main import main
from folkrnn_live.model import checkpoint
from folkrnn_live.model.config import ModelConfig
from folkrnn_live.model.network import FolkRNN
from folkrnn_live.recording import load_recording

#: A number each post gives, which its page must show beside ours.
POST_NUMBERS = {
    "part1": ["5,599,881", "3 × 512", "137 tokens"],
    "part7": ["about 0.014 cycles/step", "[8.3, 9.4]", "2.25, 3, 4.5, 6, 8.8, 11.5, 18, 36"],
    "part8": ["about 0.8 / 0.4", "an order of magnitude", r"`\|:` and `</s>`"],  # table cells escape |
    "part9": ["5,671; 2,642 (46.6 %)", "the second (our layer 1)"],
}


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(1)
    model_dir = checkpoint.save(FolkRNN(ModelConfig(hidden_size=8, num_layers=2)).eval(), tmp_path_factory.mktemp("m"))
    out = tmp_path_factory.mktemp("reproduce")
    assert main(["analyze", "--reproduce", "all", "--model", str(model_dir), "--out", str(out), "--quick"]) == 0
    return out


@pytest.mark.parametrize("part", sorted(POST_NUMBERS))
def test_each_post_gets_a_page_with_its_figures_and_numbers_beside_ours(pages: Path, part: str) -> None:
    page = (pages / part / "index.md").read_text(encoding="utf-8")
    assert page.startswith("# Making sense of the folk-rnn v2 model") and "## Figures" in page and "## Numbers" in page
    assert f"folkrnn-live analyze --reproduce {part} --out" in page  # how to write it again
    images = re.findall(r"!\[[^\]]*\]\((data/[^)]+)\)", page)
    assert all((pages / part / i).stat().st_size > 1000 for i in images), images
    figures = re.findall(r"^### \d+\. .+$", page, flags=re.M)
    assert figures and page.count("*Why they differ:*") == len(figures)
    rows = [r for r in page.splitlines() if r.startswith("| ") and not r.startswith(("| quantity", "| ---"))]
    assert rows and all(len([c for c in r.strip("|").split(" | ") if c.strip()]) == 4 for r in rows), rows
    for number in POST_NUMBERS[part]:
        assert number in page, number


def test_pages_show_our_own_numbers(pages: Path) -> None:
    tune = load_recording(pages / "part9" / "data" / "tune")
    n = tune.n_steps
    assert f"| {n * (n - 1) // 2:,}; " in (pages / "part9" / "index.md").read_text()  # our pairs, beside 5,671
    part7 = (pages / "part7" / "index.md").read_text()
    assert "| Hann main lobe width (2 × the −6 dB frequency) | about 0.014 cycles/step | 0.0136 |" in part7
    assert re.search(r"p = [0-9.]+ \(\d+ seeds, paired\)", part7)
    part8 = (pages / "part8" / "index.md").read_text()
    assert re.search(r"\d+\.\d\d raw; \d+\.\d\d with the common mode removed", part8)
    assert "page" not in (pages / "part1" / "index.md").read_text().split("## Numbers")[1].split("|")[0]
