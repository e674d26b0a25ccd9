#!/usr/bin/env python3
"""The experiments of docs/model-card.md "Trying to raise the 4/4 `|:` figure" (issue 11), reproducible.

Each variant fine-tunes with `folkrnn-live train`'s own trainer and replaces only its training loss
(validation, early stop and the saved files stay the trainer's, unweighted):

    repeat_form.py weighted W train ARGS...      NLL with the loss at bar-line targets (| :| |: |1 |2) times W
    repeat_form.py closed-bars W train ARGS...   NLL with the loss at '|' targets where no '|:' is open times W
    repeat_form.py unlikelihood A train ARGS...  NLL + A * -log(1 - P(':|')) wherever no '|:' is open
    repeat_form.py average OUT MODEL_DIR...      the mean of the weights of several models of one run
    repeat_form.py stray MODEL_DIR CORPUS METER  teacher-forced: expected ':|' per tune of METER without '|:'

None of them is what the shipped model was trained with: see the model card for what each gave.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

import folkrnn_live.train.trainer as trainer
from folkrnn_live.cli.main import main
from folkrnn_live.model.network import FolkRNN
from folkrnn_live.train.data import Batch

BAR_LINES = ("|", ":|", "|:", "|1", "|2")


def closed(tokens: torch.Tensor, ids: dict[str, int]) -> torch.Tensor:
    """[B, T] True where, after the tokens up to and including this one, no '|:' is open."""
    out = torch.zeros(tokens.shape, dtype=torch.bool)
    for b, row in enumerate(tokens.tolist()):
        is_open = False
        for i, x in enumerate(row):
            if x == ids["|:"]:
                is_open = True
            elif x == ids[":|"]:
                is_open = False
            out[b, i] = not is_open
    return out


Extra = Callable[[Batch, torch.Tensor, torch.Tensor, dict[str, int]], torch.Tensor]


def replace_loss(extra: Extra) -> None:
    """Training batches get NLL * weights (+ a penalty) from `extra`; validation keeps the trainer's loss."""
    plain = trainer.batch_loss

    def loss(model: FolkRNN, batch: Batch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if not model.training:
            return plain(model, batch, device)
        ids = {t: list(model.config.tokens).index(t) for t in BAR_LINES}
        logits, _ = model(batch.inputs.to(device))  # [B, T, V]
        mask = batch.mask.to(device)
        nll = F.cross_entropy(logits.transpose(1, 2), batch.targets.to(device), reduction="none")  # [B, T]
        return extra(batch, logits, nll * mask, ids), mask.sum()

    trainer.batch_loss = loss


def weighted(w: float) -> None:
    def extra(batch: Batch, logits: torch.Tensor, nll: torch.Tensor, ids: dict[str, int]) -> torch.Tensor:
        bars = torch.isin(batch.targets, torch.tensor([ids[t] for t in BAR_LINES])).to(nll.device)
        return (nll * torch.where(bars, w, 1.0)).sum()

    replace_loss(extra)


def closed_bars(w: float) -> None:
    def extra(batch: Batch, logits: torch.Tensor, nll: torch.Tensor, ids: dict[str, int]) -> torch.Tensor:
        # The state before each target is the state after its input token.
        at = (closed(batch.inputs, ids) & (batch.targets == ids["|"])).to(nll.device)
        return (nll * torch.where(at, w, 1.0)).sum()

    replace_loss(extra)


def unlikelihood(a: float) -> None:
    def extra(batch: Batch, logits: torch.Tensor, nll: torch.Tensor, ids: dict[str, int]) -> torch.Tensor:
        p_close = F.softmax(logits, dim=-1)[..., ids[":|"]]  # [B, T]
        at = (closed(batch.inputs, ids) & batch.mask.bool()).to(nll.device)
        return nll.sum() + a * (-torch.log1p(-p_close.clamp(max=1 - 1e-6)) * at).sum()

    replace_loss(extra)


def average(out: Path, sources: list[str]) -> None:
    from safetensors.torch import load_file, save_file

    tensors = [load_file(f"{s}/model.safetensors") for s in sources]
    mean = {k: torch.stack([t[k].float() for t in tensors]).mean(0).contiguous() for k in tensors[0]}
    out.mkdir(parents=True, exist_ok=True)
    save_file(mean, str(out / "model.safetensors"))
    meta = json.loads(Path(sources[0], "model.json").read_text())
    meta.setdefault("provenance", {})["averaged_from"] = sources
    (out / "model.json").write_text(json.dumps(meta, indent=1))


@torch.no_grad()
def stray(model_dir: str, corpus: str, meter: str) -> None:
    """Sum of P(':|') over the bar-line positions of the corpus's tunes of `meter` that have no '|:'
    (none of those positions holds a ':|' in the corpus), averaged over those tunes."""
    from folkrnn_live.model.checkpoint import load

    model = load(model_dir).model.eval()
    index = {t: i for i, t in enumerate(model.config.tokens)}
    bars = {index[t] for t in BAR_LINES}
    sums = []
    for line in Path(corpus).read_text().splitlines():
        tune = line.split()
        if not tune or tune[0] != meter or "|:" in tune:
            continue
        seq = [index["<s>"], *(index[t] for t in tune), index["</s>"]]
        probs = model.log_probs(torch.tensor([seq[:-1]]))[0].exp()  # [T, V]
        sums.append(sum(float(probs[i, index[":|"]]) for i in range(len(seq) - 1) if seq[i + 1] in bars))
    print(f"{model_dir}: {len(sums)} {meter} tunes without '|:', expected ':|' per tune {sum(sums) / len(sums):.3f}")


if __name__ == "__main__":
    what, args = sys.argv[1], sys.argv[2:]
    if what == "stray":
        stray(*args)
        sys.exit(0)
    if what == "average":
        average(Path(args[0]), args[1:])
        sys.exit(0)
    {"weighted": weighted, "closed-bars": closed_bars, "unlikelihood": unlikelihood}[what](float(args[0]))
    sys.exit(main(args[1:]))
