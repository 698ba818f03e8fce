"""Fixtures of the notebook tests: real kernels (see tests/support/kernels.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from support.kernels import Kernel
from support.paths import APPLETS, NOTEBOOKS, ROOT, TEST_APPLETS

__all__ = ["APPLETS", "NOTEBOOKS", "ROOT", "TEST_APPLETS", "Kernel"]


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    """One kernel per module with Hanji loaded and the repo's example applets."""
    k = Kernel(tmp_path_factory.mktemp("kernel"))
    k.ok("%load_ext hanji\nimport hanji")
    yield k
    k.shutdown()


@pytest.fixture
def new_kernel(tmp_path: Path) -> Iterator[Any]:
    """Return a function starting a fresh kernel (shut down after the test)."""
    started: list[Kernel] = []

    def start(env: dict[str, str] | None = None, applets: Path | None = APPLETS) -> Kernel:
        sub = tmp_path / f"kernel{len(started)}"
        sub.mkdir()
        k = Kernel(sub, env, applets)
        started.append(k)
        return k

    yield start
    for k in started:
        k.shutdown()

