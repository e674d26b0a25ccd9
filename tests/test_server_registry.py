"""The command table: validation from every transport's form, addresses, handlers, generated docs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from folkrnn_live.sampler.controls import BIAS_RANGE, TEMPERATURE_RANGE
from folkrnn_live.server.commands import docs
from folkrnn_live.server.commands.catalog import COMMANDS
from folkrnn_live.server.commands.handlers import SERVER, TABLES, VOICE_LOOP
from folkrnn_live.server.commands.registry import Arg, Command, CommandContext, CommandError, Registry
from folkrnn_live.server.runtime.config import markdown as config_markdown
from folkrnn_live.tokens import V2

ROOT = Path(__file__).resolve().parents[1]
CTX = CommandContext.for_model(V2, 3, 16, ["1", "lead"])


def test_every_command_has_exactly_one_handler() -> None:
    # the handlers register when the modules that carry them out are imported
    import folkrnn_live.server.runtime.service
    import folkrnn_live.server.transports.midi_in  # noqa: F401

    for cmd in COMMANDS:
        tables = [t.what for t in TABLES if t.accepts(cmd)]
        assert len(tables) == 1, (cmd.name, tables)
    for table in TABLES:
        assert table.missing() == [], table.what
    assert SERVER.names() == ["status", "subscribe", "unsubscribe", "ping"]


def test_a_handler_for_an_unknown_or_misplaced_command_is_refused() -> None:
    import folkrnn_live.server.runtime.voices  # noqa: F401  (registers tempo)

    with pytest.raises(CommandError, match="did you mean tempo"):
        VOICE_LOOP.handles("tempi")
    with pytest.raises(ValueError, match="'temperature' is not one of the voice loop commands"):
        VOICE_LOOP.handles("temperature")
    with pytest.raises(ValueError, match="'tempo' already has a handler"):
        VOICE_LOOP.handles("tempo")


def test_ranges_come_from_the_sampler() -> None:
    (arg,) = COMMANDS.get("temperature").args
    assert (arg.lo, arg.hi) == TEMPERATURE_RANGE
    assert (COMMANDS.get("bias").args[1].lo, COMMANDS.get("bias").args[1].hi) == BIAS_RANGE


@pytest.mark.parametrize(
    ("name", "values", "expected"),
    [
        ("temperature", [0.5], {"value": 0.5}),
        ("temperature", [2], {"value": 2.0}),  # OSC int for a float
        ("temperature", ["0.25"], {"value": 0.25}),  # MQTT plain text
        ("channel", [3.0], {"channel": 3}),  # integral float for an int
        ("unfold", ["on"], {"on": True}),
        ("unfold", [0], {"on": False}),
        ("snip", [2, "all", 1, 5, 7], {"layer": 2, "mode": "all", "units": (1, 5, 7)}),
        ("restore", [], {"layer": None}),
        ("force", [0.7, "@bar", 0.3], {"weight_generated": 0.7, "selector": "@bar", "weight": 0.3, "steps": 0}),
        ("suppress", [8, "|", "pc:G"], {"steps": 8, "selectors": ("|", "pc:G")}),
        ("prime", [], {"tokens": ()}),
        ("subscribe", [], {"port": 0, "streams": ()}),
    ],
)
def test_bind_positional(name: str, values: list[object], expected: dict[str, object]) -> None:
    assert dict(COMMANDS.bind(name, values, CTX, "1").args) == expected


@pytest.mark.parametrize(
    ("name", "values", "argument", "fragment"),
    [
        ("temperature", [50.0], "value", "0.01..10"),
        ("temperature", ["hot"], "value", "must be a number"),
        ("temperature", [True], "value", "not a boolean"),
        ("channel", [16], "channel", "0..15"),
        ("channel", [1.5], "channel", "integer"),
        ("snip", [3, "out", 1], "layer", "0..2"),  # model-dependent range
        ("snip", [0, "out", 16], "units", "0..15"),
        ("snip", [0, "sideways", 1], "mode", "out, all"),
        ("bias", ["Q", 1.0], "selector", "unknown token 'Q'"),
        ("bias", ["@noise", 1.0], "selector", "@bar"),
        ("bias_target", ["|", 1.0], "probability", "(0, 1) exclusive"),
        ("inject", ["H"], "tokens", "unknown token"),
        ("inject", [], "tokens", "at least 1"),
        ("inject", ["G"] * 5000, "tokens", "at most 4096 values in one message; got 5000"),
        ("temperature", [], "value", "missing"),
        ("ping", [1, 2], "argument 2", "takes 1 argument"),
        ("status", ["nobody"], "voice", "1, lead"),
        ("unfold", ["maybe"], "on", "on/off"),
    ],
)
def test_bind_errors_name_argument_and_allowed(name: str, values: list[object], argument: str, fragment: str) -> None:
    with pytest.raises(CommandError) as info:
        COMMANDS.bind(name, values, CTX, "1")
    err = info.value
    assert err.argument == argument
    assert fragment in str(err)
    assert err.address.endswith(name)


def test_bind_named_json_and_text() -> None:
    a = COMMANDS.bind_json("force", {"weight_generated": 0.5, "selector": "|", "weight": 0.5, "steps": 4}, CTX, "1")
    assert a.args["steps"] == 4
    b = COMMANDS.bind_json("suppress", {"steps": 3, "selectors": ["|", ":|"]}, CTX, "1")
    assert b.args["selectors"] == ("|", ":|")
    assert COMMANDS.bind_json("temperature", 0.8, CTX, "1").args["value"] == 0.8
    assert COMMANDS.bind_json("stop", None, CTX, "1").args == {}
    c = COMMANDS.bind_text("inject", "M:6/8 K:Cmaj |:", CTX, "1")
    assert c.args["tokens"] == ("M:6/8", "K:Cmaj", "|:")
    assert c.text() == "inject M:6/8 K:Cmaj '|:'"
    with pytest.raises(CommandError, match="unknown argument") as info:
        COMMANDS.bind_json("temperature", {"temp": 1.0}, CTX, "1")
    assert info.value.argument == "temp"


def test_addresses() -> None:
    assert COMMANDS.parse_address("/folkrnn/lead/tempo", CTX)[1] == "lead"
    assert COMMANDS.parse_address("/folkrnn/all/tempo", CTX)[1] == "all"
    assert COMMANDS.parse_address("/folkrnn/ping", CTX)[1] is None
    cases = {
        "/other/x": "must start with /folkrnn/",
        "/folkrnn/tempo": "voice command",
        "/folkrnn/1/ping": "global command",
        "/folkrnn/9/tempo": "unknown voice '9'",
        "/folkrnn/1/tempp": "did you mean tempo",
        "/folkrnn/1/tempo/x": "address must be",
    }
    for address, fragment in cases.items():
        with pytest.raises(CommandError, match=fragment):
            COMMANDS.parse_address(address, CTX)


def test_table_rules() -> None:
    with pytest.raises(ValueError, match="only the last argument may be variadic"):
        Command("x", "voice", "step", "sampler", "", (Arg("a", "int", "", variadic=True), Arg("b", "int", "")))
    with pytest.raises(ValueError, match="after an optional one"):
        Command("x", "voice", "step", "sampler", "", (Arg("a", "int", "", default=1), Arg("b", "int", "")))
    c = Command("x", "voice", "step", "sampler", "")
    with pytest.raises(ValueError, match="defined twice"):
        Registry([c, c])


def test_docs_are_generated_and_current() -> None:
    assert (ROOT / "docs" / "commands.md").read_text(encoding="utf-8") == docs.commands_markdown(), (
        "docs/commands.md is stale: run folkrnn-live commands --markdown > docs/commands.md"
    )
    assert (ROOT / "docs" / "config.md").read_text(encoding="utf-8") == config_markdown(), (
        "docs/config.md is stale: run folkrnn-live commands --config-markdown > docs/config.md"
    )
    for cmd in COMMANDS:
        assert f"`{cmd.address()}`" in docs.commands_markdown()


def test_commands_cli_prints_the_reference() -> None:
    out = subprocess.run([sys.executable, "-m", "folkrnn_live", "commands", "--markdown"], capture_output=True,
                         text=True, check=True, cwd=ROOT).stdout
    assert out == docs.commands_markdown()
