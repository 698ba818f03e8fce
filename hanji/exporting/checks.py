"""What the export refuses before writing anything; any thread (pure).

- IPython syntax in an applet's cells (``%magic``, ``!command``, ``x = !cmd``,
  ``obj?``): a package cannot run it. Found with IPython's own input transformer,
  which rewrites exactly those lines.
- Names that a generated file uses but nothing in it defines or imports: found with
  pyflakes on the file as it would be written, then looked up in the notebook's other
  cells so the message says which cells to mark.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

from hanji.exporting.sources import Cell


def ipython_lines(cell: Cell) -> list[str]:
    """Return the lines of ``cell`` that only IPython understands (magics, ``!``
    shell lines, ``?`` help), as written."""
    from IPython.core.inputtransformer2 import TransformerManager

    source = cell.source if cell.source.endswith("\n") else cell.source + "\n"
    try:
        ast.parse(source)
        return []  # plain Python: a "%" or "!" line inside a string is not a magic
    except SyntaxError:
        pass
    transformed = TransformerManager().transform_cell(source)
    original = source.splitlines()
    rewritten = transformed.splitlines()
    if len(original) != len(rewritten):
        return [line for line in original if line.lstrip().startswith(("%", "!"))] or original[:1]
    return [a for a, b in zip(original, rewritten) if a != b]


def undefined_names(source: str, filename: str) -> list[str]:
    """Return the names ``source`` uses without defining or importing them (pyflakes),
    sorted, each once."""
    from pyflakes import checker, messages

    tree = ast.parse(source, filename=filename)
    found = checker.Checker(tree, filename=filename)
    names = {m.message_args[0] for m in found.messages if isinstance(m, messages.UndefinedName)}
    return sorted(names)


def bound_names(node: ast.AST) -> set[str]:
    """Return the names a top-level statement binds in its module (defs, classes,
    imports, assignment targets, loop and ``with`` targets), not those of nested
    functions or classes."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name.split(".")[0]) for a in node.names if a.name != "*"}
    found: set[str] = set()
    stack: list[ast.AST] = [node]
    while stack:
        current = stack.pop()
        for child in ast.iter_child_nodes(current):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found.add(child.name)
            elif isinstance(child, (ast.Import, ast.ImportFrom)):
                found |= bound_names(child)
            elif isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                found.add(child.id)
            elif not isinstance(child, (ast.Lambda, ast.comprehension, ast.ListComp, ast.SetComp,
                                        ast.DictComp, ast.GeneratorExp)):
                stack.append(child)
    return found


def cells_defining(names: Iterable[str], cells: Iterable[Cell]) -> dict[str, list[Cell]]:
    """Return, for each name, the cells whose top level binds it (cells that do not
    parse as Python are read through IPython's transformer)."""
    from IPython.core.inputtransformer2 import TransformerManager

    wanted = set(names)
    found: dict[str, list[Cell]] = {n: [] for n in wanted}
    for cell in cells:
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            try:
                tree = ast.parse(TransformerManager().transform_cell(cell.source))
            except SyntaxError:
                continue
        bound: set[str] = set()
        for statement in tree.body:
            bound |= bound_names(statement)
        for name in wanted & bound:
            found[name].append(cell)
    return found


def model_labels(source: str) -> list[tuple[str, str]]:
    """Return ``(app_label, class name)`` of the classes ``source`` defines with a
    literal ``class Meta: app_label = "..."``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        for inner in node.body:
            if isinstance(inner, ast.ClassDef) and inner.name == "Meta":
                for statement in inner.body:
                    if (isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant)
                            and isinstance(statement.value.value, str)
                            and any(isinstance(t, ast.Name) and t.id == "app_label" for t in statement.targets)):
                        found.append((statement.value.value, node.name))
    return found
