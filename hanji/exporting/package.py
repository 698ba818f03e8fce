"""Build an applet package from cells, check it, write it; the cell thread in a kernel,
the main thread of ``hanji export`` (blocking: parsing, pyflakes, files).

The steps, each refusing with a message that names the cells and what to do:

1. IPython syntax in the applet's cells (:func:`hanji.exporting.checks.ipython_lines`);
2. the layout of the statements over the files (:mod:`hanji.exporting.layout`);
3. models whose ``app_label`` is not the applet's name;
4. each file assembled, the names it takes from another file imported
   (``from .models import Task``), then pyflakes: a name still undefined is one
   that only unmarked cells define;
5. the migration of the models (:mod:`hanji.exporting.migration`);
6. writing, never over a hand-written file (:mod:`hanji.exporting.writer`).
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from typing import Any, Callable

from hanji.exporting import checks, layout
from hanji.exporting.errors import ExportError
from hanji.exporting.layout import INIT, MODELS, URLS, VIEWS, WEBUI, Hints
from hanji.exporting.sources import Cell
from hanji.exporting.writer import Written, header, write_package

# Which generated modules each one may import names from (no cycles; __init__.py
# none, since Django imports it before the models may be imported).
_IMPORTS_FROM = {MODELS: (), WEBUI: (MODELS,), VIEWS: (MODELS, WEBUI), URLS: (VIEWS, MODELS, WEBUI), INIT: ()}
_DOCSTRINGS = {
    MODELS: "The models of applet {name}.",
    WEBUI: "The web side of applet {name}: its resources, websockets and web UI.",
    VIEWS: "The Django views of applet {name}.",
    URLS: "The Django routes of applet {name}, mounted under /applets/{name}/.",
}
_LAZY_INIT = '''

def __getattr__(name):
    # `applet` is defined in webUI.py, beside the code it uses (which may import the
    # models): Django imports this package before models may be imported, so the
    # applet is read from webUI.py when Hanji asks for it.
    if name == "applet":
        from .webUI import applet

        return applet
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
'''


@dataclasses.dataclass
class ExportResult:
    """What ``hanji.export`` / ``hanji export`` did for one applet."""

    applet: str
    package: Path
    written: list[str]
    removed: list[str]
    unchanged: list[str]
    left_out: list[str]  # notebook-only statements not exported
    verify: Any = None  # a VerifyReport with verify=True

    def __repr__(self) -> str:
        lines = [f"Exported applet '{self.applet}' to {self.package}/"]
        if self.written:
            lines.append("  wrote: " + ", ".join(self.written))
        if self.unchanged:
            lines.append("  unchanged: " + ", ".join(self.unchanged))
        if self.removed:
            lines.append("  removed (no longer exported): " + ", ".join(self.removed))
        if self.left_out:
            lines.append(f"  left out ({len(self.left_out)} notebook-only statements, such as hanji.activate): "
                         + "; ".join(self.left_out[:3]) + (" …" if len(self.left_out) > 3 else ""))
        if self.verify is not None:
            lines.append("  " + repr(self.verify).replace("\n", "\n  "))
        lines.append(f"  serve it: hanji serve --applets {self.package.parent}")
        return "\n".join(lines)


ModelsOf = Callable[[str, str, list[str]], list[Any]]  # (name, models.py text, class names) -> classes


def _refuse_ipython(name: str, cells: list[Cell]) -> None:
    found = [(c, checks.ipython_lines(c)) for c in cells]
    found = [(c, lines) for c, lines in found if lines]
    if found:
        listing = "\n".join(f"  {c.label}: {line}" for c, lines in found for line in lines)
        raise ExportError(
            f"hanji export {name}: the cells of applet '{name}' use IPython syntax, which a package "
            f"cannot run:\n{listing}\nMove these lines to cells without %%applet (or write them in "
            f"Python: subprocess.run for '!', the hanji API for %hanji), then export again. Nothing was written."
        )


def _refuse_labels(name: str, text: str) -> None:
    wrong = [(label, model) for label, model in checks.model_labels(text) if label != name]
    if wrong:
        listing = ", ".join(f"{model} (app_label '{label}')" for label, model in wrong)
        raise ExportError(
            f"hanji export {name}: the models {listing} belong to another app; the models of applet "
            f"'{name}' need app_label = '{name}' (the package's name, so their tables keep their names). "
            f"Nothing was written."
        )


def _module_text(name: str, module: str, imports: list[str], relative: dict[str, list[str]],
                 code: list[str]) -> str:
    """Return a module's text: docstring, the cells' imports, the names taken from the
    applet's other files, then the code blocks two blank lines apart."""
    mine = [f"from .{m} import {', '.join(sorted(names))}" for m, names in relative.items() if names]
    head = "\n\n".join([f'"""{_DOCSTRINGS[module].format(name=name)}"""']
                        + ["\n".join(group) for group in (imports, mine) if group])
    return "\n\n\n".join([head] + code) + "\n"


def _top_level(text: str) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(text).body:
        names |= checks.bound_names(node)
    return names


def build(name: str, cells: list[Cell], others: list[Cell], origin: str, models_of: ModelsOf,
          hints: Hints | None = None) -> tuple[dict[str, str], list[str]]:
    """Return the package's files (relative path -> text with its header) and the
    notebook-only statements left out; raise ExportError if the cells cannot be
    exported as they are."""
    if not cells:
        raise ExportError(f"hanji export {name}: no cell belongs to applet '{name}'. Start the cells of "
                          f"the applet with %%applet {name} and run them (or save the notebook), then export.")
    _refuse_ipython(name, cells)
    try:
        plan = layout.plan(name, cells, hints)
    except SyntaxError as exc:
        raise ExportError(f"hanji export {name}: {exc.filename}, line {exc.lineno}: {exc.msg}. "
                          f"Fix the cell, then export again.") from None
    if plan.applet_id is not None and plan.applet_id != name:
        raise ExportError(f"hanji export {name}: the cells give the applet the id '{plan.applet_id}', but mark "
                          f"it %%applet {name}: the package's name is the applet's id. Use %%applet "
                          f"{plan.applet_id} (or remove the id), re-run the cells, then export again.")
    texts: dict[str, str] = {}
    defined: dict[str, set[str]] = {}
    missing: dict[str, list[str]] = {}
    for module in (MODELS, WEBUI, VIEWS, URLS):
        imports, code = plan.modules.get(module, ([], []))
        if not code:
            continue
        text = _module_text(name, module, imports, {}, code)
        relative: dict[str, list[str]] = {}
        for undefined in checks.undefined_names(text, f"{module}.py"):
            source = next((m for m in _IMPORTS_FROM[module] if undefined in defined.get(m, ())), None)
            if source is not None:
                relative.setdefault(source, []).append(undefined)
        if relative:
            text = _module_text(name, module, imports, relative, code)
        texts[module] = text
        defined[module] = _top_level(text)
        for undefined in checks.undefined_names(text, f"{module}.py"):
            missing.setdefault(undefined, []).append(f"{module}.py")
    if MODELS in texts:
        _refuse_labels(name, texts[MODELS])
    imports, code = plan.modules.get(INIT, ([], []))
    doc = f'"""{name}: an applet exported from {origin} by hanji export."""'
    if plan.lazy_applet:
        texts[INIT] = doc + "\n" + _LAZY_INIT
    else:
        head = doc + ("\n\n" + "\n".join(imports) if imports else "")
        texts[INIT] = "\n\n\n".join([head] + code) + "\n"
        for undefined in checks.undefined_names(texts[INIT], "__init__.py"):
            missing.setdefault(undefined, []).append("__init__.py")
    if missing:
        _refuse_undefined(name, missing, cells, others)
    files = {f"{module}.py": header(f"{module}.py", origin) + text for module, text in texts.items()}
    if plan.template is not None:
        files["templates/content.html"] = header("content.html", origin) + plan.template.strip("\n") + "\n"
    if plan.model_classes:
        from hanji.exporting.migration import initial_migrations

        models = models_of(name, texts[MODELS], plan.model_classes)
        migrations = initial_migrations(name, models)
        files["migrations/__init__.py"] = header("migrations/__init__.py", origin)
        for filename, text in migrations.items():
            files[f"migrations/{filename}"] = header(filename, origin) + text
    return files, plan.left_out


def _refuse_undefined(name: str, missing: dict[str, list[str]], cells: list[Cell], others: list[Cell]) -> None:
    where = checks.cells_defining(missing, others)
    mine = checks.cells_defining(missing, cells)
    lines = []
    for undefined in sorted(missing):
        files = ", ".join(missing[undefined])
        if where[undefined]:
            found = "; ".join(c.describe() for c in where[undefined])
            lines.append(f"  {undefined} (used in {files}): defined in {found}")
        elif mine[undefined]:
            found = "; ".join(c.describe() for c in mine[undefined])
            lines.append(f"  {undefined} (used in {files}): defined in {found}, an applet cell, but after its "
                         f"first use at module level (the cells are exported in the order they first ran: "
                         f"define it earlier), or in a file {files} cannot import (models.py imports no "
                         f"other file of the applet)")
        else:
            lines.append(f"  {undefined} (used in {files}): defined in no cell")
    raise ExportError(
        f"hanji export {name}: the code of applet '{name}' uses names that its cells do not define:\n"
        + "\n".join(lines)
        + f"\nStart the cells that define them with %%applet {name} (or define or import the names "
          f"in the applet's cells) and run them, then export again. Nothing was written."
    )


def export_cells(name: str, cells: list[Cell], others: list[Cell], directory: Path, origin: str,
                 models_of: ModelsOf, hints: Hints | None = None, static: Path | None = None) -> ExportResult:
    """Check and write applet ``name``'s package in ``directory/name``; return what was done."""
    if not name.isidentifier():
        raise ExportError(f"hanji export: '{name}' is not a Python package name; name the applet with "
                          f"letters, digits and _ (%%applet {name.replace('-', '_')}).")
    files, left_out = build(name, cells, others, origin, models_of, hints)
    package = Path(directory).expanduser().resolve() / name
    done: Written = write_package(package, files, static)
    return ExportResult(name, package, done.written, done.removed, done.unchanged, left_out)
