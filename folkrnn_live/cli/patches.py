"""``folkrnn-live patches DIR``: write the Pure Data and Max patches that ship in the package.

The files live in the source tree's ``patches/`` and ``systemd/``; ``folkrnn_live/share/`` links to
them, and a wheel carries copies (package data), so an installed package has them without the source.
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

PATCH_FILES = ("folkrnn-live.pd", "folkrnn-control.pd", "folkrnn-live.maxpat", "README.md")


def shipped(folder: str, name: str) -> bytes:
    """One shipped file's bytes (``folder`` is ``patches`` or ``systemd``)."""
    ref = resources.files("folkrnn_live").joinpath("share", folder, name)
    if not ref.is_file():
        raise FileNotFoundError(f"{folder}/{name} is not in this installation of folkrnn-live (a broken install?)")
    return ref.read_bytes()


def write_files(out_dir: Path, files: dict[str, bytes], force: bool) -> list[Path]:
    """Write ``files`` into ``out_dir`` (made if needed); refuses to overwrite unless ``force``."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"DIR {str(out_dir)!r} is a file; name a directory (it is made if needed)")
    targets = [out_dir / name for name in files]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not force:
        raise ValueError(f"{', '.join(existing)} already exist(s); use --force to overwrite")
    out_dir.mkdir(parents=True, exist_ok=True)
    for t, data in zip(targets, files.values(), strict=True):
        t.write_bytes(data)
    return targets


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "patches", help="write the Pure Data and Max patches into a directory",
        description="Write the patches that play with `folkrnn-live serve` over OSC: folkrnn-live.pd and "
        "folkrnn-control.pd (Pure Data), folkrnn-live.maxpat (Max), and their README.",
    )
    p.add_argument("dir", metavar="DIR", type=Path, help="directory to write into (made if needed)")
    p.add_argument("--force", action="store_true", help="overwrite files that are already there")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    written = write_files(args.dir, {n: shipped("patches", n) for n in PATCH_FILES}, args.force)
    for path in written:
        print(f"wrote {path}")
    print(f"start `folkrnn-live serve`, then open {args.dir / 'folkrnn-live.pd'} in Pure Data "
          f"(pd {args.dir / 'folkrnn-live.pd'}) or {args.dir / 'folkrnn-live.maxpat'} in Max")
    return 0
