"""Every command of the live server, defined once.

This table drives validation (:mod:`folkrnn_live.server.commands.registry`), dispatch (each command's
handler is registered in one of the tables of :mod:`folkrnn_live.server.commands.handlers`, beside the
code that carries it out), the OSC/MQTT reference
(``folkrnn-live commands --markdown``) and the tests.  Ranges come from the modules that enforce
them (the sampler's controls, the player's settings) so each range is written once.
"""

from __future__ import annotations

from folkrnn_live.player.settings import (
    ACCENT_RANGE,
    CHANNEL_RANGE,
    GATE_RANGE,
    PROGRAM_RANGE,
    SWING_RANGE,
    TEMPO_RANGE,
    VELOCITY_RANGE,
)
from folkrnn_live.sampler.controls import (
    BIAS_RANGE,
    FORCE_WEIGHT_RANGE,
    MAX_TOKENS_RANGE,
    SEED_RANGE,
    STEER_ALPHA_RANGE,
    STEPS_RANGE,
    TEMPERATURE_RANGE,
)
from folkrnn_live.server.commands.midi_map import MIDI_COMMANDS, MIDI_GROUP
from folkrnn_live.server.commands.registry import Arg, Command, Registry

PORT_RANGE = (0, 65535)
# N-step interventions: 0 means "until cleared" (the sampler's None), so one number fits OSC.
STEPS_OR_ZERO = (0, STEPS_RANGE[1])

STREAMS = ("tokens", "notes", "bars", "tunes", "probs", "state", "applied")
DEFAULT_STREAMS = ("tokens", "notes", "bars", "tunes", "state", "applied")  # probs is large: opt in
SNIP_MODES = ("out", "all")
# Injected tokens waiting to be fed, at most: they are used one per step, so without a bound a
# client repeating inject could add them faster than the voice plays them, without end.
INJECT_LIMIT = 1_000


def _steps() -> Arg:
    return Arg("steps", "int", "steps it lasts; 0 = until cleared", *STEPS_OR_ZERO, default=0)


_SAMPLER = (
    Command("temperature", "voice", "step", "sampler", "Sampling temperature (logits divided by it).",
            (Arg("value", "float", "temperature", *TEMPERATURE_RANGE),)),
    Command("seed", "voice", "step", "sampler",
            "Seed of the next tune (used by next, reset and continuous mode).",
            (Arg("seed", "int", "RNG seed", *SEED_RANGE),)),
    Command("prime", "voice", "step", "sampler",
            "Tokens every following tune starts with (none: clear the prime).",
            (Arg("tokens", "token", "prime tokens, e.g. M:6/8 K:Cmaj", variadic=True),)),
    Command("max_tokens", "voice", "step", "sampler", "Length cap of a tune in tokens.",
            (Arg("n", "int", "tokens", *MAX_TOKENS_RANGE),)),
    Command("bias", "voice", "step", "sampler",
            "Set the logit bias of the selected tokens (set, not add: a knob can resend it).",
            (Arg("selector", "selector", "token, @class or pc:X"),
             Arg("amount", "float", "bias added to the logits", *BIAS_RANGE))),
    Command("bias_target", "voice", "step", "sampler",
            "Add the bias that gives the selected tokens together this probability at the next step.",
            (Arg("selector", "selector", "token, @class or pc:X"),
             Arg("probability", "float", "target probability", 0.0, 1.0, exclusive=True))),
    Command("bias_clear", "voice", "step", "sampler", "Remove every bias."),
    Command("suppress", "voice", "step", "sampler",
            "Forbid the selected tokens for a number of steps.",
            (Arg("steps", "int", "steps it lasts; 0 = until cleared", *STEPS_OR_ZERO),
             Arg("selectors", "selector", "tokens, @class or pc:X", variadic=True, min_count=1))),
    Command("suppress_clear", "voice", "step", "sampler", "Allow every token again."),
    Command("snip", "voice", "step", "sampler",
            "Silence units of one layer: 'out' cuts what they send onward, 'all' their recurrence too.",
            (Arg("layer", "int", "layer index", 0, "layers-1"),
             Arg("mode", "choice", "what is cut", choices=SNIP_MODES),
             Arg("units", "int", "unit indices", 0, "hidden-1", variadic=True, min_count=1))),
    Command("snip_random", "voice", "step", "sampler",
            "Snip a random fraction of one layer's units (chosen by a seed, so it can be repeated).",
            (Arg("layer", "int", "layer index", 0, "layers-1"),
             Arg("fraction", "float", "fraction of the layer's units", 0.0, 1.0),
             Arg("seed", "int", "seed of the unit choice", *SEED_RANGE, default=0),
             Arg("mode", "choice", "what is cut", choices=SNIP_MODES, default="out"))),
    Command("restore", "voice", "step", "sampler", "Undo snips: one layer, or every layer when omitted.",
            (Arg("layer", "int", "layer index", 0, "layers-1", default=None),)),
    Command("force", "voice", "step", "sampler",
            "Feed a mix instead of the one-hot input: weight_generated x the token just generated plus "
            "weight x a random token of the selector.",
            (Arg("weight_generated", "float", "weight of the generated token", *FORCE_WEIGHT_RANGE),
             Arg("selector", "selector", "tokens mixed in"),
             Arg("weight", "float", "weight of the mixed-in token", *FORCE_WEIGHT_RANGE),
             _steps())),
    Command("force_clear", "voice", "step", "sampler", "Back to the one-hot input."),
    Command("inject", "voice", "step", "sampler",
            f"Feed these tokens next, instead of sampling (at most {INJECT_LIMIT:,} waiting).",
            (Arg("tokens", "token", "tokens to play next", variadic=True, min_count=1),)),
    Command("steer", "voice", "step", "sampler",
            "Add alpha x a right singular vector of the output matrix to the last layer's output.",
            (Arg("component", "int", "singular vector index", 0, "components-1"),
             Arg("alpha", "float", "strength", *STEER_ALPHA_RANGE))),
    Command("steer_clear", "voice", "step", "sampler", "Stop steering."),
    Command("clear", "voice", "step", "sampler",
            "Remove every intervention (bias, suppress, snips, force, inject, steer); temperature stays."),
    Command("precision", "voice", "step", "sampler",
            "Step weights of this voice from the next token on: fp32, or int8 (CPU only; faster, close to "
            "but not token-identical with fp32). The tune goes on from its state.",
            (Arg("precision", "choice", "step weights", choices=("fp32", "int8")),)),
)

_PLAYER = (
    Command("tempo", "voice", "loop", "player", "Tempo in BPM of the meter's beat (from the next note).",
            (Arg("bpm", "float", "beats per minute", *TEMPO_RANGE),)),
    Command("channel", "voice", "loop", "player", "MIDI channel (0-based).",
            (Arg("channel", "int", "MIDI channel", *CHANNEL_RANGE),)),
    Command("program", "voice", "loop", "player", "MIDI program change (General MIDI: 0 piano, 40 violin).",
            (Arg("program", "int", "program number", *PROGRAM_RANGE),)),
    Command("velocity", "voice", "loop", "player", "Base note velocity.",
            (Arg("velocity", "int", "velocity", *VELOCITY_RANGE),)),
    Command("accent", "voice", "loop", "player", "Velocity added on downbeats, other beats and off-beats.",
            (Arg("downbeat", "int", "added on the bar's first beat", *ACCENT_RANGE),
             Arg("beat", "int", "added on other beats", *ACCENT_RANGE, default=6),
             Arg("offbeat", "int", "added elsewhere", *ACCENT_RANGE, default=0))),
    Command("swing", "voice", "loop", "player", "Long:short ratio of eighth pairs (1 straight, 2 triplet swing).",
            (Arg("ratio", "float", "swing ratio", *SWING_RANGE),)),
    Command("gate", "voice", "loop", "player", "Fraction of its length a note sounds.",
            (Arg("fraction", "float", "gate", *GATE_RANGE),)),
    Command("unfold", "voice", "loop", "player", "Play repeats unfolded (AABB) or as generated.",
            (Arg("on", "bool", "unfold repeats"),)),
    Command("continuous", "voice", "step", "player", "Start a new tune after each tune ends.",
            (Arg("on", "bool", "continuous mode"),)),
    Command("send_clock", "voice", "loop", "player",
            "Send MIDI clock (24 ppqn) and start/stop/continue to this voice's outputs (one voice per port).",
            (Arg("on", "bool", "send MIDI clock"),)),
)

_TRANSPORT = (
    Command("start", "voice", "loop", "transport", "Start playing (from where it stopped)."),
    Command("stop", "voice", "loop", "transport", "Stop playing; sounding notes get their note-offs."),
    Command("pause", "voice", "loop", "transport", "Pause (notes off); resume continues the same tune."),
    Command("resume", "voice", "loop", "transport", "Continue after pause."),
    Command("reset", "voice", "step", "transport", "Restart the current tune from its seed (same tune again)."),
    Command("next", "voice", "step", "transport", "End the current tune and start the next one."),
)

_RECORDING = (
    Command("record_start", "voice", "loop", "recording",
            "Record every step's activations to the configured recordings directory.",
            (Arg("label", "name", "suffix of the recording's folder name", default="rec"),)),
    Command("record_stop", "voice", "loop", "recording", "Stop recording and flush it to disk."),
)

_SESSION = (
    Command("status", "global", "loop", "session", "Reply with a state snapshot of one voice or every voice.",
            (Arg("voice", "choice", "voice name", choices="voices", default=None),)),
    Command("subscribe", "global", "loop", "session",
            "Send feedback streams to the sender's host at this port (0: the port it sent from).",
            (Arg("port", "int", "UDP port of the receiver", *PORT_RANGE, default=0),
             Arg("streams", "choice", "streams (default: all but probs)", choices=STREAMS, variadic=True))),
    Command("unsubscribe", "global", "loop", "session", "Stop feedback to the sender (or to this port).",
            (Arg("port", "int", "UDP port of the receiver", *PORT_RANGE, default=0),)),
    Command("ping", "global", "loop", "session", "Reply /pong with the same id.",
            (Arg("id", "int", "echoed back", -(2**31), 2**31 - 1, default=0),)),
)

COMMANDS = Registry((*_SAMPLER, *_PLAYER, *_TRANSPORT, *_RECORDING, *_SESSION, *MIDI_COMMANDS))

GROUPS = {
    "sampler": "Sampler: what the network generates (applied before the next token)",
    "player": "Player: how tokens become notes",
    "transport": "Transport",
    "recording": "Recording",
    "session": "Session (global)",
    MIDI_GROUP[0]: MIDI_GROUP[1],
}
