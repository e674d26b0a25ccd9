"""Import the original folk-rnn model files (``folkrnn_v2.pkl`` and friends).

They are Python 2 pickles of a dict (configuration, experiment_id, epoch_since_start, ...,
token2idx, param_values).  A pickle can run any code when loaded, so these files are read with a
restricted unpickler that admits only what they contain: builtin containers, strings, numbers and
numpy arrays of numbers (rebuilt through numpy's own reconstructor, each step checked).  Anything
else is refused with an error naming what it asked for, before any of it runs.
"""

from __future__ import annotations

import io
import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, NoReturn

import numpy as np
import torch

from folkrnn_live.model.checkpoint import CheckpointError, load_state_tensors, save
from folkrnn_live.model.config import ModelConfig
from folkrnn_live.model.network import FolkRNN

MAX_PICKLE_BYTES = 512 << 20


class _NdarrayName:
    """What the name ``numpy.ndarray`` stands for inside a model file: the first argument of
    ``_reconstruct`` and nothing else (a pickle that calls it gets no ndarray constructor with
    attacker-chosen buffer and strides)."""

    def __call__(self, *args: object) -> NoReturn:
        _refuse("a call of numpy.ndarray")


_NDARRAY = _NdarrayName()
# numpy's own pickles build an array as _reconstruct(ndarray, (0,), 'b') and then BUILD it with
# (version, shape, dtype, is_fortran, raw bytes); a dtype as dtype('f4', align, copy) then BUILD
# with (3, byte order, None, None, None, -1, -1, 0).  Only plain numbers are admitted: a dtype's
# BUILD state can otherwise give it object fields, and an array of those made from raw bytes is a
# set of forged pointers (tried: a segfault).
_NUMERIC_DTYPE = re.compile(r"[<>|=]?(?:f[248]|i[1248]|u[1248]|b1)")
_PLAIN_DTYPE_STATE_TAIL = (None, None, None, -1, -1, 0)


def _refuse(what: str) -> NoReturn:
    raise pickle.UnpicklingError(f"refusing {what}: a folk-rnn model file holds only numeric numpy arrays")


def _multiarray() -> Any:
    core = getattr(np, "_core", None) or np.core  # numpy 2 renamed core -> _core
    return core.multiarray


def _reconstruct(subtype: object, shape: object, dtype: object) -> np.ndarray:
    if subtype is not _NDARRAY or shape != (0,) or dtype not in ("b", b"b"):
        _refuse(f"numpy _reconstruct of anything but an empty ndarray (shape {shape!r}, dtype {dtype!r})")
    return _multiarray()._reconstruct(np.ndarray, (0,), b"b")


def _dtype(spec: object, align: object = False, copy: object = True) -> np.dtype:
    if not isinstance(spec, str) or not _NUMERIC_DTYPE.fullmatch(spec):
        _refuse(f"numpy dtype {spec!r}")
    return np.dtype(spec, bool(align), bool(copy))


def _scalar(dtype: object, data: object) -> Any:
    # Python 2 wrote the raw bytes as a str (read back as latin1 text); Python 3 as bytes.
    if not _plain(dtype) or not isinstance(data, (bytes, str)):
        _refuse("a numpy scalar that is not a number")
    return _multiarray().scalar(dtype, data.encode("latin1") if isinstance(data, str) else data)


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    # Python 3 writes the raw bytes of an array with protocol 2 as _codecs.encode(text, 'latin1').
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}; only latin1")
    return text.encode("latin1")


# The globals a folk-rnn metadata pickle may name (numpy moved its reconstructors from numpy.core to
# numpy._core in 2.0, so both spellings are admitted), each mapped to the guarded stand-in above.
_GLOBALS: dict[tuple[str, str], Any] = {
    **{(m, "_reconstruct"): _reconstruct for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(m, "scalar"): _scalar for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _latin1_encode,
}


def _plain(dtype: object) -> bool:
    return isinstance(dtype, np.dtype) and dtype.kind in "fiub" and dtype.fields is None and not dtype.hasobject


class RestrictedUnpickler(pickle._Unpickler):
    """Python's own unpickler (the pure-Python one, whose BUILD can be checked) with every global
    and every BUILD refused unless it is one of the few that numpy arrays of numbers need."""

    dispatch: ClassVar[dict[int, Callable[[Any], None]]] = dict(pickle._Unpickler.dispatch)
    stack: list[Any]

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing global {module}.{name}: a folk-rnn model file may contain only dicts, lists, "
                "strings, numbers and numpy arrays"
            )
        return _GLOBALS[module, name]

    def load_build(self) -> None:
        state, inst = self.stack[-1], self.stack[-2]
        if isinstance(inst, np.dtype):
            if not (isinstance(state, tuple) and len(state) == 8 and state[2:] == _PLAIN_DTYPE_STATE_TAIL):
                _refuse(f"numpy dtype state {state!r}")
        elif isinstance(inst, np.ndarray):
            ok = isinstance(state, tuple) and len(state) == 5
            if ok:
                _, shape, dtype, _, data = state
                ok = (
                    isinstance(shape, tuple)
                    and all(isinstance(n, int) and n >= 0 for n in shape)
                    and _plain(dtype)
                    and isinstance(data, (bytes, str))
                )
            if not ok:
                _refuse("a numpy array that is not plain numbers")
        else:
            _refuse(f"BUILD of a {type(inst).__name__}")
        pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]

    dispatch[pickle.BUILD[0]] = load_build


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
    except Exception as exc:  # a damaged file fails in many ways (EOFError, struct.error, KeyError, ...)
        why = f"{type(exc).__name__}: {exc}"
        raise CheckpointError(f"{p}: not a readable pickle, damaged or truncated ({why})") from exc
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
    if not isinstance(params, list) or not all(isinstance(a, np.ndarray) and a.dtype.kind == "f" for a in params):
        raise CheckpointError(f"{source}: 'param_values' must be a list of numpy arrays of floats")
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
    info: dict[str, Any] = {}
    for k in ("experiment_id", "epoch_since_start", "iters_since_start", "learning_rate"):
        v = doc.get(k)
        if isinstance(v, np.generic):  # the learning rate is a numpy float32
            v = v.item()
        if isinstance(v, (str, int, float)):
            info[k] = v
    for k in ("losses_train", "losses_eval_valid"):
        v = doc.get(k)
        if isinstance(v, list):
            info[k] = [float(x) for x in v if isinstance(x, (int, float, np.floating))]
    cfg = doc.get("configuration")
    if isinstance(cfg, (str, int, float)):
        info["configuration"] = cfg
    return save(model, outdir, provenance={"source": "imported-lasagne", "file": Path(path).name, **info})
