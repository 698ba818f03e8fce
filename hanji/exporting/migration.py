"""The initial migration of an exported applet's models, written by Django's own
``MigrationAutodetector`` and ``MigrationWriter``; the thread that configured Django
(the cell thread in a kernel, the main thread of ``hanji export``), no database used.

The migration creates the tables with the names the notebook's models already have
(``<app_label>_<model>``, the app label being the package name), so in the
notebook's database it applies as fake-initial: ``hanji serve`` migrates with
``fake_initial`` and finds the tables and their rows.
"""

from __future__ import annotations

import types
from typing import Any


def model_classes(label: str, source: str) -> list[Any]:
    """Define the models of ``source`` (a models.py, run in a module of its own) and
    return those with app label ``label``; Django must be set up. For ``hanji export``
    on a notebook file, where no kernel defined them."""
    from hanji.notebook.schema import live_models

    module = types.ModuleType(f"_hanji_export_{label}_models")
    exec(compile(source, f"{label}/models.py", "exec"), module.__dict__)  # the user's own cells
    return live_models(label)


def initial_migrations(label: str, models: list[Any]) -> dict[str, str]:
    """Return ``{file name: source}`` of the migrations creating ``models`` (usually
    one, ``0001_initial.py``; Django splits circular relations in two)."""
    from django.apps import apps
    from django.db.migrations.autodetector import MigrationAutodetector
    from django.db.migrations.graph import MigrationGraph
    from django.db.migrations.questioner import MigrationQuestioner
    from django.db.migrations.state import ModelState, ProjectState
    from django.db.migrations.writer import MigrationWriter

    base = ProjectState.from_apps(apps)  # what the models may refer to (auth.User...)
    for key in [k for k in base.models if k[0] == label]:
        del base.models[key]  # the kernel's own registration of these models
    target = base.clone()
    for model in models:
        target.add_model(ModelState.from_model(model))
    detector = MigrationAutodetector(base, target, MigrationQuestioner(defaults={"ask_initial": True},
                                                                       specified_apps={label}))
    changes = detector.changes(graph=MigrationGraph(), trim_to_apps={label}, convert_apps={label})
    return {f"{m.name}.py": MigrationWriter(m).as_string() for m in changes.get(label, [])}
