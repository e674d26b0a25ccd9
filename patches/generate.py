#!/usr/bin/env python3
"""Write the folkrnn-live performer patches: ``folkrnn-control.pd`` (the OSC abstraction),
``folkrnn-live.pd`` (the Pd control surface) and ``folkrnn-live.maxpat`` (the same surface for Max).

The patches are plain text and can be edited in Pd or Max like any other; this script exists
because a Pd file addresses objects by their index, which is easy to get wrong by hand.  One list
of controls (``patchgen/surface.py``) names what both surfaces offer, under the same receive names.
``python3 patches/generate.py`` rewrites the files; ``--check`` only says whether they are up to
date (tests/test_pd_patches.py runs it).

Conventions (see patches/README.md):

* every control of the surface has a global receive name ``folkrnn-<name>``: another patch, a
  ``-send`` flag or a MIDI mapping can move it exactly as a performer would;
* every command reaches ``[folkrnn-control]`` as a plain Pd message (``temperature 0.8``), through
  ``[s folkrnn-cmd]`` from anywhere, and leaves as OSC ``/folkrnn/<voice>/temperature 0.8``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the patchgen package beside this script, however it is run

from patchgen.max_live import max_live  # noqa: E402
from patchgen.pd_control import pd_control  # noqa: E402
from patchgen.pd_live import pd_live  # noqa: E402
from patchgen.surface import CONTROLS  # noqa: E402

__all__ = ["CONTROLS", "OUTPUTS", "main"]
OUTPUTS = {
    "folkrnn-control.pd": pd_control,
    "folkrnn-live.pd": pd_live,
    "folkrnn-live.maxpat": max_live,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only report files that are out of date")
    ap.add_argument("--dir", type=Path, default=HERE, help="where to write (default: this folder)")
    args = ap.parse_args(argv)
    stale = []
    for name, make in OUTPUTS.items():
        path = args.dir / name
        text = make()
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print("out of date (run python3 patches/generate.py):", ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
