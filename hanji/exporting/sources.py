"""Where an export's code comes from: the cells of one applet and the other cells,
recorded in a kernel (:mod:`hanji.notebook.cells`) or read from a saved ``.ipynb``;
any thread (pure, but for reading the notebook file).

A cell is kept as its label (``In [4]`` in a kernel, ``code cell 4`` in a file), its
Python source without the ``%%applet`` line, and whether it is a models cell.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
from pathlib import Path

MAGIC = "%%applet"


@dataclasses.dataclass(frozen=True)
class Cell:
    """One cell's source as the export sees it."""

    label: str  # "In [4]" (execution count) or "code cell 4" (position in a file)
    source: str  # the cell's code, without its %%applet line
    models: bool = False  # a %%applet NAME --models cell: its code goes to models.py

    @property
    def first_line(self) -> str:
        """The first non-blank line of the source (how a cell is named in messages)."""
        for line in self.source.splitlines():
            if line.strip():
                return line.strip()
        return ""

    def describe(self) -> str:
        """Return the cell as messages name it: ``In [4]: def shout(text):``."""
        return f"{self.label}: {self.first_line}" if self.first_line else self.label


@dataclasses.dataclass(frozen=True)
class AppletLine:
    """The arguments of a ``%%applet`` line."""

    name: str
    models: bool = False


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="%%applet", add_help=False, exit_on_error=False)
    parser.add_argument("name")
    parser.add_argument("--models", action="store_true")
    return parser


USAGE = ("%%applet NAME [--models]: the cell belongs to applet NAME (a Python package name); "
         "--models marks a cell of Django models (exported to models.py with a migration).")


def parse_line(line: str) -> AppletLine:
    """Return the arguments of a ``%%applet`` line (without ``%%applet``); raise
    ValueError with the usage if they are wrong."""
    try:
        args, extra = _parser().parse_known_args(shlex.split(line))
    except (argparse.ArgumentError, ValueError, SystemExit) as exc:
        raise ValueError(f"{exc}. Usage: {USAGE}") from None
    if extra:
        raise ValueError(f"unknown arguments {' '.join(extra)}. Usage: {USAGE}")
    if not args.name.isidentifier():
        raise ValueError(f"'{args.name}' is not a Python package name (letters, digits and _). Usage: {USAGE}")
    return AppletLine(args.name, args.models)


@dataclasses.dataclass
class NotebookCells:
    """The code cells of a saved notebook: each applet's, and the others."""

    applets: dict[str, list[Cell]]
    others: list[Cell]


def read_notebook(path: Path) -> NotebookCells:
    """Read the code cells of the ``.ipynb`` at ``path``, in notebook order; raise
    ValueError naming the file and the cell if it is not a notebook or a ``%%applet``
    line is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        cells = data["cells"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a readable Jupyter notebook: {exc}") from None
    found = NotebookCells({}, [])
    number = 0
    for raw in cells:
        if raw.get("cell_type") != "code":
            continue
        number += 1
        source = raw.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        label = f"code cell {number}"
        head, _, body = source.partition("\n")
        if head.strip().startswith(MAGIC + " ") or head.strip() == MAGIC:
            try:
                line = parse_line(head.strip()[len(MAGIC):])
            except ValueError as exc:
                raise ValueError(f"{path}, {label} ({head.strip()}): {exc}") from None
            found.applets.setdefault(line.name, []).append(Cell(label, body, line.models))
        else:
            found.others.append(Cell(label, source))
    return found
