"""RESULTS.md: the summary table, one section per figure, the findings."""

from __future__ import annotations

import dataclasses
import datetime
import platform
import subprocess
from pathlib import Path
from typing import Sequence

from _harness import ROOT, WrkResult, fmt


@dataclasses.dataclass
class Row:
    """One line of the summary table."""

    figure: str
    measure: str
    hanji: str
    baseline: str
    ratio: str
    target: str
    verdict: str


class Report:
    """Collects the summary rows and the sections, then writes RESULTS.md."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.sections: list[str] = []
        self.notes: list[str] = []
        self.started = datetime.datetime.now(datetime.timezone.utc)

    def row(self, *cells: str) -> None:
        self.rows.append(Row(*cells))

    def section(self, text: str) -> None:
        self.sections.append(text.rstrip() + "\n")

    def note(self, text: str) -> None:
        self.notes.append(text)

    def write(self, path: Path, *, environment: str, elapsed: float, findings: str) -> None:
        lines = [
            "# Hanji benchmarks",
            "",
            "Written by `make bench` (`bench/run.py`); raw wrk and client output is under `bench/raw/`",
            "(not committed). Ratios are taken pair by pair: A and B run one after the other, A B A B,",
            "and the ratio of each pair is computed before taking the median, so slow drift of a shared",
            "machine cancels out; in figures 1-3 every round starts fresh server processes, so the",
            "median also covers the few per cent by which two processes of the same server differ.",
            "Targets are bars we hold, not tests.",
            "",
            environment,
            "",
            f"Run started {self.started:%Y-%m-%d %H:%M} UTC and took {elapsed / 60:.1f} min.",
            "",
            "## Summary",
            "",
            "| # | measure | Hanji | baseline | ratio (median of pairs) | target | verdict |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            lines.append(f"| {r.figure} | {r.measure} | {r.hanji} | {r.baseline} | {r.ratio} | {r.target} | {r.verdict} |")
        if self.notes:
            lines += ["", "Notes on this run:", ""] + [f"- {n}" for n in self.notes]
        lines.append("")
        for s in self.sections:
            lines += [s]
        if findings:
            lines += [findings.rstrip(), ""]
        path.write_text("\n".join(lines))


def wrk_table(results: Sequence[tuple[str, WrkResult]]) -> str:
    """A markdown table of wrk runs, labelled by round."""
    out = [
        "| run | server | req/s | p50 ms | p99 ms | server CPU | req per CPU-s | errors | raw |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for rnd, r in results:
        share = r.cpu_share
        out.append(
            f"| {rnd} | {r.label} | {fmt(r.rps)} | {fmt(r.p50, '.2f')} | {fmt(r.p99, '.2f')} | "
            f"{fmt(None if share is None else 100 * share, '.0f', '%')} | {fmt(r.rps_per_cpu)} | "
            f"{r.errors + r.non2xx} | `{r.raw_path}` |"
        )
    return "\n".join(out)


def environment(cores_text: str, wrk_text: str) -> str:
    """Describe the machine and versions measured."""
    def version(mod: str) -> str:
        try:
            from importlib.metadata import version as v

            return v(mod)
        except Exception:
            return "not installed"

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, timeout=10).stdout.strip()
    except Exception:
        commit = "?"
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return "\n".join([
        "| environment | |",
        "|---|---|",
        f"| machine | {os.cpu_count()} CPUs ({cpu}), Linux {platform.release()} |",
        f"| pinning | {cores_text} |",
        f"| load generator | {wrk_text} |",
        f"| Python | {platform.python_version()} |",
        f"| Twisted / Django / daphne | {version('twisted')} / {version('django')} / {version('daphne')} |",
        "| peers | " + ", ".join(f"{name} {version(name)}" for name in
                                ("gunicorn", "granian", "uvicorn", "uvloop", "httptools", "aiohttp", "starlette",
                                 "websockets")) + " |",
        f"| Hanji commit | {commit} |",
    ])

