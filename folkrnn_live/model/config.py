"""The architecture of a folk-rnn model, saved inside every checkpoint so a model rebuilds from its
files alone (the nanoGPT habit)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from folkrnn_live.tokens.vocab import V2, Vocabulary

# Far above any folk-rnn vocabulary; bounds what a model file can make us allocate (V x V, V x 4H).
MAX_TOKENS = 4096


@dataclass(frozen=True)
class ModelConfig:
    """folk-rnn v2 by default: one-hot 137 -> 3 x LSTM(512) -> dense 137 -> softmax."""

    tokens: tuple[str, ...] = V2.tokens
    num_layers: int = 3
    hidden_size: int = 512
    dropout: float = 0.5  # after every LSTM layer, training only

    def __post_init__(self) -> None:
        if not 1 <= self.num_layers <= 8:
            raise ValueError(f"num_layers must be in range 1..8; got {self.num_layers}")
        if not 1 <= self.hidden_size <= 8192:
            raise ValueError(f"hidden_size must be in range 1..8192; got {self.hidden_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in range [0, 1); got {self.dropout}")
        if not 2 <= len(self.tokens) <= MAX_TOKENS:
            raise ValueError(f"tokens must number 2..{MAX_TOKENS} (v2 has 137); got {len(self.tokens)}")
        Vocabulary(self.tokens)  # validates: unique, classifiable, has <s> and </s>

    @property
    def vocab(self) -> Vocabulary:
        return Vocabulary(self.tokens)

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["tokens"] = list(self.tokens)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ModelConfig:
        allowed = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - allowed
        if unknown:
            raise ValueError(f"model config has unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
        kw = dict(d)
        if "tokens" in kw:
            if not isinstance(kw["tokens"], list) or not all(isinstance(t, str) for t in kw["tokens"]):
                raise ValueError("model config 'tokens' must be a list of strings")
            kw["tokens"] = tuple(kw["tokens"])
        for key, typ in (("num_layers", int), ("hidden_size", int), ("dropout", (int, float))):
            if key in kw and (not isinstance(kw[key], typ) or isinstance(kw[key], bool)):
                raise ValueError(f"model config {key!r} must be a number; got {kw[key]!r}")
        return cls(**kw)


@dataclass
class Provenance:
    """Where a checkpoint came from: free-form but always present in the JSON."""

    source: str = "untrained"  # "trained", "imported-lasagne", "untrained"
    details: dict[str, Any] = field(default_factory=dict)
