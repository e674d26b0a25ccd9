"""The v2 training recipe (folk-rnn config5) on PyTorch.

Defaults: 3 x 512 LSTM, dropout 0.5 after every LSTM layer, RMSprop (lr 0.003, rho 0.9, eps 1e-6),
batch 64 tunes of equal or neighbouring length, masked negative log-likelihood summed per tune and
averaged over the batch, seeded 5 % validation split, up to 100 epochs, learning rate x 0.97 per
epoch after epoch 20.

Gradient clipping: v2 (Lasagne) clipped the gradient flowing into the gate pre-activations to
±5 inside back-propagation through time.  The fused LSTM kernels we train with (oneDNN on CPU,
cuDNN on GPU) give no hook at that point, so we clip the global gradient norm of all parameters at
5 (``torch.nn.utils.clip_grad_norm_``) instead; it bounds the same exploding gradients.

Output directory: ``model.safetensors``/``model.json`` (best validation loss so far, loadable with
``--model OUT``), ``last/`` (the latest epoch, loadable too), ``last/trainer.pt`` (what ``--resume``
reads: weights, optimiser state, history and recipe in one file written atomically, so a run killed
at any moment resumes from a consistent epoch), ``history.json`` and ``loss.png``.

Every epoch's batch order and dropout masks are seeded by (seed, epoch), so a resumed run continues
exactly as the uninterrupted run would have; ``--resume`` therefore refuses settings that differ from
the run it continues (``--epochs``, ``--patience``, ``--max-minutes`` and ``--device`` may change).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from folkrnn_live.model import checkpoint
from folkrnn_live.model.config import ModelConfig
from folkrnn_live.model.network import FolkRNN
from folkrnn_live.train.data import Batch, Corpus, length_batches, read_corpus, split


@dataclass
class TrainConfig:
    corpus: str
    out: str
    epochs: int = 100
    batch_size: int = 64
    lr: float = 0.003
    rho: float = 0.9
    eps: float = 1e-6
    clip: float = 5.0
    dropout: float = 0.5
    num_layers: int = 3
    hidden_size: int = 512
    valid_fraction: float = 0.05
    seed: int = 42
    lr_decay: float = 0.97
    lr_decay_after: int = 20
    patience: int = 8  # epochs without a better validation loss before stopping
    device: str = "auto"
    init: str | None = None  # a model directory to fine-tune (e.g. from import-lasagne)
    max_minutes: float | None = None  # stop after the batch during which this much time has passed
    max_batches: int | None = None  # per epoch; for smoke tests


# TrainConfig fields that a resumed run must share with the run it continues.
RECIPE_FIELDS = (
    "batch_size", "lr", "rho", "eps", "clip", "dropout", "num_layers", "hidden_size", "valid_fraction", "seed",
    "lr_decay", "lr_decay_after", "max_batches",
)


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass
class History:
    epochs: list[dict[str, float]] = field(default_factory=list)

    @property
    def best_valid(self) -> float:
        return min((e["valid_loss"] for e in self.epochs), default=math.inf)


def batch_loss(model: FolkRNN, batch: Batch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of NLL over the batch, number of predicted tokens)."""
    logits, _ = model(batch.inputs.to(device))
    nll = F.cross_entropy(logits.transpose(1, 2), batch.targets.to(device), reduction="none")
    mask = batch.mask.to(device)
    return (nll * mask).sum(), mask.sum()


@torch.no_grad()
def evaluate(model: FolkRNN, corpus: Corpus, batch_size: int, device: torch.device) -> float:
    """Mean NLL per predicted token (nats) over a corpus."""
    model.eval()
    total, count = 0.0, 0.0
    for batch in length_batches(corpus, batch_size, None):
        s, n = batch_loss(model, batch, device)
        total += float(s)
        count += float(n)
    return total / max(count, 1.0)


def plot_history(history: History, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [e["epoch"] for e in history.epochs]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ep, [e["train_loss"] for e in history.epochs], label="train")
    ax.plot(ep, [e["valid_loss"] for e in history.epochs], label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("NLL per token (nats)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def train_threads(env: dict[str, str] | None = None) -> int:
    """torch threads for training: OMP_NUM_THREADS when set (a machine shared with a live server),
    else every core."""
    value = (os.environ if env is None else env).get("OMP_NUM_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return os.cpu_count() or 1


class Trainer:
    def __init__(self, cfg: TrainConfig, resume: bool = False, log: Callable[[str], None] | None = None) -> None:
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.device = checkpoint.resolve_device(cfg.device)
        torch.set_num_threads(train_threads())  # a sampler in this process may have set it to 1
        self.history = History()
        self.start_epoch = 1
        self.deadline: float | None = None  # perf_counter time at which --max-minutes is reached
        self.batches_done = self.batches_of = 0
        self.corpus_sha256 = file_sha256(cfg.corpus) if Path(cfg.corpus).is_file() else ""
        resumed: dict[str, Any] | None = None
        # The provenance of the model a fine-tune starts from, kept in every model it saves (as
        # "pretrained"), so a shipped fine-tune names its pre-training's corpus and recipe.
        self.pretrained: dict[str, Any] | None = None
        if resume:
            self.model, resumed = self._resume()
            self.pretrained = resumed.get("pretrained")
        elif cfg.init:
            init = checkpoint.load(cfg.init)
            self.model = init.model
            self.pretrained = init.meta.get("provenance") or {"source": str(cfg.init)}
            if self.model.config.dropout != cfg.dropout:
                cfg_m = ModelConfig(**{**asdict(self.model.config), "dropout": cfg.dropout})
                fresh = FolkRNN(cfg_m)
                checkpoint.load_state_tensors(fresh, checkpoint.state_tensors(self.model))
                self.model = fresh
        else:
            torch.manual_seed(cfg.seed)
            self.model = FolkRNN(
                ModelConfig(num_layers=cfg.num_layers, hidden_size=cfg.hidden_size, dropout=cfg.dropout)
            )
            init_weights(self.model, cfg.seed)
        self.model.to(self.device)
        corpus = read_corpus(cfg.corpus, self.model.config.vocab)
        self.train_set, self.valid_set = split(corpus, cfg.valid_fraction, cfg.seed)
        self.opt = torch.optim.RMSprop(
            [p for p in self.model.parameters() if p.requires_grad], lr=cfg.lr, alpha=cfg.rho, eps=cfg.eps
        )
        if resumed is not None:
            self.opt.load_state_dict(resumed["optimizer"])

    def _resume(self) -> tuple[FolkRNN, dict[str, Any]]:
        """The model, history and start epoch from OUT/last/trainer.pt (see the module docstring)."""
        last = self.out / "last"
        path = last / "trainer.pt"
        if not path.is_file():
            raise FileNotFoundError(f"--resume: {path} not found; train without --resume first")
        state = torch.load(path, map_location="cpu", weights_only=True)
        epoch = int(state["epoch"])
        ckpt = checkpoint.load(last)
        recipe = state.get("recipe", ckpt.meta.get("provenance", {}).get("recipe", {}))
        self._check_recipe(recipe, state.get("corpus_sha256"))
        if "model" in state:
            model = FolkRNN(ckpt.config)
            checkpoint.load_state_tensors(model, state["model"], source=str(path))
            self.history = History(state["history"])
        else:
            # Written before trainer.pt held the weights: last/ and history.json must be of its epoch.
            model = ckpt.model
            saved_at = ckpt.meta.get("provenance", {}).get("epoch")
            if saved_at != epoch:
                raise ValueError(
                    f"--resume: {last} holds epoch {saved_at} but {path} epoch {epoch} (the run stopped while "
                    "saving); continue from the best model with --init instead"
                )
            hist = json.loads((self.out / "history.json").read_text())
            self.history = History([e for e in hist["epochs"] if e["epoch"] <= epoch])
        self.start_epoch = epoch + 1
        if state.get("pretrained") is None:  # a trainer.pt written before it kept the pre-training's record
            state["pretrained"] = ckpt.meta.get("provenance", {}).get("pretrained")
        return model, state

    def _check_recipe(self, recipe: dict[str, Any], corpus_sha256: str | None) -> None:
        cfg = asdict(self.cfg)
        differ = [f"--{k.replace('_', '-')} {cfg[k]} (the run has {recipe[k]})"
                  for k in RECIPE_FIELDS if k in recipe and recipe[k] != cfg[k]]
        if corpus_sha256 and corpus_sha256 != self.corpus_sha256:
            differ.append(f"--corpus {self.cfg.corpus} (not the corpus the run was trained on)")
        if differ:
            raise ValueError(
                f"--resume continues the run in {self.out} with its own settings; these differ: {'; '.join(differ)}. "
                "Resume with the same settings, or train into a new --out"
            )

    def lr_for(self, epoch: int) -> float:
        return self.cfg.lr * self.cfg.lr_decay ** max(0, epoch - self.cfg.lr_decay_after)

    def train_epoch(self, epoch: int) -> tuple[float, float]:
        """One pass over the training set; returns (mean NLL per token, tokens per second)."""
        cfg = self.cfg
        self.model.train()
        for group in self.opt.param_groups:
            group["lr"] = self.lr_for(epoch)
        torch.manual_seed(cfg.seed * 1000 + epoch)  # dropout masks: a resumed run repeats a fresh one
        rng = np.random.default_rng([cfg.seed, epoch])
        n_batches = math.ceil(len(self.train_set.tunes) / cfg.batch_size)
        if cfg.max_batches:
            n_batches = min(n_batches, cfg.max_batches)
        total, count, t0 = 0.0, 0.0, time.perf_counter()
        self.batches_done, self.batches_of = 0, n_batches
        params = [p for p in self.model.parameters() if p.requires_grad]
        for n, batch in enumerate(length_batches(self.train_set, cfg.batch_size, rng), 1):
            s, k = batch_loss(self.model, batch, self.device)
            loss = s / batch.inputs.shape[0]  # NLL summed per tune, averaged over tunes (v2)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.clip)
            self.opt.step()
            total += float(s.detach())
            count += float(k)
            self.batches_done = n
            self._progress(epoch, n, n_batches, total / count, time.perf_counter() - t0)
            if n >= n_batches or self._out_of_time():
                break
        dt = time.perf_counter() - t0
        return total / max(count, 1.0), count / dt

    def _out_of_time(self) -> bool:
        return self.deadline is not None and time.perf_counter() >= self.deadline

    def _progress(self, epoch: int, n: int, of: int, train_loss: float, elapsed: float) -> None:
        if not sys.stderr.isatty():  # a log file: one line per tenth of an epoch
            if n % max(1, of // 10) == 0 and n < of:
                self.log(f"epoch {epoch}: batch {n}/{of}, train {train_loss:.4f} nats/token")
            return
        best = self.history.best_valid
        width = 24
        bar = "#" * int(width * n / of) + "." * (width - int(width * n / of))
        sys.stderr.write(
            f"\repoch {epoch} [{bar}] {n}/{of} train {train_loss:.4f}"
            + (f" best valid {best:.4f}" if math.isfinite(best) else "")
            + f" {duration(elapsed)}, epoch ETA {duration(elapsed / n * (of - n))}  "
        )
        sys.stderr.flush()

    def run(self) -> History:
        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        self.deadline = None if cfg.max_minutes is None else started + cfg.max_minutes * 60
        self.log(
            f"training on {self.device}: {len(self.train_set.tunes)} tunes ({self.train_set.num_tokens} tokens), "
            f"validation {len(self.valid_set.tunes)} tunes; {self.model.num_trainable()} parameters"
        )
        for epoch in range(self.start_epoch, cfg.epochs + 1):
            if self._plateaued():
                self.log(f"early stop: no better validation loss in {cfg.patience} epochs")
                break
            t0 = time.perf_counter()
            train_loss, tps = self.train_epoch(epoch)
            valid_loss = evaluate(self.model, self.valid_set, cfg.batch_size, self.device)
            improved = valid_loss < self.history.best_valid
            self.history.epochs.append(
                {
                    "epoch": epoch,
                    "train_loss": train_loss,
                    "valid_loss": valid_loss,
                    "lr": self.lr_for(epoch),
                    "seconds": time.perf_counter() - t0,
                    "train_tokens_per_s": tps,
                }
            )
            if sys.stderr.isatty():
                sys.stderr.write("\n")
            partial = self.batches_done < self.batches_of
            if partial:
                self.history.epochs[-1]["batches"] = self.batches_done
            self.log(
                f"epoch {epoch}/{cfg.epochs}{f' (batch {self.batches_done}/{self.batches_of})' if partial else ''}: "
                f"train {train_loss:.4f} valid {valid_loss:.4f} nats/token{' (best)' if improved else ''}, "
                f"{tps:.0f} tokens/s, {self._timing(epoch, started)}"
            )
            self._save(epoch, improved)
            if self._out_of_time():
                where = f"within epoch {epoch}, after batch {self.batches_done}/{self.batches_of}" if partial \
                    else f"after epoch {epoch}"
                self.log(f"stopping {where}: --max-minutes {cfg.max_minutes:g} reached; the model so far is saved "
                         f"(--resume continues with epoch {epoch + 1})")
                break
        return self.history

    def _timing(self, epoch: int, started: float) -> str:
        """Elapsed time and an ETA from the mean epoch so far (early stop or --max-minutes may come sooner)."""
        elapsed = time.perf_counter() - started
        done = epoch - self.start_epoch + 1
        left = self.cfg.epochs - epoch
        eta = elapsed / done * left
        if self.deadline is not None:
            eta = min(eta, max(0.0, self.deadline - time.perf_counter()))
        return f"elapsed {duration(elapsed)}, ETA {duration(eta)} for {left} more epoch(s) at most"

    def _plateaued(self) -> bool:
        ep = self.history.epochs
        if len(ep) <= self.cfg.patience:
            return False
        best_at = min(range(len(ep)), key=lambda i: ep[i]["valid_loss"])
        return len(ep) - 1 - best_at >= self.cfg.patience

    def _meta(self, epoch: int) -> dict[str, Any]:
        return {
            "provenance": {
                "source": "trained",
                "corpus": Path(self.cfg.corpus).name,
                "corpus_sha256": self.corpus_sha256,
                "train_tunes": len(self.train_set.tunes),
                "valid_tunes": len(self.valid_set.tunes),
                "train_tokens": self.train_set.num_tokens,
                "epoch": epoch,
                "valid_loss": self.history.epochs[-1]["valid_loss"],
                "train_loss": self.history.epochs[-1]["train_loss"],
                "recipe": {k: v for k, v in asdict(self.cfg).items() if k not in ("out",)},
                **({"pretrained": self.pretrained} if self.pretrained is not None else {}),
            }
        }

    def _save(self, epoch: int, improved: bool) -> None:
        model = self.model.to("cpu")
        # trainer.pt first and in one atomic write: it alone is what --resume needs.
        (self.out / "last").mkdir(parents=True, exist_ok=True)
        tmp = self.out / "last" / "trainer.pt.tmp"
        state = {
            "epoch": epoch,
            "model": checkpoint.state_tensors(model),
            "optimizer": self.opt.state_dict(),
            "history": self.history.epochs,
            "recipe": {k: v for k, v in asdict(self.cfg).items() if k in RECIPE_FIELDS},
            "corpus_sha256": self.corpus_sha256,
            "pretrained": self.pretrained,
        }
        torch.save(state, tmp)
        tmp.replace(self.out / "last" / "trainer.pt")
        checkpoint.save(model, self.out / "last", **self._meta(epoch))
        if improved:
            checkpoint.save(model, self.out, **self._meta(epoch))
        self.model.to(self.device)
        (self.out / "history.json").write_text(json.dumps(asdict(self.history), indent=1))
        plot_history(self.history, self.out / "loss.png")


def duration(seconds: float) -> str:
    """3h04m, 12m05s, 42s."""
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


@torch.no_grad()
def init_weights(model: FolkRNN, seed: int) -> None:
    """The later folk-rnn trainer's init: Glorot-uniform input weights, orthogonal recurrent
    weights (per gate), zero biases except forget-gate bias 5, and a random unit-norm h0 per layer
    (hid_init) as in the v2 files; c0 = 0."""
    g = torch.Generator().manual_seed(seed)
    H = model.config.hidden_size
    for k in range(model.config.num_layers):
        w_ih, w_hh, b = model.weight_ih(k), model.weight_hh(k), model.bias(k)
        n_in = w_ih.shape[1]
        bound = math.sqrt(6.0 / (n_in + H))
        w_ih.uniform_(-bound, bound, generator=g)
        for gate in range(4):
            q, r = torch.linalg.qr(torch.randn(H, H, generator=g))
            w_hh[gate * H : (gate + 1) * H] = q * torch.sign(torch.diagonal(r))
        b.zero_()
        b[H : 2 * H] = 5.0
        h0 = torch.randn(H, generator=g)
        model.hid_init[k] = h0 / h0.norm()
    model.cell_init.zero_()
    bound = math.sqrt(6.0 / (H + model.config.vocab_size))
    model.out.weight.uniform_(-bound, bound, generator=g)
    model.out.bias.zero_()
