"""How an applet's cells map onto the files of an applet package; any thread (pure).

Each top-level statement of the applet's cells, in notebook order, goes to one file:

| in the cells | in the package |
|---|---|
| a ``%%applet NAME --models`` cell, and any class with a literal ``Meta.app_label`` | ``models.py`` (and a migration, :mod:`hanji.exporting.migration`) |
| the ``Applet`` subclass, when it needs only imports | ``__init__.py``, with ``applet = …`` |
| resources, websockets, the ``WebUI``, helpers | ``webUI.py``, with ``web = …`` |
| ``WebUI.template = '''…'''`` (a literal) | ``templates/content.html`` |
| ``hanji.activate(…, urls=[path(…, view)])`` | ``urls.py``; the views it names, and what only they use, ``views.py`` |
| ``hanji.*`` calls, ``print(…)``, bare expressions (a cell's displayed value) | left out: they drive the notebook |

``hanji.activate(Applet, web=WebUI, urls=…)`` in the cells tells which classes are
the applet and its web UI; without one, the kernel's record of the active applet
does (:class:`Hints`), else the last ``Applet`` and ``WebUI`` subclasses defined.
When the ``Applet`` class uses code of the other files, it stays in ``webUI.py`` and
``__init__.py`` reads ``applet`` from there on first use: Django imports the package
before models may be imported, so ``__init__.py`` cannot import ``webUI.py`` itself.
Imports are copied to each file that uses what they bind; the names a file takes from
another file are added by :mod:`hanji.exporting.package` after pyflakes found them.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterable

from hanji.exporting.checks import bound_names, model_labels, undefined_names
from hanji.exporting.sources import Cell

MODELS, WEBUI, VIEWS, URLS, INIT = "models", "webUI", "views", "urls", "__init__"
MODULES = (MODELS, WEBUI, VIEWS, URLS, INIT)
_NOTEBOOK_CALLS = {"hanji", "print", "display"}


@dataclasses.dataclass
class Statement:
    """One top-level statement of a cell and the file it goes to."""

    cell: Cell
    node: ast.stmt
    text: str
    bound: set[str]
    used: set[str]
    module: str = WEBUI

    @property
    def is_import(self) -> bool:
        return isinstance(self.node, (ast.Import, ast.ImportFrom))


@dataclasses.dataclass(frozen=True)
class Hints:
    """What a kernel knows of the active applet, used when its cells hold no
    ``hanji.activate`` call: the class names and the instance's own attributes."""

    applet_class: str | None = None
    applet_attrs: tuple[tuple[str, str], ...] = ()  # ("id", "todo"), ("name", "Todo")...
    web_class: str | None = None


@dataclasses.dataclass
class Layout:
    """The package's files before headers and cross-file imports."""

    modules: dict[str, tuple[list[str], list[str]]]  # module -> (import statements, code blocks)
    template: str | None  # templates/content.html
    model_classes: list[str]  # classes defined in models.py
    lazy_applet: bool  # applet lives in webUI.py, read lazily by __init__.py
    applet_id: str | None  # an id the cells give the applet literally (class attribute or id=...)
    left_out: list[str]  # notebook-only statements, "In [4]: hanji.activate(...)"
    statements: list[Statement]


def _segment_lines(source: str, node: ast.stmt) -> tuple[int, int]:
    """Return the 0-based first and last line of ``node`` with its decorators and the
    comment lines right above it."""
    lines = source.splitlines()
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
    while start > 0 and lines[start - 1].strip().startswith("#"):
        start -= 1
    return start, (node.end_lineno or node.lineno) - 1


def _text(source: str, node: ast.stmt) -> str:
    start, end = _segment_lines(source, node)
    return "\n".join(source.splitlines()[start:end + 1])


def used_names(node: ast.AST) -> set[str]:
    """Return every name ``node`` reads (an over-approximation: locals included)."""
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _root_name(expr: ast.expr) -> str | None:
    while isinstance(expr, (ast.Attribute, ast.Call, ast.Subscript)):
        expr = expr.func if isinstance(expr, ast.Call) else expr.value
    return expr.id if isinstance(expr, ast.Name) else None


def _calls_hanji(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) and _root_name(n.func) == "hanji" for n in ast.walk(node))


def notebook_only(node: ast.stmt) -> bool:
    """Return True for a statement that drives the notebook rather than defines the
    applet: a ``hanji.*`` call, ``print``/``display``, a bare expression, an await."""
    if isinstance(node, ast.Expr):
        value = node.value
        if isinstance(value, ast.Call):
            return _root_name(value.func) in _NOTEBOOK_CALLS
        return True  # a displayed value, an await, a docstring of the cell
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        return node.value is not None and _calls_hanji(node.value)
    return False


def _tail(expr: ast.expr) -> str | None:
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        return expr.attr
    return None


@dataclasses.dataclass
class _Activation:
    applet: ast.expr | None = None
    web: ast.expr | None = None
    urls: ast.expr | None = None
    source: str = ""

    def segment(self, expr: ast.expr | None) -> str | None:
        return ast.get_source_segment(self.source, expr) if expr is not None else None


def _activation(cells: list[Cell], trees: list[ast.Module]) -> _Activation:
    """Return the last ``hanji.activate(...)`` call of the cells' top level."""
    found = _Activation()
    for cell, tree in zip(cells, trees):
        for statement in tree.body:
            for node in ast.walk(statement):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr == "activate" and _root_name(node.func) == "hanji"):
                    keywords = {k.arg: k.value for k in node.keywords}
                    found = _Activation(node.args[0] if node.args else keywords.get("applet"),
                                        node.args[1] if len(node.args) > 1 else keywords.get("web"),
                                        keywords.get("urls"), cell.source)
    return found


def _class_kinds(statements: list[Statement]) -> tuple[list[str], list[str]]:
    """Return the names of the Applet and WebUI subclasses defined, in order."""
    applets: list[str] = []
    webs: list[str] = []
    for s in statements:
        if isinstance(s.node, ast.ClassDef):
            tails = {_tail(b) for b in s.node.bases}
            if tails & ({"Applet"} | set(applets)):
                applets.append(s.node.name)
            elif tails & ({"WebUI"} | set(webs)):
                webs.append(s.node.name)
    return applets, webs


def _cut_template(statements: list[Statement], web_class: str) -> str | None:
    """Remove a literal ``template = '''…'''`` from the web UI class (or the cell
    class it extends) and return the template; None if there is none."""
    index = max((i for i, s in enumerate(statements)
                 if isinstance(s.node, ast.ClassDef) and s.node.name == web_class), default=None)
    seen = 0
    while index is not None and seen < 20:
        seen += 1
        statement = statements[index]
        node = statement.node
        assert isinstance(node, ast.ClassDef)
        for inner in node.body:
            if (isinstance(inner, ast.Assign) and len(inner.targets) == 1
                    and isinstance(inner.targets[0], ast.Name) and inner.targets[0].id == "template"
                    and isinstance(inner.value, ast.Constant) and isinstance(inner.value.value, str)):
                _remove_from_class(statement, inner)
                return inner.value.value
        bases = [_tail(b) for b in node.bases]
        index = max((i for i, s in enumerate(statements[:index])
                     if isinstance(s.node, ast.ClassDef) and s.node.name in bases), default=None)
    return None


def _remove_from_class(statement: Statement, inner: ast.stmt) -> None:
    """Drop ``inner``'s lines from the class ``statement``'s text (``pass`` if the
    class body would be empty)."""
    node = statement.node
    assert isinstance(node, ast.ClassDef)
    first, _ = _segment_lines(statement.cell.source, node)
    lines = statement.text.splitlines()
    start, end = inner.lineno - 1 - first, (inner.end_lineno or inner.lineno) - 1 - first
    indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
    rest = [b for b in node.body if b is not inner]
    keep = lines[:start] + ([] if rest else [indent + "pass"]) + lines[end + 1:]
    statement.text = "\n".join(keep)


def _constructor(expr: str | None, classes: Iterable[str]) -> str | None:
    """``Todo`` (a class of the cells) -> ``Todo()``; anything else is kept (an instance)."""
    if expr is None:
        return None
    return f"{expr}()" if expr in set(classes) else expr


def plan(name: str, cells: list[Cell], hints: Hints | None = None) -> Layout:
    """Map the applet ``name``'s cells (in notebook order) onto package files.
    Raise SyntaxError for a cell that is not Python."""
    trees = [ast.parse(c.source, filename=c.label) for c in cells]
    statements: list[Statement] = []
    left_out: list[str] = []
    for cell, tree in zip(cells, trees):
        for node in tree.body:
            if notebook_only(node):
                first = ast.get_source_segment(cell.source, node) or ""
                left_out.append(f"{cell.label}: {first.splitlines()[0] if first else ''}")
                continue
            text = _text(cell.source, node)
            # A model class (a literal Meta.app_label) goes to models.py from any cell.
            is_model = isinstance(node, ast.ClassDef) and bool(model_labels(text))
            statements.append(Statement(cell, node, text, bound_names(node), used_names(node),
                                        MODELS if cell.models or is_model else WEBUI))
    activation = _activation(cells, trees)
    code = [s for s in statements if not s.is_import]
    applet_classes, web_classes = _class_kinds(code)
    hints = hints or Hints()

    # The applet and its web UI.
    applet_expr = _constructor(activation.segment(activation.applet), applet_classes)
    if applet_expr is None and hints.applet_class in applet_classes:
        applet_expr = f"{hints.applet_class}()"
    if applet_expr is None and applet_classes:
        applet_expr = f"{applet_classes[-1]}()"
    web_expr = _constructor(activation.segment(activation.web), web_classes)
    if web_expr is None and hints.web_class in web_classes:
        web_expr = f"{hints.web_class}()"
    if web_expr is None and web_classes:
        web_expr = f"{web_classes[-1]}()"
    synthetic: list[Statement] = []
    if applet_expr is None:
        attrs = dict(hints.applet_attrs) or {"id": name}
        args = ", ".join(f"{k}={v!r}" for k, v in attrs.items())
        applet_expr = f"_hanji_applet.Applet({args})"
        synthetic.append(_synthetic("from hanji.core import applet as _hanji_applet", WEBUI))
    applet_class = applet_expr[:-2] if applet_expr.endswith("()") and applet_expr[:-2] in applet_classes else None

    # The inline template of the web UI class.
    template = None
    web_class = web_expr[:-2] if web_expr and web_expr.endswith("()") else None
    if web_class in web_classes:
        template = _cut_template(code, str(web_class))

    # Django routes: urls.py, and views.py for the views they name.
    urls_text = None
    if activation.urls is not None:
        urls_name = activation.segment(activation.urls)
        holder = None
        if isinstance(activation.urls, ast.Name):
            holder = next((s for s in reversed(code) if isinstance(s.node, ast.Assign)
                           and s.bound == {activation.urls.id} and s.module == WEBUI), None)
        if holder is not None:
            assert isinstance(holder.node, ast.Assign)
            value = ast.get_source_segment(holder.cell.source, holder.node.value)
            holder.text = f"urlpatterns = {value}"
            holder.module = URLS
            urls_text = None
        else:
            urls_text = f"urlpatterns = {urls_name}"
            synthetic.append(_synthetic(urls_text, URLS, used=used_names(activation.urls)))
        _move_views(code + synthetic)

    # The Applet class in __init__.py when it needs nothing but imports.
    lazy = True
    if applet_class is not None:
        mine = [s for s in code if isinstance(s.node, ast.ClassDef) and s.node.name == applet_class]
        alone = "\n".join(s.text for s in statements if s.is_import) + "\n" + "\n".join(s.text for s in mine)
        if all(s.module == WEBUI for s in mine) and not undefined_names(alone, "__init__.py"):
            for s in mine:
                s.module = INIT
            lazy = False

    modules: dict[str, tuple[list[str], list[str]]] = {}
    placed = code + synthetic
    footers: dict[str, list[str]] = {WEBUI: [], INIT: []}
    if lazy:
        footers[WEBUI].append(f"applet = {applet_expr}")
    else:
        footers[INIT].append(f"applet = {applet_expr}")
    if web_expr is not None:
        footers[WEBUI].append(f"web = {web_expr}")
    for module in MODULES:
        body = [s for s in placed if s.module == module and not s.is_import]
        extra = footers.get(module, [])
        used = set().union(*[s.used for s in body]) if body else set()
        for line in extra:
            used |= used_names(ast.parse(line))
        imports = _imports_for(used, [s for s in statements + synthetic if s.is_import])
        modules[module] = (imports, [s.text for s in body if s.text.strip()] + (["\n".join(extra)] if extra else []))
    model_classes = [s.node.name for s in code if s.module == MODELS and isinstance(s.node, ast.ClassDef)]
    return Layout(modules, template, model_classes, lazy, _literal_id(code, applet_class, activation),
                  left_out, statements)


def _literal_id(code: list[Statement], applet_class: str | None, activation: _Activation) -> str | None:
    """Return the id the cells give the applet as a literal, if any."""
    if isinstance(activation.applet, ast.Call):
        for keyword in activation.applet.keywords:
            if keyword.arg == "id" and isinstance(keyword.value, ast.Constant):
                return str(keyword.value.value)
    found = None
    for s in code:
        if isinstance(s.node, ast.ClassDef) and s.node.name == applet_class:
            for inner in s.node.body:
                if (isinstance(inner, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "id" for t in inner.targets)
                        and isinstance(inner.value, ast.Constant)):
                    found = str(inner.value.value)
    return found


def _synthetic(text: str, module: str, used: set[str] | None = None) -> Statement:
    node = ast.parse(text).body[0]
    return Statement(Cell("hanji export", text), node, text, bound_names(node),
                     used if used is not None else used_names(node), module)


def _move_views(code: list[Statement]) -> None:
    """Move to views.py the functions and classes urls.py uses, then what only the
    moved code uses, unless the web UI's code uses them too."""
    moved = True
    while moved:
        moved = False
        wanted = set().union(*[s.used for s in code if s.module in (URLS, VIEWS)])
        for s in code:
            if s.module != WEBUI or not s.bound or not (s.bound & wanted):
                continue
            others = set().union(*[o.used for o in code if o.module in (WEBUI, INIT) and o is not s])
            if s.bound & others:
                continue
            if isinstance(s.node, ast.ClassDef) and any(_tail(b) in ("Applet", "WebUI") for b in s.node.bases):
                continue
            s.module = VIEWS
            moved = True


def _imports_for(used: set[str], imports: list[Statement]) -> list[str]:
    """Return the import statements (text, each once, in cell order) binding a name
    in ``used``; ``import hanji`` only if the code uses ``hanji`` itself."""
    found: list[str] = []
    for s in imports:
        if s.bound & used and s.text not in found:
            found.append(s.text)
    return found
