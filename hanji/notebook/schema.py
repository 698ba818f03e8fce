"""Tables for models defined in notebook cells (``hanji.migrate``).

A cell may define Django models for a live applet, with an explicit app label:

    class Item(models.Model):
        name = models.CharField(max_length=50)
        class Meta:
            app_label = "inventory"

Such a label is not an installed app, so Django's ``migrate`` ignores it and no
migration files exist. :func:`migrate_live` keeps, per label, the model states it
last applied in this process and lets Django's migration autodetector compute the
operations from those to the current classes (new models, added, altered and removed
fields), then applies them with the schema editor. The first time in a process, tables
that already exist (from an earlier kernel) are adopted: missing columns are added;
``reset=True`` drops and recreates the label's tables instead.

Everything here blocks on the database: it runs in the Django pool, never on the
reactor thread nor on the cell thread (which has a running asyncio loop).
"""

from __future__ import annotations

import re
import threading
import warnings
from typing import Any

from IPython.core.error import UsageError

from hanji import _compat
from hanji._threads import assert_not_reactor_thread

_lock = threading.Lock()
_applied: dict[str, dict[str, Any]] = {}  # label -> model name -> ModelState applied


class MigrationReport(list):  # type: ignore[type-arg]
    """What ``hanji.migrate()`` did, one line per operation."""

    def __init__(self, target: str, actions: list[str]) -> None:
        super().__init__(actions)
        self.target = target

    def __repr__(self) -> str:
        if not self:
            return f"hanji.migrate({self.target}): no change."
        return f"hanji.migrate({self.target}):\n" + "\n".join(f"  {a}" for a in self)


_live: set[str] = set()  # app labels of cell-defined models, given an app config by Hanji


def database_description() -> str:
    """Return which database the default connection is (a destructive operation
    says it: kernels in one folder share one SQLite file); any thread."""
    from django.db import connection

    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"the SQLite database {settings['NAME']} (shared by every kernel and server using this data dir)"
    host = settings.get("HOST") or "localhost"
    return f"the {connection.vendor} database {settings['NAME']!r} on {host}"


def installed_labels() -> set[str]:
    """Return the labels of the installed Django apps (packaged applets included,
    cell-defined labels excluded)."""
    from django.apps import apps

    return {config.label for config in apps.get_app_configs()} - _live


def live_labels() -> list[str]:
    """Return the app labels of models defined outside installed apps (in cells)."""
    from django.apps import apps

    installed = installed_labels()
    return sorted(label for label, models in _compat.all_models(apps).items() if label not in installed and models)


def _live_app_config(label: str) -> Any:
    """Return an app config for a cell-defined label: no module, no models module
    (so ``migrate``'s syncdb and post-migrate handlers leave it alone)."""
    import os
    import types

    from django.apps import AppConfig

    class LiveAppConfig(AppConfig):
        path = os.getcwd()  # a label from a cell has no package directory
        verbose_name = f"{label} (defined in the notebook)"

    return LiveAppConfig(label, types.ModuleType(label))


def install_label(label: str) -> bool:
    """Give a cell-defined app label an app config, so that relations between its
    models (reverse accessors, many-to-many) and ``apps.get_model`` work like for an
    installed app. Return True if it was added. Any thread but the reactor's.
    """
    from django.apps import apps

    if label in _compat.app_configs(apps) or not label.isidentifier():
        return False
    from django.conf import settings

    config = _live_app_config(label)
    config.apps = apps
    # No migrations package to look for: Django's migrate treats it as unmigrated.
    settings.MIGRATION_MODULES = {**settings.MIGRATION_MODULES, label: None}
    config.import_models()  # config.models is _compat.all_models(apps)[label], shared
    _live.add(label)
    _compat.app_configs(apps)[label] = config
    apps.clear_cache()
    return True


def _on_class_prepared(sender: Any, **kwargs: Any) -> None:
    """Install the app config of a model class defined with an unknown app label
    (Django's ``class_prepared`` signal, on the thread defining the class)."""
    meta = sender._meta
    if not meta.auto_created and meta.app_label not in installed_labels():
        install_label(meta.app_label)


def watch_cell_models() -> None:
    """Install app configs for cell-defined labels from now on, and for those that
    exist already (idempotent). Call after Django is set up."""
    from django.db.models.signals import class_prepared

    class_prepared.connect(_on_class_prepared, weak=False, dispatch_uid="hanji-live-models")
    for label in live_labels():
        install_label(label)


def live_models(label: str) -> list[Any]:
    """Return the concrete models defined with ``app_label = label`` (auto-created
    many-to-many tables excluded)."""
    from django.apps import apps

    return [m for m in _compat.all_models(apps).get(label, {}).values()
            if not m._meta.auto_created and not m._meta.abstract and not m._meta.proxy]


def _redefined(source: str) -> list[tuple[str, str]]:
    """Return ``(app_label, model_name)`` of the model classes that ``source``
    defines with a literal ``class Meta: app_label = "..."``."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        for inner in node.body:
            if not (isinstance(inner, ast.ClassDef) and inner.name == "Meta"):
                continue
            for stmt in inner.body:
                if (isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant)
                        and isinstance(stmt.value.value, str)
                        and any(isinstance(t, ast.Name) and t.id == "app_label" for t in stmt.targets)):
                    found.append((stmt.value.value, node.name.lower()))
    return found


def forget_redefined(source: str) -> list[str]:
    """Unregister the cell-defined models that ``source`` is about to define again;
    return their names. Cell thread, before the cell runs.

    Django resolves a new model's relations (its many-to-many table above all)
    against the registry while the class is built, so the old class would still be
    found; forgetting it first makes a re-run cell behave like the first run.
    Installed apps are never touched.
    """
    from django.apps import apps

    if not apps.ready:
        return []
    installed = installed_labels()
    forgotten = []
    for label, name in _redefined(source):
        models = _compat.all_models(apps).get(label)
        if label in installed or not models or name not in models:
            continue
        model = models.pop(name)
        for other_name, other in list(models.items()):
            if other._meta.auto_created is model:  # its many-to-many tables
                models.pop(other_name)
        forgotten.append(f"{label}.{name}")
    if forgotten:
        apps.clear_cache()
    return forgotten


def _questioner(label: str, nonempty: set[str]) -> Any:
    from django.db.migrations.questioner import MigrationQuestioner

    class NotebookQuestioner(MigrationQuestioner):
        """Answer the autodetector without asking: a live label is always "initial"."""

        def ask_initial(self, app_label: str) -> bool:
            return True

        def ask_not_null_addition(self, field_name: str, model_name: str) -> Any:
            if model_name.lower() in nonempty:
                raise UsageError(
                    f"{label}.{model_name}.{field_name} is a new NOT NULL field without a default "
                    f"and the table has rows: give it default=... or null=True, or run "
                    f"hanji.migrate('{label}', reset=True) to recreate the table (its rows are lost)."
                )
            return None  # the table is empty: no row needs a value

        def ask_auto_now_add_addition(self, field_name: str, model_name: str) -> Any:
            from django.utils import timezone

            return timezone.now()

    return NotebookQuestioner(specified_apps={label})


def _adopt(editor: Any, model: Any, tables: set[str]) -> list[str]:
    """Bring an existing table up to ``model`` by adding its missing columns."""
    conn = editor.connection
    table = model._meta.db_table
    with conn.cursor() as cursor:
        columns = {c.name for c in conn.introspection.get_table_description(cursor, table)}
    actions = []
    for field in model._meta.local_fields:
        if field.column and field.column not in columns:
            editor.add_field(model, field)
            actions.append(f"added column {table}.{field.column}")
    for field in model._meta.local_many_to_many:
        through = field.remote_field.through
        if through._meta.auto_created and through._meta.db_table not in tables:
            editor.create_model(through)
            actions.append(f"created table {through._meta.db_table}")
    extra = columns - {f.column for f in model._meta.local_fields}
    if extra:
        actions.append(
            f"kept columns {', '.join(sorted(extra))} of {table} that {model.__name__} no longer has "
            f"(hanji.migrate('{model._meta.app_label}', reset=True) recreates the table)"
        )
    return actions


def migrate_live(label: str, reset: bool = False) -> list[str]:
    """Create or update the tables of the models with app label ``label``; return
    the operations done. Django worker thread."""
    assert_not_reactor_thread("hanji.notebook.schema.migrate_live()")
    from django.apps import apps
    from django.db import connection
    from django.db.migrations.autodetector import MigrationAutodetector
    from django.db.migrations.graph import MigrationGraph
    from django.db.migrations.state import ModelState, ProjectState

    models = live_models(label)
    if models:
        install_label(label)
    if not models:
        raise UsageError(
            f"No model has app_label '{label}': define one in a cell with "
            f"`class Meta: app_label = '{label}'` and run the cell first."
        )
    # Re-running a model's cell re-registers the class; that is the point here.
    warnings.filterwarnings("ignore", message=rf"Model '{re.escape(label)}\.", category=RuntimeWarning)
    with _lock:
        actions: list[str] = []
        tables = set(connection.introspection.table_names())
        if reset:
            with connection.schema_editor() as editor:
                where = database_description()
                for model in models:
                    if model._meta.db_table in tables:
                        editor.delete_model(model)
                        actions.append(f"dropped table {model._meta.db_table} in {where}")
            tables = set(connection.introspection.table_names())
            _applied.pop(label, None)
        old = _applied.get(label)
        if old is None:
            old = {}
            with connection.schema_editor() as editor:
                for model in models:
                    if model._meta.db_table in tables:
                        actions += _adopt(editor, model, tables)
                        old[model._meta.model_name] = ModelState.from_model(model)
        current = {m._meta.model_name: m for m in models}
        nonempty = {name for name in old if name in current and current[name]._default_manager.exists()}
        base = ProjectState.from_apps(apps)  # installed apps: what live models may refer to
        for key in [k for k in base.models if k[0] == label]:
            del base.models[key]  # this label's models come from old/new below
        from_state, to_state = base.clone(), base.clone()
        for state in old.values():
            from_state.add_model(state.clone())
        new = {m._meta.model_name: ModelState.from_model(m) for m in models}
        for state in new.values():
            to_state.add_model(state.clone())
        detector = MigrationAutodetector(from_state, to_state, _questioner(label, nonempty))
        changes = detector.changes(graph=MigrationGraph(), trim_to_apps={label})
        state = from_state
        with connection.schema_editor() as editor:
            for migration in changes.get(label, []):
                actions += [op.describe() for op in migration.operations]
                state = migration.apply(state, editor)
        _applied[label] = new
        return actions


def migrate(target: str | None = None, reset: bool = False) -> MigrationReport:
    """Apply migrations: of everything (``target`` None), of the installed apps (an
    installed label), or the live models of one label; Django worker thread."""
    assert_not_reactor_thread("hanji.notebook.schema.migrate()")
    # Run through server.call_in_pool: the pool closes old connections around it.
    from hanji.django import setup as django_setup

    actions: list[str] = []
    installed = target is not None and target in installed_labels()
    if installed and reset:
        raise UsageError(f"reset=True is for models defined in cells; '{target}' is an installed applet.")
    labels = live_labels() if target is None else ([] if installed else [target])
    for label in labels:
        actions += migrate_live(label, reset)
    if target is None or installed:
        django_setup.migrate()
        actions.append("applied the migrations of the installed applets")
    return MigrationReport(repr(target) if target is not None else "", actions)
