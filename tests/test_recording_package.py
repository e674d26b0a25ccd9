"""Recording is its own package: the server and the recording code never import the analyses (issue 16 §2)."""

from __future__ import annotations

import ast
from pathlib import Path

import folkrnn_live

PACKAGE = Path(folkrnn_live.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def _importers_of(prefix: str, under: str) -> list[str]:
    files = sorted((PACKAGE / under).rglob("*.py"))
    assert files, f"no Python files under {under}"
    return [
        f"{path.relative_to(PACKAGE)} imports {mod}"
        for path in files
        for mod in sorted(_imported_modules(path))
        if mod == prefix or mod.startswith(prefix + ".")
    ]


def test_server_does_not_import_analysis() -> None:
    assert _importers_of("folkrnn_live.analysis", "server") == []


def test_recording_does_not_import_analysis_or_server() -> None:
    assert _importers_of("folkrnn_live.analysis", "recording") == []
    assert _importers_of("folkrnn_live.server", "recording") == []


def test_server_records_with_the_recording_package() -> None:
    server_imports = {mod for path in (PACKAGE / "server").rglob("*.py") for mod in _imported_modules(path)}
    assert "folkrnn_live.recording.recorder" in server_imports
