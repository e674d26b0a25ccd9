"""A Pd canvas written object by object (a Pd file addresses objects by their index)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

FONT = 12


@dataclass
class PdCanvas:
    """One Pd canvas: objects in creation order (their index is what ``connect`` refers to)."""

    width: int = 800
    height: int = 600
    name: str | None = None  # a subpatch when set
    x: int = 40
    y: int = 40
    lines: list[str] = field(default_factory=list)
    links: list[tuple[int, int, int, int]] = field(default_factory=list)
    subpatches: dict[int, tuple[PdCanvas, int, int]] = field(default_factory=dict)

    def _add(self, line: str) -> int:
        self.lines.append(line)
        return len(self.lines) - 1

    def obj(self, x: int, y: int, text: str) -> int:
        return self._add(f"#X obj {x} {y} {text};")

    def msg(self, x: int, y: int, text: str, width: int | None = None) -> int:
        return self._add(f"#X msg {x} {y} {text}{f', f {width}' if width else ''};")

    def text(self, x: int, y: int, text: str, width: int | None = None) -> int:
        return self._add(f"#X text {x} {y} {text}{f', f {width}' if width else ''};")

    def floatatom(self, x: int, y: int, width: int, rcv: str = "-", snd: str = "-",
                  lo: float = 0, hi: float = 0) -> int:
        return self._add(f"#X floatatom {x} {y} {width} {lo:g} {hi:g} 0 - {rcv} {snd} 0;")

    def symbolatom(self, x: int, y: int, width: int, rcv: str = "-", snd: str = "-") -> int:
        return self._add(f"#X symbolatom {x} {y} {width} 0 0 0 - {rcv} {snd} 0;")

    def listbox(self, x: int, y: int, width: int, rcv: str = "-", snd: str = "-") -> int:
        return self._add(f"#X listbox {x} {y} {width} 0 0 0 - {rcv} {snd} 0;")

    def bng(self, x: int, y: int, rcv: str, snd: str, label: str) -> int:
        return self.obj(x, y, f"bng 19 250 50 0 {snd} {rcv} {label} 24 10 0 {FONT} #fcfcfc #000000 #000000")

    def tgl(self, x: int, y: int, rcv: str, snd: str, label: str) -> int:
        return self.obj(x, y, f"tgl 19 0 {snd} {rcv} {label} 24 10 0 {FONT} #fcfcfc #000000 #000000 0 1")

    def hsl(self, x: int, y: int, lo: float, hi: float, rcv: str, snd: str, label: str, width: int = 160) -> int:
        return self.obj(x, y, f"hsl {width} 19 {lo:g} {hi:g} 0 0 {snd} {rcv} {label} -2 -10 0 {FONT} "
                              "#fcfcfc #000000 #000000 0 1")

    def hradio(self, x: int, y: int, n: int, rcv: str, snd: str, label: str) -> int:
        return self.obj(x, y, f"hradio 19 1 0 {n} {snd} {rcv} {label} 0 -10 0 {FONT} #fcfcfc #000000 #000000 0")

    def subpatch(self, x: int, y: int, canvas: PdCanvas) -> int:
        idx = self._add("")  # placeholder: rendered from the sub-canvas
        self.subpatches[idx] = (canvas, x, y)
        return idx

    def connect(self, a: int, outlet: int, b: int, inlet: int = 0) -> None:
        self.links.append((a, outlet, b, inlet))

    def chain(self, *objs: int) -> None:
        """Connect outlet 0 of each object to inlet 0 of the next."""
        for a, b in itertools.pairwise(objs):
            self.connect(a, 0, b, 0)

    def render(self) -> str:
        head = (f"#N canvas {self.x} {self.y} {self.width} {self.height} {self.name} 0;" if self.name
                else f"#N canvas {self.x} {self.y} {self.width} {self.height} {FONT};")
        out = [head]
        for i, line in enumerate(self.lines):
            if i in self.subpatches:
                sub, x, y = self.subpatches[i]
                out.append(sub.render())
                out.append(f"#X restore {x} {y} pd {sub.name};")
            else:
                out.append(line)
        out += [f"#X connect {a} {o} {b} {i};" for a, o, b, i in self.links]
        return "\n".join(out)
