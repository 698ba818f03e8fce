"""Where the repository's applet directories are (each is passed to ``--applets DIR``)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPLETS = ROOT / "applets"  # the example applets: hello_world, echo, notes, chat
NOTEBOOKS = ROOT / "notebooks"
_TEST_APPLETS = ROOT / "tests" / "applets"
TEST_APPLETS = _TEST_APPLETS / "common"  # contract, guardtest, ledger, plain, rootmounted, wstest
BROKEN_APPLETS = _TEST_APPLETS / "broken"  # broken_import, broken_activate, healthy
FAULTY_APPLETS = _TEST_APPLETS / "faulty"  # faulty_hooks, hangs_on_activate, survivor
LIMITS_APPLETS = _TEST_APPLETS / "limits"  # limitstest


def write_applet(root: Path, name: str, files: dict[str, str]) -> Path:
    """Write an applet package ``root/name`` from ``{file name: source}`` and return
    ``root``, the directory to pass to ``--applets``."""
    package = root / name
    package.mkdir(parents=True, exist_ok=True)
    for file_name, source in files.items():
        (package / file_name).write_text(source)
    return root
