"""Import the original folk-rnn model files (``folkrnn_v2.pkl`` and friends).

They are Python 2 pickles of a dict (configuration, experiment_id, epoch_since_start, ...,
token2idx, param_values).  A pickle can run any code when loaded, so these files are read with a
restricted unpickler that admits only what they contain: builtin containers, strings, numbers and
numpy arrays (rebuilt through numpy's own reconstructor).  Anything else is refused with an error
naming the global it asked for, before any of it runs.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from folkrnn_live.model.checkpoint import CheckpointError, load_state_tensors, save
from folkrnn_live.model.config import ModelConfig
from folkrnn_live.model.network import FolkRNN

MAX_PICKLE_BYTES = 512 << 20

# The globals a folk-rnn metadata pickle may name: numpy's array and scalar reconstructors (numpy
# moved them from numpy.core to numpy._core in 2.0, so both spellings are admitted), and a latin1-only
# _codecs.encode for byte strings written by Python 3.
_ALLOWED_GLOBALS = frozenset(
    (module, name)
    for module in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
) | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    # Python 3 writes the raw bytes of an array with protocol 2 as _codecs.encode(text, 'latin1').
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}; only latin1")
    return text.encode("latin1")


def _resolve(name: str) -> Any:
    multiarray = getattr(np, "_core", None) or np.core  # numpy 2 renamed core -> _core
    multiarray = multiarray.multiarray
    return {
        "_reconstruct": multiarray._reconstruct,
        "scalar": multiarray.scalar,
        "ndarray": np.ndarray,
        "dtype": np.dtype,
        "encode": _latin1_encode,
    }[name]


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing global {module}.{name}: a folk-rnn model file may contain only dicts, lists, "
                "strings, numbers and numpy arrays"
            )
        return _resolve(name)


def read_pickle(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such file")
    if p.stat().st_size > MAX_PICKLE_BYTES:
        raise CheckpointError(f"{p}: larger than {MAX_PICKLE_BYTES >> 20} MiB; not a folk-rnn model file")
    data = p.read_bytes()
    try:
        obj = RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{p}: {exc}") from exc
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError) as exc:
        raise CheckpointError(f"{p}: not a readable pickle ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"{p}: must hold a dict; got {type(obj).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _tokens_from(token2idx: Any, source: str) -> tuple[str, ...]:
    if not isinstance(token2idx, dict) or not token2idx:
        raise CheckpointError(f"{source}: 'token2idx' must be a non-empty dict of token -> index")
    pairs = []
    for tok, idx in token2idx.items():
        tok = tok.decode("latin1") if isinstance(tok, bytes) else tok
        if not isinstance(tok, str) or not isinstance(idx, (int, np.integer)):
            raise CheckpointError(f"{source}: 'token2idx' entries must be str -> int; got {tok!r}: {idx!r}")
        pairs.append((int(idx), tok))
    pairs.sort()
    if [i for i, _ in pairs] != list(range(len(pairs))):
        raise CheckpointError(f"{source}: 'token2idx' indices must be 0..{len(pairs) - 1} with none missing")
    return tuple(t for _, t in pairs)


def convert(doc: dict[str, Any], source: str = "pickle") -> FolkRNN:
    """Build a :class:`FolkRNN` from an original metadata dict (token order from its token2idx)."""
    tokens = _tokens_from(doc.get("token2idx"), source)
    params = doc.get("param_values")
    if not isinstance(params, list) or not all(isinstance(a, np.ndarray) for a in params):
        raise CheckpointError(f"{source}: 'param_values' must be a list of numpy arrays")
    if (len(params) - 3) % 14 != 0 or len(params) < 17:
        raise CheckpointError(f"{source}: 'param_values' must hold 1 + 14 x layers + 2 arrays; got {len(params)}")
    L = (len(params) - 3) // 14
    V = len(tokens)
    H = int(params[2].shape[0]) if params[2].ndim == 2 else -1
    try:
        config = ModelConfig(tokens=tokens, num_layers=L, hidden_size=H)
    except ValueError as exc:
        raise CheckpointError(f"{source}: {exc}") from exc
    p = [np.asarray(a, dtype=np.float32) for a in params]
    emb = p[0]
    if emb.shape != (V, V):
        raise CheckpointError(f"{source}: param_values[0] (one-hot embedding) must be {V}x{V}; got {emb.shape}")
    tensors: dict[str, torch.Tensor] = {}
    h0, c0 = [], []
    for j in range(L):
        b = 1 + 14 * j
        n_in = V if j == 0 else H
        w_x, w_h, bias = [], [], []
        for g in range(4):  # in, forget, cell, out == torch's i, f, g, o
            wx, wh, bb = p[b + 3 * g], p[b + 3 * g + 1], p[b + 3 * g + 2]
            if wx.shape != (n_in, H) or wh.shape != (H, H) or bb.shape != (H,):
                raise CheckpointError(
                    f"{source}: layer {j} gate {g} arrays must be ({n_in}, {H}), ({H}, {H}), ({H},); "
                    f"got {wx.shape}, {wh.shape}, {bb.shape}"
                )
            if j == 0:
                wx = emb @ wx  # fold the (normally identity) embedding into the first layer
            w_x.append(wx)
            w_h.append(wh)
            bias.append(bb)
        c0.append(p[b + 12].reshape(-1))
        h0.append(p[b + 13].reshape(-1))
        tensors[f"lstm.weight_ih_l{j}"] = torch.from_numpy(np.concatenate(w_x, axis=1).T.copy())
        tensors[f"lstm.weight_hh_l{j}"] = torch.from_numpy(np.concatenate(w_h, axis=1).T.copy())
        tensors[f"lstm.bias_l{j}"] = torch.from_numpy(np.concatenate(bias))
    w_out, b_out = p[1 + 14 * L], p[2 + 14 * L]
    if w_out.shape != (H, V) or b_out.shape != (V,):
        raise CheckpointError(
            f"{source}: output arrays must be ({H}, {V}) and ({V},); got {w_out.shape}, {b_out.shape}"
        )
    tensors["out.weight"] = torch.from_numpy(w_out.T.copy())
    tensors["out.bias"] = torch.from_numpy(b_out.copy())
    for name, rows in (("hid_init", h0), ("cell_init", c0)):
        if any(r.shape != (H,) for r in rows):
            raise CheckpointError(f"{source}: {name} rows must have {H} values")
        tensors[name] = torch.from_numpy(np.stack(rows))
    model = FolkRNN(config)
    load_state_tensors(model, tensors, source=source)
    return model.eval()


def import_pickle(path: str | Path, outdir: str | Path) -> Path:
    """``folkrnn-live import-lasagne``: original pickle -> our checkpoint directory."""
    doc = read_pickle(path)
    model = convert(doc, str(path))
    info = {
        k: doc[k]
        for k in ("experiment_id", "epoch_since_start", "iters_since_start", "learning_rate")
        if isinstance(doc.get(k), (str, int, float))
    }
    for k in ("losses_train", "losses_eval_valid"):
        v = doc.get(k)
        if isinstance(v, list):
            info[k] = [float(x) for x in v if isinstance(x, (int, float, np.floating))]
    cfg = doc.get("configuration")
    if isinstance(cfg, (str, int, float)):
        info["configuration"] = cfg
    return save(model, outdir, provenance={"source": "imported-lasagne", "file": Path(path).name, **info})
