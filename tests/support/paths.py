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
