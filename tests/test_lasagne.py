"""Importing the original folk-rnn pickles: layout, token order, and no code execution.

The real v2 weights are not available here, so the tests write pickles in the same layout
(random weights, a shuffled token order) and check the imported model step by step against the
independent numpy implementation of the reference equations."""

import codecs
import io
import os
import pickle
import random
import subprocess
import sys
import typing

import numpy as np
import pytest

from folkrnn_live.cli.main import main
from folkrnn_live.model import checkpoint
from folkrnn_live.model.checkpoint import CheckpointError
from folkrnn_live.model.reference import ReferenceLSTM
from folkrnn_live.model.step import NumpyStepper
from folkrnn_live.tokens import V2


def lasagne_params(V: int, H: int, L: int, rng: np.random.Generator) -> list[np.ndarray]:
    p: list[np.ndarray] = [np.eye(V, dtype=np.float32)]
    for j in range(L):
        n_in = V if j == 0 else H
        for _gate in range(4):
            p += [rng.uniform(-0.3, 0.3, (n_in, H)).astype(np.float32),
                  rng.uniform(-0.3, 0.3, (H, H)).astype(np.float32),
                  rng.uniform(-0.5, 0.5, H).astype(np.float32)]
        p.append(np.zeros((1, H), np.float32))  # cell_init
        h0 = rng.standard_normal((1, H)).astype(np.float32)
        p.append(h0 / np.linalg.norm(h0))  # hid_init: random unit norm
    p += [rng.uniform(-0.5, 0.5, (H, V)).astype(np.float32), rng.uniform(-0.1, 0.1, V).astype(np.float32)]
    return p


def write_pickle(path, H=16, L=3, seed=0):
    rng = np.random.default_rng(seed)
    tokens = list(V2.tokens)
    random.Random(seed).shuffle(tokens)
    doc = {
        "configuration": "config5", "experiment_id": "folkrnn_v2_test", "epoch_since_start": 3,
        "iters_since_start": 999, "losses_train": [3.1, 2.0], "losses_eval_valid": [3.0, 2.2],
        "learning_rate": np.float32(0.003), "token2idx": {t: i for i, t in enumerate(tokens)},
        "param_values": lasagne_params(len(tokens), H, L, rng),
    }
    with open(path, "wb") as f:
        pickle.dump(doc, f, protocol=2)
    return doc


def test_imported_model_matches_the_reference_equations_step_by_step(tmp_path):
    doc = write_pickle(tmp_path / "folkrnn_v2.pkl", H=16, L=3)
    assert main(["import-lasagne", str(tmp_path / "folkrnn_v2.pkl"), str(tmp_path / "m")]) == 0
    ck = checkpoint.load(tmp_path / "m")
    assert ck.config.tokens == tuple(sorted(doc["token2idx"], key=doc["token2idx"].get))
    assert ck.meta["provenance"]["experiment_id"] == "folkrnn_v2_test"
    ref = ReferenceLSTM(doc["param_values"])
    st = NumpyStepper(ck.model)
    state = st.initial_state(1)
    vocab = ck.config.vocab
    tune = ["<s>", "M:6/8", "K:Cdor", "|:", "G", "2", "A", "B", "c", "|", "d", "e", "f", ":|"]
    for tok in tune:
        i = vocab.index[tok]
        p_ref = ref.step(i)
        logits, state, _ = st.step(np.array([i]), state)
        z = logits[0].astype(np.float64)
        p = np.exp(z - z.max())
        p /= p.sum()
        np.testing.assert_allclose(p, p_ref, atol=1e-5)


class Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned_by_pickle",))


def test_a_hostile_pickle_is_refused_without_running_code(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open("evil.pkl", "wb") as f:
        pickle.dump({"token2idx": {}, "param_values": [Evil()]}, f, protocol=2)
    assert main(["import-lasagne", "evil.pkl", "out"]) == 2
    err = capsys.readouterr().err
    assert "refusing global posix.system" in err
    assert not (tmp_path / "pwned_by_pickle").exists()
    assert not (tmp_path / "out").exists()


def test_hostile_codecs_and_builtins_are_refused(tmp_path):
    # eval via builtins, and _codecs.encode with a non-latin1 codec
    payload = b"\x80\x02c__builtin__\neval\nq\x00X\x06\x00\x00\x001+1+1+q\x01\x85q\x02Rq\x03."
    (tmp_path / "a.pkl").write_bytes(payload)
    with pytest.raises(CheckpointError, match="refusing global __builtin__.eval"):
        checkpoint_import(tmp_path / "a.pkl", tmp_path / "o")
    payload2 = b"\x80\x02c_codecs\nencode\nq\x00X\x01\x00\x00\x00aX\x04\x00\x00\x00zlibq\x01\x86q\x02Rq\x03."
    (tmp_path / "b.pkl").write_bytes(payload2)
    with pytest.raises(CheckpointError, match="only latin1"):
        checkpoint_import(tmp_path / "b.pkl", tmp_path / "o")


def checkpoint_import(src, out):
    from folkrnn_live.model.lasagne import import_pickle

    return import_pickle(src, out)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("param_values"), "'param_values' must be a list of numpy arrays of floats"),
        (lambda d: d["param_values"].__setitem__(5, np.zeros(16, np.int32)), "numpy arrays of floats"),
        (lambda d: d["param_values"].pop(), "must hold 1 \\+ 14 x layers \\+ 2 arrays"),
        (lambda d: d["token2idx"].update({"A": 500}), "indices must be 0..136"),
        (lambda d: d["param_values"].__setitem__(2, np.zeros((16, 3), np.float32)), "layer 0 gate 0"),
    ],
)
def test_malformed_files_are_named(tmp_path, mutate, message):
    doc = write_pickle(tmp_path / "x.pkl", H=16, L=3)
    mutate(doc)
    with open(tmp_path / "x.pkl", "wb") as f:
        pickle.dump(doc, f, protocol=2)
    with pytest.raises(CheckpointError, match=message):
        checkpoint_import(tmp_path / "x.pkl", tmp_path / "o")


def test_truncated_file(tmp_path):
    write_pickle(tmp_path / "x.pkl")
    data = (tmp_path / "x.pkl").read_bytes()
    (tmp_path / "x.pkl").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable pickle, damaged or truncated"):
        checkpoint_import(tmp_path / "x.pkl", tmp_path / "o")


class Reduce:
    """Pickles as ``func(*args)``, then BUILD with ``state`` when given: the opcodes a hostile file
    can aim at the few globals a folk-rnn file may name."""

    def __init__(self, func, args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


HOSTILE_NUMPY = {
    "object array": (np.array([1, "x", None], dtype=object), "refusing numpy dtype 'O8'"),
    "complex array": (np.zeros(3, np.complex64), "refusing numpy dtype 'c8'"),
    "structured array": (np.zeros(2, [("a", "f4"), ("b", "i4")]), "refusing numpy dtype 'V8'"),
    # BUILD can give a plain dtype object fields; an array of them from raw bytes is forged pointers
    "dtype given fields by BUILD": (
        Reduce(np.dtype, ("f8", False, True), (3, "|", None, ("a",), {"a": (np.dtype("f8"), 0)}, 8, 1, 0)),
        "refusing numpy dtype state",
    ),
    # the ndarray constructor takes a buffer and strides: a 40 GB view of 4 bytes
    "ndarray call": (
        Reduce(np.ndarray, ((100_000, 100_000), "f4", b"\0" * 4, 0, (0, 0))),
        "refusing a call of numpy.ndarray",
    ),
    "huge empty array": (
        Reduce(np._core.multiarray._reconstruct, (np.ndarray, (1 << 34,), b"b")),
        "refusing numpy _reconstruct of anything but an empty ndarray",
    ),
    "BUILD of other objects": (Reduce(codecs.encode, ("x", "latin1"), {"a": 1}), "refusing BUILD of a bytes"),
}


@pytest.mark.parametrize("name", HOSTILE_NUMPY)
def test_numpy_tricks_through_the_admitted_names_are_refused(tmp_path, capsys, name):
    payload, message = HOSTILE_NUMPY[name]
    doc = write_pickle(tmp_path / "x.pkl")
    doc["param_values"][5] = payload
    with open(tmp_path / "x.pkl", "wb") as f:
        pickle.dump(doc, f, protocol=2)
    args = ["import-lasagne", str(tmp_path / "x.pkl"), str(tmp_path / "o")]
    if name == "dtype given fields by BUILD":
        # In a child process: were the check missing, the forged pointer would crash the interpreter.
        run = subprocess.run([sys.executable, "-m", "folkrnn_live.cli.main", *args], capture_output=True, text=True)
        status, err = run.returncode, run.stderr
    else:
        status, err = main(args), capsys.readouterr().err
    assert status == 2, err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_damaged_files_always_get_a_clear_error(tmp_path):
    write_pickle(tmp_path / "good.pkl", H=4, L=1)
    good = (tmp_path / "good.pkl").read_bytes()
    rng = random.Random(0)
    outcomes = set()
    for n in range(300):
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        (tmp_path / "bad.pkl").write_bytes(bytes(data))
        try:
            checkpoint_import(tmp_path / "bad.pkl", tmp_path / f"o{n}")
            outcomes.add("imported")  # a byte inside a weight changes a weight, and that is all
        except CheckpointError:
            outcomes.add("refused")
    assert "refused" in outcomes


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.pkl", "missing.pkl: no such file"),
        (lambda d: _write(d / "notes.pkl", b"X:1\nT:not a pickle\n"), "not a readable pickle"),
        (lambda d: _write(d / "list.pkl", pickle.dumps([1, 2], protocol=2)), "must hold a dict; got list"),
    ],
    ids=["missing", "text", "not a dict"],
)
def test_import_lasagne_bad_files_exit_2(tmp_path, capsys, make, message):
    assert main(["import-lasagne", str(make(tmp_path)), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_import_lasagne_into_a_file_exits_2(tmp_path, capsys):
    write_pickle(tmp_path / "v2.pkl", H=4, L=1)
    (tmp_path / "taken").write_text("a file, not a folder")
    assert main(["import-lasagne", str(tmp_path / "v2.pkl"), str(tmp_path / "taken")]) == 2
    assert "File exists" in capsys.readouterr().err


def _write(path, data):
    path.write_bytes(data)
    return path


class Py2Pickler(pickle._Pickler):
    """Writes byte strings as Python 2 wrote its str (BINSTRING), and numpy's reconstructor under
    its Python 2 module name: the form of the original folkrnn_v2.pkl."""

    dispatch: typing.ClassVar[dict] = dict(pickle._Pickler.dispatch)

    def save_bytes(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + len(obj).to_bytes(4, "little") + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def test_a_python2_style_file_imports(tmp_path):
    doc = write_pickle(tmp_path / "x.pkl", H=8, L=2)
    doc["token2idx"] = {t.encode("latin1"): i for t, i in doc["token2idx"].items()}  # Python 2 str keys
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump({k.encode("latin1"): v for k, v in doc.items()})
    data = buf.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    assert b"_codecs" not in data and b"cnumpy.core.multiarray\n" in data
    (tmp_path / "py2.pkl").write_bytes(data)
    ck = checkpoint.load(checkpoint_import(tmp_path / "py2.pkl", tmp_path / "m"))
    assert ck.meta["provenance"]["experiment_id"] == "folkrnn_v2_test"  # a Python 2 str value
    assert ck.meta["provenance"]["epoch_since_start"] == 3
    assert ck.meta["provenance"]["learning_rate"] == pytest.approx(0.003)  # a numpy float32 scalar
    ref = ReferenceLSTM(doc["param_values"], num_layers=2)
    st = NumpyStepper(ck.model)
    i = ck.config.vocab.index["<s>"]
    logits, _, _ = st.step(np.array([i]), st.initial_state(1))
    z = logits[0].astype(np.float64)
    np.testing.assert_allclose(np.exp(z - z.max()) / np.exp(z - z.max()).sum(), ref.step(i), atol=1e-5)
