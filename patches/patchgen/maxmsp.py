"""A Max patcher written box by box, with the inlets and outlets Max itself records."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Inlets and outlet types of the Max objects used (from Max 8 patchers: what Max itself writes).
MAX_IO: dict[str, Callable[[list[str]], tuple[int, list[str]]]] = {
    "r": lambda a: (0, [""]),
    "s": lambda a: (1, []),
    "t": lambda a: (1, [{"b": "bang", "i": "int", "f": "float"}.get(x, "") for x in a]),
    "route": lambda a: (len(a) + 1, [""] * (len(a) + 1)),
    "zl.slice": lambda a: (2, ["", ""]),
    "zl.ecils": lambda a: (2, ["", ""]),
    "zl.join": lambda a: (2, ["", ""]),
    "zl.reg": lambda a: (2, ["", ""]),
    "zl.stream": lambda a: (2, ["", ""]),
    "sprintf": lambda a: (max(1, sum(x.count("%") for x in a)), [""]),
    "prepend": lambda a: (1, [""]),
    "tosymbol": lambda a: (1, [""]),
    "fromsymbol": lambda a: (1, [""]),
    "loadbang": lambda a: (1, ["bang"]),
    "loadmess": lambda a: (1, [""]),
    "pack": lambda a: (len(a), [""]),
    "pak": lambda a: (len(a), [""]),
    "unpack": lambda a: (1, [{"i": "int", "f": "float", "s": ""}.get(x, "") for x in a]),
    "sel": lambda a: (2, ["bang", ""]),
    "gate": lambda a: (2, [""]),
    "i": lambda a: (2, ["int"]),
    "+": lambda a: (2, ["int"]),
    "/": lambda a: (2, ["float"]),
    "makenote": lambda a: (3, ["float", "float"]),
    "noteout": lambda a: (3, []),
    "print": lambda a: (1, []),
    "udpsend": lambda a: (1, []),
    "udpreceive": lambda a: (1, [""]),
    "mtof": lambda a: (1, [""]),
    "cycle~": lambda a: (2, ["signal"]),
    "line~": lambda a: (2, ["signal", "bang"]),
    "*~": lambda a: (2, ["signal"]),
}
MAX_UI = {  # maxclass: (inlets, outlet types)
    "message": (2, [""]),
    "comment": (1, []),
    "button": (1, ["bang"]),
    "toggle": (1, ["int"]),
    "number": (1, ["", "bang"]),
    "flonum": (1, ["", "bang"]),
    "slider": (1, [""]),
    "umenu": (1, ["int", "", ""]),
    "ezdac~": (2, []),
}


@dataclass
class MaxPatcher:
    """A Max patcher: boxes ``obj-N`` and patchlines.  ``show=True`` puts a box in presentation mode
    too (the performer's view: controls, labels and displays, none of the plumbing)."""

    boxes: list[dict[str, Any]] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)

    def _box(self, maxclass: str, x: float, y: float, w: float, h: float, nin: int, outs: list[str],
             show: bool = False, **extra: Any) -> str:
        box_id = f"obj-{len(self.boxes) + 1}"
        box: dict[str, Any] = {"id": box_id, "maxclass": maxclass, "numinlets": nin, "numoutlets": len(outs)}
        if outs:
            box["outlettype"] = outs
        box["patching_rect"] = [float(x), float(y), float(w), float(h)]
        if show:
            box["presentation"] = 1
            box["presentation_rect"] = [float(x), float(y), float(w), float(h)]
        box.update(extra)
        self.boxes.append({"box": dict(sorted(box.items()))})
        return box_id

    def obj(self, x: float, y: float, text: str) -> str:
        name, *args = text.split()
        nin, outs = MAX_IO[name](args)
        return self._box("newobj", x, y, max(30.0, 7.0 * len(text) + 12), 22, nin, outs, text=text)

    def ui(self, maxclass: str, x: float, y: float, w: float = 22, h: float = 22, show: bool = True,
           **extra: Any) -> str:
        nin, outs = MAX_UI[maxclass]
        if maxclass in ("button", "toggle", "number", "flonum", "slider", "umenu"):
            extra.setdefault("parameter_enable", 0)
        return self._box(maxclass, x, y, w, h, nin, list(outs), show=show, **extra)

    def msg(self, x: float, y: float, text: str, w: float | None = None, show: bool = True) -> str:
        return self.ui("message", x, y, w or max(30.0, 7.0 * len(text) + 14), 22, show=show, text=text)

    def comment(self, x: float, y: float, text: str, w: float | None = None) -> str:
        return self.ui("comment", x, y, w or 7.0 * len(text) + 10, 20, text=text)

    def position(self, box_id: str) -> tuple[float, float]:
        x, y, _, _ = self.boxes[int(box_id.split("-")[1]) - 1]["box"]["patching_rect"]
        return x, y

    def connect(self, a: str, outlet: int, b: str, inlet: int = 0) -> None:
        self.lines.append({"patchline": {"destination": [b, inlet], "source": [a, outlet]}})

    def chain(self, *ids: str) -> None:
        for a, b in itertools.pairwise(ids):
            self.connect(a, 0, b)

    def render(self) -> str:
        patcher = {
            "patcher": {
                "fileversion": 1,
                "appversion": {"major": 8, "minor": 5, "revision": 0, "architecture": "x64", "modernui": 1},
                "classnamespace": "box",
                "rect": [40.0, 60.0, 1120.0, 860.0],
                "bglocked": 0,
                "openinpresentation": 1,
                "default_fontsize": 12.0,
                "default_fontface": 0,
                "default_fontname": "Arial",
                "gridonopen": 1,
                "gridsize": [15.0, 15.0],
                "gridsnaponopen": 1,
                "toolbarvisible": 1,
                "description": "folkrnn-live control surface (see patches/README.md)",
                "boxes": self.boxes,
                "lines": self.lines,
            }
        }
        return json.dumps(patcher, indent=1) + "\n"

