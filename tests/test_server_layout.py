"""The server's three parts keep their boundaries (docs/server.md): a newcomer can change one
transport, or the command table, without reading the others."""

from __future__ import annotations

import ast
from pathlib import Path

SERVER = Path(__file__).resolve().parents[1] / "folkrnn_live" / "server"
PKG = "folkrnn_live.server"


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function, as an absolute name."""
    package = ".".join(("folkrnn_live", *path.relative_to(SERVER.parent).parent.parts))
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).rstrip(".")
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # `from pkg import module`
    return {m for m in found if m.startswith(PKG + ".")}


def _modules(part: str) -> list[Path]:
    files = sorted((SERVER / part).rglob("*.py"))
    assert files, f"server/{part}/ has no modules"
    return files


def test_commands_import_no_transport_and_no_runtime_but_the_key_types() -> None:
    # catalog and docs describe commands; they must not pull in sockets, the config or a transport
    allowed_runtime = {f"{PKG}.runtime", f"{PKG}.runtime.config_keys"}
    for path in _modules("commands"):
        bad = sorted(m for m in _imports(path) if m.startswith((f"{PKG}.transports", f"{PKG}.runtime"))
                     and m not in allowed_runtime and not m.startswith(f"{PKG}.runtime.config_keys."))
        assert bad == [], f"{path.relative_to(SERVER)} imports {bad}"


def test_no_transport_imports_another() -> None:
    shared = {"common", "feedback"}
    for path in _modules("transports"):
        rel = path.relative_to(SERVER / "transports").parts
        own = rel[0].removesuffix(".py")  # a module, or a package such as web/
        for m in _imports(path):
            parts = m.split(".")
            if m.startswith(f"{PKG}.transports.") and len(parts) > 3:
                other = parts[3]
                # a transport's helper modules carry its name (osc_wire.py belongs to osc.py)
                same = other == own or other.startswith(f"{own}_") or own.startswith(f"{other}_")
                assert same or other in shared, f"transports/{'/'.join(rel)} imports {m}"


def test_modules_and_functions_stay_readable() -> None:
    # the brief's limits, for the server and the patch generators: a module a newcomer can read in
    # one sitting, a function that fits on a screen
    patchgen = SERVER.parents[1] / "patches" / "patchgen"
    too_long = []
    for path in [*sorted(SERVER.rglob("*.py")), *sorted(patchgen.glob("*.py"))]:
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 400:
            too_long.append(f"{path.name}: {text.count(chr(10))} lines (at most 400)")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > 80:
                    too_long.append(f"{path.name}:{node.lineno} {node.name}: {n} lines (at most 80)")
    assert too_long == []
