"""The controls of both surfaces, defined once: names, defaults, slider ranges, fixed messages.

Each control listens to ``[r folkrnn-<name>]``; a default is set when the patch opens.  The Pd and
Max layouts are written by hand from these lists, and the tests check that each surface has every
control (Max connects with one message box instead of host/port boxes).
"""

from __future__ import annotations

from dataclasses import dataclass

from folkrnn_live.server.runtime.config import DEFAULT_OSC_PORT

STREAMS = "tokens notes bars tunes applied"  # what the surfaces subscribe to (not probs or state)
HOST = "127.0.0.1"
FEEDBACK_PORT = 9001  # where the surfaces listen for feedback (docs/server.md)
PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")  # bias-pc 0..11
FORCE = "force 0.7 @pitch 0.3"  # what the force toggle sends (until cleared)


@dataclass(frozen=True)
class Control:
    name: str
    default: float | str | None = None
    lo: float = 0.0  # a slider's range (narrower than the command's: a usable throw)
    hi: float = 0.0


SNIP_LAYERS = (0, 1, 2)

CONNECTION = (
    Control("host", HOST), Control("port", DEFAULT_OSC_PORT), Control("fbport", FEEDBACK_PORT), Control("voice", 1),
    Control("connect"), Control("disconnect"), Control("ping"),
)
TRANSPORT = tuple(Control(n) for n in ("start", "stop", "pause", "resume", "next", "reset"))
SAMPLER = (
    Control("temperature", lo=0.05, hi=3.0), Control("tempo", lo=40, hi=400), Control("bias-pc"),
    Control("bias", lo=-10, hi=10), Control("bias-clear"),
    Control("suppress-steps", 32), Control("suppress-bars"),
    Control("snip-fraction", 0.5), Control("snip-seed", 0),
    *(Control(f"snip-{layer}") for layer in SNIP_LAYERS),
    *(Control(f"restore-{layer}") for layer in SNIP_LAYERS),
    Control("restore"), Control("force"), Control("steer-component", 0),
    Control("steer-alpha", lo=-20, hi=20),
    Control("steer-clear"), Control("clear"),
)
OUTPUT = (Control("midi"), Control("sine"), Control("print"))
CONTROLS = (*CONNECTION, *TRANSPORT, *SAMPLER, *OUTPUT)
# The command each simple control sends (the rest are wired by hand below).
SIMPLE = {
    **{n: n for n in ("start", "stop", "pause", "resume", "next", "reset", "restore", "clear")},
    "bias-clear": "bias_clear",
    "steer-clear": "steer_clear",
    "disconnect": "disconnect",
    "ping": "global ping 1",
    **{f"restore-{layer}": f"restore {layer}" for layer in SNIP_LAYERS},
}


BY_NAME = {c.name: c for c in CONTROLS}


def span(name: str) -> tuple[float, float]:
    """A slider's range."""
    c = BY_NAME[name]
    return c.lo, c.hi


def rcv(name: str) -> str:
    return f"folkrnn-{name}"


def snd(name: str) -> str:
    return f"\\$0-{name}"


def show(name: str) -> str:
    """What a display shows is also sent to ``[r folkrnn-show-<name>]`` (mirror it elsewhere)."""
    return f"folkrnn-show-{name}"

